"""Which pooling the embedded MiniLM should use: Standard and RIFT with pooler, cls and mean.

The embedded MiniLM ships pooler weights but was last trained (as a sentence
encoder) with mean pooling, so ``pooling: auto`` would pick a pooler it never
used. For each CPU SST-2 config (same 1,000 training phrases, 500 carved dev
phrases, 48 tokens, 2 epochs, seed 0), one run per pooling:

    RIFTKIT_DATA_DIR=../shared/data .venv/bin/python benchmarks/pooling.py

reports dev clean accuracy (500 phrases), dev robust accuracy under the
white-box ASCC attack on the seeded 200-phrase selection subset (the strong
decode, as model selection runs it), and the same on test (GLUE dev, 872
clean, 200 robust). Standard is selected by clean dev accuracy (its CPU config),
RIFT by dev ASCC robust accuracy. Runs go to ``runs/pooling/<config>-<pooling>``;
a finished run (its ``summary.json`` exists) is read back, not retrained, so a
killed benchmark resumes. Writes benchmarks/results/pooling.json after each run.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from riftkit.config import load_config
from riftkit.data import load_splits
from riftkit.training.loop import train

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def run_one(config_path: Path, pooling: str, runs: Path, data_dir: str | None) -> dict:
    name = f"{config_path.stem}-{pooling}"
    out = runs / name
    config = load_config(config_path, [f"model.pooling={pooling}", f"output_dir={out}", f"name=pooling-{name}", "train.progress=false"])
    if not (out / "summary.json").exists():
        train(config, load_splits(config.data, data_dir), data_dir=data_dir)
    summary = json.loads((out / "summary.json").read_text())
    start = next(json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"start"' in line)
    best, test = summary["best_dev"], summary["test"] or {}
    return {
        "config": config_path.name, "method": summary["method"], "pooling": pooling, "pooling_used": start.get("pooling"),
        "selected_by": best.get("selected_by"), "dev_accuracy": best["accuracy"],
        "dev_robust_ascc": best.get("dev_robust_ascc"), "dev_robust_subset_accuracy": best.get("dev_robust_subset_accuracy"),
        "test_accuracy": test.get("accuracy"), "test_robust_ascc": test.get("robust_ascc"), "wall_time_s": summary["wall_time_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["configs/cpu/sst2_standard_small.yaml", "configs/cpu/sst2_rift.yaml"])
    parser.add_argument("--poolings", nargs="+", default=["pooler", "cls", "mean"])
    parser.add_argument("--runs", default="runs/pooling")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default=str(HERE / "results" / "pooling.json"))
    args = parser.parse_args()
    rows = []
    for config in args.configs:
        for pooling in args.poolings:
            rows.append(run_one(ROOT / config, pooling, Path(args.runs), args.data_dir))
            r = rows[-1]
            print(f"{r['method']:<9} {pooling:<7} dev {r['dev_accuracy']:.3f}  dev ASCC {r['dev_robust_ascc']:.3f}  "
                  f"test {r['test_accuracy']:.3f}  test ASCC {r['test_robust_ascc']:.3f}  {r['wall_time_s']:.0f} s", flush=True)
            Path(args.out).write_text(json.dumps({"rows": rows, "load_average": os.getloadavg(),
                                                  "note": "one seed (0); dev ASCC = strong decode on the seeded 200-phrase selection subset"}, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
