"""The interface every training objective implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from transformers import BatchEncoding

from ..data.examples import Example
from ..models.classifier import Classifier


@dataclass
class TrainBatch:
    examples: Sequence[Example]
    inputs: BatchEncoding  # tokenised examples, on the model's device
    labels: torch.Tensor
    # Each example's index in the training set [B] (the info term's queue masks an anchor's own example by it).
    indices: torch.Tensor | None = None


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor  # scalar to minimise
    logits: torch.Tensor  # clean logits of the batch, for running accuracy
    metrics: dict[str, float] = field(default_factory=dict)  # scalars for the log
    # Pooled student features the loss computed anyway ("clean", "adversarial"), for the info term.
    features: dict[str, torch.Tensor] = field(default_factory=dict)


class Objective(Protocol):
    def __call__(self, model: Classifier, batch: TrainBatch) -> ObjectiveOutput: ...
