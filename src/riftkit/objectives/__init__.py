"""Training objectives: small pieces that a config combines (task loss now; adversary, info loss, PTWD, Mixout next)."""

from .base import Objective, ObjectiveOutput
from .task import StandardObjective, build_objective

__all__ = ["Objective", "ObjectiveOutput", "StandardObjective", "build_objective"]
