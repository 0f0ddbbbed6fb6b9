"""Shared fixtures: the data directory, the embedded tokenizer, tiny random classifiers."""

from __future__ import annotations

import os
import socket
from pathlib import Path

# No test reaches the Hugging Face Hub: set before transformers / huggingface_hub are imported (they read it then).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from riftkit.data import TaskSpec  # noqa: E402
from riftkit.models import build_classifier, load_tokenizer, random_encoder  # noqa: E402

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


LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0", "")


def is_local_address(address) -> bool:
    """Unix sockets (a path) and the loopback addresses; anything else is the network."""
    if isinstance(address, (str, bytes)):  # AF_UNIX
        return True
    host = address[0] if isinstance(address, tuple) and address else address
    return isinstance(host, str) and (host in LOCAL_HOSTS or host.startswith("127."))


class NetworkBlocked(ConnectionError):
    pass


@pytest.fixture(scope="session", autouse=True)
def _no_network():
    """Socket connections to anything but localhost / unix sockets fail (tests and riftkit never need the network).

    Subprocesses are not affected (torch.distributed over gloo on 127.0.0.1 keeps working either way)."""
    real_connect, real_connect_ex, real_create = socket.socket.connect, socket.socket.connect_ex, socket.create_connection

    def guard(address):
        if not is_local_address(address):
            raise NetworkBlocked(f"tests may not reach the network (connect to {address!r})")

    def connect(self, address):
        guard(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        guard(address)
        return real_connect_ex(self, address)

    def create_connection(address, *args, **kwargs):
        guard(address)
        return real_create(address, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.create_connection = connect, connect_ex, create_connection
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.create_connection = real_connect, real_connect_ex, real_create
