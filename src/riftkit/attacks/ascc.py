"""The white-box ASCC attack: Eq. 8 with the cross-entropy on the true label, then argmax.

For a batch of examples: search the convex hull of substitute embeddings
(:class:`riftkit.objectives.ascc.ASCCAdversary`, loss "ce"), take the argmax
candidate of every word, and confirm on the discrete text with one forward
pass. A success is therefore always a real flip of a real substituted text.
It is the fast robust-accuracy estimate used for model selection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..data.examples import Example
from ..models.classifier import Classifier
from ..objectives.ascc import ASCCAdversary
from ..substitutions.hull import HullBuilder
from .base import FAILED, SKIPPED, SUCCEEDED, AttackResult, build_result, outcome_rates


class ASCCAttack:
    name = "ascc"

    def __init__(self, model: Classifier, hulls: HullBuilder, steps: int = 10, lr: float = 1.0, sparse_weight: float = 15.0, batch_size: int = 32, seed: int = 0):
        self.model, self.hulls, self.batch_size = model, hulls, batch_size
        self.adversary = ASCCAdversary(steps=steps, lr=lr, sparse_weight=sparse_weight, loss="ce")
        self.generator = torch.Generator().manual_seed(seed)
        self.segments = (model.spec.task_spec.attacked_segment,)

    def attack(self, examples: Sequence[Example], on_result: Callable[[AttackResult], None] | None = None) -> list[AttackResult]:
        results: list[AttackResult] = []
        for start in range(0, len(examples), self.batch_size):
            for result in self._attack_batch(examples[start : start + self.batch_size]):
                results.append(result)
                if on_result is not None:
                    on_result(result)
        return results

    def _attack_batch(self, examples: Sequence[Example]) -> list[AttackResult]:
        model = self.model
        was_training = model.training
        model.eval()
        try:
            inputs = model.encode_examples(examples).to(model.device)
            labels = torch.tensor([e.label for e in examples], device=model.device)
            with torch.no_grad():
                predictions = model(**inputs).argmax(-1)
            hull = self.hulls.build(examples, inputs, self.segments).to(model.device)
            found = self.adversary.search(model, inputs, hull, labels, self.generator)
            decoded = hull.decode(examples, found.weights.cpu())
            adversarial_predictions = model.predict_proba([adv.segments for adv, _ in decoded]).argmax(-1)
        finally:
            model.train(was_training)
        segment = self.segments[0]
        results = []
        for example, pred, (adv, _), adv_pred in zip(examples, predictions.tolist(), decoded, adversarial_predictions.tolist()):
            if pred != example.label:
                outcome = SKIPPED
            else:
                outcome = SUCCEEDED if adv_pred != example.label else FAILED
            # queries: forward passes for this example (search steps, the clean and the confirming pass)
            results.append(build_result(example, segment, adv.segments[segment], outcome, self.adversary.steps + 2, pred, adv_pred))
        return results


def robust_accuracy(results: Sequence[AttackResult]) -> dict[str, float]:
    """n, vanilla accuracy, robust accuracy (correct and the attack failed) and attack success rate."""
    return outcome_rates([r.outcome for r in results])
