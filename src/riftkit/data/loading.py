"""One entry point, :func:`load_splits`: config in, train/dev/test examples out.

Resolution order for a registered data set (``sst2``, ``snli``, ...): the local
copy under the data directory when it is there, else the Hugging Face Hub.
A path (folder of split files, one file, or an aclImdb folder) is read as is;
with ``data.task: auto`` its first train record tells single-text from pair data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ..config import DATA_DIR_ENV, ConfigError, DataConfig, resolve_data_dir
from .examples import DatasetSplits, Example, TaskKind, TaskSpec
from .hub import HubUnavailableError, load_hub_split
from .readers import column_positions, detect_kind, is_acl_imdb, read_acl_imdb, read_file
from .registry import REGISTRY, SENTIMENT, HubSource, known_datasets
from .splits import carve, resolve_size, sample

SPLIT_SUFFIXES = (".jsonl.gz", ".jsonl", ".json", ".csv.gz", ".csv", ".tsv.gz", ".tsv")


class DataNotFoundError(RuntimeError):
    """No local copy and no Hub access: the message says exactly what to do."""


def load_splits(config: DataConfig, data_dir: str | Path | None = None) -> DatasetSplits:
    """Load the train, dev and test examples that ``config`` describes.

    ``data_dir`` (the --data-dir flag) beats RIFTKIT_DATA_DIR beats ``config.data_dir``.
    Raises DataNotFoundError (no such data set, split or labels), DataFormatError (a bad
    file, line or field), ConfigError (``data.fields`` mixes names and column positions,
    or gives positions for a Hub data set).
    """
    skipped: Counter = Counter()
    root = resolve_data_dir(config.data_dir, str(data_dir) if data_dir else None)
    source = _resolve_source(config, root, skipped)
    roles = _role_splits(config, source.defaults)
    train_pool, dev, test = _read_roles(source.read, roles)
    train, dev, test, carved = _carve_from_train(config, train_pool, dev, test)
    provenance = _provenance(config, source.origin, roles, carved)
    return DatasetSplits(
        task=source.task,
        train=sample(train, config.max_train, config.seed),
        dev=sample(dev, config.max_dev, config.seed + 1),
        test=sample(test, config.max_test, config.seed + 2),
        provenance=provenance,
        skipped=dict(skipped),
    )


class _Source(NamedTuple):
    """Where the examples come from: the task, the default (train, dev, test) split names, a reader of one split."""

    task: TaskSpec
    defaults: tuple[str | None, str | None, str | None]
    read: Callable[[str], list[Example]]
    origin: str


def _resolve_source(config: DataConfig, root: Path | None, skipped: Counter) -> _Source:
    """The source ``config.dataset`` names: a ``hub:`` reference, a registered data set, or a path."""
    name = config.dataset
    try:
        positions = column_positions(config.fields)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if name.startswith("hub:"):
        return _hub_source(config, positions, skipped)
    if name in REGISTRY:
        return _registered_source(config, root, positions, skipped)
    path = Path(name).expanduser()
    if not path.exists():
        raise DataNotFoundError(
            f"data set {name!r} is neither a known name ({', '.join(known_datasets())}), "
            f"a 'hub:<name>' reference, nor an existing path"
        )
    task, defaults, read = _local_path_reader(path, config, skipped)
    return _Source(task, defaults, read, f"path {path}")


def _hub_source(config: DataConfig, positions: dict[str, int] | None, skipped: Counter) -> _Source:
    """A Hub data set that is not registered, ``hub:<path>[:<name>]``: its task from ``data.labels`` and ``data.task``."""
    name = config.dataset
    _no_positions_for_hub(positions, name)
    path, _, hub_name = name[4:].partition(":")
    task = _custom_task(config, name)
    source = HubSource(path, hub_name or None, fields=dict(config.fields or {}))
    read = lambda split: load_hub_split(source.path, source.name, split, task, source.fields, config.on_error, skipped)  # noqa: E731
    return _Source(task, ("train", "validation", "test"), read, f"Hub {path}")


def _registered_source(config: DataConfig, root: Path | None, positions: dict[str, int] | None, skipped: Counter) -> _Source:
    """A registered data set: its local copy under ``root`` when there (or ``data.source: local``), else the Hub."""
    name = config.dataset
    info = REGISTRY[name]
    if root is not None and not root.is_dir() and config.source != "hub":
        raise DataNotFoundError(
            f"data directory not found: {root} (from --data-dir, else ${DATA_DIR_ENV}, else data.data_dir); point it at the folder "
            f"holding {', '.join(info.local_files.values())}: --data-dir /path/to/data or export {DATA_DIR_ENV}=/path/to/data "
            f"(in this repository's workplace: ../shared/data); unset both to use the Hugging Face Hub"
        )
    task = info.task
    use_local = config.source == "local" or (config.source == "auto" and root is not None and _has_local(info.local_files, root))
    if use_local:
        if root is None:
            raise DataNotFoundError(_how_to_get(name, root))
        files = {split: root / rel for split, rel in info.local_files.items()}
        read = lambda split: _read_registered_file(files, split, name, task, config, skipped)  # noqa: E731
        return _Source(task, info.local_roles, read, f"local {root}")
    _no_positions_for_hub(positions, name)
    hub = info.hub
    fields = dict(hub.fields) | dict(config.fields or {})
    read = lambda split: _read_registered_hub(hub, split, name, root, task, fields, config, skipped)  # noqa: E731
    return _Source(task, info.hub_roles, read, f"Hub {hub.path}")


def _role_splits(config: DataConfig, defaults: tuple[str | None, ...]) -> tuple[str | None, str | None, str | None]:
    """The split names of the train, dev and test roles: ``data.*_split``, or the source's default for ``auto`` (None: carve)."""
    train_split, dev_split, test_split = (
        default if chosen == "auto" else chosen
        for chosen, default in zip((config.train_split, config.dev_split, config.test_split), defaults)
    )
    return train_split, dev_split, test_split


def _read_roles(read: Callable[[str], list[Example]], roles: tuple[str | None, str | None, str | None]):
    """Read the train split, and the dev and test splits that have a name (None for one to carve)."""
    train_split, dev_split, test_split = roles
    train_pool = read(train_split)
    dev = read(dev_split) if dev_split else None
    test = read(test_split) if test_split else None
    return train_pool, dev, test


def _carve_from_train(config: DataConfig, train_pool: list[Example], dev: list[Example] | None, test: list[Example] | None):
    """Carve the dev and test sets not read (``data.dev_size``, ``data.test_size``) from the train pool; also the sizes carved."""
    carve_sizes = [
        resolve_size(config.dev_size, len(train_pool), "data.dev_size") if dev is None else 0,
        resolve_size(config.test_size, len(train_pool), "data.test_size") if test is None else 0,
    ]
    carved_dev, carved_test, train = carve(train_pool, carve_sizes, config.seed)
    dev = carved_dev if dev is None else dev
    test = carved_test if test is None else test
    return train, dev, test, carve_sizes


def _provenance(config: DataConfig, origin: str, roles: tuple[str | None, str | None, str | None], carve_sizes: list[int]) -> dict:
    """Where each role's examples came from (and the registry's note on the data set)."""
    train_split, dev_split, test_split = roles
    provenance = {
        "origin": origin,
        "train": train_split,
        "dev": dev_split or f"{carve_sizes[0]} carved from {train_split} (seed {config.seed})",
        "test": test_split or f"{carve_sizes[1]} carved from {train_split} (seed {config.seed})",
    }
    if config.dataset in REGISTRY and REGISTRY[config.dataset].note:
        provenance["note"] = REGISTRY[config.dataset].note
    return provenance


def _no_positions_for_hub(positions: dict[str, int] | None, name: str) -> None:
    if positions:
        raise ConfigError(f"data.fields: column positions {positions} are for CSV/TSV files without a header; the Hub data set {name!r} has named columns")


def _has_local(files: dict[str, str], root: Path) -> bool:
    return any((root / rel).is_file() for rel in files.values())


def _how_to_get(name: str, root: Path | None) -> str:
    info = REGISTRY[name]
    where = f"under {root}" if root else "(no data directory is set)"
    expected = ", ".join(info.local_files.values())
    return (
        f"data set {name!r}: no local copy {where} and the Hugging Face Hub ({info.hub.path}) is not reachable.\n"
        f"Either point riftkit at a data directory holding {expected}:\n"
        f"  export {DATA_DIR_ENV}=/path/to/data      (or pass --data-dir /path/to/data)\n"
        f"  (in this repository's workplace: {DATA_DIR_ENV}=../shared/data)\n"
        f"or run on a machine with internet access, where {info.hub.path} is downloaded automatically."
    )


def _read_registered_file(files: dict[str, Path], split: str, name: str, task: TaskSpec, config: DataConfig, skipped: Counter) -> list[Example]:
    if split not in files:
        raise DataNotFoundError(f"data set {name!r} has no local split {split!r}; local splits: {sorted(files)}")
    if not files[split].is_file():
        raise DataNotFoundError(f"data set {name!r}: local file for split {split!r} not found: {files[split]}")
    return read_file(files[split], task, config.fields, config.on_error, skipped)


def _read_registered_hub(hub: HubSource, split: str, name: str, root: Path | None, task: TaskSpec, fields: dict, config: DataConfig, skipped: Counter) -> list[Example]:
    try:
        return load_hub_split(hub.path, hub.name, hub.splits.get(split, split), task, fields, config.on_error, skipped)
    except HubUnavailableError as err:
        raise DataNotFoundError(_how_to_get(name, root) + f"\n(Hub error: {err})") from err


def _custom_task(config: DataConfig, name: str, default_labels: tuple[str, ...] | None = None, detect: Callable[[], TaskKind] | None = None) -> TaskSpec:
    """The task of a data set that is not registered: labels from ``data.labels``, kind from ``data.task``.

    With ``data.task: auto``, ``detect()`` tells the kind (a user's files: from their first record);
    without it (Hub data sets) the rule is: pair when ``data.fields`` maps ``premise``, else single.
    """
    labels = tuple(config.labels) if config.labels else default_labels
    if not labels:
        raise DataNotFoundError(f"data set {name!r}: set data.labels to the label names in class-id order, e.g. [negative, positive]")
    kind = config.task
    if kind == "auto":
        if detect is not None:
            kind = detect()
        else:
            kind = "pair" if config.fields and "premise" in config.fields else "single"
    return TaskSpec(Path(name).stem or name, kind, labels)


def _local_path_reader(path: Path, config: DataConfig, skipped: Counter):
    """Reader for a user's own data: an aclImdb folder, a folder of split files, or one file."""
    if is_acl_imdb(path):
        task = _custom_task(config, str(path), SENTIMENT)
        return task, ("train", None, "test"), lambda split: read_acl_imdb(path, split, task, config.on_error, skipped)
    if path.is_file():
        task = _custom_task(config, str(path), detect=lambda: detect_kind(path, config.fields, config.on_error))
        return task, ("all", None, None), lambda split: read_file(path, task, config.fields, config.on_error, skipped)
    found = {}
    for file in sorted(path.iterdir()):
        for suffix in SPLIT_SUFFIXES:
            if file.name.endswith(suffix):
                found.setdefault(file.name[: -len(suffix)], file)
    if not found:
        raise DataNotFoundError(f"{path}: no split files found (expected e.g. train.jsonl.gz, dev.tsv, test.csv)")
    if "train" not in found:
        raise DataNotFoundError(f"{path}: no train split file found; split files present: {sorted(found)}")
    defaults = ("train", "dev" if "dev" in found else None, "test" if "test" in found else None)

    def file_of(split: str) -> Path:
        if split not in found:
            raise DataNotFoundError(f"{path}: no file for split {split!r}; split files present: {sorted(found)}")
        return found[split]

    # The split that trains (data.train_split when set) tells the shape.
    train_split = "train" if config.train_split == "auto" else config.train_split
    task = _custom_task(config, str(path), detect=lambda: detect_kind(file_of(train_split), config.fields, config.on_error))

    def read(split: str) -> list[Example]:
        return read_file(file_of(split), task, config.fields, config.on_error, skipped)

    return task, defaults, read
