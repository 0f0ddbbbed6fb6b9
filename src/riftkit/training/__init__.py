"""Training: the loop, batch sampler (plain or class-balanced), optimiser groups, metrics log."""

from .loop import TrainResult, build_model, train
from .sampler import BatchSampler

__all__ = ["BatchSampler", "TrainResult", "build_model", "train"]
