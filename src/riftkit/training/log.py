"""Append-only JSON-lines metrics log, flushed per record so that nothing is lost on a kill."""

from __future__ import annotations

import json
import os
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

    def offset(self) -> int:
        """Bytes written so far, flushed to disk (a checkpoint records it)."""
        if not self.path.exists():
            return 0
        with open(self.path, "rb") as handle:
            os.fsync(handle.fileno())
        return self.path.stat().st_size

    def truncate(self, offset: int) -> None:
        """Drop every record written after byte ``offset`` (resuming from a checkpoint that recorded it)."""
        size = self.path.stat().st_size if self.path.exists() else 0
        if size < offset:
            raise ValueError(f"{self.path}: {size} bytes, shorter than the {offset} the checkpoint recorded")
        with open(self.path, "ab") as handle:
            handle.truncate(offset)

    @property
    def elapsed(self) -> float:
        return time.time() - self.start

    @elapsed.setter
    def elapsed(self, seconds: float) -> None:
        """Continue the ``time_s`` clock of a resumed run where the checkpoint left it."""
        self.start = time.time() - seconds


def read_metrics(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


class RunningMean:
    """Mean of a stream of (value, count) pairs."""

    def __init__(self):
        self.total, self.count = 0.0, 0

    def state_dict(self) -> list:
        return [self.total, self.count]

    @classmethod
    def from_state(cls, state: list) -> RunningMean:
        mean = cls()
        mean.total, mean.count = state
        return mean

    def add(self, value: float, count: int = 1) -> None:
        self.total += value * count
        self.count += count

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")
