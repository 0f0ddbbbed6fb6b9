"""The goal: untargeted misclassification, and the fitness a search climbs.

Success: the predicted class differs from the label. Fitness (higher is
better for the attacker, METHOD.md): with two classes the probability of the
other class, 1 - p(y); with more, the margin of the best other class over the
true one, max_{c != y} p(c) - p(y). Both exceed their success threshold exactly
when the prediction flips (ties aside).
"""

from __future__ import annotations

import torch


class UntargetedClassification:
    def succeeded(self, probs: torch.Tensor, label: int) -> torch.Tensor:
        """Bool per row of ``probs`` [N, C]: the prediction is not the label."""
        return probs.argmax(-1) != label

    def fitness(self, probs: torch.Tensor, label: int) -> torch.Tensor:
        """Adversarial fitness per row: larger means closer to (or further past) a flip."""
        if probs.shape[-1] == 2:
            return 1.0 - probs[:, label]
        others = probs.clone()
        others[:, label] = float("-inf")
        return others.max(-1).values - probs[:, label]
