"""What the language-model constraint removes, task-only LM against the broad LM (SST-2, IMDB).

For each data set and each LM: take a seeded sample of test examples, list
every (position, counter-fitted substitute) pair, and count

- the substitutes outside the LM's vocabulary (they get the floor probability),
- the pairs whose window log-probability drops by more than the threshold
  (5 nats, radius 3 words): the candidates the constraint removes.

The two LMs, both riftkit's Kneser-Ney trigram models, as `riftkit attack` builds them:

- ``ngram-task``: the task's training texts (sub-phrases dropped: SST-2 is phrase-level);
- ``ngram-broad``: the train splits of every data set in the data directory
  (never a test text), from the cache or trained once (substitutions/corpus.py).

``--attack-runs LABEL=FOLDER ...`` adds finished `riftkit attack` folders
(summary.json, lm.json) to the JSON, e.g. the Genetic runs under each LM.
Writes benchmarks/results/lm_constraint.json.

    RIFTKIT_DATA_DIR=../shared/data .venv/bin/python benchmarks/lm_constraint_share.py --n 500 \\
        --attack-runs task=/work/logs/lm-task broad=/work/logs/lm-broad
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from riftkit.attacks.constraints import LanguageModelFilter
from riftkit.config import DataConfig, resolve_data_dir
from riftkit.data import load_splits, sample
from riftkit.substitutions import load_substitutions
from riftkit.substitutions.corpus import broad_ngram_lm, plan_corpus
from riftkit.substitutions.lm import NGramLM, drop_subphrases

HERE = Path(__file__).resolve().parent
LMS = ("ngram-task", "ngram-broad")


def language_model(kind: str, splits, order: int, data_dir: str | None) -> tuple[NGramLM, dict]:
    start = time.perf_counter()
    if kind == "ngram-task":
        corpus = drop_subphrases(seg for e in splits.train for seg in e.segments)  # as `riftkit attack` does
        lm = NGramLM.train(corpus, order=order)
        return lm, {"lm_corpus_texts": len(corpus), "lm_s": round(time.perf_counter() - start, 1), "lm_cached": False}
    plan = plan_corpus(resolve_data_dir(None, data_dir))
    lm, record = broad_ngram_lm(plan, order, attacked_texts=[seg for e in splits.test for seg in e.segments])
    return lm, {"lm_corpus_texts": record["texts"], "lm_key": record["key"], "lm_variant_of": record["variant_of"],
                "lm_s": round(time.perf_counter() - start, 1), "lm_cached": record["cached"]}


def measure(dataset: str, kind: str, n: int, seed: int, order: int, max_drop: float, radius: int, data_dir: str | None, subs) -> dict:
    splits = load_splits(DataConfig(dataset=dataset), data_dir)
    lm, about = language_model(kind, splits, order, data_dir)
    segment = splits.task.attacked_segment
    examples = sample(splits.test, n, seed)
    filt = LanguageModelFilter(lm, max_drop=max_drop, radius=radius)
    start = time.perf_counter()
    positions_before = positions_after = 0
    pairs = unknown_pairs = unknown_removed = 0
    distinct: set[str] = set()
    for example in examples:
        words = example.segments[segment]
        candidates = {i: s for i, w in enumerate(words) if (s := subs[w])}
        kept = filt.filter(words, candidates)
        positions_before += len(candidates)
        positions_after += len(kept)
        for i, subs_i in candidates.items():
            for s in subs_i:
                pairs += 1
                distinct.add(s)
                if s not in lm.index:
                    unknown_pairs += 1
                    unknown_removed += s not in kept.get(i, ())
    unknown_distinct = sum(s not in lm.index for s in distinct)
    known_pairs = pairs - unknown_pairs
    return {
        "dataset": dataset, "lm": kind, "examples": len(examples), "train_texts": len(splits.train), **about, "lm_vocabulary": lm.size,
        "filter_s": round(time.perf_counter() - start, 1),
        "candidates": filt.checked, "removed": filt.removed, "removed_share": round(filt.removed_share, 4),
        "substitutes_oov_share": round(unknown_pairs / pairs, 4) if pairs else 0.0,
        "distinct_substitutes": len(distinct), "distinct_substitutes_oov_share": round(unknown_distinct / len(distinct), 4) if distinct else 0.0,
        "removed_share_of_oov": round(unknown_removed / unknown_pairs, 4) if unknown_pairs else 0.0,
        "removed_share_of_in_vocabulary": round((filt.removed - unknown_removed) / known_pairs, 4) if known_pairs else 0.0,
        "positions_with_substitutes": positions_before, "positions_left_with_none": positions_before - positions_after,
        "test_perplexity": round(lm.perplexity([e.segments[segment] for e in examples]), 1),
    }


def attack_run(label: str, folder: Path) -> dict:
    summary = json.loads((folder / "summary.json").read_text())
    lm = json.loads((folder / "lm.json").read_text()) if (folder / "lm.json").is_file() else {}
    keep = ("attack", "task", "split", "n", "seed", "succeeded", "failed", "skipped", "vanilla_accuracy", "robust_accuracy",
            "success_rate", "mean_changed_share", "mean_queries", "wall_time_all_sessions_s")
    return {"label": label, "folder": str(folder), **{k: summary.get(k) for k in keep},
            "lm": lm.get("lm"), "lm_key": lm.get("key"), "lm_vocabulary": lm.get("vocabulary")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["sst2", "imdb"])
    parser.add_argument("--lms", nargs="+", default=list(LMS), choices=LMS)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--max-drop", type=float, default=5.0)
    parser.add_argument("--radius", type=int, default=3)
    parser.add_argument("--data-dir")
    parser.add_argument("--attack-runs", nargs="*", default=[], metavar="LABEL=FOLDER", help="finished `riftkit attack` folders to report")
    parser.add_argument("--output", default=str(HERE / "results" / "lm_constraint.json"))
    args = parser.parse_args()
    subs = load_substitutions("counterfitted", args.data_dir)
    rows = [measure(d, k, args.n, args.seed, args.order, args.max_drop, args.radius, args.data_dir, subs) for d in args.datasets for k in args.lms]
    runs = []
    for item in args.attack_runs:
        label, sep, folder = item.partition("=")
        if not sep:
            parser.error(f"--attack-runs: expected LABEL=FOLDER, got {item!r}")
        runs.append(attack_run(label, Path(folder)))
    settings = {"order": args.order, "max_drop_nats": args.max_drop, "radius_words": args.radius, "seed": args.seed, "substitutions": "counterfitted"}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"settings": settings, "results": rows, "attack_runs": runs}, indent=2) + "\n")
    print(f"{'data':<6} {'lm':<12} {'vocab':>7} {'candidates':>10} {'OOV subs':>9} {'removed':>8} {'of OOV':>7} {'of in-voc':>9} {'ppl':>7}")
    for r in rows:
        print(f"{r['dataset']:<6} {r['lm']:<12} {r['lm_vocabulary']:>7} {r['candidates']:>10} {100 * r['substitutes_oov_share']:>8.1f}% "
              f"{100 * r['removed_share']:>7.1f}% {100 * r['removed_share_of_oov']:>6.1f}% {100 * r['removed_share_of_in_vocabulary']:>8.1f}% {r['test_perplexity']:>7}")
    for r in runs:
        print(f"{r['label']:<8} {r['attack']} on {r['n']} {r['task']} {r['split']}: lm {r['lm']} ({(r['lm_key'] or '')[:12]}): "
              f"robust accuracy {100 * r['robust_accuracy']:.1f}%, success rate {100 * r['success_rate']:.1f}%, "
              f"{100 * r['mean_changed_share']:.1f}% words changed, {r['mean_queries']:.0f} queries")
    print(f"-> {args.output}")


if __name__ == "__main__":
    main()
