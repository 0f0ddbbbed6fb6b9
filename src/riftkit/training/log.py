"""Append-only JSON-lines metrics log, flushed per record so that nothing is lost on a kill."""

from __future__ import annotations

import json
import time
from pathlib import Path


class MetricsLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.start = time.time()

    def write(self, event: str, **values) -> dict:
        record = {"event": event, "time_s": round(time.time() - self.start, 3), **values}
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        return record


def read_metrics(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


class RunningMean:
    """Mean of a stream of (value, count) pairs."""

    def __init__(self):
        self.total, self.count = 0.0, 0

    def add(self, value: float, count: int = 1) -> None:
        self.total += value * count
        self.count += count

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")
