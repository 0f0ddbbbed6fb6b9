"""Training step options: bf16 autocast and torch.compile against fp32, on Standard, Adv-Base and RIFT steps.

For each method and option, a short fixed run of the embedded MiniLM on SST-2 (48
tokens, batch 32, lr 5e-5, the same seeded phrases and batches for every option):
seconds per optimiser step over the run, and dev accuracy (500 carved dev phrases)
of the model at its end, against fp32 in the same process. An option is worth
offering if it is faster at equal accuracy; the default stays fp32 so that the
multi-seed study's numbers do not move (``train.autocast: bf16`` is the option).

    RIFTKIT_DATA_DIR=../shared/data .venv/bin/python benchmarks/train_precision.py

Options: ``fp32`` (the default), ``bf16`` (``train.autocast: bf16``), ``compile``
(``torch.compile`` of the encoder, default inductor backend; its compile time is
reported apart, not in the step time). Writes benchmarks/results/train_precision.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from riftkit.config import AdversaryConfig, DataConfig, ExperimentConfig, InfoConfig, ModelConfig, ObjectiveConfig, TrainConfig
from riftkit.data import load_splits
from riftkit.training.log import read_metrics
from riftkit.training.loop import build_model, train

HERE = Path(__file__).resolve().parent


def run(method: str, option: str, steps: int, data_dir: str | None) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"riftkit-precision-{method}-{option}-"))
    config = ExperimentConfig(
        name=f"precision-{method}-{option}", output_dir=str(out),
        data=DataConfig(dataset="sst2", dev_size=500, max_train=32 * steps, seed=0),
        model=ModelConfig(encoder="embedded", max_length=48),
        train=TrainConfig(method=method, epochs=1, batch_size=32, lr=5e-5, balanced_batches=True, select_metric="dev_accuracy",
                          forgetting_probe_size=0, progress=False, seed=0, autocast="bf16" if option == "bf16" else "fp32"),
        objective=ObjectiveConfig(beta=10.0, adversary=AdversaryConfig(steps=10), info=InfoConfig(alpha=0.1)),
    )
    splits = load_splits(config.data, data_dir)
    torch.manual_seed(0)
    model = build_model(config.model, splits.task, config.train.seed)
    compile_s = None
    if option == "compile":
        model.encoder = torch.compile(model.encoder, dynamic=True)
        start = time.perf_counter()
        with torch.no_grad():  # compile on a first batch, outside the timed steps
            model(**model.encode_examples(splits.train[:32]))
        compile_s = round(time.perf_counter() - start, 1)
    result = train(config, splits, model=model, evaluate_test=False, data_dir=data_dir)
    epoch = next(r for r in read_metrics(out / "metrics.jsonl") if r["event"] == "train_epoch")
    return {"method": method, "option": option, "steps": result.state.step, "s_per_step": round(epoch["time_s"] / result.state.step, 3),
            "dev_accuracy": round(result.best_dev["accuracy"], 4), "train_loss": round(epoch["loss"], 4), "compile_s": compile_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=["standard", "adv", "rift"])
    parser.add_argument("--options", nargs="+", default=["fp32", "bf16", "compile"])
    parser.add_argument("--steps", type=int, nargs="+", default=[32, 12, 12], help="optimiser steps per method (same order)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default=str(HERE / "results" / "train_precision.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for method, steps in zip(args.methods, args.steps):
        base = None
        for option in args.options:
            try:
                row = run(method, option, steps, args.data_dir)
            except Exception as err:  # an option that does not run here is reported, not fatal
                row = {"method": method, "option": option, "error": f"{type(err).__name__}: {str(err)[:300]}"}
            if option == "fp32" and "error" not in row:
                base = row
            if base and "error" not in row:
                row["speedup"] = round(base["s_per_step"] / row["s_per_step"], 3)
                row["dev_accuracy_minus_fp32"] = round(row["dev_accuracy"] - base["dev_accuracy"], 4)
            rows.append(row)
            print(json.dumps(row), flush=True)
            Path(args.out).write_text(json.dumps({"rows": rows, "threads": args.threads, "load_average": os.getloadavg(),
                                                  "note": "same seed, data and batches per option; one short run each"}, indent=2) + "\n")
    print(f"{'method':<9} {'option':<8} {'s/step':>7} {'speedup':>8} {'dev acc':>8} {'vs fp32':>8}")
    for r in rows:
        if "error" in r:
            print(f"{r['method']:<9} {r['option']:<8} error: {r['error'][:80]}")
        else:
            print(f"{r['method']:<9} {r['option']:<8} {r['s_per_step']:>7.3f} {r.get('speedup', 1):>8.2f} {r['dev_accuracy']:>8.3f} "
                  f"{r.get('dev_accuracy_minus_fp32', 0):>+8.3f}")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
