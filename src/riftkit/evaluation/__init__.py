"""The numbers of an evaluation, in one home.

``accuracy`` (clean accuracy), ``outcomes`` (attack outcomes, the protocol's rates, an attack's
summary), ``leakage`` (which data trained or selected a model, and overlaps refused),
``statistics`` (intervals over seeds, paired bootstrap) and ``study`` (a sweep's table).
Tables, plots and the HTML report that show these numbers are in ``riftkit.reports``.
"""

from .accuracy import evaluate_accuracy
from .outcomes import outcome_rates, summarize

__all__ = ["evaluate_accuracy", "outcome_rates", "summarize"]
