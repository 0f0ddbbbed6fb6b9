import json

import pytest
import torch

from riftkit.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from riftkit.data import DatasetSplits, Example, load_splits
from riftkit.models import load_classifier
from riftkit.training import train
from riftkit.training.log import read_metrics

from .conftest import SENTIMENT


def toy_splits(n: int = 48) -> DatasetSplits:
    """A learnable toy task: the label is whether 'good' or 'bad' appears."""
    fillers = ["the", "film", "was", "plot", "acting", "quite", "really", "story"]
    examples = []
    for i in range(n):
        label = i % 2
        words = [fillers[(i * 3 + k) % len(fillers)] for k in range(4)]
        words.insert(i % 5, "good" if label else "bad")
        examples.append(Example((tuple(words),), label, uid=f"toy:{i}"))
    return DatasetSplits(SENTIMENT, examples[: n - 16], examples[n - 16 : n - 8], examples[n - 8 :])


def tiny_config(tmp_path, **train) -> ExperimentConfig:
    return ExperimentConfig(
        name="tiny", output_dir=str(tmp_path / "run"),
        train=TrainConfig(epochs=10, batch_size=8, lr=1e-3, progress=False, **train),
    )


def test_standard_training_on_a_tiny_model_learns_and_logs(make_tiny, tmp_path):
    config = tiny_config(tmp_path, eval_every_steps=2)
    result = train(config, toy_splits(), model=make_tiny())
    assert result.best_dev["accuracy"] == 1.0 and result.test["accuracy"] == 1.0
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    events = [r["event"] for r in records]
    assert events[0] == "start" and events[-1] == "end" and events.count("train_epoch") == 10
    evals = [r for r in records if r["event"] == "eval"]
    assert len(evals) == 10 + 10  # every epoch end, plus step 2 of each 4-step epoch
    best = max(evals, key=lambda r: r["dev_accuracy"])
    saved = json.loads((tmp_path / "run" / "best" / "riftkit.json").read_text())
    assert saved["extra"]["dev"]["dev_accuracy"] == result.best_dev["accuracy"] == best["dev_accuracy"]
    assert saved["extra"]["step"] == best["step"]  # the first step reaching the best value is kept
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test"]["accuracy"] == result.test["accuracy"]


def test_best_checkpoint_is_the_selected_model(make_tiny, tmp_path):
    splits = toy_splits()
    result = train(tiny_config(tmp_path), splits, model=make_tiny())
    reloaded = load_classifier(result.output_dir / "best")
    from riftkit.evaluation import evaluate_accuracy

    assert evaluate_accuracy(reloaded, splits.dev)["accuracy"] == result.best_dev["accuracy"]
    assert evaluate_accuracy(reloaded, splits.test)["accuracy"] == result.test["accuracy"]


def test_training_is_deterministic_on_cpu(make_tiny, tmp_path):
    runs = []
    for name in ("a", "b"):
        config = tiny_config(tmp_path / name, balanced_batches=True)
        config.model = ModelConfig(head_dropout=0.1)
        train(config, toy_splits(), model=make_tiny(head_dropout=0.1))
        runs.append([(r["event"], r.get("loss"), r.get("dev_loss")) for r in read_metrics(tmp_path / name / "run" / "metrics.jsonl") if r["event"] != "end"])
        state = load_classifier(tmp_path / name / "run" / "best").state_dict()
        runs[-1].append(sum(v.double().sum().item() for v in state.values()))
    assert runs[0] == runs[1]


def test_optimizer_groups_follow_the_recipe(make_tiny):
    from riftkit.training.optim import build_optimizer

    model = make_tiny()
    optimizer = build_optimizer(model.encoder, [model.head], 2e-5, 0.0, 2e-4)
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert groups["encoder"]["weight_decay"] == 0.0 and groups["task"]["weight_decay"] == 2e-4
    assert sum(p.numel() for p in groups["encoder"]["params"]) == sum(p.numel() for p in model.encoder.parameters())
    assert sum(p.numel() for p in groups["task"]["params"]) == sum(p.numel() for p in model.head.parameters())


def test_standard_fine_tuning_of_embedded_minilm_on_sst2(data_dir, tmp_path):
    """500 SST-2 training phrases are enough for the pre-trained MiniLM to be far above chance.

    Bar: 0.70 on 150 carved dev phrases and on 300 GLUE dev sentences. Chance is
    about 0.51 (majority class); an input-blind model stays below 0.58 with
    probability > 0.99 at n=300. Measured with this recipe on data seeds 0, 1, 2:
    test 0.82 / 0.78 / 0.79 (about 30 s each), so the bar has a margin of about
    8 points against run-to-run noise and still fails if fine-tuning breaks.
    """
    config = ExperimentConfig(
        name="sst2-small", output_dir=str(tmp_path / "run"),
        data=DataConfig(dataset="sst2", max_train=500, dev_size=150, max_test=300, seed=0),
        model=ModelConfig(max_length=48),
        train=TrainConfig(epochs=3, batch_size=16, lr=1e-4, progress=False),
    )
    splits = load_splits(config.data, data_dir)
    result = train(config, splits)
    assert result.best_dev["accuracy"] >= 0.70, result.best_dev
    assert result.test["accuracy"] >= 0.70, result.test
