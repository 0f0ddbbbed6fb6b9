"""Soak: does a long attack keep its memory flat? Resident memory (RSS) over time, sampled with psutil.

Two ways to use it:

    # run an attack for at least --minutes (Genetic on IMDB reviews: long searches, a busy cache)
    RIFTKIT_DATA_DIR=../shared/data .venv/bin/python benchmarks/soak.py --model RUN/best --minutes 30

    # or watch a process that is already attacking (its children included), until it ends
    .venv/bin/python benchmarks/soak.py --pid PID --label "attack_window.py Genetic, 10 IMDB reviews"

The query layer's prediction cache is bounded (``attack.cache_size`` predictions) and it hands
freed heap memory back to the OS every few model calls (riftkit.memory), so after warm-up the
RSS should stay level. Each sample: seconds, RSS (MiB), cached predictions, glibc's heap in use
(MiB: what is alive, as against what RSS holds) and Python's allocated blocks. The summary: peak
RSS, RSS after the first 10% of the run, the growth from there to the end (MiB), and the same
from the moment the cache reached its bound.
Writes benchmarks/results/soak.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import psutil

from riftkit.config import AttackConfig as AttackConfigDefaults
from riftkit.memory import heap_in_use

HERE = Path(__file__).resolve().parent


def rss(process: psutil.Process) -> int:
    """Resident bytes of the process and its children."""
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


# the running attack's query layer, when this process runs the attack (its cache fill is sampled too)
QUERY_LAYER: list = []


def sample(process: psutil.Process, every: float, stop: threading.Event, samples: list) -> None:
    start = time.time()
    while not stop.is_set():
        try:
            cached = QUERY_LAYER[0].cached if QUERY_LAYER else None
            heap = heap_in_use() if process.pid == os.getpid() else None  # only this process's heap is readable
            samples.append((round(time.time() - start, 1), rss(process), cached, heap, sys.getallocatedblocks()))
        except psutil.Error:  # the watched process ended
            return
        stop.wait(every)


def summarize(samples: list, label: str, cache_size: int | None = None) -> dict:
    if not samples:
        return {"label": label, "samples": []}
    mib = [(t, b / 2**20, c) for t, b, c, _, _ in samples]
    warm = mib[max(1, len(mib) // 10) - 1][1]
    result = {"label": label, "duration_s": mib[-1][0], "peak_rss_mib": round(max(m for _, m, _ in mib), 1),
              "rss_after_warmup_mib": round(warm, 1), "rss_at_end_mib": round(mib[-1][1], 1),
              "growth_after_warmup_mib": round(mib[-1][1] - warm, 1)}
    full = [i for i, (_, _, c) in enumerate(mib) if c is not None and c >= cache_size] if cache_size else []
    if full:  # the plateau: from the first sample with the cache at its bound to the end
        after = mib[full[0]:]
        result.update({"cache_full_at_s": after[0][0], "rss_when_cache_full_mib": round(after[0][1], 1),
                       "peak_rss_after_cache_full_mib": round(max(m for _, m, _ in after), 1),
                       "growth_after_cache_full_mib": round(after[-1][1] - after[0][1], 1)})
    heaps = [(t, h / 2**20) for t, _, _, h, _ in samples if h is not None]
    if heaps:  # what is alive in the heap, as against what RSS holds (freed memory malloc has kept)
        result.update({"heap_in_use_after_warmup_mib": round(heaps[max(1, len(heaps) // 10) - 1][1], 1),
                       "heap_in_use_at_end_mib": round(heaps[-1][1], 1), "peak_heap_in_use_mib": round(max(h for _, h in heaps), 1)})
    result["columns"] = ["seconds", "rss_mib", "cached_predictions", "heap_in_use_mib", "python_blocks"]
    result["samples"] = [[t, round(b / 2**20, 1), c, None if h is None else round(h / 2**20, 1), k] for t, b, c, h, k in samples]
    return result


def run_attack_for(model: str, minutes: float, data_dir: str | None, cache_size: int) -> None:
    """Genetic on seeded IMDB test reviews, batch after batch, until ``minutes`` have passed."""
    from riftkit.attacks.registry import AttackSetup, build_attack
    from riftkit.config import AttackConfig, DataConfig
    from riftkit.data import load_splits, sample as take
    from riftkit.models import load_classifier
    from riftkit.substitutions import load_substitutions

    victim = load_classifier(model)
    splits = load_splits(DataConfig(dataset=victim.spec.task, max_train=10, max_test=2000), data_dir)
    subs = load_substitutions("counterfitted", data_dir)
    attack = build_attack(AttackSetup(model=victim, task=splits.task, substitutions=subs,
                                      config=AttackConfig(attack="genetic", lm="none", seed=0,
                                                                cache_size=cache_size)))
    QUERY_LAYER.append(attack.queries)
    deadline, seed = time.time() + 60 * minutes, 0
    while time.time() < deadline:
        attack.attack(take(splits.test, 10, seed=seed))
        seed += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pid", type=int, help="watch this process until it ends")
    parser.add_argument("--model", help="run a Genetic attack on this model (IMDB or SST-2) for --minutes")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--every", type=float, default=10, help="seconds between samples")
    parser.add_argument("--cache-size", type=int, default=AttackConfigDefaults.cache_size,
                        help="attack.cache_size (predictions kept); a small bound fills within the run, "
                             "which shows the plateau")
    parser.add_argument("--label", default="")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default=str(HERE / "results" / "soak.json"))
    args = parser.parse_args()
    samples: list = []
    stop = threading.Event()
    process = psutil.Process(args.pid or os.getpid())
    thread = threading.Thread(target=sample, args=(process, args.every, stop, samples), daemon=True)
    thread.start()
    if args.pid:
        command = " ".join(process.cmdline())
        thread.join()  # returns when the watched process ends
        label = args.label or command
    else:
        run_attack_for(args.model, args.minutes, args.data_dir, args.cache_size)
        stop.set()
        thread.join()
        label = args.label or f"Genetic on {args.model} for {args.minutes} min, cache_size {args.cache_size}"
    result = summarize(samples, label, None if args.pid else args.cache_size)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print({k: v for k, v in result.items() if k != "samples"})
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
