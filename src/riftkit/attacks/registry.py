"""Attacks by name: ``ATTACKS[name](setup) -> attack``.

A builder receives an :class:`AttackSetup` (the victim, its task, the
substitution set, the attack config, the language model if any) and returns
an object with ``attack(examples, on_result=None) -> list[AttackResult]``
(base.py). A new attack is one more entry, e.g. ``ATTACKS["ascc"] = build_ascc``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..config import AttackConfig, ConfigError
from ..data.examples import Example, TaskSpec
from ..substitutions.lm import LanguageModel
from ..substitutions.sets import SubstitutionSet
from .base import AttackResult
from .constraints import LanguageModelFilter, StopwordFilter
from .genetic import Genetic
from .pwws import PWWS
from .transformation import WordSwap


class Attack(Protocol):
    name: str

    def attack(self, examples: list[Example], on_result: Callable[[AttackResult], None] | None = None) -> list[AttackResult]: ...


@dataclass
class AttackSetup:
    model: Any  # a riftkit Classifier (white-box attacks need its embeddings; black-box ones only predict_proba)
    task: TaskSpec
    substitutions: SubstitutionSet
    config: AttackConfig
    language_model: LanguageModel | None = None
    # what the black-box searches query (riftkit.models.backends: ONNX Runtime, bf16); None: the model itself
    victim: Any = None
    # the exact model, when ``victim`` is an approximate path: it decides every reported outcome (base.BlackBoxAttack);
    # None: the approximate victim's own ``exact`` (models.backends.Bf16Victim), if it has one
    exact_victim: Any = None


def _filters(setup: AttackSetup) -> list:
    filters: list = []
    if setup.config.stopwords:
        filters.append(StopwordFilter())
    if setup.language_model is not None:
        filters.append(LanguageModelFilter(setup.language_model, setup.config.lm_max_drop, setup.config.lm_radius))
    return filters


def _common(setup: AttackSetup) -> dict:
    c = setup.config
    return {
        "victim": setup.victim or setup.model,
        "transformation": WordSwap(setup.substitutions, setup.task.attacked_segment),
        "candidate_filters": _filters(setup),
        "max_change_rate": c.max_change_rate,
        "seed": c.seed,
        "in_flight": c.in_flight,
        "batch_size": c.forward_batch_size,
        "cache_size": c.cache_size,
        "query_budget": c.query_budget,
        "attack_truncated_words": c.attack_truncated_words,
        "exact_victim": setup.exact_victim or getattr(setup.victim, "exact", None),
    }


def build_pwws(setup: AttackSetup) -> PWWS:
    tokenizer = getattr(setup.model, "tokenizer", None)
    unknown = getattr(tokenizer, "unk_token", None) or "[UNK]"
    return PWWS(**_common(setup), unknown_word=unknown, adaptive=setup.config.pwws.adaptive)


def build_genetic(setup: AttackSetup) -> Genetic:
    g = setup.config.genetic
    return Genetic(**_common(setup), population=g.population, generations=g.generations, temperature=g.temperature)


def build_ascc(setup: AttackSetup):
    from ..substitutions.hull import HullBuilder
    from .ascc import ASCCAttack

    c = setup.config
    return ASCCAttack.from_config(setup.model, HullBuilder(setup.model.tokenizer, setup.substitutions), c.ascc, seed=c.seed,
                                  forward_batch_size=c.forward_batch_size)


ATTACKS: dict[str, Callable[[AttackSetup], Attack]] = {
    "pwws": build_pwws,
    "genetic": build_genetic,
    "ascc": build_ascc,
}

# Attacks that use the language-model constraint when ``lm: auto``.
USES_LM_BY_DEFAULT = {"genetic"}
WHITE_BOX = {"ascc"}  # attacks that need the model's gradients: always the PyTorch forward path


def build_attack(setup: AttackSetup) -> Attack:
    name = setup.config.attack
    if name not in ATTACKS:
        raise ConfigError(f"attack.attack: {name!r} is not a known attack; known: {', '.join(sorted(ATTACKS))}")
    return ATTACKS[name](setup)
