"""Word-substitution attacks: query layer, transformation, constraints, goal, searches, protocol.

Data flow: examples -> :class:`~riftkit.attacks.transformation.WordSwap` (what may change)
-> candidate filters (stopwords, language model) -> a search (PWWS, Genetic) that
asks the victim through one batched :class:`~riftkit.attacks.queries.QueryLayer`
-> :class:`~riftkit.attacks.base.AttackResult` per example -> the runner's JSONL and summary.
"""

from .base import FAILED, SKIPPED, SUCCEEDED, AttackResult, BlackBoxAttack, build_result
from .constraints import STOPWORDS, LanguageModelFilter, MaxChangeRate, StopwordFilter
from .genetic import Genetic
from .goal import UntargetedClassification
from .pwws import PWWS
from .queries import QueryLayer
from .registry import ATTACKS, Attack, AttackSetup, build_attack
from .runner import run_attack
from .transformation import Substitution, WordSwap

__all__ = [
    "ATTACKS", "Attack", "AttackResult", "AttackSetup", "BlackBoxAttack", "FAILED", "Genetic", "LanguageModelFilter",
    "MaxChangeRate", "PWWS", "QueryLayer", "SKIPPED", "STOPWORDS", "SUCCEEDED", "StopwordFilter", "Substitution",
    "UntargetedClassification", "WordSwap", "build_attack", "build_result", "run_attack",
]
