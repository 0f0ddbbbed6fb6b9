"""Optimiser groups and the learning-rate schedule.

Groups (METHOD.md): AdamW with no weight decay on the encoder and 2e-4 on the
task-specific layers (the head, RIFT's projection heads u_c, v_c).

Schedule (the authors' ``WarmupMultiStepLR(optimizer, (50, 80), 0.1, 1/10, 2, 'linear')``,
stepped per epoch for 20 epochs): linear warm-up from 0.1 x lr to lr over the
first 2 epochs (10% of training), then constant, since its decay milestones
(epochs 50 and 80) lie past the end. riftkit steps it per batch, so the ramp is
smooth: warm-up over ``round(warmup_ratio x total steps)`` optimiser steps.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import ConstantLR, LinearLR, LRScheduler, SequentialLR


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


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    """Optimiser steps of linear warm-up: ``round(warmup_ratio * total_steps)``.

    Raises ValueError (naming ``train.warmup_ratio``) unless 0 <= warmup_ratio < 1.
    """
    if not 0.0 <= warmup_ratio < 1.0:
        raise ValueError(f"train.warmup_ratio must be in [0, 1), got {warmup_ratio}")
    return round(warmup_ratio * total_steps)


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float, start_factor: float = 0.1) -> LRScheduler:
    """Linear warm-up then constant learning rate, to be stepped once after every optimiser step.

    Step k (0-based) of the first W = ``warmup_steps(total_steps, warmup_ratio)`` uses
    lr x (start_factor + (1 - start_factor) k / W); every later step uses lr. With W = 0
    the learning rate is constant from the first step. Raises ValueError for
    ``start_factor`` outside (0, 1] (``train.warmup_start_factor``) or a bad ratio.
    """
    if not 0.0 < start_factor <= 1.0:
        raise ValueError(f"train.warmup_start_factor must be in (0, 1], got {start_factor}")
    steps = warmup_steps(total_steps, warmup_ratio)
    constant = ConstantLR(optimizer, factor=1.0, total_iters=0)
    if steps == 0:
        return constant
    # SequentialLR hands over to ConstantLR at W exactly (LinearLR alone drifts by rounding: lr x (1 + 2e-16))
    ramp = LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=steps)
    return SequentialLR(optimizer, [ramp, constant], milestones=[steps])
