"""Attacking only what the model sees: queries and wall time with and without the max_length window.

A model truncated to ``max_length`` tokens never sees the words past it, so
substituting them cannot change its prediction. Before the window, the
searches spent queries on those words anyway; now they attack only the words
whose subword tokens all fall inside the window (``attack.attack_truncated_words``
switches back to the old behaviour). For each attack, one run each way on the
same seeded test reviews of a Standard IMDB model (128 tokens), in one process:
outcomes, robust accuracy, queries per example, wall time, and whether the
substitutions inside the window are identical.

    RIFTKIT_DATA_DIR=../shared/data .venv/bin/python benchmarks/attack_window.py \\
        --model runs/cpu-imdb128-standard/best --pwws 50 --genetic 10

(``--pwws 0 --genetic 10 --out benchmarks/results/attack_window_genetic.json`` measures Genetic alone.)
Writes benchmarks/results/attack_window.json. The Genetic runs use no LM
constraint (``lm: none``), so that the two runs differ only in the window.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from riftkit.config import AttackConfig, DataConfig
from riftkit.data import load_splits, sample
from riftkit.data.roles import DataRecord
from riftkit.models import load_classifier
from riftkit.attacks.registry import AttackSetup, build_attack
from riftkit.substitutions import load_substitutions

HERE = Path(__file__).resolve().parent
# The data of configs/cpu/imdb128_standard.yaml, for a model saved before models recorded their data.
IMDB128 = DataConfig(dataset="imdb", dev_size=500, max_train=1000, max_test=1000)


def run(model, splits, examples, subs, attack: str, truncated: bool) -> dict:
    config = AttackConfig(attack=attack, lm="none", attack_truncated_words=truncated, seed=0)
    searcher = build_attack(AttackSetup(model=model, task=splits.task, substitutions=subs, config=config))
    start = time.perf_counter()
    results = searcher.attack(examples)
    wall = time.perf_counter() - start
    attacked = [r for r in results if r.outcome != "skipped"]
    return {
        "results": results,
        "row": {
            "attack": attack,
            "window": "all words (before)" if truncated else "model's window (after)",
            "n": len(results),
            "robust_accuracy": sum(r.outcome == "failed" for r in results) / len(results),
            "succeeded": sum(r.outcome == "succeeded" for r in results),
            "mean_words": sum(len(r.original[r.segment]) for r in results) / len(results),
            "mean_attackable_words": sum(r.window for r in results) / len(results),
            "mean_queries": sum(r.queries for r in attacked) / max(len(attacked), 1),
            "model_texts": searcher.queries.model_texts,
            "wall_s": round(wall, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="runs/cpu-imdb128-standard/best")
    parser.add_argument("--pwws", type=int, default=50, help="test reviews for PWWS")
    parser.add_argument("--genetic", type=int, default=10, help="test reviews for Genetic (the first N of the PWWS sample)")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default=str(HERE / "results" / "attack_window.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)

    model = load_classifier(args.model)
    record = DataRecord.load(args.model)
    data = record.data_config() if record else IMDB128
    splits = load_splits(data, args.data_dir)
    subs = load_substitutions("counterfitted", args.data_dir)
    reviews = sample(splits.test, max(args.pwws, args.genetic), seed=0)  # Genetic: the first N of the same sample
    rows, agreement = [], {}
    for attack, n in (("pwws", args.pwws), ("genetic", args.genetic)):
        if not n:
            continue
        after = run(model, splits, reviews[:n], subs, attack, truncated=False)
        before = run(model, splits, reviews[:n], subs, attack, truncated=True)
        rows += [before["row"], after["row"]]
        same_outcome = sum(a.outcome == b.outcome for a, b in zip(after["results"], before["results"]))
        same_changes = sum(a.substitutions == [s for s in b.substitutions if s.position < a.window]
                           for a, b in zip(after["results"], before["results"]))
        agreement[attack] = {"same_outcome": same_outcome, "same_in_window_substitutions": same_changes, "n": n,
                             "query_ratio_before_over_after": round(before["row"]["mean_queries"] / max(after["row"]["mean_queries"], 1e-9), 2),
                             "wall_ratio_before_over_after": round(before["row"]["wall_s"] / max(after["row"]["wall_s"], 1e-9), 2)}
        print(f"{attack}: {agreement[attack]}", flush=True)
        write(args.out, args.model, data, model, rows, agreement)  # after each attack: a finished number is never lost

    header = f"{'attack':<8} {'window':<24} {'n':>4} {'robust':>7} {'words':>7} {'attackable':>10} {'queries':>9} {'wall s':>8}"
    print(header)
    for r in rows:
        print(f"{r['attack']:<8} {r['window']:<24} {r['n']:>4} {r['robust_accuracy']:>7.3f} {r['mean_words']:>7.1f} "
              f"{r['mean_attackable_words']:>10.1f} {r['mean_queries']:>9.1f} {r['wall_s']:>8.1f}")
    print(f"-> {args.out}")


def write(path: str, model_path: str, data: DataConfig, model, rows: list[dict], agreement: dict) -> None:
    out = {"model": model_path, "data": data.dataset, "max_length": model.spec.max_length, "rows": rows, "agreement": agreement,
           "note": "same seeded test reviews, one process; Genetic without the LM constraint; queries = distinct texts per attacked example"}
    Path(path).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
