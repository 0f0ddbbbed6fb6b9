"""Running a sweep: resumable runs, tuning on dev, attacks of every selected model, small files to commit.

Layout (``output_dir`` of the sweep; ``results_dir`` mirrors it without weights)::

    runs/<run_id>/          a training run (config.yaml, metrics.jsonl, summary.json, best/ ...)
        run.json            the run's plan, resolved config, riftkit commit and training-code digest
        attacks/<attack>-<split>-n<N>-seed<S>/   the attack runner's folder (resumable), plus
            sweep_done.json the attack's commit and attack-code digest, once it finished
    table.json, table.csv, table.md   written by ``collect``

A run is finished when its ``summary.json`` exists (training) and every attack has
``sweep_done.json``, in its working folder or in the committed copy under ``results_dir``
(so a fresh clone continues a study where the last machine left it; a finished run
whose weights are gone is retrained only if a new attack needs them). Training that was
killed resumes from its last checkpoint (bit-identical; before its first checkpoint it
starts over); an attack that was killed resumes from its per-example log. So ``riftkit sweep`` can be killed at any moment and
run again. Tuning runs (first seed, one per value) only train; once all of a
method's tuning runs are finished, the value with the best dev selection metric
wins and the method's final runs use it.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..config import ConfigError, to_dict
from .provenance import ATTACK_CODE, TRAINING_CODE, code_digest, git_commit
from .spec import RunPlan, SweepSpec, attack_folder_name

RUN_FILE, DONE_FILE = "run.json", "sweep_done.json"
SMALL_RUN_FILES = ("run.json", "config.yaml", "summary.json", "metrics.jsonl", "data.json", "train_state.json", "best/riftkit.json")
SMALL_ATTACK_FILES = ("settings.json", "summary.json", "sessions.jsonl", "lm.json", DONE_FILE)


class Sweep:
    """The runs of a :class:`SweepSpec`, their state on disk, and how to advance them."""

    def __init__(self, spec: SweepSpec, data_dir: str | Path | None = None, log: Callable[[str], None] | None = None, progress: bool = False):
        self.spec, self.data_dir, self.progress = spec, data_dir, progress
        self.log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        self._splits: dict[str, object] = {}

    # -- state --------------------------------------------------------------------------------

    def run_dir(self, run: RunPlan) -> Path:
        return self.spec.output_dir / "runs" / run.run_id

    def copy_dir(self, run: RunPlan) -> Path | None:
        return self.spec.results_dir / "runs" / run.run_id if self.spec.results_dir else None

    def _places(self, run: RunPlan) -> list[Path]:
        """Where a run's finished state may be: its working folder, and the committed copy (a fresh clone has only that)."""
        return [p for p in (self.run_dir(run), self.copy_dir(run)) if p is not None]

    def trained(self, run: RunPlan) -> bool:
        return any((place / "summary.json").is_file() for place in self._places(run))

    def attacked(self, run: RunPlan) -> bool:
        return any(all((place / "attacks" / attack_folder_name(c) / DONE_FILE).is_file() for c in self.spec.attack_configs(run.method))
                   for place in self._places(run))

    def winners(self) -> tuple[dict[str, dict], dict[str, list[dict]]]:
        """Per tuned method: the winning values (once all its tuning runs trained), and every value's dev metric."""
        winners, report = {}, {}
        for method in (m for m in self.spec.methods.values() if m.tune):
            rows = []
            for run in (r for r in self.spec.tuning_runs() if r.method == method.name):
                summary = self._summary(run)
                best = (summary or {}).get("best_dev", {})
                rows.append({"run_id": run.run_id, "values": {k: v for k, v in run.params if k in method.tune},
                             "metric": best.get("selected_by"), "value": best.get(best.get("selected_by", ""))})
            report[method.name] = rows
            if all(r["value"] is not None for r in rows):
                best_row = max(rows, key=lambda r: r["value"])  # ties: the first value listed wins
                winners[method.name] = best_row["values"]
                best_row["won"] = True
        return winners, report

    def plan(self) -> tuple[list[RunPlan], list[RunPlan], list[str]]:
        """(tuning runs, final runs known so far, tuned methods still waiting for their tuning)."""
        winners, _ = self.winners()
        waiting = [m.name for m in self.spec.methods.values() if m.tune and m.name not in winners]
        return self.spec.tuning_runs(), self.spec.final_runs(winners), waiting

    def unfinished(self) -> tuple[list[tuple[RunPlan, bool]], list[str]]:
        """Runs still to do as (run, final?) in order (tuning first), and the methods waiting for tuning."""
        tuning, final, waiting = self.plan()
        final_ids = {r.run_id for r in final}
        todo, seen = [], set()
        for run in tuning + final:
            if run.run_id in seen:
                continue
            seen.add(run.run_id)
            is_final = run.run_id in final_ids
            if not self.trained(run) or (is_final and not self.attacked(run)):
                todo.append((run, is_final))
        return todo, waiting

    def find(self, run_id: str) -> tuple[RunPlan, bool]:
        tuning, final, waiting = self.plan()
        for run in final:
            if run.run_id == run_id:
                return run, True
        for run in tuning:
            if run.run_id == run_id:
                return run, False
        hint = f"; runs of {waiting} are known once their tuning runs finish" if waiting else ""
        raise ConfigError(f"{self.spec.path}: no run {run_id!r} in this sweep (riftkit sweep {self.spec.path} --list shows them){hint}")

    # -- doing --------------------------------------------------------------------------------

    def run(self, run: RunPlan, final: bool) -> None:
        """Train the run if it has not finished training, then (final runs) attack its selected model."""
        from ..data import load_splits
        from ..training import train

        config = self.spec.experiment(run)
        out = self.run_dir(run)
        splits = self._load(config.data, load_splits)
        needs_model = final and not self.attacked(run)
        if not (out / "summary.json").is_file() and (needs_model or not self.trained(run)):
            # Not trained here (or trained on another machine, whose weights are not committed, and an attack is
            # still to do): train. Training is deterministic on one machine, so a retrained model is the same model.
            resume = (out / "checkpoints").is_dir()  # a killed training run: continue from its last checkpoint
            if out.exists() and not resume:  # killed before its first checkpoint: its partial files would mix with the new ones
                shutil.rmtree(out)
            self.log(f"sweep: {run.run_id}: {'resuming' if resume else 'training'} ({config.train.method}, seed {run.seed})")
            config.train.progress = self.progress
            result = train(config, splits, data_dir=self.data_dir, resume=resume)
            # the training's own clock, which a resumed run continues from its checkpoint: all sessions, not this one
            self._write_run_record(run, config, final, round(result.wall_time_s, 1))
            self.export(run)  # now, not after the attacks: a kill during them must not keep the training from results_dir
        elif (out / "summary.json").is_file() and not (out / RUN_FILE).is_file():
            self._write_run_record(run, config, final, None)
        if needs_model:
            self._attack(run, config, splits)
        if (out / "summary.json").is_file():
            self.export(run)

    def run_all(self) -> None:
        """Advance every unfinished run; tuning runs first, so that their winners are known for the rest."""
        self.export_trained()
        while True:
            todo, waiting = self.unfinished()
            if not todo:
                break
            run, final = todo[0]
            self.run(run, final)
        if waiting:  # cannot happen after the loop above: every tuning run has trained
            self.log(f"sweep: still waiting for the tuning of {waiting}")

    def _attack(self, run: RunPlan, config, splits) -> None:
        from ..attacks.runner import run_attack
        from ..data.roles import DataRecord
        from ..models import load_classifier

        model_path = self.run_dir(run) / "best"
        model = None
        for attack in self.spec.attack_configs(run.method):
            folder = self.run_dir(run) / "attacks" / attack_folder_name(attack)
            if (folder / DONE_FILE).is_file():
                continue
            model = model or load_classifier(model_path)
            self.log(f"sweep: {run.run_id}: attack {attack_folder_name(attack)}")
            start = time.time()
            summary = run_attack(model, splits, attack, str(model_path), output_dir=folder, data_dir=self.data_dir, progress=self.progress,
                                 log=self.log, data_config=config.data, data_record=DataRecord.load(model_path))
            done = {**git_commit(), "attack_code_digest": code_digest(ATTACK_CODE), "wall_time_s": round(time.time() - start, 1),
                    "robust_accuracy": summary["robust_accuracy"], "n": summary["n"]}
            (folder / DONE_FILE).write_text(json.dumps(done, indent=2) + "\n")

    def _write_run_record(self, run: RunPlan, config, final: bool, wall: float | None) -> None:
        record = {"run_id": run.run_id, "sweep": self.spec.name, "method": run.method, "variant": run.variant, "params": dict(run.params),
                  "tuned": dict(run.tuned),
                  "seed": run.seed, "overrides": list(run.overrides), "config": to_dict(config), **git_commit(),
                  "training_code_digest": code_digest(TRAINING_CODE), "train_wall_time_s": wall,
                  "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (self.run_dir(run) / RUN_FILE).write_text(json.dumps(record, indent=2) + "\n")

    def _load(self, data_config, load_splits):
        key = json.dumps(to_dict(data_config), sort_keys=True)
        if key not in self._splits:
            self._splits[key] = load_splits(data_config, self.data_dir)
        return self._splits[key]

    def _summary(self, run: RunPlan) -> dict | None:
        for place in self._places(run):
            if (place / "summary.json").is_file():
                return json.loads((place / "summary.json").read_text())
        return None

    # -- the small files to commit ----------------------------------------------------------------

    def export_trained(self) -> None:
        """Copy every run trained here whose copy in results_dir is missing (a sweep killed between training and
        the end of its attacks, by an older riftkit that copied only then)."""
        if self.spec.results_dir is None:
            return
        tuning, final, _ = self.plan()
        for run in {r.run_id: r for r in tuning + final}.values():
            if (self.run_dir(run) / "summary.json").is_file() and not (self.copy_dir(run) / "summary.json").is_file():
                if not (self.run_dir(run) / RUN_FILE).is_file():
                    self._write_run_record(run, self.spec.experiment(run), run in final, None)
                self.export(run)

    def export(self, run: RunPlan) -> Path | None:
        """Copy the run's small files to ``results_dir/runs/<run_id>`` (per-example attack logs gzipped; never weights)."""
        if self.spec.results_dir is None:
            return None
        source, target = self.run_dir(run), self.spec.results_dir / "runs" / run.run_id
        target.mkdir(parents=True, exist_ok=True)
        for name in SMALL_RUN_FILES:
            if (source / name).is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / name, target / name)
        for folder in sorted((source / "attacks").glob("*")) if (source / "attacks").is_dir() else []:
            if not (folder / DONE_FILE).is_file():
                continue  # an unfinished attack is not a result yet
            dest = target / "attacks" / folder.name
            dest.mkdir(parents=True, exist_ok=True)
            for name in SMALL_ATTACK_FILES:
                if (folder / name).is_file():
                    shutil.copy2(folder / name, dest / name)
            with open(folder / "examples.jsonl", "rb") as raw, gzip.GzipFile(dest / "examples.jsonl.gz", "wb", mtime=0) as packed:
                shutil.copyfileobj(raw, packed)
        return target
