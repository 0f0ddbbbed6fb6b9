"""``riftkit report DIR``: gather a sweep folder or a training run folder into one HTML report.

* A sweep folder (its ``output_dir`` or committed ``results_dir``: ``runs/<run_id>/...``):
  the study table of :func:`riftkit.evaluation.study.study_table` (means ± 95% intervals,
  paired differences against the baseline), its figures, and every attacked example of
  every run.
* A training run folder (``summary.json``, ``best/``, attack folders beside ``best/`` as
  ``riftkit attack`` writes them, or under ``attacks/``): one row per attack.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..evaluation.study import load_runs, read_examples
from . import tables
from .html import Plot, ReportData, write_report

RUN_COLUMNS = [("attack", "attack"), ("split", "split"), ("n", "examples"), ("vanilla_accuracy", "vanilla acc."),
               ("robust_accuracy", "robust acc."), ("success_rate", "success rate"), ("mean_changed_share", "perturbed share"),
               ("mean_queries", "queries"), ("wall_time_all_sessions_s", "wall s")]


def build_report(folder: str | Path, baseline: str | None = None) -> ReportData:
    """The report's data for a sweep folder or a training run folder; FileNotFoundError if it is neither."""
    folder = Path(folder)
    if (folder / "runs").is_dir():
        return _sweep_report(folder, baseline)
    if (folder / "summary.json").is_file():
        return _run_report(folder)
    raise FileNotFoundError(f"{folder}: neither a sweep folder (runs/<run_id>/) nor a training run (summary.json)")


def write(folder: str | Path, out: str | Path | None = None, baseline: str | None = None) -> Path:
    """Build and write the report (default ``<folder>/report.html``); returns its path."""
    return write_report(build_report(folder, baseline), Path(out) if out else Path(folder) / "report.html")


def _sweep_report(folder: Path, baseline: str | None) -> ReportData:
    from ..sweep.collect import figures, judged_table

    table_file = folder / "table.json"
    saved = json.loads(table_file.read_text()) if table_file.is_file() else {}
    baseline = baseline or saved.get("baseline")
    # the sweep file's pairs (saved by --collect), also those that had no runs yet then; older tables: those with data
    pairs = [tuple(p) for p in saved.get("comparison_pairs") or []] or [(c["a"], c["b"]) for c in saved.get("comparisons") or []]
    table = judged_table(folder, baseline, saved.get("tuning"), list(dict.fromkeys(pairs)))
    runs = load_runs(folder)
    rows = [{key: tables.cell(r, key) for key, _ in tables.COLUMNS} for r in table["rows"]]
    notes = [f"{len(runs)} runs in {folder}. Accuracies in percent: mean ± half-width of the 95% interval over seeds "
             "(Student t). Paired difference: this variant's robust accuracy minus the baseline's "
             f"({baseline or 'none'}), same seed index and same attacked examples, bootstrap over seeds and examples; "
             "* marks an interval that excludes 0."]
    notes += [f"Paired comparison {c['a']} - {c['b']} ({c['attack']}): {tables.format_paired(c['difference'])} pp."
              for c in table["comparisons"]]
    stale = [r for r in table["rows"] if r["stale"]]
    if stale:
        changed = sorted({f for r in stale for f in r.get("stale_files") or []})
        notes.append("Stale rows (code changed since they ran): " + ", ".join(sorted({r["variant"] for r in stale}))
                     + (f"; files changed since: {', '.join(changed)}" if changed else ""))
    plots = [Plot(f.title, f.png, f.caption) for f in figures(table, runs)]
    examples = []
    for run in runs:
        for name, attack in run["attacks"].items():
            examples += [dict(r, run=run["run_id"], attack=name) for r in read_examples(attack["folder"])]
    return ReportData(title=f"riftkit study: {saved.get('sweep', folder.name)}", columns=list(tables.COLUMNS), rows=rows, plots=plots,
                      examples=examples, notes=notes, label_names=_label_names(runs[0]["folder"] if runs else folder))


def _run_report(folder: Path) -> ReportData:
    summary = json.loads((folder / "summary.json").read_text())
    attack_folders = sorted(p.parent for p in [*folder.glob("attack-*/summary.json"), *folder.glob("attacks/*/summary.json")])
    rows, examples = [], []
    for attack in attack_folders:
        s = json.loads((attack / "summary.json").read_text())
        rows.append({key: s.get(key) for key, _ in RUN_COLUMNS} | {"attack": attack.name})
        examples += [dict(r, run=folder.name, attack=attack.name) for r in read_examples(attack)]
    best = summary.get("best_dev", {})
    test = summary.get("test") or {}
    notes = [f"{summary.get('name')} ({summary.get('method')}): {summary.get('data')}.",
             f"Selected by {best.get('selected_by', 'dev accuracy')}: dev accuracy {best.get('accuracy', float('nan')):.3f}"
             + (f", dev ASCC robust {best['dev_robust_ascc']:.3f}" if best.get("dev_robust_ascc") is not None else "")
             + (f"; test accuracy {test['accuracy']:.3f}" if test.get("accuracy") is not None else "") + "."]
    return ReportData(title=f"riftkit run: {summary.get('name', folder.name)}", columns=RUN_COLUMNS, rows=rows, examples=examples,
                      notes=notes, label_names=_label_names(folder))


def _label_names(run_folder: Path) -> list[str]:
    spec_file = Path(run_folder) / "best" / "riftkit.json"
    if spec_file.is_file():
        return list(json.loads(spec_file.read_text()).get("spec", {}).get("label_names", []))
    config = Path(run_folder) / "run.json"
    if config.is_file():
        return list(json.loads(config.read_text()).get("config", {}).get("data", {}).get("labels") or [])
    return []
