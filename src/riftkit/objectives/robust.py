"""Eq. 9, the robust task loss (TRADES-style; the "Adv-Base" baseline):

    L_task = CE(f(x), y) + beta * KL(f(x) || f(x_hat))

x_hat comes from the ASCC adversary (Eq. 8) and is fixed once found;
gradients flow through f on both terms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.classifier import Classifier
from ..substitutions.hull import HullBuilder
from .ascc import ASCCAdversary, kl_divergence
from .base import ObjectiveOutput, TrainBatch


class AdversarialObjective:
    def __init__(self, adversary: ASCCAdversary, hulls: HullBuilder, beta: float, segments: tuple[int, ...], seed: int = 0):
        self.adversary, self.hulls, self.beta, self.segments = adversary, hulls, beta, segments
        # The adversary's random starts have their own generator: its state is explicit (checkpointable)
        # and adding the adversary does not shift the random stream of dropout.
        self.generator = torch.Generator().manual_seed(seed)

    def adversarial_embeddings(self, model: Classifier, batch: TrainBatch) -> torch.Tensor:
        """x_hat of Eq. 8 as input embeddings (weights fixed, embedding table live for the outer gradient)."""
        hull = self.hulls.build(batch.examples, batch.inputs, self.segments).to(model.device)
        with torch.no_grad():
            was_training = model.training
            model.eval()
            clean_eval_logits = model(**batch.inputs)  # the adversary's target: p_clean without dropout
            model.train(was_training)
        found = self.adversary.search(model, batch.inputs, hull, clean_eval_logits, self.generator)
        return hull.mix(found.weights, model.word_embeddings)

    def __call__(self, model: Classifier, batch: TrainBatch) -> ObjectiveOutput:
        adv_embeds = self.adversarial_embeddings(model, batch)
        # clean pass first, as in Standard, so that with beta = 0 the random draws (dropout) are Standard's
        features = model.features(**batch.inputs)
        logits = model.head(features)
        adv_features = model.features(inputs_embeds=adv_embeds, attention_mask=batch.inputs["attention_mask"], token_type_ids=batch.inputs.get("token_type_ids"))
        adv_logits = model.head(adv_features)
        ce = F.cross_entropy(logits, batch.labels)
        kl = kl_divergence(logits, adv_logits).mean()
        loss = ce + self.beta * kl
        return ObjectiveOutput(loss, logits, {
            "loss_ce": ce.item(),
            "kl": kl.item(),
            "loss_adv_ce": F.cross_entropy(adv_logits, batch.labels).item(),
            "adv_accuracy": (adv_logits.argmax(-1) == batch.labels).float().mean().item(),
        }, {"clean": features, "adversarial": adv_features})
