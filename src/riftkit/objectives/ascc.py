"""The ASCC adversary (Dong et al., ICLR 2021): Eq. 8 of the RIFT paper.

Each perturbable word i gets weights w_i = softmax(z_i) over its valid
candidates (masked), z drawn Kaiming-normal. K Adam steps (learning rate 1.0)
maximise, per example,

    KL(p_clean || p_adv) - lambda_sparse * sum_i H(w_i) / 38400

for training (label-free, so no label leaking), or the cross-entropy on the
true label for the white-box evaluation attack. The constant 38400 (= 300 x
128) is the authors' scaling of the entropy term; with lambda_sparse = 15 it
pushes the weights towards vertices without dominating the KL.

The hull is over the encoder's input word embeddings (``inputs_embeds``);
position and segment embeddings are added by the encoder as for clean text.
The model is in eval mode during the search and its previous mode is
restored; gradients of the search reach only z, never the model.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BatchEncoding

from ..models.classifier import Classifier
from ..models.modes import eval_mode
from ..substitutions.hull import Hull, HullBuilder
from .base import ModelInputs, TrainBatch

ENTROPY_SCALE = 300 * 128


def masked_softmax(z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.softmax(z.masked_fill(~mask, float("-inf")), dim=-1)


def weight_entropy(weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Entropy of every word's weight vector, [B, W] (0 for one valid candidate)."""
    logs = torch.where(mask, weights.clamp_min(1e-30).log(), torch.zeros_like(weights))
    return -(weights * logs).sum(-1)


def kl_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per example, from logits."""
    p_log = F.log_softmax(p_logits, dim=-1)
    return (p_log.exp() * (p_log - F.log_softmax(q_logits, dim=-1))).sum(-1)


@dataclass
class AdversaryResult:
    weights: torch.Tensor  # [B, W, K] final hull weights (detached)
    objective_start: torch.Tensor  # [B] attack objective at the initial weights
    objective_end: torch.Tensor | None  # [B] at the final weights (when measured)


class ASCCAdversary:
    def __init__(self, steps: int = 10, lr: float = 1.0, sparse_weight: float = 15.0, loss: str = "kl"):
        if loss not in ("kl", "ce"):
            raise ValueError(f"ASCC loss must be 'kl' (training) or 'ce' (evaluation attack), got {loss!r}")
        self.steps, self.lr, self.sparse_weight, self.loss = steps, lr, sparse_weight, loss

    def _objective(self, model: Classifier, inputs: BatchEncoding, hull: Hull, candidates: torch.Tensor, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weights = masked_softmax(z, hull.candidate_mask)
        embeds = hull.mix(weights, candidates)
        logits = model(inputs_embeds=embeds, attention_mask=inputs["attention_mask"], token_type_ids=inputs.get("token_type_ids"))
        if self.loss == "kl":
            gain = kl_divergence(target, logits)
        else:
            gain = F.cross_entropy(logits, target, reduction="none")
        return gain - self.sparse_weight * weight_entropy(weights, hull.candidate_mask).sum(-1) / ENTROPY_SCALE

    def search(
        self, model: Classifier, inputs: BatchEncoding, hull: Hull, target: torch.Tensor,
        generator: torch.Generator | None = None, measure_end: bool = False, init: torch.Tensor | None = None,
    ) -> AdversaryResult:
        """``target``: clean logits (loss "kl") or labels (loss "ce").

        ``measure_end`` spends one more forward pass to report the objective at the final weights.
        ``init``: starting logits z [B, W, K] (default: the Kaiming-normal draw from ``generator``);
        the white-box attack draws them per example so that they do not depend on the batch.
        """
        with eval_mode(model):
            B, W, K = hull.candidate_mask.shape
            if init is None:
                init = torch.empty(B, W, K, 1)
                if init.numel():
                    # fan-in as in the authors' [B, L, K, 1] draw: near-uniform starting weights
                    nn.init.kaiming_normal_(init, generator=generator)
                init = init.squeeze(-1)
            elif init.shape != (B, W, K):
                raise ValueError(f"init must have the hull's shape {(B, W, K)}, got {tuple(init.shape)}")
            z = init.detach().clone().to(hull.candidate_mask.device).requires_grad_(True)
            optimizer = torch.optim.Adam([z], lr=self.lr)
            target = target.detach()
            with torch.no_grad():  # the search moves z only: look the candidates up once
                candidates = model.word_embeddings(hull.candidate_ids)
            start = None
            for _ in range(self.steps):
                objective = self._objective(model, inputs, hull, candidates, z, target)
                if start is None:
                    start = objective.detach()
                (grad,) = torch.autograd.grad(-objective.sum(), [z])
                optimizer.zero_grad(set_to_none=True)
                z.grad = grad
                optimizer.step()
            end = None
            if measure_end or start is None:
                with torch.no_grad():
                    end = self._objective(model, inputs, hull, candidates, z, target)
            weights = masked_softmax(z.detach(), hull.candidate_mask)
            return AdversaryResult(weights, start if start is not None else end, end)


def start_logits(hull: Hull, keys: Sequence[str], seed: int, round_: int, length: int) -> torch.Tensor:
    """Random starting logits z [B, W, K] for the search, one independent stream per example.

    Example b's rows come from a generator keyed by (seed, keys[b], round_) alone (round_: the
    training step or evaluation round), so its start is the same whichever examples share its
    batch, and differs between steps. The scale is fixed, std = sqrt(2 / (length * K)): the
    Kaiming fan-in of the authors' [B, L, K, 1] draw, whose L is their fixed padded length
    (here the model's max_length), so it depends neither on the batch nor on the text's length.
    Rows past an example's own words (batch padding) stay 0.
    """
    B, W, K = hull.candidate_mask.shape
    std = math.sqrt(2.0 / (max(length, 1) * K))
    z = torch.zeros(B, W, K)
    for b, key in enumerate(keys):
        words = len(hull.words[b])
        if words:
            generator = torch.Generator().manual_seed(zlib.crc32(f"{seed}\x00{key}\x00{round_}".encode()))
            z[b, :words] = torch.randn(words, K, generator=generator) * std
    return z


class ASCCTrainingAdversary:
    """The training adversary of Adv-* and RIFT: Eq. 8 with the KL loss, as an :class:`~riftkit.objectives.base.Adversary`.

    For a batch: the hull of every attacked word (``hulls``), random starts keyed by (seed, example uid,
    round) so that an example's x_hat does not depend on its batch mates and adding the adversary does not
    shift the random stream of dropout, the target p_clean without dropout, K steps of ``search``, and
    x_hat = the hull weights mixed over the live embedding table. ``step`` counts the rounds so far
    (checkpointed: a resumed run draws the same starts).
    """

    def __init__(self, search: ASCCAdversary, hulls: HullBuilder, segments: tuple[int, ...], seed: int = 0):
        self.search, self.hulls, self.segments, self.seed = search, hulls, segments, seed
        self.step = 0

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])

    def starts(self, model: Classifier, batch: TrainBatch, step: int, hull: Hull | None = None) -> torch.Tensor:
        """The search's starting logits [B, W, K] for ``batch`` in round ``step``."""
        hull = hull if hull is not None else self.hulls.build(batch.examples, batch.inputs, self.segments)
        return start_logits(hull, [e.uid for e in batch.examples], self.seed, step, model.spec.max_length)

    def perturb(self, model: Classifier, batch: TrainBatch, step: int | None = None) -> ModelInputs:
        """x_hat of Eq. 8 for ``batch`` (round ``step``, default: the next one, which then counts as done)."""
        hull = self.hulls.build(batch.examples, batch.inputs, self.segments)
        init = self.starts(model, batch, self.step if step is None else step, hull)
        hull = hull.to(model.device)
        with torch.no_grad(), eval_mode(model):
            clean_eval_logits = model(**batch.inputs)  # the adversary's target: p_clean without dropout
        found = self.search.search(model, batch.inputs, hull, clean_eval_logits, init=init.to(model.device))
        if step is None:
            self.step += 1
        return ModelInputs(hull.mix(found.weights, model.word_embeddings), batch.inputs["attention_mask"], batch.inputs.get("token_type_ids"))
