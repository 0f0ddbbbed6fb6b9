"""Training objectives: small pieces that a config combines.

task.py    CE on clean inputs (Standard)
ascc.py    the ASCC adversary, Eq. 8
robust.py  CE + beta KL(f(x) || f(x_hat)), Eq. 9 (Adv-Base)
ptwd.py    lambda ||theta - theta_0|| (Adv-PTWD)
mixout.py  Mixout(p) on the encoder (Adv-Mixout)
recipe.py  which pieces a method combines
"""

from .base import Objective, ObjectiveOutput, TrainBatch
from .recipe import METHODS, Recipe, build_objective

__all__ = ["METHODS", "Objective", "ObjectiveOutput", "Recipe", "TrainBatch", "build_objective"]
