"""Model-query throughput (texts per second) by batch size: what `attack.batch_size` should be.

    RIFTKIT_DATA_DIR=../shared/data .venv/bin/python benchmarks/query_batch.py \
        [--victim runs/cpu-sst2-standard/best] [--dataset sst2] [--n 800] [--repeats 3]

Times ``Classifier.predict_proba`` (what the attacks' query layer calls) on N
test texts of the data set, for each batch size, in one run; the best of the
repeats counts (these machines are noisy). Prints a table with each batch
size's throughput as a ratio to the fastest; writes
benchmarks/results/query_batch_<dataset>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from riftkit.config import DataConfig
from riftkit.data import load_splits, sample
from riftkit.models import load_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--victim", default="runs/cpu-sst2-standard/best")
    parser.add_argument("--dataset", default="sst2")
    parser.add_argument("--data-dir", default=os.environ.get("RIFTKIT_DATA_DIR", "../shared/data"))
    parser.add_argument("--n", type=int, default=800)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_classifier(args.victim).to(args.device)
    splits = load_splits(DataConfig(dataset=args.dataset, max_train=1), args.data_dir)
    segments = [e.segments for e in sample(splits.test, args.n, 1)]
    tokens = statistics.mean(model.encode(segments)["attention_mask"].sum(-1).tolist())
    model.predict_proba(segments[:64], batch_size=32)  # warm-up
    rows = []
    for batch_size in args.batch_sizes:
        best = 0.0
        for _ in range(args.repeats):
            start = time.perf_counter()
            model.predict_proba(segments, batch_size=batch_size)
            best = max(best, len(segments) / (time.perf_counter() - start))
        rows.append({"batch_size": batch_size, "texts_per_s": round(best, 1)})
        print(f"batch {batch_size:>4}: {best:7.1f} texts/s", flush=True)
    fastest = max(r["texts_per_s"] for r in rows)
    for r in rows:
        r["ratio_to_fastest"] = round(r["texts_per_s"] / fastest, 3)
    print(f"\n{args.dataset} test sample n={len(segments)}, {tokens:.1f} tokens on average (max_length {model.spec.max_length}), {args.threads} threads, {args.device}")
    print(f"{'batch':>6} {'texts/s':>9} {'x fastest':>10}")
    for r in rows:
        print(f"{r['batch_size']:>6} {r['texts_per_s']:>9.1f} {r['ratio_to_fastest']:>10.3f}")
    out = Path(args.out or f"benchmarks/results/query_batch_{args.dataset}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"victim": args.victim, "dataset": args.dataset, "n": len(segments), "threads": args.threads, "device": args.device,
                               "mean_tokens": round(tokens, 1), "rows": rows,
                               "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
