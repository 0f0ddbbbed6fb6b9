"""Mixout(p) (Lee et al., ICLR 2020) on the encoder (Adv-Mixout), set up as Lee et al. use it.

During training every weight element is replaced by its pre-trained value with
probability p, and the result is rescaled so that its expectation is the
learned weight:  W = (M * W0 + (1 - M) * W - p * W0) / (1 - p),  M ~ Bernoulli(p);
p = 1 gives W0 itself (Lee et al.'s limit). At evaluation the learned weights
are used as they are.

Where, as in Lee et al.'s reference code (their README's recipe for BERT):
Mixout goes on the weight (not the bias) of EVERY ``nn.Linear`` of the encoder
(attention projections, feed-forward layers, the pooler), and every dropout of
the encoder is switched off (p = 0), since Mixout takes its place as the
regulariser. The embeddings are not Linear layers and stay as they are. (The
authors' RIFT code wraps only the top-level module's own parameters, which a
``BertModel`` does not have; riftkit follows Lee et al.)

Implemented as a ``torch.nn.utils.parametrize`` parametrization, so the
learned weight stays an ordinary parameter (``...parametrizations.weight.original``)
and :func:`riftkit.models.io.save_classifier` writes it back under its usual name.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..config import check_probability


class Mixout(nn.Module):
    def __init__(self, pretrained: torch.Tensor, p: float):
        super().__init__()
        check_probability(p, "objective.mixout.p")
        self.p = p
        self.register_buffer("pretrained", pretrained.detach().clone(), persistent=False)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return weight
        if self.p == 1.0:  # every element replaced: the pre-trained weight (no gradient reaches the learned one)
            return self.pretrained
        mask = (torch.rand_like(weight) < self.p).to(weight.dtype)
        return (mask * self.pretrained + (1 - mask) * weight - self.p * self.pretrained) / (1 - self.p)


def apply_mixout(module: nn.Module, p: float) -> int:
    """Put Mixout(p) on the weight of every nn.Linear inside ``module``; returns how many.

    The weights at this moment are the pre-trained ones that Mixout mixes in.
    """
    count = 0
    for layer in list(module.modules()):
        if isinstance(layer, nn.Linear) and not parametrize.is_parametrized(layer, "weight"):
            parametrize.register_parametrization(layer, "weight", Mixout(layer.weight, p))
            count += 1
    return count


def disable_dropout(module: nn.Module) -> int:
    """Set p = 0 on every nn.Dropout inside ``module`` (BERT-style attention reads it at call time); returns how many."""
    count = 0
    for layer in module.modules():
        if isinstance(layer, nn.Dropout):
            layer.p = 0.0
            count += 1
    return count


def remove_mixout(module: nn.Module) -> None:
    """Bake the learned weights back in (evaluation weights) and drop the parametrizations."""
    for layer in list(module.modules()):
        if parametrize.is_parametrized(layer, "weight") and any(isinstance(m, Mixout) for m in layer.parametrizations.weight):
            layer.eval()
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
