"""How much of the word-substitution attack surface the training adversary covers, per data set.

    python benchmarks/attack_surface.py [--data-dir ../shared/data] [--n 2000] [--out benchmarks/results/attack_surface.json]

For the first N test examples of each data set (SNLI: the hypothesis, the only
attacked text) and the embedded model's tokenizer: the share of words with at
least one substitute, substitutes per such word, and the share of
(word occurrence, substitute) pairs that the ASCC hull reaches: pairs whose
two sides have the same number of subword tokens (riftkit's hull), and among
them the single-token pairs (the reference code's one-token-per-word scheme).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from riftkit.config import DataConfig
from riftkit.data import load_splits
from riftkit.models import load_tokenizer
from riftkit.substitutions import load_substitutions
from riftkit.substitutions.hull import HullBuilder

DATASETS = {"sst2": ("test", 0), "imdb": ("test", 0), "snli": ("test", 1), "mr": ("test", 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("RIFTKIT_DATA_DIR", "../shared/data"))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--encoder", default="embedded")
    parser.add_argument("--out", default="benchmarks/results/attack_surface.json")
    args = parser.parse_args()
    subs = load_substitutions("counterfitted", args.data_dir)
    hulls = HullBuilder(load_tokenizer(args.encoder), subs)
    rows = {}
    for name, (split, segment) in DATASETS.items():
        splits = load_splits(DataConfig(dataset=name, max_train=1, max_dev=1), args.data_dir)
        examples = splits.split(split)[: args.n]
        words = subs.coverage(examples, segment)
        hull = hulls.coverage(examples, [segment])
        rows[name] = {"examples": len(examples), "segment": segment, **words, **{f"hull_{k}": v for k, v in hull.items()}}
    print(f"{'data':<6} {'words w/ subs':>13} {'subs/word':>9} {'pairs':>9} {'hull covers':>11} {'single-token':>12}")
    for name, r in rows.items():
        print(f"{name:<6} {r['share_of_words_with_substitutes']:>13.1%} {r['substitutes_per_substitutable_word']:>9.2f} "
              f"{r['hull_pairs']:>9} {r['hull_covered_share']:>11.1%} {r['hull_single_token_share']:>12.1%}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"encoder": args.encoder, "n": args.n, "datasets": rows}, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
