"""Clean accuracy of a classifier on a list of examples."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..data.examples import Example
from ..models.classifier import Classifier


def signed_margins(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """p(true class) - the largest other class's probability, per example [N], in [-1, 1]: > 0 when correct.

    A diagnostic of how far a model is from flipping (a nearly uniform model sits near 0, where any
    substitution can flip it); not a target.
    """
    true = probs[torch.arange(len(labels)), labels]
    others = probs.scatter(1, labels[:, None], float("-inf")).max(-1).values
    return true - others


def evaluate_accuracy(model: Classifier, examples: Sequence[Example], batch_size: int = 128) -> dict[str, float]:
    """Accuracy, mean cross-entropy (nats), and the median and mean signed margin (:func:`signed_margins`);
    ``n`` says on how many examples. Raises ValueError on an empty list."""
    if not examples:
        raise ValueError("cannot evaluate on an empty split")
    probs = model.predict_proba([e.segments for e in examples], batch_size=batch_size)
    labels = torch.tensor([e.label for e in examples])
    picked = probs[torch.arange(len(labels)), labels].clamp_min(1e-12)
    margins = signed_margins(probs, labels)
    return {
        "accuracy": (probs.argmax(-1) == labels).float().mean().item(),
        "loss": (-picked.log()).mean().item(),
        "margin_median": margins.median().item(),
        "margin_mean": margins.mean().item(),
        "n": len(examples),
    }
