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
features are exact samples of T | Y=c forever. With a queue
(``queue_size > 0``) the loss therefore uses the other direction of InfoNCE,
from the FIRST step on (while the queue is still empty its candidates are the
batch's alone), so that the loss keeps one definition for the whole run: each
student anchor s_hat_j is scored against its own teacher feature and against
every teacher feature of its class in the batch and in the queue Q_c,

    L_c = -(1/N_c) sum_j log( exp(score_c(s_hat_j, t_j)) / sum_{k in B_c u Q_c} exp(score_c(s_hat_j, t_k)) ).

That is InfoNCE with T-side negatives: the negatives are draws from
p(t | y=c), so I(S;T|Y=c) >= log(N_c + |Q_c|) - L_c is a valid bound in
either direction (the InfoNCE bound is symmetric in S and T), and a tighter
one as the queue grows. Queued features are raw teacher features (constants,
never carrying gradients), projected by the current v_c at every use, so the
head's gradient still sees them.

The anchor's own example is never a negative. Each queued feature keeps the id
of its example (its index in the training set), and a candidate with the
anchor's id other than its positive is masked out: when a class has fewer
examples than the queue holds (the class-balanced sampler cycles small
classes), the anchor's own teacher feature would otherwise sit among its
negatives, a positive scored as a negative. The same mask removes an
example drawn twice into one batch. The bound then uses each anchor's number
of remaining candidates K_j:  mean_j log K_j - L_c.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def projection_head(hidden: int, mid: int = 512, out: int = 256) -> nn.Sequential:
    return nn.Sequential(nn.Linear(hidden, mid), nn.ReLU(), nn.Linear(mid, out))


def contrastive_loss(scores: torch.Tensor, anchor_ids: torch.Tensor | None = None, candidate_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE over a score matrix whose row j has its positive in column j.

    ``scores``: [N, K] with K >= N (anchors x candidates, nats). ``anchor_ids`` [N] and
    ``candidate_ids`` [K]: example ids; a candidate with its anchor's id, other than the
    positive itself, is masked out. Returns the loss -(1/N) sum_j log softmax_j(scores)[j]
    and mean_j log K_j (K_j: candidates left for anchor j), so that mean log K - loss is
    the InfoNCE lower bound on the mutual information in nats.
    """
    n, k = scores.shape
    diagonal = torch.arange(n, device=scores.device)
    if anchor_ids is not None:
        same = anchor_ids[:, None] == candidate_ids[None, :]
        same[diagonal, diagonal] = False  # the positive itself stays
        scores = scores.masked_fill(same, float("-inf"))
        candidates = (k - same.sum(1)).to(scores.dtype)
    else:
        candidates = torch.full((n,), float(k), dtype=scores.dtype, device=scores.device)
    loss = -F.log_softmax(scores, dim=1)[diagonal, diagonal].mean()
    return loss, candidates.log().mean().detach()


def info_nce(student: torch.Tensor, teacher: torch.Tensor, temperature: float, ids: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 10 for aligned rows of normalised projections [N, D]: softmax over students for each teacher anchor."""
    return contrastive_loss(teacher @ student.T / temperature, ids, ids)[0]


class FeatureQueue(nn.Module):
    """Per-group FIFO of past raw teacher features and the ids of their examples.

    Its whole state is four buffers, so it moves with ``.to(device)`` and is part
    of the state dict (checkpoints resume it exactly). Empty slots have id -1.
    """

    def __init__(self, groups: int, size: int, dim: int):
        super().__init__()
        self.size = size
        self.register_buffer("features", torch.zeros(groups, size, dim))
        self.register_buffer("ids", torch.full((groups, size), -1, dtype=torch.long))
        self.register_buffer("count", torch.zeros(groups, dtype=torch.long))  # filled slots
        self.register_buffer("position", torch.zeros(groups, dtype=torch.long))  # next slot to overwrite

    @torch.no_grad()
    def enqueue(self, group: int, features: torch.Tensor, ids: torch.Tensor) -> None:
        """Append ``features`` [n, dim] with their example ``ids`` [n], overwriting the oldest."""
        if len(ids) != len(features):
            raise ValueError(f"enqueue: {len(features)} features but {len(ids)} ids")
        features = features.detach().to(self.features.dtype)[-self.size :]
        ids = ids.to(self.ids.device)[-self.size :]
        n = len(features)
        slots = (self.position[group] + torch.arange(n, device=self.features.device)) % self.size
        self.features[group, slots] = features
        self.ids[group, slots] = ids
        self.position[group] = (self.position[group] + n) % self.size
        self.count[group] = torch.clamp(self.count[group] + n, max=self.size)

    def get(self, group: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The filled slots' features [q, dim] and ids [q]."""
        # copies: autograd keeps the features for the head's backward while the buffer is overwritten in place
        filled = int(self.count[group])
        return self.features[group, :filled].clone(), self.ids[group, :filled].clone()


class InfoNCELoss(nn.Module):
    def __init__(self, hidden: int, num_classes: int, conditional: bool = True, temperature: float = 0.2, queue_size: int = 0):
        super().__init__()
        self.conditional = conditional
        groups = num_classes if conditional else 1
        self.student_heads = nn.ModuleList(projection_head(hidden) for _ in range(groups))  # u_c
        self.teacher_heads = nn.ModuleList(projection_head(hidden) for _ in range(groups))  # v_c
        self.temperature = temperature
        self.queue = FeatureQueue(groups, queue_size, hidden) if queue_size > 0 else None
        # Several processes (training/loop.py sets it): (features [n, D], ids [n]) -> this process's rows first,
        # then every other process's, with gradients flowing back to each process's own rows, so that each
        # anchor sees the whole batch's candidates, exactly as on one process.
        self.gather_candidates = None

    def forward(self, student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor,
                example_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """``student``: F(x_hat) [B, H] (with gradients); ``teacher``: F0(x) [B, H] (no gradients); ``labels`` [B].

        ``example_ids`` [B]: each row's example id (index in the training set); required with a
        queue, optional without (then only a batch's repeated examples are masked). Returns
        L_info and the log's ``loss_info`` and ``info_bound`` (nats, averaged over groups).
        """
        if self.queue is not None and example_ids is None:
            raise ValueError("the feature queue (objective.info.queue_size > 0) needs the example ids of the batch")
        teacher = teacher.detach()
        losses, bounds = [], []
        groups = range(len(self.student_heads))
        for group in groups:
            members = (labels == group) if self.conditional else torch.ones_like(labels, dtype=torch.bool)
            if not members.any():
                continue  # class-balanced batches make this impossible in training
            u, v = self.student_heads[group], self.teacher_heads[group]
            s = F.normalize(u(student[members]), dim=-1)
            t = F.normalize(v(teacher[members]), dim=-1)
            ids = example_ids[members] if example_ids is not None else None
            if self.queue is None:  # Eq. 10: softmax over students for each teacher anchor
                candidates, candidate_ids = (s, ids) if self.gather_candidates is None else self.gather_candidates(s, ids)
                loss, log_candidates = contrastive_loss(t @ candidates.T / self.temperature, ids, candidate_ids)
            else:  # the queue's direction, from the first step: softmax over teachers for each student anchor
                queued, queued_ids = self.queue.get(group)
                candidates = torch.cat([t, F.normalize(v(queued), dim=-1)])
                loss, log_candidates = contrastive_loss(s @ candidates.T / self.temperature, ids, torch.cat([ids, queued_ids]))
            losses.append(loss)
            bounds.append(log_candidates.item() - loss.item())
        if self.queue is not None:  # after the loss: a batch is never its own negative twice
            for group in groups:
                members = (labels == group) if self.conditional else torch.ones_like(labels, dtype=torch.bool)
                if members.any():
                    self.queue.enqueue(group, teacher[members], example_ids[members])
        total = torch.stack(losses).mean()
        return total, {"loss_info": total.item(), "info_bound": sum(bounds) / len(bounds)}
