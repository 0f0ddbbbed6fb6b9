"""A method is a combination of pieces, chosen by the config (RIFT is a combination, not a fork).

| method      | task term                  | + on top                                           |
|-------------|----------------------------|----------------------------------------------------|
| standard    | CE                         |                                                    |
| adv         | CE + beta KL (Eq. 9, ASCC) |                                                    |
| adv_ptwd    | CE + beta KL               | lambda ||theta - theta_0||                         |
| adv_mixout  | CE + beta KL               | Mixout(p) on every encoder Linear, its dropout off |
| rift        | CE + beta KL               | alpha * conditional InfoNCE vs frozen F0 (Eq. 11)  |

PTWD, Mixout and the info term are independent switches (``objective.ptwd_weight``,
``objective.mixout_p``, ``objective.info``); the method names set or require them.
"""

from __future__ import annotations

from torch import nn

from ..config import ObjectiveConfig
from ..models.classifier import Classifier
from ..substitutions.hull import HullBuilder
from ..substitutions.sets import SubstitutionSet
from .ascc import ASCCAdversary
from .base import ObjectiveOutput, TrainBatch
from .info import InfoNCELoss
from .mixout import apply_mixout, disable_dropout
from .ptwd import PretrainedWeightDecay
from .robust import AdversarialObjective
from .task import StandardObjective
from .teacher import FrozenTeacher

METHODS = ("standard", "adv", "adv_ptwd", "adv_mixout", "rift")


class Recipe:
    """task term (+ alpha * info term against the frozen teacher) (+ pre-trained weight decay)."""

    def __init__(self, task_term, ptwd: PretrainedWeightDecay | None = None, info: InfoNCELoss | None = None,
                 teacher: FrozenTeacher | None = None, alpha: float = 0.0, info_on: str = "adversarial"):
        self.task_term, self.ptwd, self.info, self.teacher, self.alpha, self.info_on = task_term, ptwd, info, teacher, alpha, info_on

    @property
    def is_adversarial(self) -> bool:
        return isinstance(self.task_term, AdversarialObjective)

    def task_modules(self) -> list[nn.Module]:
        """Trainable modules besides the classifier (optimised as task layers: weight decay 2e-4)."""
        return [self.info] if self.info is not None else []

    def state_dict(self) -> dict:
        """What changes during training besides the classifier: the info term's heads and feature queue
        (tensors), the adversary's round counter. The frozen teacher and theta_0 (PTWD) are rebuilt from
        the pre-trained encoder, Mixout's masks come from the torch generator (checkpointed with the run)."""
        state = {"task_term": self.task_term.state_dict() if hasattr(self.task_term, "state_dict") else {}}
        if self.info is not None:
            state["info"] = self.info.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        if hasattr(self.task_term, "load_state_dict"):
            self.task_term.load_state_dict(state["task_term"])
        if (self.info is None) != ("info" not in state):
            raise ValueError("objective state: the info term is " + ("missing" if self.info is not None else "unexpected"))
        if self.info is not None:
            self.info.load_state_dict(state["info"])

    def __call__(self, model: Classifier, batch: TrainBatch) -> ObjectiveOutput:
        out = self.task_term(model, batch)
        if self.info is not None:
            teacher_features = self.teacher(batch.inputs)  # clean inputs only
            loss_info, metrics = self.info(out.features[self.info_on], teacher_features, batch.labels, batch.indices)
            out.loss = out.loss + self.alpha * loss_info
            out.metrics.update(metrics)
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
    if not 0.0 <= config.mixout_p <= 1.0:
        raise ValueError(f"objective.mixout_p must be in [0, 1], got {config.mixout_p}")
    info_kind = config.info if config.info != "auto" else ("conditional" if method == "rift" else "none")
    if method == "rift" and info_kind == "none":
        raise ValueError("train.method=rift needs an info term: objective.info conditional (RIFT) or unconditional (the I(S;T) ablation)")
    if info_kind != "none" and config.info_on == "adversarial" and method == "standard":
        raise ValueError("objective.info_on=adversarial needs an adversarial method; use info_on: clean with standard")

    if method == "standard":
        task_term = StandardObjective()
    else:
        if substitutions is None:
            raise ValueError(f"train.method={method}: adversarial training needs a substitution set (objective.substitutions)")
        adversary = ASCCAdversary(steps=config.adv_steps, lr=config.adv_lr, sparse_weight=config.adv_sparse_weight, loss="kl")
        hulls = HullBuilder(model.tokenizer, substitutions, config.max_candidates)
        task_term = AdversarialObjective(adversary, hulls, config.beta, (model.spec.task_spec.attacked_segment,), seed=seed)
    teacher = info = None
    if info_kind != "none":
        # the teacher is copied from the pre-trained encoder before anything (Mixout) changes it
        teacher = FrozenTeacher(model.encoder, model.spec.pooling).to(model.device)
        info = InfoNCELoss(model.encoder.config.hidden_size, len(model.spec.label_names), conditional=info_kind == "conditional",
                           temperature=config.info_temperature, queue_size=config.info_queue_size).to(model.device)
    if config.mixout_p > 0:
        # Lee et al.'s setting: Mixout on every Linear of the encoder, and no dropout in it (Mixout replaces it)
        apply_mixout(model.encoder, config.mixout_p)
        disable_dropout(model.encoder)
    ptwd = PretrainedWeightDecay(model.encoder, config.ptwd_weight) if config.ptwd_weight > 0 else None
    return Recipe(task_term, ptwd, info, teacher, config.alpha, config.info_on)
