"""What a labelled example and a task are, independent of where they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

TaskKind = Literal["single", "pair"]
# An input as the models and attacks see it: one word tuple per text, ``(text,)`` or ``(premise, hypothesis)``.
# Hashable, so the attacks' query cache keys on it.
Segments = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class TaskSpec:
    """A classification task: single text (sentiment) or sentence pair (NLI)."""

    name: str
    kind: TaskKind
    label_names: tuple[str, ...]

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def segment_names(self) -> tuple[str, ...]:
        return ("text",) if self.kind == "single" else ("premise", "hypothesis")

    @property
    def attacked_segment(self) -> int:
        """Index of the segment an attack may change (for NLI only the hypothesis)."""
        return len(self.segment_names) - 1


@dataclass(frozen=True)
class Example:
    """One example after pre-tokenisation.

    ``segments`` holds one word tuple per input text: ``(text,)`` or
    ``(premise, hypothesis)``. ``uid`` is stable across runs (file position),
    so that per-example results can be joined and resumed.
    """

    segments: Segments
    label: int
    uid: str = ""

    def text(self, segment: int = 0) -> str:
        return " ".join(self.segments[segment])


@dataclass
class DatasetSplits:
    """The train / dev / test examples of one task, plus what loading skipped."""

    task: TaskSpec
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    provenance: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def split(self, name: str) -> list[Example]:
        if name not in ("train", "dev", "test"):
            raise ValueError(f"unknown split {name!r}: expected train, dev or test")
        return getattr(self, name)

    def summary(self) -> str:
        parts = [f"{name}={len(self.split(name))}" for name in ("train", "dev", "test")]
        text = f"{self.task.name}: " + ", ".join(parts)
        if self.skipped:
            text += " (skipped: " + ", ".join(f"{k}={v}" for k, v in self.skipped.items()) + ")"
        return text
