"""Pins load_splits' provenance (values and key order) and its early errors, for every kind of source."""

from __future__ import annotations

import json

import pytest

from riftkit.config import ConfigError, DataConfig
from riftkit.data import DataNotFoundError, load_splits
from riftkit.data.registry import REGISTRY


def write_rows(path, n, start=0):
    path.write_text("".join(json.dumps({"text": f"words number {i}", "label": i % 2}) + "\n" for i in range(start, start + n)))


def test_a_folder_with_every_split(tmp_path):
    for name, n in (("train", 8), ("dev", 3), ("test", 4)):
        write_rows(tmp_path / f"{name}.jsonl", n)
    splits = load_splits(DataConfig(dataset=str(tmp_path), labels=["neg", "pos"], max_train=5))
    assert list(splits.provenance.items()) == [("origin", f"path {tmp_path}"), ("train", "train"), ("dev", "dev"), ("test", "test")]
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (5, 3, 4) and splits.skipped == {}


def test_a_folder_with_train_only_carves_dev_and_test(tmp_path):
    write_rows(tmp_path / "train.jsonl", 20)
    splits = load_splits(DataConfig(dataset=str(tmp_path), labels=["neg", "pos"], dev_size=3, test_size=0.25, seed=5))
    assert list(splits.provenance.items()) == [("origin", f"path {tmp_path}"), ("train", "train"),
                                               ("dev", "3 carved from train (seed 5)"), ("test", "5 carved from train (seed 5)")]
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (12, 3, 5)
    assert not {e.uid for e in splits.train} & ({e.uid for e in splits.dev} | {e.uid for e in splits.test})


def test_one_file_is_the_split_all(tmp_path):
    path = tmp_path / "mine.jsonl"
    write_rows(path, 10)
    splits = load_splits(DataConfig(dataset=str(path), labels=["neg", "pos"], dev_size=2, test_size=3))
    assert splits.provenance == {"origin": f"path {path}", "train": "all", "dev": "2 carved from all (seed 0)",
                                 "test": "3 carved from all (seed 0)"}
    assert splits.task.name == "mine" and splits.task.kind == "single"


def test_a_registered_data_set_from_the_data_directory(data_dir):
    splits = load_splits(DataConfig(dataset="sst2", dev_size=10, max_train=20, max_test=7), data_dir)
    assert list(splits.provenance.items()) == [("origin", f"local {data_dir}"), ("train", "train"), ("dev", "10 carved from train (seed 0)"),
                                               ("test", "dev"), ("note", REGISTRY["sst2"].note)]
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (20, 10, 7)


def test_hub_data_sets(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return datasets.Dataset.from_dict({"sentence": ["good fun", "dull", "fine"], "label": [1, 0, 1]})

    monkeypatch.delenv("RIFTKIT_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    splits = load_splits(DataConfig(dataset="hub:someone/things:cfg", labels=["neg", "pos"], fields={"text": "sentence"}))
    assert calls == [("someone/things", "cfg", s) for s in ("train", "validation", "test")]
    assert splits.provenance == {"origin": "Hub someone/things", "train": "train", "dev": "validation", "test": "test"}
    assert splits.task.name == "things:cfg" and splits.task.kind == "single"

    splits = load_splits(DataConfig(dataset="sst2", source="hub", dev_size=1))
    hub = REGISTRY["sst2"].hub
    assert list(splits.provenance.items()) == [("origin", f"Hub {hub.path}"), ("train", "train"), ("dev", "1 carved from train (seed 0)"),
                                               ("test", "dev"), ("note", REGISTRY["sst2"].note)]


def test_early_errors_come_first_and_read_the_same(tmp_path, monkeypatch):
    monkeypatch.delenv("RIFTKIT_DATA_DIR", raising=False)
    with pytest.raises(ConfigError, match=r"^data.fields: mixes column names \(label\) and column positions \(text\)"):
        load_splits(DataConfig(dataset=str(tmp_path / "nowhere"), fields={"text": 0, "label": "y"}))
    with pytest.raises(ConfigError, match=r"^data.fields: column positions \{'text': 0, 'label': 1\} are for CSV/TSV files without a header; "
                                          r"the Hub data set 'hub:a/b' has named columns$"):
        load_splits(DataConfig(dataset="hub:a/b", labels=["x", "y"], fields={"text": 0, "label": 1}))
    with pytest.raises(DataNotFoundError, match=r"^data set '.*nowhere' is neither a known name \(.*\), a 'hub:<name>' reference, nor an existing path$"):
        load_splits(DataConfig(dataset=str(tmp_path / "nowhere")))
    with pytest.raises(DataNotFoundError, match=r"^data directory not found: .*missing \(from --data-dir, else \$RIFTKIT_DATA_DIR"):
        load_splits(DataConfig(dataset="sst2"), tmp_path / "missing")
    with pytest.raises(DataNotFoundError, match=r"^data set 'sst2': no local copy \(no data directory is set\)"):
        load_splits(DataConfig(dataset="sst2", source="local"))
