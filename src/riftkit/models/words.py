"""What every classifier riftkit attacks or trains looks like from the outside: pre-split words in, logits out.

Attacks substitute whole words, so every model sees the words of
:func:`riftkit.data.words` through its own subword tokenizer
(``is_split_into_words=True``). This base class holds that view once, for
riftkit's own classifier (models/classifier.py) and for any Hugging Face
sequence classifier (models/hf_classifier.py); a subclass supplies
``forward`` (logits from token ids or input embeddings), ``spec`` and
``tokenizer``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers import BatchEncoding

from ..data.examples import Example, Segments
from .encoder import quiet_transformers
from .modes import eval_mode


def model_inputs(input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None, position_ids=None) -> dict:
    """The keyword arguments of a transformers forward pass: token ids [B, T] or input embeddings [B, T, H] (these win),
    and the optional token types and positions only when given (RoBERTa has no token types; None positions let the
    model number the tokens itself)."""
    inputs = {"attention_mask": attention_mask}
    if token_type_ids is not None:
        inputs["token_type_ids"] = token_type_ids
    if position_ids is not None:
        inputs["position_ids"] = position_ids
    if inputs_embeds is not None:
        inputs["inputs_embeds"] = inputs_embeds
    else:
        inputs["input_ids"] = input_ids
    return inputs


class WordLevelClassifier(nn.Module):
    """A classifier over pre-tokenised words; subclasses set ``self.tokenizer`` and ``self.spec`` and define ``forward``."""

    tokenizer: object
    spec: object  # ClassifierSpec: task_kind, label_names, max_length, ...

    # -- text to tensors -------------------------------------------------------------
    def encode(self, segments: Sequence[Segments]) -> BatchEncoding:
        """Tokenise pre-split words (one tuple per segment) with truncation and padding.

        Pairs use the tokenizer's own pair encoding. ``word_ids()`` of the result
        maps subword positions back to words, which the attacks rely on.
        """
        first = [list(s[0]) for s in segments]
        second = [list(s[1]) for s in segments] if self.spec.task_kind == "pair" else None
        return self.tokenizer(
            first,
            second,
            is_split_into_words=True,
            truncation=True,
            max_length=self.spec.max_length,
            padding=True,
            return_tensors="pt",
        )

    def encode_examples(self, examples: Sequence[Example]) -> BatchEncoding:
        return self.encode([e.segments for e in examples])

    def visible_words(self, segments: Segments) -> tuple[int, ...]:
        """How many leading words of each segment the model sees whole, under its ``max_length``.

        Truncation cuts tokens from the end (for pairs from the end of either
        segment, longest first), so the visible words of a segment are a prefix:
        the words before the first one that lost a subword token. A word past
        that point cannot change the prediction. Returns one count per segment.
        """
        first = [list(segments[0])]
        second = [list(segments[1])] if self.spec.task_kind == "pair" else None
        kwargs = {"is_split_into_words": True, "add_special_tokens": True}
        cut = self.tokenizer(first, second, truncation=True, max_length=self.spec.max_length, **kwargs)
        with quiet_transformers():  # the untruncated encoding may exceed the model's limit: only counted, never run
            whole = self.tokenizer(first, second, truncation=False, **kwargs)

        def tokens_per_word(encoding) -> dict[tuple[int, int], int]:
            counts: dict[tuple[int, int], int] = {}
            for word_id, seq_id in zip(encoding.word_ids(0), encoding.sequence_ids(0)):
                if word_id is not None:
                    counts[(seq_id, word_id)] = counts.get((seq_id, word_id), 0) + 1
            return counts

        kept, full = tokens_per_word(cut), tokens_per_word(whole)
        visible = []
        for seq_id, words in enumerate(segments):
            count = len(words)
            for position in range(len(words)):
                if kept.get((seq_id, position), 0) < full.get((seq_id, position), 0):
                    count = position
                    break
            visible.append(count)
        return tuple(visible)

    # -- what the attacks reach --------------------------------------------------------------
    @property
    def word_embeddings(self) -> nn.Embedding:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def predict_proba(self, segments: Sequence[Segments], batch_size: int = 128) -> torch.Tensor:
        """Class probabilities [N, C] for pre-tokenised inputs, in eval mode (the previous mode is restored).

        Inputs are batched in order of length, so padding is small; results come back in input order.
        """
        with eval_mode(self):
            order = sorted(range(len(segments)), key=lambda i: sum(len(s) for s in segments[i]))
            probs = torch.empty(len(segments), len(self.spec.label_names))
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                batch = self.encode([segments[i] for i in chunk]).to(self.device)
                probs[chunk] = torch.softmax(self(**batch).float(), dim=-1).cpu()
            return probs
