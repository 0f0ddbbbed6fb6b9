"""How much of the word-substitution attack surface the training adversary covers, per data set.

    python benchmarks/attack_surface.py [--data-dir ../shared/data] [--n 2000] [--out benchmarks/results/attack_surface.json]

For the first N test examples of each data set (SNLI: the hypothesis, the only
attacked text) and the embedded model's tokenizer: the share of words with at
least one substitute, substitutes per such word, and the share of
(word occurrence, substitute) pairs that the ASCC hull reaches: pairs whose
two sides have the same number of subword tokens (riftkit's same_length hull),
among them the single-token pairs (the reference code's one-token-per-word
scheme), and the pairs the length_groups hull (objective.adversary.hull) puts in
a search's hull at least once in --rounds rounds (its draws, seed 0), and in one
round on average.
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
    parser.add_argument("--rounds", type=int, default=20, help="search rounds simulated for the length_groups hull")
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
        ever, per_round = length_group_reach(hulls, examples, segment, args.rounds)
        rows[name] = {"examples": len(examples), "segment": segment, **words, **{f"hull_{k}": v for k, v in hull.items()},
                      "length_groups_reached_share": ever, "length_groups_per_round_share": per_round, "rounds": args.rounds}
    print(f"{'data':<6} {'words w/ subs':>13} {'subs/word':>9} {'pairs':>9} {'same_length':>11} {'single-token':>12} "
          f"{'groups, ' + str(args.rounds) + ' rounds':>18} {'groups, 1 round':>15}")
    for name, r in rows.items():
        print(f"{name:<6} {r['share_of_words_with_substitutes']:>13.1%} {r['substitutes_per_substitutable_word']:>9.2f} "
              f"{r['hull_pairs']:>9} {r['hull_covered_share']:>11.1%} {r['hull_single_token_share']:>12.1%} "
              f"{r['length_groups_reached_share']:>18.1%} {r['length_groups_per_round_share']:>15.1%}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"encoder": args.encoder, "n": args.n, "datasets": rows}, indent=2) + "\n")
    print(f"written {args.out}")


def length_group_reach(hulls: HullBuilder, examples, segment: int, rounds: int) -> tuple[float, float]:
    """Share of (word occurrence, substitute) pairs in some round's length group within ``rounds`` rounds, and the
    mean share per round (a group holds the substitutes of one token count; every pair's group is drawn sometimes)."""
    pairs = reached = in_rounds = 0
    for example in examples:
        seen: dict[int, set[str]] = {}
        counts: dict[int, int] = {}
        for round_ in range(rounds):
            _, (groups,) = hulls.length_groups([example], [segment], seed=0, round_=round_)
            for (_, position), group in groups.items():
                word = example.segments[segment][position]
                members = {c for c in group if c != word}
                seen.setdefault(position, set()).update(members)
                counts[position] = counts.get(position, 0) + len(members)
        for position, word in enumerate(example.segments[segment]):
            subs = hulls.substitutions[word][: hulls.max_candidates]
            pairs += len(subs)
            reached += len(seen.get(position, set()) & set(subs))
            in_rounds += counts.get(position, 0)
    return (reached / pairs if pairs else 0.0), (in_rounds / (pairs * rounds) if pairs else 0.0)


if __name__ == "__main__":
    main()
