"""Hand-made victims with planted weaknesses, for the attack tests (no training, exact, fast)."""

from __future__ import annotations

import math

import torch

from riftkit.substitutions import SubstitutionSet


class KeywordVictim:
    """p(positive) = sigmoid(bias + sum of word weights); records every text and every call.

    With ``segment`` set, only that segment counts for the positive class and
    ``premise_weights`` let the other segment matter too (NLI-shaped tests).
    """

    def __init__(self, weights: dict[str, float], bias: float = 0.0, num_labels: int = 2, premise_weights: dict[str, float] | None = None):
        self.weights = weights
        self.bias = bias
        self.num_labels = num_labels
        self.premise_weights = premise_weights or {}
        self.calls: list[list] = []

    def score(self, segments) -> float:
        value = self.bias + sum(self.weights.get(w, 0.0) for w in segments[-1])
        if len(segments) > 1:
            value += sum(self.premise_weights.get(w, 0.0) for w in segments[0])
        return value

    def predict_proba(self, segments, batch_size: int = 128) -> torch.Tensor:
        self.calls.append(list(segments))
        rows = []
        for s in segments:
            p = 1 / (1 + math.exp(-self.score(s)))
            if self.num_labels == 2:
                rows.append([1 - p, p])
            else:  # 3 classes: the score moves mass between class 0 and class 2, class 1 stays small
                rows.append([p * 0.9, 0.1, (1 - p) * 0.9])
        return torch.tensor(rows)

    @property
    def texts(self) -> list:
        return [t for call in self.calls for t in call]


# "good" and "great" carry the positive label; each has a neutral substitute; both must go to flip.
WEIGHTS = {"good": 1.5, "great": 1.5, "okay": 0.0, "fine": 0.0, "nice": 1.4, "superb": 1.6, "poor": -0.2}
SUBS = SubstitutionSet({
    "good": ["nice", "okay"],
    "great": ["superb", "fine"],
    "film": ["movie", "picture"],
    "a": ["one"],
    "very": ["really", "extremely"],
})
