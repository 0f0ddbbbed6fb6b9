"""The task loss: cross-entropy on clean inputs (the "Standard" baseline, and I(S;Y) >= H(Y) - CE)."""

from __future__ import annotations

import torch.nn.functional as F

from ..models.classifier import Classifier
from .base import ObjectiveOutput, TrainBatch


class StandardObjective:
    """L = CE(f(x), y)."""

    def __call__(self, model: Classifier, batch: TrainBatch) -> ObjectiveOutput:
        features, logits = model(**batch.inputs, return_features=True)
        loss = F.cross_entropy(logits, batch.labels)
        return ObjectiveOutput(loss, logits, {"loss_ce": loss.item()}, {"clean": features})
