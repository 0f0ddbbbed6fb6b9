"""Which examples played which role (train, dev, test) for a model: its data record.

A trained model folder keeps the record beside its weights, so that a copied
``best/`` still knows the data that made it:

    data.json          the data config that built the splits (paths absolute), where they came from, sizes
    data_uids.json.gz  per role: the examples' keys and text hashes

An example's key is ``<source>|<uid>``: uids such as ``train.jsonl.gz:5``
repeat across data sets, so the source (a registered name with where it was
read from, a Hub reference, or an absolute path) is part of the identity.
Text hashes let an evaluation count word-for-word duplicates between its
examples and the model's training data (IMDB has some across its official
splits), which are reported, not refused.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import DataConfig, from_dict, resolve_data_dir
from .examples import DatasetSplits, Example
from .registry import REGISTRY

RECORD_FILE, UIDS_FILE = "data.json", "data_uids.json.gz"
ROLES = ("train", "dev", "test")


def source_id(config: DataConfig, splits: DatasetSplits) -> str:
    """The identity of the data source: ``sst2@local``, ``sst2@hub``, ``hub:<name>`` or an absolute path."""
    name = config.dataset
    if name in REGISTRY:
        return f"{name}@{'hub' if splits.provenance.get('origin', '').startswith('Hub') else 'local'}"
    if name.startswith("hub:"):
        return name
    return str(Path(name).expanduser().resolve())


def text_hash(example: Example) -> str:
    """16 hex digits identifying the example's words (all segments)."""
    text = "\x1f".join(" ".join(segment) for segment in example.segments)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def example_keys(source: str, examples: Iterable[Example]) -> list[str]:
    return [f"{source}|{e.uid}" for e in examples]


@dataclass
class DataRecord:
    """The data a model was trained, selected and tested on (see the module docstring)."""

    config: dict  # DataConfig as a mapping, dataset path and data_dir absolute
    source: str
    provenance: dict = field(default_factory=dict)
    keys: dict[str, list[str]] = field(default_factory=dict)  # role -> example keys
    hashes: dict[str, list[str]] = field(default_factory=dict)  # role -> text hashes

    @classmethod
    def from_splits(cls, config: DataConfig, splits: DatasetSplits, data_dir: str | Path | None = None) -> DataRecord:
        values = dataclasses.asdict(config)
        dataset = Path(config.dataset).expanduser()
        if config.dataset not in REGISTRY and not config.dataset.startswith("hub:") and dataset.exists():
            values["dataset"] = str(dataset.resolve())
        root = resolve_data_dir(config.data_dir, str(data_dir) if data_dir else None)
        values["data_dir"] = str(root.resolve()) if root is not None else None
        source = source_id(config, splits)
        return cls(
            config=values,
            source=source,
            provenance=dict(splits.provenance),
            keys={role: example_keys(source, splits.split(role)) for role in ROLES},
            hashes={role: [text_hash(e) for e in splits.split(role)] for role in ROLES},
        )

    def data_config(self, overrides: dict | None = None) -> DataConfig:
        """The recorded data config (with ``overrides`` applied), as a typed DataConfig."""
        return from_dict(DataConfig, {**self.config, **(overrides or {})}, "data")

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        summary = {"config": self.config, "source": self.source, "provenance": self.provenance,
                   "sizes": {role: len(keys) for role, keys in self.keys.items()}, "uids_file": UIDS_FILE}
        (folder / RECORD_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        with gzip.open(folder / UIDS_FILE, "wt", encoding="utf-8") as handle:
            json.dump({"keys": self.keys, "hashes": self.hashes}, handle)

    @classmethod
    def load(cls, folder: str | Path) -> DataRecord | None:
        """The record of a model folder; None for a model saved before riftkit kept data records."""
        folder = Path(folder)
        path = folder / RECORD_FILE
        if not path.is_file():
            return None
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
            with gzip.open(folder / UIDS_FILE, "rt", encoding="utf-8") as handle:
                roles = json.load(handle)
            return cls(summary["config"], summary["source"], summary.get("provenance", {}), roles["keys"], roles["hashes"])
        except FileNotFoundError:
            raise ValueError(f"{folder / UIDS_FILE}: missing, but {path} refers to it; copy the model folder whole") from None
        except (OSError, EOFError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path} or {UIDS_FILE}: damaged data record ({type(err).__name__}: {err})") from None
