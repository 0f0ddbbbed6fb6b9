"""Tiny Hugging Face sequence classifiers built and saved locally (``save_pretrained``), as a user's own would be.

Initialised with a wide range (0.5 against BERT's 0.02), so that random outputs differ from text to text and
far from uniform: comparisons of probabilities and of label order then mean something."""

from __future__ import annotations

from pathlib import Path

import torch

BPE_CORPUS = [
    "a charming and often affecting journey .", "the movie is terrible and the acting is dreadful",
    "it 's a wonderful , funny film", "don't waste your time on this boring mess", "<br />An excellent cast, a great story!",
    "the plot was predictable but the film was fun", "a man is playing a guitar on stage", "nobody is playing",
    "Café crème, naïve résumé — “quoted” words… and emoji 🎬", "ＦＵＬＬＷＩＤＴＨ ﬁne ligatures",
]


def save_tiny_bert(folder: Path, tokenizer, labels=("negative", "positive"), seed: int = 0, problem_type: str | None = None) -> Path:
    """A 2-layer random BertForSequenceClassification with the embedded MiniLM's WordPiece tokenizer."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=len(labels), initializer_range=0.5,
                        id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)})
    if problem_type:
        config.problem_type = problem_type
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_roberta(folder: Path, labels=("negative", "positive"), seed: int = 0) -> Path:
    """A 1-layer random RobertaForSequenceClassification with a byte-level BPE tokenizer trained here."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(BPE_CORPUS, vocab_size=400, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    # transformers 5 takes the files as vocab= and merges= (vocab_file= / merges_file= leave an empty vocabulary)
    tokenizer = RobertaTokenizerFast(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"), model_max_length=62)
    assert len(tokenizer("a charming film")["input_ids"]) > 3
    config = RobertaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id, initializer_range=0.5,
                           num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RobertaForSequenceClassification(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
