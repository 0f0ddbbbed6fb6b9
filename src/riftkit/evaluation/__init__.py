"""The numbers of an evaluation, in one home.

``accuracy`` (clean accuracy), ``outcomes`` (attack outcomes, the protocol's rates, an attack's
summary), ``leakage`` (which data trained or selected a model, and overlaps refused),
``statistics`` (intervals over seeds, paired bootstrap) and ``study`` (a sweep's table).
Tables, plots and the HTML report that show these numbers are in ``riftkit.reports``.
"""

from importlib import import_module

__all__ = ["evaluate_accuracy", "outcome_rates", "summarize"]
_HOMES = {"evaluate_accuracy": ".accuracy", "outcome_rates": ".outcomes", "summarize": ".outcomes"}


def __getattr__(name: str):
    # Imported on first use: the report (reports/html.py) reads the outcome names without loading torch (accuracy.py).
    if name in _HOMES:
        return getattr(import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
