"""A method is a combination of pieces, chosen by the config (RIFT is a combination, not a fork).

| method      | task term                  | + on top                          |
|-------------|----------------------------|-----------------------------------|
| standard    | CE                         |                                   |
| adv         | CE + beta KL (Eq. 9, ASCC) |                                   |
| adv_ptwd    | CE + beta KL               | lambda ||theta - theta_0||        |
| adv_mixout  | CE + beta KL               | Mixout(p) on the encoder          |

PTWD and Mixout are independent switches (``objective.ptwd_weight`` and
``objective.mixout_p``): the ``adv_ptwd`` / ``adv_mixout`` names only require them.
"""

from __future__ import annotations

from ..config import ObjectiveConfig
from ..models.classifier import Classifier
from ..substitutions.hull import HullBuilder
from ..substitutions.sets import SubstitutionSet
from .ascc import ASCCAdversary
from .base import ObjectiveOutput, TrainBatch
from .mixout import apply_mixout
from .ptwd import PretrainedWeightDecay
from .robust import AdversarialObjective
from .task import StandardObjective

METHODS = ("standard", "adv", "adv_ptwd", "adv_mixout")


class Recipe:
    """task term (+ pre-trained weight decay)."""

    def __init__(self, task_term, ptwd: PretrainedWeightDecay | None = None):
        self.task_term, self.ptwd = task_term, ptwd

    @property
    def is_adversarial(self) -> bool:
        return isinstance(self.task_term, AdversarialObjective)

    def __call__(self, model: Classifier, batch: TrainBatch) -> ObjectiveOutput:
        out = self.task_term(model, batch)
        if self.ptwd is not None:
            term, distance = self.ptwd(model.encoder)
            out.loss = out.loss + term
            out.metrics["ptwd_distance"] = distance
        return out


def build_objective(method: str, config: ObjectiveConfig, model: Classifier, substitutions: SubstitutionSet | None, seed: int = 0) -> Recipe:
    """Wire the pieces for ``method``; applies Mixout to ``model`` in place when asked for."""
    if method not in METHODS:
        raise ValueError(f"train.method={method!r}: available methods are {list(METHODS)}")
    if method == "adv_ptwd" and config.ptwd_weight <= 0:
        raise ValueError("train.method=adv_ptwd needs objective.ptwd_weight > 0 (lambda of ||theta - theta_0||)")
    if method == "adv_mixout" and config.mixout_p <= 0:
        raise ValueError("train.method=adv_mixout needs objective.mixout_p > 0")
    if method == "standard":
        task_term = StandardObjective()
    else:
        if substitutions is None:
            raise ValueError(f"train.method={method}: adversarial training needs a substitution set (objective.substitutions)")
        adversary = ASCCAdversary(steps=config.adv_steps, lr=config.adv_lr, sparse_weight=config.adv_sparse_weight, loss="kl")
        hulls = HullBuilder(model.tokenizer, substitutions, config.max_candidates)
        task_term = AdversarialObjective(adversary, hulls, config.beta, (model.spec.task_spec.attacked_segment,), seed=seed)
    if config.mixout_p > 0:
        apply_mixout(model.encoder, config.mixout_p)
    ptwd = PretrainedWeightDecay(model.encoder, config.ptwd_weight) if config.ptwd_weight > 0 else None
    return Recipe(task_term, ptwd)
