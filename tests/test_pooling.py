"""Pooling "auto" picks the pooler only when the checkpoint trained it (roberta-base ships none)."""

from __future__ import annotations

import pytest

from riftkit.data import TaskSpec
from riftkit.models import build_classifier, load_encoder, load_tokenizer

SENTENCES = ["a gripping and beautifully acted film", "the plot is dull and the acting is poor",
             "a man walks his dog by the river", "nobody liked the ending of this movie"] * 8


@pytest.fixture(scope="module")
def tiny_roberta_dirs(tmp_path_factory):
    """A 1-layer random RoBERTa with a byte-level BPE tokenizer, saved without and with pooler weights."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    root = tmp_path_factory.mktemp("roberta")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(SENTENCES, vocab_size=300, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(root))
    tokenizer = RobertaTokenizerFast(vocab=str(root / "vocab.json"), merges=str(root / "merges.txt"))  # transformers 5: vocab=, merges=
    config = RobertaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id)
    dirs = {}
    for pooler in (False, True):
        folder = root / ("with-pooler" if pooler else "no-pooler")
        RobertaModel(config, add_pooling_layer=pooler).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        dirs[pooler] = folder
    return dirs


@pytest.mark.parametrize("saved_with_pooler, expected", [(False, "cls"), (True, "pooler")])
def test_auto_pooling_follows_the_checkpoints_pooler_weights(tiny_roberta_dirs, saved_with_pooler, expected):
    folder = tiny_roberta_dirs[saved_with_pooler]
    encoder = load_encoder(str(folder))
    assert encoder.pooler is not None  # transformers adds one either way
    model = build_classifier(encoder, load_tokenizer(str(folder)), TaskSpec("toy", "single", ("neg", "pos")), str(folder), max_length=16)
    assert model.spec.pooling == expected
    probs = model.predict_proba([(tuple("a dull film".split()),)])
    assert probs.shape == (1, 2)


def test_the_embedded_minilm_ships_its_pooler():
    encoder = load_encoder("embedded", num_layers=1)
    assert encoder.pooler_weights_loaded
