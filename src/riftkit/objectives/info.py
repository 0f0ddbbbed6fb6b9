"""The information term of RIFT: class-conditional InfoNCE between student and frozen teacher (Eq. 10).

For each class c with batch members B_c (N_c = |B_c|), student features
s_hat_i = F(x_hat_i) (adversarial inputs) and teacher features t_j = F0(x_j)
(clean inputs), projected by per-class heads u_c, v_c (H -> 512 -> ReLU -> 256)
and L2-normalised, score_c(s, t) = <u_c(s), v_c(t)> / tau:

    L_c = -(1/N_c) sum_j log( exp(score_c(s_hat_j, t_j)) / sum_{i in B_c} exp(score_c(s_hat_i, t_j)) )
    L_info = (1/C) sum_c L_c,          I(S; T | Y=c) >= log N_c - L_c   (Lemma 1)

Negatives come from the same class only. ``conditional=False`` is the paper's
I(S;T) ablation: one pair of heads, negatives from the whole batch.

Feature queue (beyond the paper, its own future work). Eq. 10 normalises over
STUDENT features for each teacher anchor; a queue of past student features
would be stale (the student moves), but the teacher is frozen, so its past
features are exact samples of T | Y=c forever. With a queue, the loss therefore
uses the other direction of InfoNCE: each student anchor s_hat_j is scored
against its own teacher feature and against every teacher feature of its class
in the batch and in the queue,

    L_c = -(1/N_c) sum_j log( exp(score_c(s_hat_j, t_j)) / sum_{k in B_c u Q_c} exp(score_c(s_hat_j, t_k)) ).

That is InfoNCE with T-side negatives; the negatives are independent draws
from p(t | y=c), so I(S;T|Y=c) >= log(N_c + |Q_c|) - L_c remains a valid
bound, and a tighter one as the queue grows. Queued features are raw teacher
features (constants, never carrying gradients), projected by the current v_c
at every use, so the head's gradient still sees them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def projection_head(hidden: int, mid: int = 512, out: int = 256) -> nn.Sequential:
    return nn.Sequential(nn.Linear(hidden, mid), nn.ReLU(), nn.Linear(mid, out))


def info_nce(student: torch.Tensor, teacher: torch.Tensor, temperature: float, extra_teacher: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE loss for aligned rows of normalised ``student`` and ``teacher`` projections.

    Without ``extra_teacher``: Eq. 10, softmax over students for each teacher anchor.
    With it: softmax over teachers (batch + extra) for each student anchor (queue direction).
    """
    if extra_teacher is None:
        scores = student @ teacher.T / temperature  # [i, j]
        return -torch.diagonal(F.log_softmax(scores, dim=0)).mean()
    candidates = torch.cat([teacher, extra_teacher])
    scores = student @ candidates.T / temperature  # [j, k]: the first N columns are the batch
    return -torch.diagonal(F.log_softmax(scores, dim=1)[:, : len(student)]).mean()


class FeatureQueue(nn.Module):
    """Per-group FIFO of past raw teacher features.

    Its whole state is three buffers, so it moves with ``.to(device)`` and is part
    of the state dict (checkpoints resume it exactly).
    """

    def __init__(self, groups: int, size: int, dim: int):
        super().__init__()
        self.size = size
        self.register_buffer("features", torch.zeros(groups, size, dim))
        self.register_buffer("count", torch.zeros(groups, dtype=torch.long))  # filled slots
        self.register_buffer("position", torch.zeros(groups, dtype=torch.long))  # next slot to overwrite

    @torch.no_grad()
    def enqueue(self, group: int, features: torch.Tensor) -> None:
        features = features.detach().to(self.features.dtype)[-self.size :]
        n = len(features)
        slots = (self.position[group] + torch.arange(n, device=self.features.device)) % self.size
        self.features[group, slots] = features
        self.position[group] = (self.position[group] + n) % self.size
        self.count[group] = torch.clamp(self.count[group] + n, max=self.size)

    def get(self, group: int) -> torch.Tensor:
        # a copy: autograd keeps it for the head's backward while the buffer is overwritten in place
        return self.features[group, : int(self.count[group])].clone()


class InfoNCELoss(nn.Module):
    def __init__(self, hidden: int, num_classes: int, conditional: bool = True, temperature: float = 0.2, queue_size: int = 0):
        super().__init__()
        self.conditional = conditional
        groups = num_classes if conditional else 1
        self.student_heads = nn.ModuleList(projection_head(hidden) for _ in range(groups))  # u_c
        self.teacher_heads = nn.ModuleList(projection_head(hidden) for _ in range(groups))  # v_c
        self.temperature = temperature
        self.queue = FeatureQueue(groups, queue_size, hidden) if queue_size > 0 else None

    def forward(self, student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """``student``: F(x_hat) [B, H] (with gradients); ``teacher``: F0(x) [B, H] (no gradients)."""
        teacher = teacher.detach()
        losses, bounds = [], []
        groups = range(len(self.student_heads))
        for group in groups:
            members = (labels == group) if self.conditional else torch.ones_like(labels, dtype=torch.bool)
            n = int(members.sum())
            if n == 0:
                continue  # class-balanced batches make this impossible in training
            u, v = self.student_heads[group], self.teacher_heads[group]
            s = F.normalize(u(student[members]), dim=-1)
            t = F.normalize(v(teacher[members]), dim=-1)
            queued = None
            if self.queue is not None and int(self.queue.count[group]) > 0:
                queued = F.normalize(v(self.queue.get(group)), dim=-1)
            loss = info_nce(s, t, self.temperature, queued)
            candidates = n + (len(queued) if queued is not None else 0)
            losses.append(loss)
            bounds.append(math.log(candidates) - loss.item())
        if self.queue is not None:  # after the loss: a batch is never its own negative twice
            for group in groups:
                members = (labels == group) if self.conditional else torch.ones_like(labels, dtype=torch.bool)
                if members.any():
                    self.queue.enqueue(group, teacher[members])
        total = torch.stack(losses).mean()
        return total, {"loss_info": total.item(), "info_bound": sum(bounds) / len(bounds)}
