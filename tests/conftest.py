"""Shared fixtures: the data directory, the embedded tokenizer, tiny random classifiers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from riftkit.data import TaskSpec
from riftkit.models import build_classifier, load_tokenizer, random_encoder

REPO = Path(__file__).resolve().parents[1]
SENTIMENT = TaskSpec("toy", "single", ("negative", "positive"))
NLI = TaskSpec("toy-nli", "pair", ("entailment", "neutral", "contradiction"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """../shared/data (or $RIFTKIT_DATA_DIR). Missing data fails in CI and skips elsewhere."""
    path = Path(os.environ.get("RIFTKIT_DATA_DIR") or REPO.parent / "shared" / "data")
    if not path.is_absolute():
        path = (Path.cwd() / path).resolve()
    if not (path / "sst2" / "dev.jsonl.gz").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"data directory not found at {path}")
        pytest.skip(f"data directory not found at {path}")
    return path


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer("embedded")


@pytest.fixture
def make_tiny(tokenizer):
    """A tiny randomly initialised BERT classifier (2 layers, hidden 64) with the real WordPiece tokenizer."""

    def make(task: TaskSpec = SENTIMENT, seed: int = 0, pooling: str = "auto", max_length: int = 32, head_dropout: float = 0.0):
        encoder = random_encoder(tokenizer.vocab_size, seed=seed)
        return build_classifier(encoder, tokenizer, task, encoder_source="random-tiny", max_length=max_length, pooling=pooling, head_dropout=head_dropout, seed=seed)

    return make


@pytest.fixture
def tiny_encoder_dir(tmp_path, tokenizer) -> Path:
    """A tiny random encoder saved as a Hugging Face folder, usable as model.encoder in configs."""
    folder = tmp_path / "tiny-encoder"
    random_encoder(tokenizer.vocab_size, seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)
