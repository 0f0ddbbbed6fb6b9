"""Clean accuracy of a classifier on a list of examples."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..data.examples import Example
from ..models.classifier import Classifier


def evaluate_accuracy(model: Classifier, examples: Sequence[Example], batch_size: int = 128) -> dict[str, float]:
    """Accuracy and mean cross-entropy; ``n`` says on how many examples."""
    if not examples:
        raise ValueError("cannot evaluate on an empty split")
    probs = model.predict_proba([e.segments for e in examples], batch_size=batch_size)
    labels = torch.tensor([e.label for e in examples])
    picked = probs[torch.arange(len(labels)), labels].clamp_min(1e-12)
    return {
        "accuracy": (probs.argmax(-1) == labels).float().mean().item(),
        "loss": (-picked.log()).mean().item(),
        "n": len(examples),
    }
