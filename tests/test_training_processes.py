"""Training on several processes (torchrun / accelerate launch, gloo on CPU): shards of each batch, averaged gradients."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from riftkit.cli import main
from riftkit.models.io import load_classifier


@pytest.fixture
def setup(tmp_path, tokenizer):
    """A tiny BERT without dropout (so that the random draws of one and two processes cannot differ) and a toy CSV."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    folder = tmp_path / "encoder"
    encoder.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    data = tmp_path / "toy.csv"
    rows = ["text,label"] + [f"the film {i} was {'good' if i % 2 else 'bad'} and {'great' if i % 2 else 'awful'},{'pos' if i % 2 else 'neg'}"
                             for i in range(40)]
    data.write_text("\n".join(rows) + "\n")
    subs = tmp_path / "subs.json"
    subs.write_text(json.dumps({"good": ["nice", "fine"], "bad": ["poor"], "great": ["superb"], "awful": ["terrible"], "film": ["movie"]}))
    config = tmp_path / "exp.yaml"
    config.write_text(f"name: procs\ndata:\n  dataset: {data}\n  labels: [neg, pos]\n  dev_size: 8\n  test_size: 8\n  max_train: 16\n"
                      f"model:\n  encoder: {folder}\n  max_length: 16\n  head_dropout: 0.0\n"
                      "train:\n  method: adv\n  epochs: 1\n  batch_size: 16\n  lr: 1.0e-3\n  balanced_batches: true\n  progress: false\n"
                      "  select_max_examples: 4\n  forgetting_probe_size: 4\n  num_threads: 1\n"
                      f"objective:\n  substitutions: {subs}\n  adv_steps: 2\n")
    return config


def epoch_loss(run) -> float:
    return next(json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"train_epoch"' in line)["loss"]


def test_two_processes_take_the_same_step_as_one(setup, tmp_path):
    one = tmp_path / "one"
    assert main(["train", str(setup), "--output-dir", str(one)]) == 0
    two = tmp_path / "two"
    launched = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
                               "-m", "riftkit.cli", "train", str(setup), "--output-dir", str(two)],
                              capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert launched.returncode == 0, launched.stderr[:6000]
    # one step over the whole batch (16 examples; 8 per process): the same loss and the same weights
    assert epoch_loss(two) == pytest.approx(epoch_loss(one), abs=1e-5)
    from safetensors.torch import load_file

    first, second = load_file(one / "checkpoints" / "step-1" / "model.safetensors"), load_file(two / "checkpoints" / "step-1" / "model.safetensors")
    assert first.keys() == second.keys()
    assert max((first[k] - second[k]).abs().max().item() for k in first) < 1e-5
    summary = json.loads((two / "summary.json").read_text())
    assert summary["processes"] == 2 and not list(two.glob(".process-*"))  # the other process's copy is gone
    assert load_classifier(two / "best").spec.label_names == ["neg", "pos"]


def test_rift_gathers_its_info_negatives_over_processes(setup, tmp_path):
    """RIFT on two processes: the class-conditional InfoNCE gathers every process's student features, so each
    anchor has the whole batch's negatives and the first step's loss (InfoNCE included) is one process's."""
    config = setup.read_text().replace("method: adv", "method: rift")
    rift = tmp_path / "rift.yaml"
    rift.write_text(config + "  alpha: 0.1\n  info: conditional\n")
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", str(rift), "--output-dir", str(one)]) == 0
    launched = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29532",
                               "-m", "riftkit.cli", "train", str(rift), "--output-dir", str(two)],
                              capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert launched.returncode == 0, launched.stderr[:6000]
    records = [next(json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"train_epoch"' in x) for run in (one, two)]
    assert records[1]["loss_info"] == pytest.approx(records[0]["loss_info"], abs=1e-5)  # log 8 at the start, not log 4
    assert records[1]["loss"] == pytest.approx(records[0]["loss"], abs=1e-5)
    from safetensors.torch import load_file

    first, second = load_file(one / "checkpoints" / "step-1" / "model.safetensors"), load_file(two / "checkpoints" / "step-1" / "model.safetensors")
    assert max((first[k] - second[k]).abs().max().item() for k in first) < 1e-5
