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
        self.reporters: list = []  # each gets every record too (TensorBoardReporter)

    def write(self, event: str, **values) -> dict:
        record = {"event": event, "time_s": round(time.time() - self.start, 3), **values}
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        for reporter in self.reporters:
            reporter.write(record)
        return record

    def close(self) -> None:
        for reporter in self.reporters:
            reporter.close()
        self.reporters = []

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


class TensorBoardReporter:
    """The numbers of metrics.jsonl as TensorBoard scalars, at their optimiser step: ``train/<key>`` (epoch means),
    ``dev/<key>`` (every evaluation), ``forgetting/<key>``, ``test/<key>`` (the end of the run).

    ``purge_step``: a resumed run's first step; events a killed run wrote at or after it are dropped, as
    metrics.jsonl drops its records after the checkpoint.
    """

    GROUPS = {"train_epoch": "train", "eval": "dev", "forgetting": "forgetting", "end": "test"}
    FORGETTING = ("theta_distance", "feature_distance", "feature_cosine")  # logged with each epoch too: one curve
    SKIPPED = ("step", "epoch", "time_s", "n", "wall_time_s")

    def __init__(self, folder: str | Path, purge_step: int | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            from ..config import ConfigError

            raise ConfigError("train.report_to: [tensorboard] needs the tensorboard package: pip install tensorboard "
                              "(or pip install 'riftkit[tensorboard]')") from None
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step)

    @classmethod
    def scalars(cls, event: str, values: dict) -> dict[str, float]:
        """Tag -> value for the numbers of one record: ``dev/accuracy`` for an eval's ``dev_accuracy``, ``forgetting/...``
        for the forgetting distances wherever they are logged, nested dicts joined with '/'; booleans and counters left out."""
        group = cls.GROUPS[event]
        out = {}

        def walk(items: dict, prefix: str) -> None:
            for key, value in items.items():
                if isinstance(value, dict):
                    walk(value, f"{prefix}{key}/")
                elif isinstance(value, (int, float)) and not isinstance(value, bool) and key not in cls.SKIPPED:
                    if not prefix and key in cls.FORGETTING:
                        out[f"forgetting/{key}"] = float(value)
                    else:
                        name = key[len("dev_"):] if group == "dev" and key.startswith("dev_") else key
                        out[f"{group}/{prefix}{name}"] = float(value)

        walk(values, "")
        return out

    def write(self, record: dict) -> None:
        event = record.get("event")
        if event not in self.GROUPS or (event == "end" and not record.get("test")):
            return
        numbers = self.scalars(event, record["test"] if event == "end" else record)
        for tag, value in numbers.items():
            self.writer.add_scalar(tag, value, global_step=record.get("step"))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


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
