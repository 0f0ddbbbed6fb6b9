"""What share of candidate substitutions the language-model constraint removes (SST-2, IMDB).

For each data set: train riftkit's Kneser-Ney trigram model on the training
texts (without texts that are pieces of other texts: SST-2 is phrase-level), take a seeded sample of test examples, list every (position,
counter-fitted substitute) pair, and count the pairs whose window
log-probability drops by more than the threshold (5 nats, radius 3 words).
Writes benchmarks/results/lm_constraint.json.

    RIFTKIT_DATA_DIR=../shared/data .venv/bin/python benchmarks/lm_constraint_share.py --n 500
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from riftkit.attacks.constraints import LanguageModelFilter
from riftkit.config import DataConfig
from riftkit.data import load_splits, sample
from riftkit.substitutions import load_substitutions
from riftkit.substitutions.lm import NGramLM, drop_subphrases

HERE = Path(__file__).resolve().parent


def measure(dataset: str, n: int, seed: int, order: int, max_drop: float, radius: int, data_dir: str | None, subs) -> dict:
    splits = load_splits(DataConfig(dataset=dataset), data_dir)
    start = time.perf_counter()
    corpus = drop_subphrases(seg for e in splits.train for seg in e.segments)  # as `riftkit attack` does
    lm = NGramLM.train(corpus, order=order)
    trained = time.perf_counter() - start
    segment = splits.task.attacked_segment
    examples = sample(splits.test, n, seed)
    filt = LanguageModelFilter(lm, max_drop=max_drop, radius=radius)
    start = time.perf_counter()
    positions_before = positions_after = 0
    for example in examples:
        words = example.segments[segment]
        candidates = {i: s for i, w in enumerate(words) if (s := subs[w])}
        kept = filt.filter(words, candidates)
        positions_before += len(candidates)
        positions_after += len(kept)
    return {
        "dataset": dataset, "examples": len(examples), "train_texts": len(splits.train), "lm_corpus_texts": len(corpus), "lm_vocabulary": lm.size,
        "lm_train_s": round(trained, 1), "filter_s": round(time.perf_counter() - start, 1),
        "candidates": filt.checked, "removed": filt.removed, "removed_share": round(filt.removed_share, 4),
        "positions_with_substitutes": positions_before, "positions_left_with_none": positions_before - positions_after,
        "test_perplexity": round(lm.perplexity([e.segments[segment] for e in examples]), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["sst2", "imdb"])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--max-drop", type=float, default=5.0)
    parser.add_argument("--radius", type=int, default=3)
    parser.add_argument("--data-dir")
    parser.add_argument("--output", default=str(HERE / "results" / "lm_constraint.json"))
    args = parser.parse_args()
    subs = load_substitutions("counterfitted", args.data_dir)
    rows = [measure(d, args.n, args.seed, args.order, args.max_drop, args.radius, args.data_dir, subs) for d in args.datasets]
    settings = {"order": args.order, "max_drop_nats": args.max_drop, "radius_words": args.radius, "seed": args.seed, "substitutions": "counterfitted"}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"settings": settings, "results": rows}, indent=2) + "\n")
    print(f"{'data':<6} {'examples':>8} {'candidates':>10} {'removed':>8} {'share':>7} {'ppl':>7}")
    for r in rows:
        print(f"{r['dataset']:<6} {r['examples']:>8} {r['candidates']:>10} {r['removed']:>8} {100 * r['removed_share']:>6.1f}% {r['test_perplexity']:>7}")
    print(f"-> {args.output}")


if __name__ == "__main__":
    main()
