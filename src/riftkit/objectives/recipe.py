"""A method is a combination of pieces, chosen by the config (RIFT is a combination, not a fork).

| method      | task term                  | + on top                                           |
|-------------|----------------------------|----------------------------------------------------|
| standard    | CE                         |                                                    |
| adv         | CE + beta KL (Eq. 9, ASCC) |                                                    |
| adv_ptwd    | CE + beta KL               | lambda ||theta - theta_0||                         |
| adv_mixout  | CE + beta KL               | Mixout(p) on every encoder Linear, its dropout off |
| rift        | CE + beta KL               | alpha * conditional InfoNCE vs frozen F0 (Eq. 11)  |

PTWD, Mixout and the info term are independent switches, each a section of ``objective``
(``ptwd.weight``, ``mixout.p``, ``info.kind``); the method names set or require them. The
training adversary (``objective.adversary``) reaches the objective through one seam,
``perturb(model, batch) -> ModelInputs`` (``base.Adversary``).
"""

from __future__ import annotations

from torch import nn

from ..config import ObjectiveConfig
from ..models.classifier import Classifier
from ..substitutions.hull import HullBuilder
from ..substitutions.sets import SubstitutionSet
from .ascc import ASCCAdversary, ASCCTrainingAdversary
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
    if method == "adv_ptwd" and config.ptwd.weight <= 0:
        raise ValueError("train.method=adv_ptwd needs objective.ptwd.weight > 0 (lambda of ||theta - theta_0||)")
    if method == "adv_mixout" and config.mixout.p <= 0:
        raise ValueError("train.method=adv_mixout needs objective.mixout.p > 0")
    info_kind = config.info.kind if config.info.kind != "auto" else ("conditional" if method == "rift" else "none")
    if method == "rift" and info_kind == "none":
        raise ValueError("train.method=rift needs an info term: objective.info.kind conditional (RIFT) or unconditional (the I(S;T) ablation)")
    if info_kind != "none" and config.info.on == "adversarial" and method == "standard":
        raise ValueError("objective.info.on=adversarial needs an adversarial method; use info.on: clean with standard")

    if method == "standard":
        task_term = StandardObjective()
    else:
        if substitutions is None:
            raise ValueError(f"train.method={method}: adversarial training needs a substitution set (objective.substitutions)")
        a = config.adversary
        search = ASCCAdversary(steps=a.steps, lr=a.lr, sparse_weight=a.sparse_weight, loss="kl")
        adversary = ASCCTrainingAdversary(search, HullBuilder(model.tokenizer, substitutions), (model.spec.task_spec.attacked_segment,),
                                          seed=seed, hull=a.hull, warm_starts=a.warm_starts)
        task_term = AdversarialObjective(adversary, config.beta)
    teacher = info = None
    if info_kind != "none":
        # the teacher is copied from the pre-trained encoder before anything (Mixout) changes it
        teacher = FrozenTeacher(model.encoder, model.spec.pooling).to(model.device)
        info = InfoNCELoss(model.encoder.config.hidden_size, len(model.spec.label_names), conditional=info_kind == "conditional",
                           temperature=config.info.temperature, queue_size=config.info.queue_size).to(model.device)
    if config.mixout.p > 0:
        # Lee et al.'s setting: Mixout on every Linear of the encoder, and no dropout in it (Mixout replaces it)
        apply_mixout(model.encoder, config.mixout.p)
        disable_dropout(model.encoder)
    ptwd = PretrainedWeightDecay(model.encoder, config.ptwd.weight) if config.ptwd.weight > 0 else None
    return Recipe(task_term, ptwd, info, teacher, config.info.alpha, config.info.on)
