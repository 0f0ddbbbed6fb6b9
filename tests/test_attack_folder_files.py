"""Pins the files of an attack folder (keys and their order) and what run_attack returns, session by session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riftkit.attacks import runner
from riftkit.attacks.runner import run_attack
from riftkit.config import ConfigError
from riftkit.evaluation.outcomes import summarize

from .test_attacks_runner import LabelledVictim, WEIGHTS, config, records, subs_file, toy_splits  # noqa: F401  (subs_file: a fixture)

QUIET = dict(progress=False, log=lambda m: None)
SUMMARY_TAIL = ["attack", "model", "model_sha256", "task", "split", "data_role", "seed", "wall_time_s", "examples_this_session",
                "backend", "wall_time_all_sessions_s", "config", "lm"]
SESSION_KEYS = ["examples", "wall_time_s", "backend", "shard", "finished_at"]


def sessions(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / runner.SESSIONS_FILE).read_text().splitlines()]


def test_a_run_then_a_resume_write_these_files(tmp_path, subs_file):
    splits, model, folder = toy_splits(), LabelledVictim(WEIGHTS, bias=-1.0), tmp_path / "run"
    messages: list[str] = []
    first = run_attack(model, splits, config(subs_file, "pwws", n=4), "toy-model", folder, progress=False, log=messages.append)
    assert messages[0] == f"riftkit attack: pwws on 4 toy test examples (0 done before, 4 to go) -> {folder}"
    done = records(folder)
    assert list(first) == list(summarize(list(done.values()))) + SUMMARY_TAIL
    assert (first["model"], first["model_sha256"], first["task"], first["split"], first["data_role"], first["seed"]) == (
        str(Path("toy-model").resolve()), None, "toy", "test", None, 1)
    assert first["examples_this_session"] == 4 and first["lm"] == {"lm": "none"}
    assert first["backend"] == {"backend": "torch", "why": "auto: the victim is a LabelledVictim, not a riftkit Classifier"}
    assert json.loads((folder / runner.SUMMARY_FILE).read_text()) == first
    assert (folder / runner.SUMMARY_FILE).read_text() == json.dumps(first, indent=2) + "\n"

    settings = json.loads((folder / runner.SETTINGS_FILE).read_text())
    assert list(settings)[:4] == ["model", "model_sha256", "task", "segments"] and list(settings)[-1] == "backend"
    assert settings["segments"] == ["text"] and settings["backend"] == first["backend"]
    assert [list(s) for s in sessions(folder)] == [SESSION_KEYS]
    assert sessions(folder)[0]["examples"] == 4 and sessions(folder)[0]["shard"] is None

    again = run_attack(model, splits, config(subs_file, "pwws", n=4), "toy-model", folder, **QUIET)
    assert again["examples_this_session"] == 0 and again["backend"] is None  # nothing attacked: no forward path chosen
    assert [s["examples"] for s in sessions(folder)] == [4, 0] and sessions(folder)[1]["backend"] is None
    assert json.loads((folder / runner.SETTINGS_FILE).read_text()) == settings  # the first session's backend is kept
    assert again["wall_time_all_sessions_s"] == round(sum(s["wall_time_s"] for s in sessions(folder)), 3)
    assert records(folder) == done


def test_a_white_box_attack_records_torch_even_with_nothing_to_do(tmp_path, subs_file):
    splits, model, folder = toy_splits(), LabelledVictim(WEIGHTS, bias=-1.0), tmp_path / "run"
    summary = run_attack(model, splits, config(subs_file, "ascc", n=0), "toy-model", folder, **QUIET)
    white_box = {"backend": "torch", "why": "white-box: gradients"}
    assert summary["n"] == 0 and summary["backend"] == white_box and "lm" not in summary  # no attack built: no lm.json
    assert json.loads((folder / runner.SETTINGS_FILE).read_text())["backend"] == white_box
    assert sessions(folder)[0]["backend"] == white_box and not (folder / "lm.json").exists()
    (folder / runner.SETTINGS_FILE).write_text(json.dumps({"model": "x"}))
    with pytest.raises(ConfigError, match=r"settings.json: this folder holds a run with model='x', now asked for "):
        run_attack(model, splits, config(subs_file, "ascc", n=0), "toy-model", folder, **QUIET)


def test_a_shard_returns_its_own_numbers_and_writes_no_summary(tmp_path, subs_file):
    splits, model, folder = toy_splits(), LabelledVictim(WEIGHTS, bias=-1.0), tmp_path / "run"
    part = run_attack(model, splits, config(subs_file, "pwws", n=5), "toy-model", folder, shard=(1, 2), **QUIET)
    shard_log = runner.ResultLog(folder / runner.shard_file_name(1, 2)).read()
    assert list(part) == list(summarize(list(shard_log.values()))) + ["shard", "wall_time_s", "backend"]
    assert part["shard"] == [1, 2] and part["n"] == 2 and not (folder / runner.SUMMARY_FILE).exists()
    assert sessions(folder)[0]["shard"] == [1, 2] and sessions(folder)[0]["examples"] == 2
    with pytest.raises(ConfigError, match=r"^shard 2/2: expected 0 <= index < count$"):
        run_attack(model, splits, config(subs_file, "pwws", n=5), "toy-model", folder, shard=(2, 2), **QUIET)

    whole = run_attack(model, splits, config(subs_file, "pwws", n=5), "toy-model", folder, **QUIET)
    assert whole["n"] == 5 and whole["examples_this_session"] == 3 and not shard_log.keys() - records(folder).keys()
    assert not list(folder.glob("examples.shard-*"))


def test_labels_that_differ_and_strangers_in_the_log_are_refused(tmp_path, subs_file):
    splits, model, folder = toy_splits(), LabelledVictim(WEIGHTS, bias=-1.0), tmp_path / "run"
    other = LabelledVictim(WEIGHTS, bias=-1.0)
    other.spec = type(model.spec)(label_names=["bad", "good"])
    with pytest.raises(ConfigError, match=r"^the model's labels \['bad', 'good'\] differ from the data set's \['negative', 'positive'\]$"):
        run_attack(other, splits, config(subs_file, "pwws", n=4), "toy-model", folder, **QUIET)
    run_attack(model, splits, config(subs_file, "pwws", n=4), "toy-model", folder, **QUIET)
    line = next(iter(records(folder).values())) | {"uid": "test:999"}
    with open(folder / runner.RESULTS_FILE, "a") as handle:
        handle.write(json.dumps(line) + "\n")
    with pytest.raises(ValueError, match=r"examples.jsonl: uid 'test:999' is not in this run's sample \(1 such lines\)$"):
        run_attack(model, splits, config(subs_file, "pwws", n=4), "toy-model", folder, **QUIET)


def test_a_folder_written_before_a_data_field_existed_resumes(tmp_path, subs_file):
    """settings.json of an attack begun before data.label_map existed lacks it: it reads as that field's default."""
    from riftkit.config import DataConfig

    splits, model, folder = toy_splits(), LabelledVictim(WEIGHTS, bias=-1.0), tmp_path / "run"
    data = DataConfig(dataset="toy")
    run_attack(model, splits, config(subs_file, "pwws", n=4), "toy-model", folder, data_config=data, **QUIET)
    settings = json.loads((folder / runner.SETTINGS_FILE).read_text())
    settings["data"].pop("label_map", None)
    (folder / runner.SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    again = run_attack(model, splits, config(subs_file, "pwws", n=4), "toy-model", folder, data_config=data, **QUIET)
    assert again["examples_this_session"] == 0
    with pytest.raises(ConfigError, match="this folder holds a run with data="):  # a mapping that was not there is another run
        run_attack(model, splits, config(subs_file, "pwws", n=4), "toy-model", folder,
                   data_config=DataConfig(dataset="toy", label_map={"neg": "negative"}), **QUIET)
