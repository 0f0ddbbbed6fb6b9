"""The numbers of an attack: outcomes, the protocol's rates, and an attack folder's summary.

One home for them: the searches produce outcomes, ``attacks/runner.py`` logs them,
and everything that counts them (the runner's summary, model selection's robust
accuracy, the multi-seed study, the report) counts them here.

Robust accuracy = share of examples classified correctly whose attack failed (the paper's
"accuracy under attack"); vanilla accuracy = share classified correctly before the attack;
attack success rate = successes / examples attacked (the correctly classified ones).
"""

from __future__ import annotations

from collections.abc import Sequence

SKIPPED, SUCCEEDED, FAILED = "skipped", "succeeded", "failed"
QUERY_BUDGET = "query_budget"  # stop reason of a search that spent its query budget
OUTCOMES = (SKIPPED, SUCCEEDED, FAILED)
OUTCOME_DISPLAY_ORDER = (SUCCEEDED, FAILED, SKIPPED)  # how reports list them (the HTML filter): what the attack did first


def outcome_rates(outcomes: Sequence[str]) -> dict:
    """The protocol's rates: vanilla accuracy, robust accuracy (correct and the attack failed), success rate."""
    n = len(outcomes)
    attacked = sum(o != SKIPPED for o in outcomes)
    failed = sum(o == FAILED for o in outcomes)
    return {
        "n": n,
        "vanilla_accuracy": attacked / n if n else 0.0,
        "robust_accuracy": failed / n if n else 0.0,
        "success_rate": (attacked - failed) / attacked if attacked else 0.0,
    }



def summarize(records: Sequence[dict]) -> dict:
    """The protocol's numbers (robust = classified correctly and the attack failed).

    Word counts: ``mean_words`` over the whole attacked text, ``mean_attackable_words`` over the part
    inside the model's max_length window; the perturbed share is measured over the attackable window.
    """
    n = len(records)
    rates = outcome_rates([r["outcome"] for r in records])
    attacked = [r for r in records if r["outcome"] != SKIPPED]
    succeeded = [r for r in records if r["outcome"] == SUCCEEDED]
    words = [r.get("words", len(r["original"].split())) for r in records]
    return {
        "n": n,
        "succeeded": len(succeeded),
        "failed": sum(r["outcome"] == FAILED for r in records),
        "skipped": n - len(attacked),
        "budget_exhausted": sum(r.get("stop_reason") == QUERY_BUDGET for r in records),
        "vanilla_accuracy": rates["vanilla_accuracy"],
        "robust_accuracy": rates["robust_accuracy"],
        "success_rate": rates["success_rate"],
        "mean_changed_share": sum(r["changed_share"] for r in succeeded) / len(succeeded) if succeeded else 0.0,
        "mean_words": sum(words) / n if n else 0.0,
        "mean_attackable_words": sum(r.get("attackable_words", w) for r, w in zip(records, words)) / n if n else 0.0,
        "mean_queries": sum(r["queries"] for r in attacked) / len(attacked) if attacked else 0.0,
        "max_queries": max((r["queries"] for r in attacked), default=0),
        **_rechecks(records),
    }


def _rechecks(records: Sequence[dict]) -> dict:
    """An approximate forward path's rechecks (attack.backend bf16): none when every record came from an exact path."""
    checked = [r for r in records if "recheck" in r]
    if not checked:
        return {}
    return {"rechecked": len(checked), "recheck_queries": sum(r.get("rechecks") or 0 for r in checked),
            "recheck_reruns": sum(r["recheck"] == "rerun" for r in checked),
            "recheck_exact_searches": sum(r["recheck"] == "exact search" for r in checked)}
