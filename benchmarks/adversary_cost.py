"""A cheaper training adversary (issue 24, item 3): dev robust accuracy against the cost of an adversarial step.

    RIFTKIT_DATA_DIR=../shared/data riftkit sweep configs/study/adversary_sst2.yaml   # the trained runs (resumable)
    RIFTKIT_DATA_DIR=../shared/data python benchmarks/adversary_cost.py              # cost, then the table

Two parts:

1. **Cost, measured in one process** (so that the ratios do not depend on what else ran when): for Standard and
   every adversary setting, a short run of the embedded MiniLM on the same seeded SST-2 phrases (48 tokens, batch
   32, lr 5e-5, ``--steps`` optimiser steps, one epoch), seconds per optimiser step and that over Standard's.
2. **Robustness, read from the trained runs** (1,000 phrases, 64 steps, seed 0; ``configs/study/adversary_sst2.yaml``,
   with K = 10 and Standard from ``configs/study/margin_sst2.yaml``, the same config): dev clean accuracy, dev PWWS
   robust accuracy on all 500 dev phrases, dev ASCC robust accuracy (selection's 200), the median dev margin, and the
   paired difference in dev PWWS robust accuracy against Standard over the same 500 phrases (bootstrap over
   phrases; one seed, so the interval does not cover seeds).

A setting qualifies (the issue's rule) when K = 10's dev PWWS gain over Standard is decided (its interval excludes 0)
and the setting keeps at least 80% of that gain. Settings: K in {1, 2, 3, 5, 10} inner steps (inner learning rate
10 / K), warm starts (``objective.adversary.warm_starts``) for K = 1 and 2, and bf16 autocast on K = 1 with warm
starts; all with the whole-threat-model hull (``hull: length_groups``). Writes benchmarks/results/adversary_cost.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from riftkit.config import AdversaryConfig, DataConfig, ExperimentConfig, ModelConfig, ObjectiveConfig, TrainConfig
from riftkit.data import load_splits
from riftkit.evaluation.statistics import paired_bootstrap
from riftkit.training.log import read_metrics
from riftkit.training.loop import build_model, train

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WARM = 100_000
# name -> (training method, adversary settings, autocast); the K = 10 row is the paper's adversary on the same hull
SETTINGS: dict[str, tuple[str, dict, str]] = {
    "standard": ("standard", {}, "fp32"),
    "k10": ("adv", {"steps": 10, "lr": 1.0}, "fp32"),
    "k5": ("adv", {"steps": 5, "lr": 2.0}, "fp32"),
    "k3": ("adv", {"steps": 3, "lr": 3.3333}, "fp32"),
    "k2": ("adv", {"steps": 2, "lr": 5.0}, "fp32"),
    "k2_warm": ("adv", {"steps": 2, "lr": 5.0, "warm_starts": WARM}, "fp32"),
    "k1": ("adv", {"steps": 1, "lr": 10.0}, "fp32"),
    "k1_warm": ("adv", {"steps": 1, "lr": 10.0, "warm_starts": WARM}, "fp32"),
    "k1_warm_bf16": ("adv", {"steps": 1, "lr": 10.0, "warm_starts": WARM}, "bf16"),
    "k1_bf16": ("adv", {"steps": 1, "lr": 10.0}, "bf16"),
}
# where each setting's trained run lives (relative to the repository)
RUNS = {
    "standard": "results/margin-sst2/runs/standard-seed0",
    "k10": "results/margin-sst2/runs/length_groups-seed0",
    **{name: f"results/adversary-sst2/runs/{name}-seed0" for name in SETTINGS if name not in ("standard", "k10")},
}
PWWS_FOLDER = "attacks/pwws-dev-nall-seed0"


def step_cost(name: str, steps: int, data_dir: str | None) -> dict:
    """Seconds per optimiser step of a short run (``steps`` steps) of setting ``name``."""
    method, adversary, autocast = SETTINGS[name]
    out = Path(tempfile.mkdtemp(prefix=f"riftkit-adversary-cost-{name}-"))
    config = ExperimentConfig(
        name=f"adversary-cost-{name}", output_dir=str(out),
        data=DataConfig(dataset="sst2", dev_size=500, max_train=32 * steps, seed=0),
        model=ModelConfig(encoder="embedded", max_length=48),
        train=TrainConfig(method=method, epochs=1, batch_size=32, lr=5e-5, balanced_batches=True, select_metric="dev_accuracy",
                          forgetting_probe_size=0, progress=False, seed=0, autocast=autocast),
        objective=ObjectiveConfig(beta=10.0, adversary=AdversaryConfig(hull="length_groups", **adversary)),
    )
    splits = load_splits(config.data, data_dir)
    model = build_model(config.model, splits.task, config.train.seed)
    result = train(config, splits, model=model, evaluate_test=False, data_dir=data_dir)
    epoch = next(r for r in read_metrics(out / "metrics.jsonl") if r["event"] == "train_epoch")
    return {"steps": result.state.step, "s_per_step": round(epoch["time_s"] / result.state.step, 3)}


def robust_indicators(run: Path) -> dict[str, int] | None:
    path = run / PWWS_FOLDER / "examples.jsonl.gz"
    if not path.is_file():
        return None
    with gzip.open(path, "rt") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return {r["uid"]: int(r["outcome"] == "failed") for r in records}  # robust: correct, and the attack failed


def trained(name: str) -> dict | None:
    """Dev numbers of the setting's trained run (None when it has not run)."""
    run = ROOT / RUNS[name]
    if not (run / "summary.json").is_file():
        return None
    best = json.loads((run / "summary.json").read_text())["best_dev"]
    robust = robust_indicators(run)
    epochs, previous = [], 0.0
    for record in read_metrics(run / "metrics.jsonl"):
        if record["event"] == "train_epoch":
            epochs.append(record["time_s"] - previous)
        if record["event"] in ("start", "train_epoch", "eval"):
            previous = record["time_s"]
    return {"run": RUNS[name], "dev_accuracy": round(best["accuracy"], 4), "dev_robust_ascc": best.get("dev_robust_ascc"),
            "dev_margin_median": round(best["margin_median"], 4) if best.get("margin_median") is not None else None,
            "selected_step": best["step"], "dev_robust_pwws": round(float(np.mean(list(robust.values()))), 4) if robust else None,
            "train_s": round(sum(epochs), 1), "_robust": robust}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--steps", type=int, default=6, help="optimiser steps of each timed run")
    parser.add_argument("--skip-cost", action="store_true", help="reuse the cost rows of --out (part 2 only)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default=os.environ.get("RIFTKIT_DATA_DIR"))
    parser.add_argument("--out", default=str(HERE / "results" / "adversary_cost.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    cost = previous.get("cost", {}) if args.skip_cost else {}
    if not args.skip_cost:
        for name in args.settings:
            cost[name] = step_cost(name, args.steps, args.data_dir)
            print(f"{name:<13} {cost[name]['s_per_step']:.3f} s/step", flush=True)
        cost["_load_average"] = os.getloadavg()

    rows, reference = {}, trained("standard")
    for name in args.settings:
        row = {"settings": {"method": SETTINGS[name][0], **SETTINGS[name][1], "autocast": SETTINGS[name][2]}}
        if name in cost:
            row["s_per_step"] = cost[name]["s_per_step"]
            if "standard" in cost:
                row["cost_vs_standard"] = round(cost[name]["s_per_step"] / cost["standard"]["s_per_step"], 2)
        run = trained(name)
        if run is not None:
            robust = run.pop("_robust")
            row.update(run)
            if robust and reference and reference["_robust"] and name != "standard":
                uids = sorted(set(robust) & set(reference["_robust"]))
                diff = paired_bootstrap(np.array([[robust[u] for u in uids]]), np.array([[reference["_robust"][u] for u in uids]]))
                row["pwws_gain_over_standard"] = diff.to_dict()
        rows[name] = row
    k10 = rows.get("k10", {}).get("pwws_gain_over_standard")
    for name, row in rows.items():
        gain = row.get("pwws_gain_over_standard")
        if k10 and gain and name != "k10":
            row["share_of_k10_gain"] = round(gain["mean"] / k10["mean"], 3) if k10["mean"] else None
            row["qualifies"] = bool(k10["decided"] and k10["mean"] > 0 and gain["mean"] >= 0.8 * k10["mean"])
    report = {"cost": cost, "rows": rows, "k10_gain_decided": bool(k10 and k10["decided"]),
              "note": ("cost: one process, short runs of --steps steps on the same phrases; robustness: the trained runs "
                       "(1,000 SST-2 phrases, 64 steps, seed 0), dev only; intervals over the 500 dev phrases, one seed")}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")

    print(f"\n{'setting':<13} {'s/step':>7} {'x Std':>6} {'dev acc':>8} {'PWWS rob':>9} {'ASCC rob':>9} {'margin':>7} "
          f"{'gain vs Std (95% CI)':>24} {'of K=10':>8} {'qualifies':>9}")
    for name, row in rows.items():
        gain = row.get("pwws_gain_over_standard")
        g = f"{100 * gain['mean']:+.1f} [{100 * gain['low']:+.1f}, {100 * gain['high']:+.1f}]" if gain else "-"

        def num(key, fmt):
            return format(row[key], fmt) if row.get(key) is not None else "-"
        print(f"{name:<13} {num('s_per_step', '7.2f'):>7} {num('cost_vs_standard', '6.2f'):>6} {num('dev_accuracy', '8.3f'):>8} "
              f"{num('dev_robust_pwws', '9.3f'):>9} {num('dev_robust_ascc', '9.3f'):>9} {num('dev_margin_median', '7.3f'):>7} {g:>24} "
              f"{num('share_of_k10_gain', '8.2f'):>8} {str(row.get('qualifies', '-')):>9}")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
