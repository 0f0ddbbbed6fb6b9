"""riftkit from Python: train, load, evaluate, attack, predict and export in a few lines.

    import riftkit

    config = riftkit.load_config("configs/cpu/sst2_rift.yaml", ["train.epochs=1", "data.max_train=200"])
    result = riftkit.train(config)                                  # the run folder, best dev, test accuracy
    model = riftkit.load(result.output_dir / "best")                # or a Hugging Face classifier folder / Hub name
    riftkit.evaluate(model, split="test")                           # {"accuracy": ..., "data_role": ...}
    summary = riftkit.attack(model, "pwws", n=50)                   # robust accuracy, attack success rate, ...
    riftkit.predict(model, ["a gripping, beautifully acted film"])  # labels and probabilities
    riftkit.export(result.output_dir / "best", "robust-minilm")      # a folder transformers.pipeline loads

Every function applies the command line's checks: the same configuration validation, the same leak guard
(test examples that trained or selected the model are refused unless ``allow_overlap``), the same attack
folders (resumable, settings checked). ``data_dir``: the folder of local data sets (default
``$RIFTKIT_DATA_DIR``, then the config's, then the Hub).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .config import AttackConfig, ConfigError, DataConfig, ExperimentConfig, from_dict, load_config
from .data.examples import DatasetSplits

__all__ = ["attack", "evaluate", "export", "load", "load_config", "predict", "train"]
IN_MEMORY = "<a model not loaded from a folder>"  # the origin of a model built in Python: no data record, no folder


def train(config: ExperimentConfig | str | Path, overrides: Sequence[str] = (), data_dir: str | Path | None = None, resume: bool = False):
    """Fine-tune as ``riftkit train`` does; returns the TrainResult (``output_dir``, ``best_dev``, ``test``, ``wall_time_s``).

    ``config``: an ExperimentConfig (:func:`load_config`) or a YAML path; ``overrides``: ``key=value`` strings.
    Raises ConfigError (bad configuration, or a changed one on resume), DataNotFoundError, EncoderNotFoundError.
    """
    from .data import load_splits
    from .training import train as run_training

    if not isinstance(config, ExperimentConfig):
        config = load_config(config, list(overrides))
    elif overrides:
        config = load_config(None, list(overrides), base=config)
    splits = load_splits(config.data, data_dir)
    return run_training(config, splits, data_dir=data_dir, resume=resume)


def load(model: str | Path, dataset: str | None = None, label_map: Mapping[str, str] | None = None, data_dir: str | Path | None = None,
         device: str = "cpu"):
    """A classifier, in eval mode: a riftkit model folder, an exported folder, a Hugging Face classifier folder or a Hub name.

    A Hugging Face classifier's labels are aligned with ``dataset``'s (by name, or ``label_map``: model label ->
    data label); without ``dataset`` it keeps its own. The returned model remembers where it came from
    (``model.origin``), so that :func:`evaluate` and :func:`attack` find its data record.
    """
    from .models.io import load_model, model_kind

    task = None
    if dataset is not None and model_kind(model) == "transformers":
        task = _splits(_data_config({"dataset": dataset}), data_dir).task
    loaded = load_model(model, task, dict(label_map) if label_map else None, device=device)
    loaded.origin = str(model)
    return loaded


def evaluate(model, dataset: str | None = None, split: str = "test", n: int | None = None, seed: int = 0, data: Mapping[str, Any] | None = None,
             data_dir: str | Path | None = None, allow_overlap: bool = False, batch_size: int = 128, source: str = "data") -> dict:
    """Accuracy, loss and margins on ``split`` (a seeded sample of ``n``), as ``riftkit evaluate``; with ``data_role``.

    ``model``: a loaded model (:func:`load`) or anything :func:`load` takes. ``dataset``/``data``: the data (default:
    the data that trained a riftkit model, from its record). Raises DataOverlapError on a test split that trained or
    selected the model (unless ``allow_overlap``), ConfigError when labels differ. ``source``: where the data
    settings came from, named in their errors (the command line passes its config file).
    """
    from .data import sample
    from .evaluation import evaluate_accuracy
    from .evaluation.leakage import held_out_report

    model, data_config, splits, record, origin = model_and_data(model, dataset, dict(data or {}), data_dir, source)
    examples = splits.split(split)
    if n:
        examples = sample(examples, n, seed)
    role = held_out_report(record, data_config, splits, examples, split, allow_overlap, model=origin,
                           foreign=getattr(model, "source", None) is not None)
    return {"model": origin, "dataset": data_config.dataset, "split": split, **evaluate_accuracy(model, examples, batch_size), "data_role": role}


def attack(model, attack: str = "pwws", dataset: str | None = None, split: str = "test", n: int | None = 100, seed: int = 0,
           output_dir: str | Path | None = None, data: Mapping[str, Any] | None = None, data_dir: str | Path | None = None,
           progress: bool = True, **settings) -> dict:
    """Attack a seeded sample as ``riftkit attack`` does; returns the summary (robust accuracy, attack success rate, ...).

    ``attack``: ``pwws``, ``genetic`` or ``ascc``; ``settings``: any other field of the attack config
    (``query_budget=2000``, ``lm="none"``, ``genetic={"population": 60}``, ``allow_overlap=True``, ...). The attack
    folder (default: beside the model) keeps every example's result, and a rerun resumes it.
    """
    from .attacks.runner import run_attack

    model, data_config, splits, record, origin = model_and_data(model, dataset, dict(data or {}), data_dir)
    if origin == IN_MEMORY and output_dir is None and "output_dir" not in settings:
        raise ConfigError("riftkit.attack: this model was not loaded from a folder, so its attack folder cannot go beside it: "
                          "give output_dir")
    values = {**settings, "attack": attack, "split": split, "n": n, "seed": seed}
    if output_dir is not None:
        values["output_dir"] = str(output_dir)
    config = from_dict(AttackConfig, values, "attack")
    return run_attack(model, splits, config, origin, data_dir=data_dir or data_config.data_dir, progress=progress,
                      data_config=data_config, data_record=record)


def predict(model, texts: Sequence[str] | Sequence[tuple[str, str]], batch_size: int = 128) -> list[dict]:
    """Labels and class probabilities for raw texts (pairs as ``(premise, hypothesis)``), as ``riftkit predict``.

    Returns one ``{"label": name, "probs": {name: p}}`` per input, in order.
    """
    from .data import words

    model = model if not isinstance(model, (str, Path)) else load(model)
    pair = model.spec.task_kind == "pair"
    segments = []
    for index, text in enumerate(texts):
        parts = tuple(text) if pair else (text,)
        if len(parts) != (2 if pair else 1) or not all(isinstance(p, str) for p in parts):
            raise ConfigError(f"input {index}: a {'pair' if pair else 'single-text'} model takes "
                              f"{'(premise, hypothesis) pairs' if pair else 'strings'}, got {text!r}")
        segments.append(tuple(tuple(words(p)) for p in parts))
    return predictions(model, segments, batch_size)


def predictions(model, segments: Sequence, batch_size: int = 128) -> list[dict]:
    """``{"label": name, "probs": {name: p}}`` for each pre-tokenised input (shared with ``riftkit predict``)."""
    probs = model.predict_proba(segments, batch_size=batch_size)
    names = model.spec.label_names
    return [{"label": names[int(row.argmax())], "probs": dict(zip(names, row.tolist()))} for row in probs]


def export(model: str | Path, out: str | Path, push_to_hub: str | None = None, private: bool = False) -> Path:
    """Write a riftkit model folder as a folder ``transformers.pipeline`` loads, with its model card (``riftkit export``);
    with ``push_to_hub``, upload it too. Returns the folder."""
    from .models.export import export_model, push_to_hub as push

    folder = export_model(model, out, repo=push_to_hub)
    if push_to_hub:
        push(folder, push_to_hub, private=private)
    return folder


# -- the model and its data, shared with the command line ------------------------------------------------


def _data_config(values: dict, source: str = "data") -> DataConfig:
    try:
        return from_dict(DataConfig, values, "data")
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def _splits(config: DataConfig, data_dir) -> DatasetSplits:
    from .data import load_splits

    return load_splits(config, data_dir)


def model_and_data(model, dataset: str | None, data_values: dict, data_dir, source: str = "data"):
    """The model and the data it is evaluated on: (model, DataConfig, splits, data record or None, model origin).

    ``model``: a loaded model or anything :func:`load` takes. A riftkit model (saved or exported) brings its data
    record: without ``dataset`` and without ``data_values["dataset"]`` its own data (source, roles, carving) is used,
    with ``data_values`` on top. A Hugging Face classifier brings none: its data must be named, and its labels are
    aligned with the data's (``data_values["label_map"]``).
    """
    from .data.roles import DataRecord
    from .models.hf_classifier import HFClassifier
    from .models.io import load_model, model_kind

    origin = str(model) if isinstance(model, (str, Path)) else str(getattr(model, "origin", IN_MEMORY))
    values = dict(data_values)
    if dataset:
        values["dataset"] = dataset
    foreign = isinstance(model, HFClassifier) or (isinstance(model, (str, Path)) and model_kind(model) == "transformers")
    if foreign:
        if not values.get("dataset"):
            raise ConfigError(f"{origin} is a Hugging Face classifier, without riftkit's record of the data it was trained on: "
                              "name the data to evaluate it on (--dataset sst2, or data.dataset=...)")
        data_config = _data_config(values, source)
        splits = _splits(data_config, data_dir)
        if isinstance(model, HFClassifier):
            model = model.aligned(splits.task, data_config.label_map)
        else:
            model = load_model(model, splits.task, data_config.label_map)
        return model, data_config, splits, None, origin
    if isinstance(model, (str, Path)):
        model = load_model(model)
    record = DataRecord.load(origin) if Path(origin).is_dir() else None
    if "dataset" not in values and record is not None:
        try:
            data_config = record.data_config(values)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
    else:
        values["dataset"] = values.get("dataset") or model.spec.task
        data_config = _data_config(values, source)
    splits = _splits(data_config, data_dir)
    if tuple(splits.task.label_names) != tuple(model.spec.label_names):
        raise ConfigError(f"the model's labels {model.spec.label_names} differ from the data set's {list(splits.task.label_names)}")
    return model, data_config, splits, record, origin
