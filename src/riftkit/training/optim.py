"""Optimiser groups: no weight decay on the encoder, 2e-4 on task layers (METHOD.md)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def build_optimizer(
    encoder: nn.Module,
    task_modules: Iterable[nn.Module],
    lr: float,
    encoder_weight_decay: float,
    task_weight_decay: float,
) -> torch.optim.AdamW:
    """AdamW with one group for the encoder and one for every task-specific module (heads, projections)."""
    encoder_params = [p for p in encoder.parameters() if p.requires_grad]
    task_params = [p for module in task_modules for p in module.parameters() if p.requires_grad]
    return torch.optim.AdamW(
        [
            {"params": encoder_params, "weight_decay": encoder_weight_decay, "name": "encoder"},
            {"params": task_params, "weight_decay": task_weight_decay, "name": "task"},
        ],
        lr=lr,
    )
