"""The evaluation protocol: a seeded sample, the attack, per-example JSONL, a summary.

Layout of an attack folder::

    settings.json     what was attacked and how (a resumed run must match it)
    examples.jsonl    one line per attacked example, appended and flushed as each finishes
    examples.shard-<i>-of-<n>.jsonl   the same, per shard, while sharded processes run (merged by the next plain run)
    sessions.jsonl    one line per finished session (examples done, wall time)
    summary.json      the protocol's numbers over every example of the sample
    lm.json           which language model the constraint used (choice, corpus key), when it used one
    lm-ngram3.safetensors  the task-only n-gram LM, when the attack trained one (the broad one is cached)

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

from ..config import AttackConfig, ConfigError, DataConfig, nest_moved_keys
from ..data.examples import DatasetSplits, Example, TaskSpec
from ..data.roles import DataRecord
from ..data.splits import sample
from ..evaluation.leakage import held_out_report
from ..evaluation.outcomes import OUTCOMES, summarize
from ..files import writing
from ..substitutions.lm import LanguageModel, NGramLM, drop_subphrases, load_language_model
from ..substitutions.sets import load_substitutions
from ..models.backends import BackendError, resolve_backend
from .base import AttackResult
from .registry import USES_LM_BY_DEFAULT, WHITE_BOX, AttackSetup, build_attack

SETTINGS_FILE, RESULTS_FILE, SESSIONS_FILE, SUMMARY_FILE = "settings.json", "examples.jsonl", "sessions.jsonl", "summary.json"
BACKEND_PROBE = 64  # attacked inputs on which a faster forward path must agree exactly with PyTorch
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
        with writing(self.path, "every line written before is kept; run again to resume"):
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
                handle.flush()
                os.fsync(handle.fileno())


# -- the protocol -------------------------------------------------------------------------------------


def default_output_dir(model_path: str | Path, config: AttackConfig, hub: bool = False) -> Path:
    """Beside the model folder; for a model loaded from the Hub (``hub``), ``attacks/<owner>--<name>/`` under the working directory."""
    n = "all" if config.n is None else config.n
    name = f"attack-{config.attack}-{config.split}-n{n}-seed{config.seed}"
    if hub:
        return Path("attacks") / str(model_path).replace("/", "--") / name
    return Path(model_path).resolve().parent / name


def prepare_language_model(config: AttackConfig, train_texts: Callable[[], list[tuple[str, ...]]], output_dir: Path, log: Callable[[str], None],
                           data_dir: str | Path | None = None, attacked_texts: Callable[[], list[tuple[str, ...]]] | None = None) -> LanguageModel | None:
    """The LM of the constraint, per ``config.lm``; the resolved choice is logged and written to ``output_dir/lm.json``.

    ``auto``: Genetic gets ``ngram-broad``, PWWS and ASCC none. ``ngram-broad``: the Kneser-Ney model of
    the train splits of every data set under ``data_dir`` (else $RIFTKIT_DATA_DIR) plus ``attack.lm_corpora``,
    never of a test text (the attacked split included: ``attacked_texts``), trained once per corpus and
    cached (substitutions/corpus.py); with no such corpus, ``auto`` falls back to ``ngram-task``.
    ``ngram-task``: a model of the task's training texts (``train_texts``), saved in the attack folder.
    A path: a saved n-gram model; ``hf:<name>``: a causal LM. Raises ConfigError when ``attack.lm_corpora``
    is given to another choice, or when a resumed run's LM (``lm.json``) is not the one it would use now.
    """
    import hashlib

    from ..config import resolve_data_dir
    from ..substitutions.corpus import broad_ngram_lm, describe, plan_corpus

    choice = config.lm
    if choice == "auto":
        choice = "ngram-broad" if config.attack in USES_LM_BY_DEFAULT else "none"
    if config.lm_corpora and choice != "ngram-broad":
        raise ConfigError(f"attack.lm_corpora trains the broad n-gram LM only, but attack.lm={config.lm!r} resolves to {choice!r} "
                          "for this attack: drop attack.lm_corpora, or set attack.lm: ngram-broad")
    record_path = output_dir / "lm.json"
    previous = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else None

    def changed(what: str, before, now) -> ConfigError:
        return ConfigError(f"{record_path}: this run began with the language model {what} {before!r}, now it would be {now!r} "
                           "(its corpus changed?); use another output folder (--output-dir) to attack with the new one")

    lm: LanguageModel | None = None
    record: dict = {"lm": choice}
    if choice == "ngram-broad":
        try:
            plan = plan_corpus(resolve_data_dir(None, str(data_dir) if data_dir else None), config.lm_corpora)
        except FileNotFoundError as err:
            raise ConfigError(str(err)) from None
        if plan.sources:
            corpus_key = plan.key(config.lm_order)
            if previous is not None and previous.get("corpus_key", corpus_key) != corpus_key:  # before training a model to refuse
                raise changed("corpus key", previous.get("corpus_key"), corpus_key)
            lm, record = broad_ngram_lm(plan, config.lm_order, attacked_texts() if attacked_texts else (), log=log)
        elif config.lm == "auto":
            log("language model: no registered data set in the data directory and no attack.lm_corpora; auto falls back to ngram-task")
            choice = record["lm"] = "ngram-task"
        else:
            raise ConfigError("attack.lm: ngram-broad has no corpus: no registered data set in the data directory "
                              "(--data-dir or RIFTKIT_DATA_DIR) and no attack.lm_corpora")
    if choice == "ngram-task":
        path = output_dir / f"lm-ngram{config.lm_order}.safetensors"
        if path.is_file():
            lm = NGramLM.load(path)
            record.update(path=str(path), origin="the attack folder")
        else:
            texts = drop_subphrases(train_texts())
            start = time.perf_counter()
            lm = NGramLM.train(texts, order=config.lm_order)
            lm.save(path)
            record.update(path=str(path), texts=len(texts), train_s=round(time.perf_counter() - start, 1))
        record.update(order=config.lm_order, vocabulary=lm.size)
    elif choice not in ("none", "ngram-broad"):
        if not choice.startswith("hf:") and not Path(choice).is_file():
            raise ConfigError(f"attack.lm={choice!r} is none of auto, none, ngram-broad, ngram-task, hf:<name>, nor a saved n-gram file")
        lm = load_language_model(choice)
    if "key" not in record and (choice == "ngram-task" or Path(choice).is_file()):
        record["key"] = hashlib.sha256(Path(record.get("path", choice)).read_bytes()).hexdigest()
    if previous is not None and (previous.get("lm"), previous.get("key")) != (record["lm"], record.get("key")):
        raise changed("(choice, key)", (previous.get("lm"), previous.get("key")), (record["lm"], record.get("key")))
    output_dir.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    log(f"language model: {describe(record)}")
    return lm


def check_settings(path: Path, settings: dict) -> None:
    """Write settings.json, or check that a resumed run asks for the same computation."""
    if not path.is_file():
        path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}, line {err.lineno}: malformed JSON ({err.msg})") from None
    previous = nest_moved_keys(previous)  # a folder begun before the searches' knobs moved into sections
    if isinstance(previous.get("data"), dict):  # a data field added since the folder began (label_map) had its default
        previous["data"] = {**recorded_data(DataConfig()), **previous["data"]}
    for key, value in settings.items():
        if key == "model_sha256" and previous.get(key) != value:
            raise ConfigError(
                f"{path}: the model's weights (sha256 {str(value)[:12]}...) differ from those this folder's results were "
                f"computed with ({str(previous.get(key))[:12]}...): the model was retrained or replaced; use another output folder"
            )
        if previous.get(key) != value:
            raise ConfigError(
                f"{path}: this folder holds a run with {key}={previous.get(key)!r}, now asked for {value!r}; "
                "use another output folder (--output-dir) or the same settings to resume"
            )


def run_attack(model, splits: DatasetSplits, config: AttackConfig, model_path: str, output_dir: str | Path | None = None,
               data_dir: str | Path | None = None, progress: bool = True, log: Callable[[str], None] | None = None,
               data_config=None, data_record: DataRecord | None = None, shard: tuple[int, int] | None = None) -> dict:
    """Attack a seeded sample of ``config.split`` and write the attack folder; returns the summary.

    ``shard=(i, n)``: attack only the sample's examples i, i+n, i+2n, ... (0-based), appending to
    ``examples.shard-<i>-of-<n>.jsonl``; several processes or machines can each take a shard of one
    folder. Without ``shard``, the shard logs found are merged into ``examples.jsonl`` first, the
    examples no log has are attacked, and the summary is written. Every search draws its randomness
    from (seed, uid) alone, so the merged log equals a single process's. A shard's summary covers
    its examples only and is returned, not written.

    With ``data_config`` (the DataConfig that built ``splits``), the sample is checked against the
    model's ``data_record`` first: a test sample holding examples that trained or selected the model is
    refused (:class:`riftkit.evaluation.leakage.DataOverlapError`) unless ``config.allow_overlap``.
    """
    log = log or (lambda message: print(message, file=sys.stderr))
    examples, data_role = _choose_examples(model, splits, config, model_path, log, data_config, data_record)
    folder, settings = _prepare_folder(splits.task, config, model_path, output_dir, data_config, getattr(model, "source", None))
    results, done, mine = _open_log(folder, examples, shard)
    todo = [e for e in mine if e.uid not in done]
    part = f" (shard {shard[0]} of {shard[1]}: {len(mine)} examples)" if shard else ""
    log(f"riftkit attack: {config.attack} on {len(examples)} {splits.task.name} {config.split} examples{part}"
        f" ({len(mine) - len(todo)} done before, {len(todo)} to go) -> {folder}")

    start = time.perf_counter()
    victim, backend = _victim(model, config, todo, log)
    if todo:
        attack = _setup_attack(victim, model, splits, config, folder, data_dir, log)
        _attack_remaining(attack, todo, results, done, splits.task, progress, log)
    wall = time.perf_counter() - start
    _record_session(folder, len(todo), wall, backend, shard)

    if shard is not None:  # this shard's numbers only; the folder's summary is written by the merging run
        return {**summarize([done[e.uid] for e in mine]), "shard": list(shard), "wall_time_s": round(wall, 3), "backend": backend}
    return _write_summary(folder, [done[e.uid] for e in examples], config, settings, splits.task, data_role, wall, len(todo), backend)


def _choose_examples(model, splits: DatasetSplits, config: AttackConfig, model_path: str, log: Callable[[str], None],
                     data_config, data_record: DataRecord | None) -> tuple[list[Example], dict | None]:
    """The seeded sample of ``config.split`` (checked: labels, distinct uids, held out) and its data-role report."""
    if tuple(splits.task.label_names) != tuple(model.spec.label_names):
        raise ConfigError(f"the model's labels {model.spec.label_names} differ from the data set's {list(splits.task.label_names)}")
    available = splits.split(config.split)
    examples = sample(available, config.n, config.seed)
    if config.n is not None and config.n > len(available):
        log(f"riftkit attack: asked for {config.n} examples, the {config.split} split has {len(available)}: attacking all {len(available)}")
    _check_unique_uids(examples)
    data_role = None
    if data_config is not None:
        data_role = held_out_report(data_record, data_config, splits, examples, config.split, config.allow_overlap, model=str(model_path),
                                    foreign=getattr(model, "source", None) is not None)
    return examples, data_role


def _prepare_folder(task: TaskSpec, config: AttackConfig, model_path: str, output_dir: str | Path | None, data_config,
                    source: dict | None = None) -> tuple[Path, dict]:
    """Create the attack folder and write its settings.json, or check that a resumed run matches them.

    ``source``: a Hugging Face classifier's record (models/hf_classifier.py): on the Hub, the name and resolved
    revision stand for the weights' digest, and the label alignment is part of the settings.
    """
    hub = "revision" in (source or {})
    folder = Path(output_dir or config.output_dir or default_output_dir(model_path, config, hub))
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"model": str(model_path) if hub else str(Path(model_path).resolve()),
                "model_sha256": None if hub else _weights_digest(model_path)}
    if source is not None:
        settings["model_source"] = {k: v for k, v in source.items() if k != "name"}
    settings.update({"task": task.name, "segments": list(task.segment_names), **config.result_settings()})
    if data_config is not None:
        settings["data"] = recorded_data(data_config)
    check_settings(folder / SETTINGS_FILE, settings)
    return folder, settings


def recorded_data(data_config: DataConfig) -> dict:
    """What settings.json records of the data: every field but where it lives and how bad lines are handled."""
    return {k: v for k, v in dataclasses.asdict(data_config).items() if k not in ("data_dir", "on_error")}


def _open_log(folder: Path, examples: list[Example], shard: tuple[int, int] | None) -> tuple[ResultLog, dict[str, dict], list[Example]]:
    """The log this run appends to, the records already done, and the examples this run (or shard) owns."""
    main_log = ResultLog(folder / RESULTS_FILE)
    if shard is None:
        merge_shards(folder, [e.uid for e in examples])
        results = main_log
        done = results.read()
        mine = examples
    else:
        index, count = shard
        if not (0 <= index < count):
            raise ConfigError(f"shard {index}/{count}: expected 0 <= index < count")
        results = ResultLog(folder / shard_file_name(index, count))
        done = {**_shard_records(folder), **main_log.read()}
        mine = examples[index::count]
    wanted = {e.uid for e in examples}
    strangers = sorted(set(done) - wanted)
    if strangers:
        raise ValueError(f"{results.path}: uid {strangers[0]!r} is not in this run's sample ({len(strangers)} such lines)")
    return results, done, mine


def _victim(model, config: AttackConfig, todo: list[Example], log: Callable[[str], None]) -> tuple[object | None, dict | None]:
    """The forward path to attack through and its record: PyTorch for a white-box attack, else resolved (and probed) on ``todo``."""
    if config.attack in WHITE_BOX:
        return None, {"backend": "torch", "why": "white-box: gradients"}
    if not todo:
        return None, None
    try:
        return resolve_backend(model, config.backend, [e.segments for e in todo[:BACKEND_PROBE]], log)
    except BackendError as err:
        raise ConfigError(str(err)) from None


def _setup_attack(victim, model, splits: DatasetSplits, config: AttackConfig, folder: Path, data_dir: str | Path | None,
                  log: Callable[[str], None]):
    """The attack, built with its substitutions and the language model of its constraint."""
    setup = AttackSetup(
        victim=victim,
        model=model,
        task=splits.task,
        substitutions=load_substitutions(config.substitutions, data_dir),
        config=config,
        language_model=prepare_language_model(config, lambda: [w for e in splits.train for w in e.segments], folder, log, data_dir=data_dir,
                                              attacked_texts=lambda: [w for e in splits.split(config.split) for w in e.segments]),
    )
    return build_attack(setup)


def _attack_remaining(attack, todo: list[Example], results: ResultLog, done: dict[str, dict], task: TaskSpec, progress: bool,
                      log: Callable[[str], None]) -> None:
    """Attack ``todo``, appending each result to ``results`` (and ``done``) as it finishes."""
    bar = _progress(len(todo), progress)

    def write(result: AttackResult) -> None:
        record = result.to_record(task.segment_names)
        results.append(record)
        done[record["uid"]] = record
        bar(record)

    attack.attack(todo, on_result=write)
    bar(None)
    for constraint in getattr(attack, "candidate_filters", []):
        if hasattr(constraint, "removed_share"):
            log(f"{type(constraint).__name__}: removed {constraint.removed} of {constraint.checked} candidate substitutes ({100 * constraint.removed_share:.1f}%)")


def _record_session(folder: Path, examples: int, wall: float, backend: dict | None, shard: tuple[int, int] | None) -> None:
    """Append this session to sessions.jsonl; settings.json keeps the backend of the first session that attacked."""
    with open(folder / SESSIONS_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"examples": examples, "wall_time_s": round(wall, 3), "backend": backend, "shard": list(shard) if shard else None,
                                 "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")
    if backend is not None:  # the forward path of the first session that attacked (exact paths only: never compared)
        stored = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
        if "backend" not in stored:
            stored["backend"] = backend
            (folder / SETTINGS_FILE).write_text(json.dumps(stored, indent=2) + "\n", encoding="utf-8")


def _write_summary(folder: Path, records: list[dict], config: AttackConfig, settings: dict, task: TaskSpec, data_role: dict | None,
                   wall: float, examples_this_session: int, backend: dict | None) -> dict:
    """Summarise every example of the sample into summary.json, and return it."""
    summary = summarize(records)
    summary.update({"attack": config.attack, "model": settings["model"], "model_sha256": settings["model_sha256"],
                    "task": task.name, "split": config.split, "data_role": data_role,
                    "seed": config.seed, "wall_time_s": round(wall, 3), "examples_this_session": examples_this_session, "backend": backend,
                    "wall_time_all_sessions_s": round(_total_wall_time(folder / SESSIONS_FILE), 3),
                    "config": dataclasses.asdict(config)})
    if (folder / "lm.json").is_file():  # the language model the constraint resolved to (attack.lm: auto says little)
        summary["lm"] = json.loads((folder / "lm.json").read_text(encoding="utf-8"))
    with writing(folder / SUMMARY_FILE, f"every example's result is kept in {folder / RESULTS_FILE}; run again to write the summary"):
        (folder / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def shard_file_name(index: int, count: int) -> str:
    return f"examples.shard-{index}-of-{count}.jsonl"


def _shard_records(folder: Path) -> dict[str, dict]:
    records: dict[str, dict] = {}
    for path in sorted(folder.glob("examples.shard-*-of-*.jsonl")):
        records.update(ResultLog(path).read())
    return records


def merge_shards(folder: Path, order: Sequence[str]) -> int:
    """Move the records of every shard log into ``examples.jsonl`` (in sample order) and remove the shard logs.

    Safe to interrupt: records are appended (and fsynced) before a shard log is removed, and a uid
    already in the main log is not appended again. Returns how many records moved.
    """
    shard_logs = sorted(folder.glob("examples.shard-*-of-*.jsonl"))
    if not shard_logs:
        return 0
    main = ResultLog(folder / RESULTS_FILE)
    have = main.read()
    pending = {uid: r for uid, r in _shard_records(folder).items() if uid not in have}
    for uid in order:
        if uid in pending:
            main.append(pending[uid])
    for path in shard_logs:
        path.unlink()
    return len(pending)


def _weights_digest(model_path: str | Path) -> str | None:
    """The model folder's weight digest (None when the victim is not a saved folder, e.g. in tests)."""
    from ..models.io import weights_digest

    try:
        return weights_digest(model_path)
    except FileNotFoundError:
        return None


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
