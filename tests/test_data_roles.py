"""A model remembers its data: attacks and evaluations default to its own held-out test, and leaks are refused."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from riftkit.attacks.runner import ResultLog
from riftkit.cli import main
from riftkit.data.roles import DataRecord

from .test_attacks_victims import SUBS

TOPICS = {"world": ["war", "leader", "nation"], "sports": ["game", "team", "goal"], "business": ["market", "stock", "bank"], "tech": ["computer", "software", "chip"]}


@pytest.fixture(scope="module")
def ag_csv(tmp_path_factory):
    """A 4-class CSV (AG-News-like) with 120 rows: dev and test are carved from it."""
    path = tmp_path_factory.mktemp("ag") / "data" / "ag.csv"
    path.parent.mkdir()
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(120):
            label = list(TOPICS)[i % 4]
            words = TOPICS[label]
            writer.writerow([f"a very good {words[i % 3]} story {i} and a great {words[(i + 1) % 3]} film", label])
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, ag_csv, tokenizer):
    """A tiny model trained once for this module on the carved CSV: (its best/ folder, a substitution file)."""
    from riftkit.models import random_encoder

    tmp_path = tmp_path_factory.mktemp("trained")
    tiny_encoder_dir = tmp_path / "tiny-encoder"
    random_encoder(tokenizer.vocab_size, seed=0).save_pretrained(tiny_encoder_dir)
    tokenizer.save_pretrained(tiny_encoder_dir)
    config = tmp_path / "exp.yaml"
    config.write_text(
        f"name: ag\ndata:\n  dataset: {ag_csv}\n  labels: [world, sports, business, tech]\n  dev_size: 15\n  test_size: 20\n"
        f"model:\n  encoder: {tiny_encoder_dir}\n  max_length: 24\ntrain:\n  epochs: 1\n  batch_size: 16\n  lr: 1.0e-3\n  progress: false\n"
    )
    out = tmp_path / "run"
    assert main(["train", str(config), "--output-dir", str(out)]) == 0
    subs = tmp_path / "subs.json"
    subs.write_text(json.dumps({w: list(s) for w, s in SUBS.items()}))
    return out / "best", subs


def attacked_uids(folder) -> set[str]:
    return set(ResultLog(folder / "examples.jsonl").read())


def test_attack_defaults_to_the_models_own_test_split_and_never_sees_train_or_dev(tmp_path, trained, capsys):
    best, subs = trained
    copied = tmp_path / "elsewhere" / "best"  # a copied best/ still knows its data
    shutil.copytree(best, copied)
    record = DataRecord.load(copied)
    uid = lambda key: key.split("|", 1)[1]  # noqa: E731
    train, dev, test = ({uid(k) for k in record.keys[r]} for r in ("train", "dev", "test"))
    assert (len(train), len(dev), len(test)) == (85, 15, 20)

    out = tmp_path / "attack"
    argv = ["attack", "--model", str(copied), "--attack", "pwws", "--n", "100", "--output-dir", str(out), "--quiet", f"attack.substitutions={subs}"]
    assert main(argv) == 0
    done = attacked_uids(out)
    assert done == test and not done & (train | dev)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data_role"]["label"] == "held-out test" and summary["data_role"]["overlap_dev"] == 0

    capsys.readouterr()
    assert main(["evaluate", "--model", str(copied)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 20 and result["data_role"]["label"] == "held-out test"
    assert main(["evaluate", "--model", str(copied), "--split", "dev"]) == 0
    assert json.loads(capsys.readouterr().out)["data_role"]["label"].startswith("dev: model-selection data")


def test_other_carving_that_leaks_is_refused_and_can_be_allowed(tmp_path, trained, ag_csv, capsys):
    best, subs = trained
    out = tmp_path / "attack"
    argv = ["attack", "--model", str(best), "--attack", "pwws", "--n", "100", "--dataset", str(ag_csv), "--output-dir", str(out), "--quiet",
            f"attack.substitutions={subs}", "data.labels=[world, sports, business, tech]"]  # default carving: 10% dev, 10% test
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "refusing to evaluate" in err and "dev (model-selection)" in err and "ag.csv:" in err
    assert not (out / "examples.jsonl").exists()  # nothing computed on leaked data
    assert main(["evaluate", "--model", str(best), "--dataset", str(ag_csv), "data.labels=[world, sports, business, tech]"]) == 2
    assert "refusing to evaluate" in capsys.readouterr().err

    assert main([*argv, "--allow-overlap"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    role = summary["data_role"]
    assert role["overlap_allowed"] and role["overlap_train"] + role["overlap_dev"] > 0 and "allowed explicitly" in role["label"]


def test_resuming_into_a_folder_of_a_retrained_model_is_refused(tmp_path, trained, capsys):
    best, subs = trained
    best = shutil.copytree(best, tmp_path / "best")
    out = tmp_path / "attack"
    argv = ["attack", "--model", str(best), "--attack", "pwws", "--n", "5", "--output-dir", str(out), "--quiet", f"attack.substitutions={subs}"]
    assert main(argv) == 0
    settings = json.loads((out / "settings.json").read_text())
    assert len(settings["model_sha256"]) == 64
    head = best / "head.safetensors"
    from safetensors.torch import load_file, save_file

    weights = load_file(head)
    save_file({k: v + 0.01 for k, v in weights.items()}, head)  # "retrained"
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "model's weights" in err and "retrained" in err


def test_text_duplicates_of_training_data_are_counted_not_refused(tmp_path, trained):
    from riftkit.config import DataConfig
    from riftkit.data import load_splits
    from riftkit.data.examples import Example
    from riftkit.evaluation.leakage import held_out_report

    best, _ = trained
    record = DataRecord.load(best)
    config = record.data_config()
    splits = load_splits(config)
    # the same words as a training example under another id: a word-for-word duplicate, as IMDB has across its splits
    twin = Example(splits.train[0].segments, splits.train[0].label, "elsewhere:1")
    report = held_out_report(record, config, splits, [*splits.test, twin], "test")
    assert report["text_duplicates_of_train"] == 1 and report["overlap_train"] == report["overlap_dev"] == 0
    assert report["label"] == "held-out test"
    assert isinstance(config, DataConfig)
