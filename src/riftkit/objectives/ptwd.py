"""Pre-trained weight decay (Adv-PTWD): lambda * ||theta - theta_0||_2 over the encoder weights.

The norm is not squared (as in the paper). Its gradient (theta - theta_0) / ||.||
is undefined at theta_0, so a small eps is added under the root, and its root
subtracted again, so that the term is exactly 0 at initialisation and the
gradient there is 0.
"""

from __future__ import annotations

import torch
from torch import nn

EPS = 1e-10


def parameter_name(name: str) -> str:
    """The plain name of a parameter, also when a parametrization (Mixout) holds it."""
    return name.replace(".parametrizations.weight.original", ".weight")


class PretrainedWeights:
    """A frozen snapshot theta_0 of a module's parameters (detached copies: nothing shared)."""

    def __init__(self, module: nn.Module):
        self.reference = {parameter_name(name): p.detach().clone() for name, p in module.named_parameters()}

    def distance(self, module: nn.Module) -> torch.Tensor:
        """||theta - theta_0||_2 over every parameter of the snapshot (differentiable)."""
        total = None
        for name, p in module.named_parameters():
            ref = self.reference.get(parameter_name(name))
            if ref is None:
                continue
            term = (p - ref.to(p.device)).pow(2).sum()
            total = term if total is None else total + term
        if total is None:
            raise ValueError("no parameter of the module matches the pre-trained snapshot")
        return (total + EPS).sqrt() - EPS**0.5


class PretrainedWeightDecay:
    def __init__(self, encoder: nn.Module, weight: float):
        if weight <= 0:
            raise ValueError(f"objective.ptwd.weight must be > 0 for pre-trained weight decay, got {weight}")
        self.weight = weight
        self.theta0 = PretrainedWeights(encoder)

    def __call__(self, encoder: nn.Module) -> tuple[torch.Tensor, float]:
        distance = self.theta0.distance(encoder)
        return self.weight * distance, distance.item()
