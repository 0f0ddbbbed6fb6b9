"""Evaluation: clean accuracy now; the attack protocol joins it in the attacks issue."""

from .accuracy import evaluate_accuracy

__all__ = ["evaluate_accuracy"]
