"""The numbers of a multi-seed study: one row per (variant, attack), means with 95% intervals, paired differences.

Reads a sweep folder (``runs/<run_id>/`` with ``run.json``, ``summary.json`` and
``attacks/<name>/{summary.json, examples.jsonl[.gz], sweep_done.json}``: the
sweep's ``output_dir`` or its committed ``results_dir``) and returns plain dicts,
so that tables, plots and the HTML report (``reports/``) all show the same numbers.

Per row, over the seeds that finished: clean test accuracy (whole test split,
from training), the attack's vanilla and robust accuracy and success rate on its
seeded sample, dev accuracy and dev robust accuracy under ASCC (model
selection). Against the baseline method, the paired difference in robust accuracy:
pairs are the same seed index and the same attacked example (uid), bootstrapped
over seeds and examples (:func:`riftkit.evaluation.statistics.paired_bootstrap`).
A row is *stale* when the training code (or, for the attack, the attack code)
changed since the run: see :mod:`riftkit.sweep.provenance`.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path

import numpy as np

from .statistics import mean_ci, paired_bootstrap

METRICS = ("test_accuracy", "vanilla_accuracy", "robust_accuracy", "success_rate", "dev_accuracy", "dev_robust_ascc")
ATTACK_METRICS = ("vanilla_accuracy", "robust_accuracy", "success_rate")  # one value per seed in a row's attack_seeds


def read_examples(folder: Path) -> list[dict]:
    """An attack folder's per-example records (``examples.jsonl`` or its gzipped copy)."""
    plain, packed = folder / "examples.jsonl", folder / "examples.jsonl.gz"
    if plain.is_file():
        text = plain.read_text(encoding="utf-8")
    elif packed.is_file():
        text = gzip.decompress(packed.read_bytes()).decode("utf-8")
    else:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_runs(root: str | Path) -> list[dict]:
    """Every run under ``root/runs`` with a run.json and a summary.json, with its finished attacks."""
    runs = []
    for folder in sorted(Path(root, "runs").glob("*")):
        if not (folder / "run.json").is_file() or not (folder / "summary.json").is_file():
            continue
        run = json.loads((folder / "run.json").read_text())
        run["folder"] = folder
        run["summary"] = json.loads((folder / "summary.json").read_text())
        run["attacks"] = {}
        for attack in sorted(folder.glob("attacks/*")):
            if (attack / "sweep_done.json").is_file() and (attack / "summary.json").is_file():
                run["attacks"][attack.name] = {"folder": attack, "summary": json.loads((attack / "summary.json").read_text()),
                                               "done": json.loads((attack / "sweep_done.json").read_text())}
        metrics = folder / "metrics.jsonl"
        run["metrics"] = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()] if metrics.is_file() else []
        runs.append(run)
    return runs


def robust_by_uid(folder: Path) -> dict[str, float]:
    """1.0 where the example was classified correctly and the attack failed, else 0.0."""
    return {r["uid"]: float(r["outcome"] == "failed") for r in read_examples(folder)}


def study_table(root: str | Path, baseline: str | None = None, training_digest: str | Collection[str] | None = None,
                attack_digest: str | Collection[str] | None = None,
                tuning: dict | None = None, comparisons: list[tuple[str, str]] | None = None) -> dict:
    """The study's table: ``{"rows": [...], "baseline": ..., "tuning": ..., "comparisons": [...]}`` (see the module docstring).

    ``comparisons``: pairs of variants ``(a, b)`` beyond the baseline's, e.g. RIFT against RIFT-unconditional
    (the paper's claim that the conditional term is better); per attack both ran, the paired difference
    a - b in robust accuracy, paired as against the baseline (same seed index, same uids).

    ``tuning``: per tuned method, its tuning runs' values and dev metrics with the winner marked
    (``Sweep.winners``); only the winner's runs enter the table. ``training_digest`` / ``attack_digest``: today's code digest,
    or the set of digests counted as current (today's and those of code verified to compute the same); a run or attack
    recorded with another one is marked stale (None: not checked). Rows come in the order variants first appear.
    """
    training_digests = {training_digest} if isinstance(training_digest, str) else set(training_digest or ())
    attack_digests = {attack_digest} if isinstance(attack_digest, str) else set(attack_digest or ())
    runs = load_runs(root)
    # a tuned method counts only its winning value's runs (the tuning runs of other values chose it on dev)
    winners = {method: next((r["values"] for r in rows if r.get("won")), None) for method, rows in (tuning or {}).items()}
    by_variant: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        if run["method"] in winners and run.get("tuned", {}) != winners[run["method"]]:
            continue
        by_variant[run["variant"]].append(run)
    attacks = sorted({name for run in runs for name in run["attacks"]})
    baseline_runs = {r["seed"]: r for r in by_variant.get(baseline, [])} if baseline else {}
    outcomes: dict[Path, dict[str, float]] = {}  # each per-example log is read once (the baseline's pairs with every variant)
    rows = []
    for variant, members in by_variant.items():
        members.sort(key=lambda r: r["seed"])
        method = members[0]["method"]
        stale_training = training_digest is not None and any(r.get("training_code_digest") not in training_digests for r in members)
        base = {"variant": variant, "method": method, "params": members[0]["params"], "seeds": [r["seed"] for r in members],
                "commits": sorted({str(r.get("commit"))[:12] + ("+dirty" if r.get("dirty") else "") for r in members}),
                "stale": stale_training, "train_wall_time_s": _mean([r.get("train_wall_time_s") for r in members])}
        train_values = {"test_accuracy": [(r["summary"].get("test") or {}).get("accuracy") for r in members],
                        "dev_accuracy": [r["summary"]["best_dev"].get("accuracy") for r in members],
                        "dev_robust_ascc": [r["summary"]["best_dev"].get("dev_robust_ascc") for r in members]}
        for attack in attacks or [None]:
            row = dict(base, attack=attack)
            done = [r for r in members if attack in r["attacks"]] if attack else []
            if attack and not done:
                continue  # a variant this attack never ran on (its method's attacks: leaves it out): no empty row
            row["n_seeds"] = len(done) if attack else len(members)
            row["attack_seeds"] = [r["seed"] for r in done] if attack else None  # the seeds of the attack metrics' values
            for key, values in train_values.items():
                row[key] = _ci([v for v in values])
            for key in ATTACK_METRICS:
                row[key] = _ci([r["attacks"][attack]["summary"][key] for r in done]) if done else None
            row["n_examples"] = done[0]["attacks"][attack]["summary"]["n"] if done else None
            row["attack_wall_time_s"] = _mean([r["attacks"][attack]["done"].get("wall_time_s") for r in done]) if done else None
            if attack and attack_digest is not None and any(r["attacks"][attack]["done"].get("attack_code_digest") not in attack_digests for r in done):
                row["stale"] = True
            row["vs_baseline"] = _paired(done, baseline_runs, attack, outcomes) if attack and baseline and variant != baseline else None
            rows.append(row)
    compared = []
    for a, b in comparisons or []:
        for attack in attacks:
            done = [r for r in by_variant.get(a, []) if attack in r["attacks"]]
            paired = _paired(done, {r["seed"]: r for r in by_variant.get(b, [])}, attack, outcomes) if done else None
            if paired is not None:
                compared.append({"a": a, "b": b, "attack": attack, "difference": paired})
    return {"root": str(root), "baseline": baseline, "attacks": attacks, "rows": rows, "tuning": tuning or {}, "comparisons": compared}


def _paired(done: list[dict], baseline_runs: dict[int, dict], attack: str, outcomes: dict[Path, dict[str, float]]) -> dict | None:
    """Paired robust-accuracy difference (this variant minus the baseline): same seed index, same uids."""

    def robust(folder: Path) -> dict[str, float]:
        if folder not in outcomes:
            outcomes[folder] = robust_by_uid(folder)
        return outcomes[folder]

    a_rows, b_rows, seeds = [], [], []
    uids: set[str] | None = None
    pairs = []
    for run in done:
        other = baseline_runs.get(run["seed"])
        if other is None or attack not in other["attacks"]:
            continue
        mine, theirs = robust(run["attacks"][attack]["folder"]), robust(other["attacks"][attack]["folder"])
        common = set(mine) & set(theirs)
        uids = common if uids is None else uids & common
        pairs.append((run["seed"], mine, theirs))
    if not pairs or not uids:
        return None
    order = sorted(uids)
    for seed, mine, theirs in pairs:
        a_rows.append([mine[u] for u in order])
        b_rows.append([theirs[u] for u in order])
        seeds.append(seed)
    result = paired_bootstrap(np.array(a_rows), np.array(b_rows))
    return {**result.to_dict(), "paired_seeds": seeds}


def _ci(values: list) -> dict | None:
    values = [v for v in values if v is not None]
    return mean_ci(values).to_dict() if values else None


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 1) if values else None

