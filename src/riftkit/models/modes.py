"""Switching a module to eval mode for a while."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode (dropout off) inside the block; the previous mode comes back after it, on an exception too.

    Searches, evaluations and probes run inside it, so that a training step after them trains with dropout.
    """
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
