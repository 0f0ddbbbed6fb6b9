"""Does the approximate forward path (bf16 with rechecks) change what an attack reports? And how much faster is it?

The same attacks, on the same seeded SST-2 test examples, through riftkit's attack runner
twice: ``attack.backend=torch`` (exact fp32) and ``attack.backend=auto`` (bf16 autocast, the
exact model deciding every reported outcome). By default PWWS on 200 examples and Genetic
(60 x 40, with its language-model constraint as the protocol runs it) on 50, the sizes the
forward-path issue asks for. The exact path runs first, so the machine's load is as alike as
two runs in one process can make it.

    RIFTKIT_DATA_DIR=../shared/data .venv/bin/python benchmarks/backend_outcomes.py \\
        --model runs/cpu-sst2-standard-small/best

Rows: ``attack``, ``backend``, ``n``, ``vanilla_accuracy``, ``robust_accuracy``, ``wall_s``,
``speedup`` (exact wall time / this path's), ``mean_queries`` (search queries), ``recheck_queries``
(texts the exact model scored to check outcomes, apart), ``recheck_reruns``, ``same_outcome`` (share
of examples with the exact path's outcome), ``vanilla_accuracy_equal``, ``robust_accuracy_equal`` (within
1 point, the issue's bar) and ``robust_accuracy_diff``. Writes benchmarks/results/backend_outcomes.json
and copies ``robust_accuracy_equal`` into the bf16 rows of benchmarks/results/forward_paths.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from riftkit.attacks.runner import run_attack
from riftkit.config import AttackConfig, DataConfig, GeneticConfig
from riftkit.data import load_splits
from riftkit.models import load_classifier

HERE = Path(__file__).resolve().parent
WITHIN = 0.01  # "robust accuracy within 1 point of the exact path's"


def attack_both(model, model_path: str, splits, attack: str, n: int, workdir: Path, data_dir: str | None) -> list[dict]:
    rows, outcomes = [], {}
    for backend in ("torch", "auto"):
        config = AttackConfig(attack=attack, n=n, seed=0, split="test", backend=backend, genetic=GeneticConfig(population=60, generations=40))
        folder = workdir / f"{attack}-{backend}"
        start = time.perf_counter()
        summary = run_attack(model, splits, config, model_path, output_dir=folder, data_dir=data_dir, progress=False, log=lambda m: None)
        wall = time.perf_counter() - start
        records = [json.loads(line) for line in (folder / "examples.jsonl").read_text().splitlines()]
        outcomes[backend] = {r["uid"]: r["outcome"] for r in records}
        row = {"attack": attack, "backend": summary["backend"]["backend"], "n": summary["n"],
               "vanilla_accuracy": summary["vanilla_accuracy"], "robust_accuracy": summary["robust_accuracy"],
               "wall_s": round(wall, 1), "mean_queries": round(summary["mean_queries"], 1),
               "recheck_queries": summary.get("recheck_queries", 0), "recheck_reruns": summary.get("recheck_reruns", 0),
               "recheck_exact_searches": summary.get("recheck_exact_searches", 0)}
        if backend != "torch":
            exact = rows[0]
            row["speedup"] = round(exact["wall_s"] / row["wall_s"], 3)
            row["same_outcome"] = sum(outcomes["torch"][u] == o for u, o in outcomes[backend].items()) / len(records)
            row["vanilla_accuracy_equal"] = row["vanilla_accuracy"] == exact["vanilla_accuracy"]
            row["robust_accuracy_diff"] = round(row["robust_accuracy"] - exact["robust_accuracy"], 4)
            row["robust_accuracy_equal"] = abs(row["robust_accuracy_diff"]) <= WITHIN + 1e-9
        else:
            row["speedup"] = 1.0
        rows.append(row)
        print(f"{attack:<8} {row['backend']:<6} n={row['n']:<4} vanilla {100 * row['vanilla_accuracy']:5.1f}%  robust {100 * row['robust_accuracy']:5.1f}%  "
              f"{row['wall_s']:7.1f} s  x{row['speedup']:.2f}  queries {row['mean_queries']:7.1f}  rechecks {row['recheck_queries']} "
              f"(reruns {row['recheck_reruns']})", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a riftkit model fine-tuned on SST-2")
    parser.add_argument("--pwws", type=int, default=200, help="SST-2 test examples for PWWS (0: skip)")
    parser.add_argument("--genetic", type=int, default=50, help="SST-2 test examples for Genetic (0: skip)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir")
    parser.add_argument("--workdir", help="where the attack folders go (default: a temporary folder)")
    parser.add_argument("--out", default=str(HERE / "results" / "backend_outcomes.json"))
    parser.add_argument("--forward-paths", default=str(HERE / "results" / "forward_paths.json"),
                        help="the forward-path table whose bf16 rows get robust_accuracy_equal ('' to leave it)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_classifier(args.model)
    splits = load_splits(DataConfig(dataset="sst2"), args.data_dir)
    rows = []
    with tempfile.TemporaryDirectory(prefix="riftkit-backends-") as tmp:
        workdir = Path(args.workdir or tmp)
        for attack, n in (("pwws", args.pwws), ("genetic", args.genetic)):
            if n:
                rows += attack_both(model, args.model, splits, attack, n, workdir, args.data_dir)
                Path(args.out).write_text(json.dumps({"model": args.model, "threads": args.threads, "rows": rows,
                                                      "load_average": os.getloadavg(), "torch": torch.__version__}, indent=2) + "\n")
    equal = all(r["robust_accuracy_equal"] and r["vanilla_accuracy_equal"] for r in rows if r["backend"] != "torch")
    if args.forward_paths and Path(args.forward_paths).is_file():
        table = json.loads(Path(args.forward_paths).read_text())
        for row in table["rows"]:
            if row.get("path") == "bf16":
                row["robust_accuracy_equal"] = equal
                row["robust_accuracy_equal_source"] = "benchmarks/backend_outcomes.py (" + ", ".join(
                    f"{r['attack']} n={r['n']}: robust {r['robust_accuracy_diff']:+.3f}" for r in rows if r["backend"] != "torch") + ")"
        Path(args.forward_paths).write_text(json.dumps(table, indent=2) + "\n")
    print(f"robust_accuracy_equal (within {WITHIN:.0%}) and vanilla equal on every attack: {equal}")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
