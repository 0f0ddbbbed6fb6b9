"""Substitution sets (the attack surface) and, next, language models for the attack constraint."""

from .sets import COUNTERFITTED, SubstitutionSet, load_substitutions

__all__ = ["COUNTERFITTED", "SubstitutionSet", "load_substitutions"]
