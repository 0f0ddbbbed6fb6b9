"""Step time and peak memory of training steps, as ratios measured in one run.

    python benchmarks/train_step.py [--data-dir ../shared/data] [--repeats 3] [--out benchmarks/results/train_step.json]

The embedded MiniLM (6 layers), batch 32, every sequence exactly 64 tokens
(IMDB reviews truncated), CPU threads as given. Measured per kind of step:

* fwd+bwd: one forward and backward pass of the batch (the unit of cost);
* standard: a Standard training step (CE, AdamW);
* adv: an Adv-Base step (ASCC adversary with K steps, then CE + beta KL);
* rift: a RIFT step (Adv-Base + frozen teacher forward + class-conditional InfoNCE).

Targets: adv <= 1.2 x (K + 3) x fwd+bwd (adversarial issue); rift <= 1.15 x adv in
time and <= 1.3 x adv in peak memory (RIFT issue). Peak memory is the
growth of the process's peak resident memory during the steps (CPU; each kind
runs in its own subprocess so that peaks do not mix) or torch.cuda.max_memory_allocated (GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

KINDS = ("fwd_bwd", "standard", "adv", "rift")


def measure(kind: str, data_dir: str, repeats: int, steps_k: int, batch_size: int, length: int) -> dict:
    import torch

    from riftkit.config import AdversaryConfig, DataConfig, ObjectiveConfig
    from riftkit.data import load_splits
    from riftkit.data.examples import TaskSpec
    from riftkit.models import build_classifier, load_encoder, load_tokenizer
    from riftkit.objectives import TrainBatch, build_objective
    from riftkit.substitutions import load_substitutions
    from riftkit.training.optim import build_optimizer

    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    splits = load_splits(DataConfig(dataset="imdb", max_train=batch_size, max_dev=1, max_test=1), data_dir)
    task = TaskSpec("imdb", "single", ("negative", "positive"))
    model = build_classifier(load_encoder(), load_tokenizer(), task, "embedded", max_length=length, seed=0).to(device).train()
    examples = splits.train[:batch_size]
    inputs = model.encode_examples(examples).to(device)
    assert inputs["input_ids"].shape[1] == length, "every review must fill the max length"
    batch = TrainBatch(examples, inputs, torch.tensor([e.label for e in examples], device=device))
    optimizer = build_optimizer(model.encoder, [model.head], 2e-5, 0.0, 2e-4)
    if kind == "fwd_bwd":
        def step():
            loss = torch.nn.functional.cross_entropy(model(**batch.inputs), batch.labels)
            loss.backward()
            model.zero_grad(set_to_none=True)
    else:
        method = kind
        subs = load_substitutions("counterfitted", data_dir) if method != "standard" else None
        objective = build_objective(method, ObjectiveConfig(adversary=AdversaryConfig(steps=steps_k)), model, subs)

        def step():
            out = objective(model, batch)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()

    step()  # warm-up (allocations, caches)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    return {"kind": kind, "median_s": statistics.median(times), "times_s": times, "peak_bytes": peak,
            "peak_growth_bytes": None if device.type == "cuda" else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) * 1024,
            "device": str(device), "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("RIFTKIT_DATA_DIR", "../shared/data"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k", type=int, default=10, help="ASCC adversary steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--out", default="benchmarks/results/train_step.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.data_dir, args.repeats, args.k, args.batch_size, args.length)))
        return
    results = {}
    for kind in args.kinds:
        command = [sys.executable, __file__, "--worker", kind, "--data-dir", args.data_dir, "--repeats", str(args.repeats),
                   "--k", str(args.k), "--batch-size", str(args.batch_size), "--length", str(args.length)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"measured {kind}: {results[kind]['median_s']:.3f} s", file=sys.stderr)
    unit = results["fwd_bwd"]["median_s"] if "fwd_bwd" in results else None
    rows = []
    for kind, r in results.items():
        ratio = r["median_s"] / unit if unit else float("nan")
        mem = r["peak_bytes"] / 2**20
        rows.append((kind, r["median_s"], ratio, mem))
    print(f"\nMiniLM-6, batch {args.batch_size}, {args.length} tokens, {results[next(iter(results))]['device']}, "
          f"{results[next(iter(results))]['threads']} threads, median of {args.repeats}")
    print(f"{'step':<10} {'seconds':>8} {'x fwd+bwd':>10} {'peak MiB':>9}")
    for kind, seconds, ratio, mem in rows:
        print(f"{kind:<10} {seconds:>8.3f} {ratio:>10.2f} {mem:>9.0f}")
    summary = {"config": vars(args), "results": results}
    if unit and "adv" in results:
        budget = (args.k + 3) * unit
        summary["adv_over_k_plus_3_fwd_bwd"] = results["adv"]["median_s"] / budget
        summary["target"] = "adv <= 1.2 x (K + 3) x fwd+bwd"
        print(f"\nadv / ((K + 3) x fwd+bwd) = {summary['adv_over_k_plus_3_fwd_bwd']:.2f}   (target <= 1.2)")
        if "standard" in results:
            summary["adv_memory_over_standard"] = results["adv"]["peak_bytes"] / results["standard"]["peak_bytes"]
            print(f"peak memory adv / standard = {summary['adv_memory_over_standard']:.2f}")
    if "adv" in results and "rift" in results:
        summary["rift_time_over_adv"] = results["rift"]["median_s"] / results["adv"]["median_s"]
        summary["rift_memory_over_adv"] = results["rift"]["peak_bytes"] / results["adv"]["peak_bytes"]
        print(f"rift / adv: time {summary['rift_time_over_adv']:.2f} (target <= 1.15), peak memory {summary['rift_memory_over_adv']:.2f} (target <= 1.3)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
