"""The task loss: cross-entropy on clean inputs (the "Standard" baseline, and I(S;Y) >= H(Y) - CE)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import BatchEncoding

from ..models.classifier import Classifier
from .base import ObjectiveOutput


class StandardObjective:
    """L = CE(f(x), y)."""

    def __call__(self, model: Classifier, inputs: BatchEncoding, labels: torch.Tensor) -> ObjectiveOutput:
        logits = model(**inputs)
        loss = F.cross_entropy(logits, labels)
        return ObjectiveOutput(loss, logits, {"loss_ce": loss.item()})


def build_objective(method: str):
    if method == "standard":
        return StandardObjective()
    raise ValueError(f"train.method={method!r} is not implemented; available: standard")
