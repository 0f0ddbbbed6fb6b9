"""Tables of a study: Markdown (for RESULTS.md), CSV (one flat line per row) and the HTML report's columns.

They render the dicts of :func:`riftkit.evaluation.study.study_table`; every number
comes from there. Accuracies are shown in percent as ``mean ± half-width of the
95% interval`` over seeds; the paired difference against the baseline as
``+1.2 [-0.8, 3.1] p=0.23`` (percentage points, bootstrap interval, two-sided p).
"""

from __future__ import annotations

import csv
import io

from ..evaluation.statistics import MeanCI, format_mean_ci

COLUMNS = (  # (row key, header)
    ("variant", "variant"), ("attack", "attack"), ("n_seeds", "seeds"), ("n_examples", "examples"),
    ("test_accuracy", "clean test acc. %"), ("vanilla_accuracy", "vanilla acc. %"), ("robust_accuracy", "robust acc. %"),
    ("success_rate", "success rate %"), ("vs_baseline", "robust diff. vs baseline (pp, 95% CI, p)"),
    ("dev_accuracy", "dev acc. %"), ("dev_robust_ascc", "dev ASCC robust %"), ("stale", "stale"),
)


def _mean_ci(value: dict | None) -> MeanCI | None:
    return None if value is None else MeanCI(value["mean"], value["low"], value["high"], value["n"], tuple(value["values"]))


def format_paired(value: dict | None) -> str:
    """``+1.2 [-0.8, 3.1] p=0.23`` in percentage points; ``–`` when there is no pair."""
    if not value:
        return "–"
    mark = " *" if value.get("decided") else ""
    return f"{100 * value['mean']:+.1f} [{100 * value['low']:+.1f}, {100 * value['high']:+.1f}] p={value['p_value']:.3g}{mark}"


def cell(row: dict, key: str) -> str:
    """One table cell as text."""
    value = row.get(key)
    if key == "vs_baseline":
        return format_paired(value)
    if isinstance(value, dict) and "mean" in value:
        return format_mean_ci(_mean_ci(value))
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else ""
    return str(value)


def markdown_table(table: dict, attack: str | None = None) -> str:
    """The rows (of one attack, when given) as a Markdown table."""
    rows = [r for r in table["rows"] if attack is None or r["attack"] == attack]
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r, k) for k, _ in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def tuning_markdown(tuning: dict) -> str:
    """Which tuned value won, per method, with every value's dev metric."""
    lines = []
    for method, rows in tuning.items():
        for r in rows:
            values = ", ".join(f"{k}={v}" for k, v in r["values"].items())
            metric = "–" if r["value"] is None else f"{r['value']:.3f}"
            lines.append(f"| {method} | {values} | {r['metric'] or '–'} | {metric} | {'won' if r.get('won') else ''} |")
    if not lines:
        return ""
    return "\n".join(["| method | value | dev metric | dev value | |", "|---|---|---|---|---|", *lines])


def comparisons_markdown(table: dict) -> str:
    """The sweep's extra paired comparisons (``comparisons:``), one line per pair and attack."""
    lines = [f"| {c['a']} | {c['b']} | {c['attack']} | {', '.join(map(str, c['difference']['paired_seeds']))} | {format_paired(c['difference'])} |"
             for c in table.get("comparisons") or []]
    if not lines:
        return ""
    return "\n".join(["| a | b | attack | paired seeds | robust diff. a - b (pp, 95% CI, p) |", "|---|---|---|---|---|", *lines])


def stale_markdown(table: dict) -> str:
    """Per stale row, the files changed since its runs' commits (from ``explain_stale``), so a reader can judge
    whether the change could move its numbers."""
    lines = []
    for r in (r for r in table["rows"] if r.get("stale")):
        files = r.get("stale_files")
        said = "unknown (a run from uncommitted code, or a commit this clone lacks)" if files is None else (
            ", ".join(f"`{f}`" for f in files) or "none (the digest differs, the commit's files do not: a run from a dirty tree?)")
        lines.append(f"| {r['variant']} | {r['attack'] or '(training)'} | {' '.join(r['commits'])} | {said} |")
    if not lines:
        return ""
    return "\n".join(["| variant | attack | commits | changed since |", "|---|---|---|---|", *lines])


def csv_table(table: dict) -> str:
    """One flat line per row: means, interval ends and the paired difference as separate columns."""
    out = io.StringIO()
    fields = ["variant", "method", "params", "attack", "n_seeds", "seeds", "n_examples", "stale", "commits"]
    for key in ("test_accuracy", "vanilla_accuracy", "robust_accuracy", "success_rate", "dev_accuracy", "dev_robust_ascc"):
        fields += [f"{key}_mean", f"{key}_low", f"{key}_high"]
    fields += ["diff_vs_baseline", "diff_low", "diff_high", "diff_p_value", "train_wall_time_s", "attack_wall_time_s"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in table["rows"]:
        line = {k: r.get(k) for k in ("variant", "method", "attack", "n_seeds", "n_examples", "stale", "train_wall_time_s", "attack_wall_time_s")}
        line.update(params=";".join(f"{k}={v}" for k, v in r["params"].items()), seeds=" ".join(map(str, r["seeds"])), commits=" ".join(r["commits"]))
        for key in ("test_accuracy", "vanilla_accuracy", "robust_accuracy", "success_rate", "dev_accuracy", "dev_robust_ascc"):
            v = r.get(key) or {}
            line.update({f"{key}_mean": v.get("mean"), f"{key}_low": v.get("low"), f"{key}_high": v.get("high")})
        d = r.get("vs_baseline") or {}
        line.update(diff_vs_baseline=d.get("mean"), diff_low=d.get("low"), diff_high=d.get("high"), diff_p_value=d.get("p_value"))
        writer.writerow(line)
    return out.getvalue()


def format_table(summary: dict, title: str = "riftkit attack") -> str:
    """The summary in TextAttack's terms."""
    rows = [
        ("Number of successful attacks:", summary["succeeded"]),
        ("Number of failed attacks:", summary["failed"]),
        ("Number of skipped attacks:", summary["skipped"]),
        ("Original accuracy:", f"{100 * summary['vanilla_accuracy']:.2f}%"),
        ("Accuracy under attack:", f"{100 * summary['robust_accuracy']:.2f}%"),
        ("Attack success rate:", f"{100 * summary['success_rate']:.2f}%"),
        ("Average perturbed word % (of attackable):", f"{100 * summary['mean_changed_share']:.2f}%"),
        ("Average num. words per input:", f"{summary['mean_words']:.2f}"),
        ("Average attackable words (in max_length):", f"{summary.get('mean_attackable_words', summary['mean_words']):.2f}"),
        ("Avg num queries:", f"{summary['mean_queries']:.2f}"),
    ]
    if summary.get("budget_exhausted"):
        rows.append(("Query budget exhausted:", summary["budget_exhausted"]))
    if summary.get("data_role"):
        rows.append(("Examples:", summary["data_role"]["label"]))
    if "wall_time_s" in summary:
        rows.append(("Wall time (this session):", f"{summary['wall_time_s']:.1f} s"))
    width = max(len(k) for k, _ in rows)
    lines = [title, "+" + "-" * (width + 2) + "+" + "-" * 12 + "+"]
    lines += [f"| {k:<{width}} | {str(v):>10} |" for k, v in rows]
    lines.append(lines[1])
    return "\n".join(lines)
