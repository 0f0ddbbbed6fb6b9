"""The evaluation protocol: a seeded sample, the attack, per-example JSONL, a summary.

Layout of an attack folder::

    settings.json     what was attacked and how (a resumed run must match it)
    examples.jsonl    one line per attacked example, appended and flushed as each finishes
    sessions.jsonl    one line per finished session (examples done, wall time)
    summary.json      the protocol's numbers over every example of the sample
    lm-ngram3.safetensors  the n-gram LM, when the attack trained one

Run it again with the same settings and it attacks only the examples that
have no line yet, so an interrupted run loses nothing but the examples in
flight. Every search draws its randomness from (seed, uid) alone, so a
resumed run gives the same per-example results as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..config import AttackConfig, ConfigError
from ..data.examples import DatasetSplits, Example, TaskSpec
from ..data.splits import sample
from ..substitutions.lm import LanguageModel, NGramLM, drop_subphrases, load_language_model
from ..substitutions.sets import load_substitutions
from .base import FAILED, OUTCOMES, SKIPPED, SUCCEEDED, AttackResult, outcome_rates
from .registry import USES_LM_BY_DEFAULT, AttackSetup, build_attack

SETTINGS_FILE, RESULTS_FILE, SESSIONS_FILE, SUMMARY_FILE = "settings.json", "examples.jsonl", "sessions.jsonl", "summary.json"
# Fields that change what is computed; the rest (speed knobs, where to write) may differ on resume.
RESULT_FIELDS = ("attack", "n", "seed", "split", "substitutions", "lm", "lm_order", "lm_max_drop", "lm_radius", "stopwords",
                 "max_change_rate", "pwws_adaptive", "population", "generations", "temperature", "ascc_steps")
RECORD_FIELDS = {"uid": str, "label": int, "outcome": str, "original": str, "adversarial": str, "substitutions": list,
                 "queries": int, "changed_share": (int, float)}


# -- the append-only result log -----------------------------------------------------------------


class ResultLog:
    """``examples.jsonl``: read what is there (repairing a torn last line), append one line at a time."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> dict[str, dict]:
        if not self.path.is_file():
            return {}
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            # The process died while writing this line: drop it, the example is attacked again.
            cut = raw.rfind(b"\n") + 1
            with open(self.path, "r+b") as handle:
                handle.truncate(cut)
            raw = raw[:cut]
        records: dict[str, dict] = {}
        for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{self.path}, line {number}: malformed JSON ({err.msg})") from None
            for name, kind in RECORD_FIELDS.items():
                if not isinstance(record.get(name), kind):
                    raise ValueError(f"{self.path}, line {number}, field {name!r}: missing or of the wrong type")
            if record["outcome"] not in OUTCOMES:
                raise ValueError(f"{self.path}, line {number}, field 'outcome': {record['outcome']!r} is not one of {list(OUTCOMES)}")
            if record["uid"] in records:
                raise ValueError(f"{self.path}, line {number}: uid {record['uid']!r} appears twice")
            records[record["uid"]] = record
        return records

    def append(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


# -- numbers ----------------------------------------------------------------------------------------


def summarize(records: Sequence[dict]) -> dict:
    """The protocol's numbers (robust = classified correctly and the attack failed)."""
    n = len(records)
    rates = outcome_rates([r["outcome"] for r in records])
    attacked = [r for r in records if r["outcome"] != SKIPPED]
    succeeded = [r for r in records if r["outcome"] == SUCCEEDED]
    return {
        "n": n,
        "succeeded": len(succeeded),
        "failed": sum(r["outcome"] == FAILED for r in records),
        "skipped": n - len(attacked),
        "vanilla_accuracy": rates["vanilla_accuracy"],
        "robust_accuracy": rates["robust_accuracy"],
        "success_rate": rates["success_rate"],
        "mean_changed_share": sum(r["changed_share"] for r in succeeded) / len(succeeded) if succeeded else 0.0,
        "mean_words": sum(len(r["original"].split()) for r in records) / n if n else 0.0,
        "mean_queries": sum(r["queries"] for r in attacked) / len(attacked) if attacked else 0.0,
    }


def format_table(summary: dict, title: str = "riftkit attack") -> str:
    """The summary in TextAttack's terms."""
    rows = [
        ("Number of successful attacks:", summary["succeeded"]),
        ("Number of failed attacks:", summary["failed"]),
        ("Number of skipped attacks:", summary["skipped"]),
        ("Original accuracy:", f"{100 * summary['vanilla_accuracy']:.2f}%"),
        ("Accuracy under attack:", f"{100 * summary['robust_accuracy']:.2f}%"),
        ("Attack success rate:", f"{100 * summary['success_rate']:.2f}%"),
        ("Average perturbed word %:", f"{100 * summary['mean_changed_share']:.2f}%"),
        ("Average num. words per input:", f"{summary['mean_words']:.2f}"),
        ("Avg num queries:", f"{summary['mean_queries']:.2f}"),
    ]
    if "wall_time_s" in summary:
        rows.append(("Wall time (this session):", f"{summary['wall_time_s']:.1f} s"))
    width = max(len(k) for k, _ in rows)
    lines = [title, "+" + "-" * (width + 2) + "+" + "-" * 12 + "+"]
    lines += [f"| {k:<{width}} | {str(v):>10} |" for k, v in rows]
    lines.append(lines[1])
    return "\n".join(lines)


# -- the protocol -------------------------------------------------------------------------------------


def default_output_dir(model_path: str | Path, config: AttackConfig) -> Path:
    n = "all" if config.n is None else config.n
    return Path(model_path).resolve().parent / f"attack-{config.attack}-{config.split}-n{n}-seed{config.seed}"


def prepare_language_model(config: AttackConfig, train_texts: Callable[[], list[tuple[str, ...]]], output_dir: Path, log: Callable[[str], None]) -> LanguageModel | None:
    """The LM of the constraint, per ``config.lm``; an ``auto`` n-gram model is trained once and saved in the attack folder."""
    choice = config.lm
    if choice == "auto":
        choice = "ngram" if config.attack in USES_LM_BY_DEFAULT else "none"
    if choice == "none":
        return None
    if choice == "ngram":
        path = output_dir / f"lm-ngram{config.lm_order}.safetensors"
        if path.is_file():
            return NGramLM.load(path)
        texts = drop_subphrases(train_texts())
        start = time.perf_counter()
        lm = NGramLM.train(texts, order=config.lm_order)
        lm.save(path)
        log(f"trained an order-{config.lm_order} Kneser-Ney LM on {len(texts)} training texts in {time.perf_counter() - start:.1f} s -> {path}")
        return lm
    return load_language_model(choice)


def check_settings(path: Path, settings: dict) -> None:
    """Write settings.json, or check that a resumed run asks for the same computation."""
    if not path.is_file():
        path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}, line {err.lineno}: malformed JSON ({err.msg})") from None
    for key, value in settings.items():
        if previous.get(key) != value:
            raise ConfigError(
                f"{path}: this folder holds a run with {key}={previous.get(key)!r}, now asked for {value!r}; "
                "use another output folder (--output-dir) or the same settings to resume"
            )


def run_attack(model, splits: DatasetSplits, config: AttackConfig, model_path: str, output_dir: str | Path | None = None,
               data_dir: str | Path | None = None, progress: bool = True, log: Callable[[str], None] | None = None) -> dict:
    """Attack a seeded sample of ``config.split`` and write the attack folder; returns the summary."""
    log = log or (lambda message: print(message, file=sys.stderr))
    if tuple(splits.task.label_names) != tuple(model.spec.label_names):
        raise ConfigError(f"the model's labels {model.spec.label_names} differ from the data set's {list(splits.task.label_names)}")
    folder = Path(output_dir or config.output_dir or default_output_dir(model_path, config))
    folder.mkdir(parents=True, exist_ok=True)
    examples = sample(splits.split(config.split), config.n, config.seed)
    _check_unique_uids(examples)
    settings = {"model": str(Path(model_path).resolve()), "task": splits.task.name, "segments": list(splits.task.segment_names),
                **{k: getattr(config, k) for k in RESULT_FIELDS}}
    check_settings(folder / SETTINGS_FILE, settings)

    results = ResultLog(folder / RESULTS_FILE)
    done = results.read()
    wanted = {e.uid for e in examples}
    strangers = sorted(set(done) - wanted)
    if strangers:
        raise ValueError(f"{results.path}: uid {strangers[0]!r} is not in this run's sample ({len(strangers)} such lines)")
    todo = [e for e in examples if e.uid not in done]
    log(f"riftkit attack: {config.attack} on {len(examples)} {splits.task.name} {config.split} examples"
        f" ({len(done)} done before, {len(todo)} to go) -> {folder}")

    start = time.perf_counter()
    if todo:
        setup = AttackSetup(
            model=model,
            task=splits.task,
            substitutions=load_substitutions(config.substitutions, data_dir),
            config=config,
            language_model=prepare_language_model(config, lambda: [w for e in splits.train for w in e.segments], folder, log),
        )
        attack = build_attack(setup)
        bar = _progress(len(todo), progress)

        def write(result: AttackResult) -> None:
            record = result.to_record(splits.task.segment_names)
            results.append(record)
            done[record["uid"]] = record
            bar(record)

        attack.attack(todo, on_result=write)
        bar(None)
        for constraint in getattr(attack, "candidate_filters", []):
            if hasattr(constraint, "removed_share"):
                log(f"{type(constraint).__name__}: removed {constraint.removed} of {constraint.checked} candidate substitutes ({100 * constraint.removed_share:.1f}%)")
    wall = time.perf_counter() - start
    with open(folder / SESSIONS_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"examples": len(todo), "wall_time_s": round(wall, 3), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")

    summary = summarize([done[e.uid] for e in examples])
    summary.update({"attack": config.attack, "model": settings["model"], "task": splits.task.name, "split": config.split,
                    "seed": config.seed, "wall_time_s": round(wall, 3), "examples_this_session": len(todo),
                    "wall_time_all_sessions_s": round(_total_wall_time(folder / SESSIONS_FILE), 3),
                    "config": dataclasses.asdict(config)})
    (folder / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _check_unique_uids(examples: Sequence[Example]) -> None:
    seen: set[str] = set()
    for e in examples:
        if not e.uid or e.uid in seen:
            raise ValueError(f"every example needs a distinct uid to be resumable; got {e.uid!r} twice or empty")
        seen.add(e.uid)


def _total_wall_time(path: Path) -> float:
    total = 0.0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            total += float(json.loads(line).get("wall_time_s", 0.0))
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
            continue
    return total


def _progress(total: int, enabled: bool):
    """A tqdm bar showing outcomes so far; a no-op when disabled."""
    if not enabled:
        return lambda record: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc="attack", unit="ex", file=sys.stderr, dynamic_ncols=True)
    counts = {o: 0 for o in OUTCOMES}

    def update(record: dict | None) -> None:
        if record is None:
            bar.close()
            return
        counts[record["outcome"]] += 1
        bar.set_postfix(counts, refresh=False)
        bar.update(1)

    return update
