"""train.report_to: [tensorboard] writes metrics.jsonl's scalars as event files that TensorBoard reads back (issue 26, item 4)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from riftkit.config import ConfigError, TrainConfig
from riftkit.training import train
from riftkit.training.checkpoint import list_checkpoints
from riftkit.training.log import read_metrics

from .test_training import tiny_config, toy_splits


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_the_scalars_of_metrics_jsonl_are_read_back_from_tensorboard(make_tiny, tmp_path):
    config = tiny_config(tmp_path, epochs=2, eval_every_steps=2, report_to=["tensorboard"])
    result = train(config, toy_splits(), model=make_tiny())
    records = read_metrics(result.output_dir / "metrics.jsonl")
    scalars = read_scalars(result.output_dir / "tensorboard")
    evals = [r for r in records if r["event"] == "eval"]
    assert [step for step, _ in scalars["dev/accuracy"]] == [r["step"] for r in evals]
    assert [value for _, value in scalars["dev/accuracy"]] == pytest.approx([r["dev_accuracy"] for r in evals])
    assert [value for _, value in scalars["dev/margin_median"]] == pytest.approx([r["dev_margin_median"] for r in evals])
    epochs = [r for r in records if r["event"] == "train_epoch"]
    assert [value for _, value in scalars["train/loss"]] == pytest.approx([r["loss"] for r in epochs])
    assert [value for _, value in scalars["forgetting/theta_distance"]] == pytest.approx([r["theta_distance"] for r in epochs])
    assert scalars["test/accuracy"][0][1] == pytest.approx(result.test["accuracy"])


def test_a_resumed_run_drops_the_events_written_after_its_checkpoint(make_tiny, tmp_path):
    splits = toy_splits()
    config = tiny_config(tmp_path, epochs=2, eval_every_steps=1, checkpoint_every_steps=2, keep_checkpoints=4, report_to=["tensorboard"])
    out = train(config, splits, model=make_tiny()).output_dir
    reference = read_scalars(out / "tensorboard")
    checkpoints = out / "checkpoints"
    for step, folder in list_checkpoints(checkpoints):
        if step > 4:
            shutil.rmtree(folder)  # as if killed after step 6's events but before its checkpoint
    train(config, splits, model=make_tiny(), resume=True)
    again = read_scalars(out / "tensorboard")
    assert again["dev/accuracy"] == reference["dev/accuracy"]  # each step once, not twice


def test_an_unknown_reporter_is_named():
    with pytest.raises(ConfigError, match="train.report_to: 'wandb' is not one of"):
        TrainConfig(report_to=["wandb"])


def test_without_tensorboard_installed_the_error_says_what_to_install(make_tiny, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # what an environment without the package gives
    config = tiny_config(tmp_path, epochs=1, report_to=["tensorboard"])
    with pytest.raises(ConfigError, match=r"needs the tensorboard package: pip install tensorboard"):
        train(config, toy_splits(), model=make_tiny())
