"""Eq. 9, the robust task loss (TRADES-style; the "Adv-Base" baseline):

    L_task = CE(f(x), y) + beta * KL(f(x) || f(x_hat))

x_hat comes from the adversary (``perturb``: the ASCC adversary of Eq. 8 by default) and is
fixed once found; gradients flow through f on both terms.
"""

from __future__ import annotations

import torch.nn.functional as F

from ..models.classifier import Classifier
from .ascc import kl_divergence
from .base import Adversary, ObjectiveOutput, TrainBatch


class AdversarialObjective:
    def __init__(self, adversary: Adversary, beta: float):
        self.adversary, self.beta = adversary, beta

    def state_dict(self) -> dict:
        return self.adversary.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.adversary.load_state_dict(state)

    def __call__(self, model: Classifier, batch: TrainBatch) -> ObjectiveOutput:
        x_hat = self.adversary.perturb(model, batch)
        # clean pass first, as in Standard, so that with beta = 0 the random draws (dropout) are Standard's
        features, logits = model(**batch.inputs, return_features=True)
        adv_features, adv_logits = model(**x_hat.as_kwargs(), return_features=True)
        ce = F.cross_entropy(logits, batch.labels)
        kl = kl_divergence(logits, adv_logits).mean()
        loss = ce + self.beta * kl
        return ObjectiveOutput(loss, logits, {
            "loss_ce": ce.item(),
            "kl": kl.item(),
            "loss_adv_ce": F.cross_entropy(adv_logits, batch.labels).item(),
            "adv_accuracy": (adv_logits.argmax(-1) == batch.labels).float().mean().item(),
            **x_hat.stats,
        }, {"clean": features, "adversarial": adv_features})
