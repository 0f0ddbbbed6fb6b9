"""Collecting a sweep: the table (JSON, CSV, Markdown) and the figures, from whatever runs have finished."""

from __future__ import annotations

import json
from pathlib import Path

from ..config import flatten_sections
from ..evaluation.statistics import mean_ci
from ..evaluation.study import ATTACK_METRICS, METRICS, load_runs, study_table
from ..reports import plots, tables
from .provenance import ATTACK_CODE, TRAINING_CODE, CodeState, changed_files, current_code
from .runner import Sweep

TABLE_FILES = ("table.json", "table.csv", "table.md")


def collect(sweep: Sweep, root: str | Path | None = None, out: str | Path | None = None) -> dict:
    """Build the study table from ``root`` and write it, with plots, to ``out``.

    ``root`` defaults to the sweep's results_dir (where every finished run is copied, also on a fresh
    clone that has no weights) when it has one, else its output_dir.

    ``out`` defaults to the sweep's results_dir (else its output_dir). Returns the table dict.
    """
    spec = sweep.spec
    root = Path(root or (spec.results_dir if spec.results_dir and (spec.results_dir / "runs").is_dir() else spec.output_dir))
    out = Path(out or spec.results_dir or spec.output_dir)
    _, tuning = sweep.winners()
    table = judged_table(root, spec.baseline, tuning, spec.comparisons)
    table["sweep"] = spec.name
    table["comparison_pairs"] = [list(pair) for pair in spec.comparisons]  # asked for, with runs yet or not (the report's pairs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.json").write_text(json.dumps(table, indent=2, default=str) + "\n")
    (out / "table.csv").write_text(tables.csv_table(table))
    parts = [f"# {spec.name}", "", f"Baseline for paired differences: {spec.baseline or '(none)'}.", ""]
    for attack in table["attacks"] or [None]:
        parts += [f"## {attack or 'training only'}", "", tables.markdown_table(table, attack), ""]
    for title, text in (("Paired comparisons", tables.comparisons_markdown(table)), ("Stale rows", tables.stale_markdown(table)),
                        ("Tuned on dev", tables.tuning_markdown(table["tuning"]))):
        if text:
            parts += [f"## {title}", "", text, ""]
    (out / "table.md").write_text("\n".join(parts))
    for figure in figures(table, load_runs(root)):
        plots.save(figure, out / "plots")
    return table


def judged_table(root: str | Path, baseline: str | None, tuning: dict | None, comparisons: list[tuple[str, str]] | None) -> dict:
    """:func:`study_table` judged against today's code (and code verified to compute the same: ``provenance.current_code``):
    rows whose code changed since they ran are marked stale and name the changed files. The one table that
    ``table.md`` and ``riftkit report`` both show."""
    code = current_code()
    table = study_table(root, baseline, code.training, code.attack, tuning, comparisons)
    explain_stale(table, code)
    return table


def explain_stale(table: dict, code: CodeState | None = None) -> None:
    """Give each stale row ``stale_files``: the files of the code it depends on (training code; for an attack row
    the attack code too) changed since its runs' commits (up to the commit today's code is verified equal to, if
    any); None where git cannot tell (a dirty run, an unknown commit)."""
    until = code.reference_commit if code is not None else None
    asked: dict[tuple, list[str] | None] = {}  # rows share commits: one git diff per (commit, packages)
    for row in table["rows"]:
        if not row["stale"]:
            continue
        packages = tuple(dict.fromkeys(TRAINING_CODE + (ATTACK_CODE if row.get("attack") else ())))
        files: set[str] | None = set()
        for commit in row["commits"]:
            if (commit, packages) not in asked:
                asked[commit, packages] = None if commit.endswith("+dirty") else changed_files(commit, packages, until=until)
            changed = asked[commit, packages]
            if changed is None:
                files = None
                break
            files.update(changed)
        row["stale_files"] = None if files is None else sorted(files)


def figures(table: dict, runs: list[dict]) -> list[plots.Figure]:
    """Every figure the table and the runs support (trade-off per attack, forgetting, swept values)."""
    made = [plots.tradeoff(table, attack) for attack in table["attacks"]]
    made.append(plots.forgetting(runs))
    made.append(plots.learning_curves(runs))
    swept = sorted({key for row in table["rows"] for key in row["params"] if key not in _tuned_keys(table)})
    for key in swept:
        for attack in table["attacks"]:
            rows, seeds = on_shared_seeds([r for r in ablation_rows(table, runs, key) if r["attack"] == attack])
            made.append(plots.ablation(dict(table, rows=rows), key, attack, seeds))
    return [f for f in made if f is not None]


def _tuned_keys(table: dict) -> set[str]:
    return {key for rows in table["tuning"].values() for r in rows for key in r["values"]}


def on_shared_seeds(rows: list[dict]) -> tuple[list[dict], list[int] | None]:
    """``rows`` (one attack's) with every metric restricted to the seeds all of them ran, and those seeds.

    Points of one figure must average the same seeds: a 3-seed mean beside 1-seed points mixes the seed
    effect (several points on these runs) into the curve. A metric whose values do not line up with its
    seeds (a seed without the value), and every row when the rows share no seed, stay as they are; the
    seeds returned are then None.
    """
    if not rows:
        return rows, None
    shared = sorted(set.intersection(*(set(r.get("attack_seeds") or r["seeds"]) for r in rows)))
    if not shared:
        return rows, None
    restricted = []
    for row in rows:
        row = dict(row, n_seeds=len(shared))
        for key in METRICS:
            value, seeds = row.get(key), row.get("attack_seeds") if key in ATTACK_METRICS else row["seeds"]
            if not value or not seeds or len(value["values"]) != len(seeds):
                continue
            row[key] = mean_ci([v for v, seed in zip(value["values"], seeds) if seed in shared]).to_dict()
        restricted.append(row)
    return restricted, shared


# Fields of a run's resolved config that differ between runs of one experiment without changing it.
PER_RUN_FIELDS = {"name", "output_dir", "train.seed", "train.progress"}


def ablation_rows(table: dict, runs: list[dict], key: str) -> list[dict]:
    """The rows of an ablation over ``key`` (a dotted config path such as ``objective.alpha``): the rows that
    sweep it (``key`` in their params), and the rows of any other variant whose runs are the same experiment
    with only ``key`` set otherwise (the method's default value, e.g. ``rift`` at alpha 0.1 beside
    ``rift_alpha`` at 0.03, 0.3, 1.0), copied with ``params[key]`` set to their value.

    Runs compare on their recorded resolved configs (``run.json``), apart from per-run fields (seed, name,
    output folder, progress bar) and fields one of them lacks (added to riftkit since it ran).
    """
    configs = {run["variant"]: flatten_sections(run.get("config") or {}) for run in runs}

    def same_but_key(a: dict, b: dict) -> bool:
        shared = (set(a) & set(b)) - PER_RUN_FIELDS - {key}
        return key in a and key in b and all(a[k] == b[k] for k in shared)

    swept = [r for r in table["rows"] if key in r["params"]]
    references = [configs[r["variant"]] for r in swept if r["variant"] in configs]
    extra = []
    for row in table["rows"]:
        config = configs.get(row["variant"])
        if key in row["params"] or config is None or not any(same_but_key(config, ref) for ref in references):
            continue
        extra.append(dict(row, params={**row["params"], key: config[key]}))
    return swept + extra
