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
from .ascc import ASCCAdversary, kl_divergence, start_logits
from .base import ObjectiveOutput, TrainBatch


class AdversarialObjective:
    def __init__(self, adversary: ASCCAdversary, hulls: HullBuilder, beta: float, segments: tuple[int, ...], seed: int = 0):
        self.adversary, self.hulls, self.beta, self.segments = adversary, hulls, beta, segments
        # Random starts are keyed by (seed, example uid, step) (ascc.start_logits): an example's x_hat does not
        # depend on its batch mates, and adding the adversary does not shift the random stream of dropout.
        self.seed = seed
        self.step = 0  # calls so far: the round of the next search (checkpointable state)

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])

    def starts(self, model: Classifier, batch: TrainBatch, step: int, hull=None) -> torch.Tensor:
        """The search's starting logits [B, W, K] for ``batch`` at training step ``step``."""
        hull = hull if hull is not None else self.hulls.build(batch.examples, batch.inputs, self.segments)
        return start_logits(hull, [e.uid for e in batch.examples], self.seed, step, model.spec.max_length)

    def adversarial_embeddings(self, model: Classifier, batch: TrainBatch, step: int | None = None) -> torch.Tensor:
        """x_hat of Eq. 8 as input embeddings (weights fixed, embedding table live for the outer gradient)."""
        hull = self.hulls.build(batch.examples, batch.inputs, self.segments)
        init = self.starts(model, batch, self.step if step is None else step, hull)
        hull = hull.to(model.device)
        with torch.no_grad():
            was_training = model.training
            model.eval()
            clean_eval_logits = model(**batch.inputs)  # the adversary's target: p_clean without dropout
            model.train(was_training)
        found = self.adversary.search(model, batch.inputs, hull, clean_eval_logits, init=init.to(model.device))
        return hull.mix(found.weights, model.word_embeddings)

    def __call__(self, model: Classifier, batch: TrainBatch) -> ObjectiveOutput:
        adv_embeds = self.adversarial_embeddings(model, batch)
        self.step += 1
        # clean pass first, as in Standard, so that with beta = 0 the random draws (dropout) are Standard's
        features, logits = model(**batch.inputs, return_features=True)
        adv_features, adv_logits = model(inputs_embeds=adv_embeds, attention_mask=batch.inputs["attention_mask"],
                                         token_type_ids=batch.inputs.get("token_type_ids"), return_features=True)
        ce = F.cross_entropy(logits, batch.labels)
        kl = kl_divergence(logits, adv_logits).mean()
        loss = ce + self.beta * kl
        return ObjectiveOutput(loss, logits, {
            "loss_ce": ce.item(),
            "kl": kl.item(),
            "loss_adv_ce": F.cross_entropy(adv_logits, batch.labels).item(),
            "adv_accuracy": (adv_logits.argmax(-1) == batch.labels).float().mean().item(),
        }, {"clean": features, "adversarial": adv_features})
