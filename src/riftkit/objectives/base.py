"""The interface every training objective implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
from transformers import BatchEncoding

from ..models.classifier import Classifier


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor  # scalar to minimise
    logits: torch.Tensor  # clean logits of the batch, for running accuracy
    metrics: dict[str, float] = field(default_factory=dict)  # scalars for the log


class Objective(Protocol):
    def __call__(self, model: Classifier, inputs: BatchEncoding, labels: torch.Tensor) -> ObjectiveOutput: ...
