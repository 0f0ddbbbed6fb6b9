"""The classifier f(x) = softmax(h(F(x))): a pre-trained encoder F and a task head h.

The feature s = F(x) is the pooled sequence token of the last layer (BERT's
pooler output by default); h is Linear(H, 256) - ReLU - Linear(256, C)
(METHOD.md). The model runs from token ids or from input embeddings, which
the adversarial methods perturb inside the convex hull of substitute words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn
from transformers import BatchEncoding, PreTrainedModel, PreTrainedTokenizerBase

from ..data.examples import Example, Segments, TaskSpec
from ..data.pretokenize import PRETOKENIZER_VERSION
from .encoder import quiet_transformers
from .modes import eval_mode


@dataclass
class ClassifierSpec:
    """Everything besides weights needed to rebuild a classifier (saved as JSON)."""

    task: str
    task_kind: str
    label_names: list[str]
    encoder_source: str  # what it was fine-tuned from (Hub name, path or "embedded")
    num_layers: int | None
    max_length: int
    pooling: str  # "pooler", "cls" or "mean" (resolved, never "auto")
    head_hidden: int = 256
    head_dropout: float = 0.0  # METHOD.md's head has no dropout; older saved models record 0.1
    pretokenizer: str = PRETOKENIZER_VERSION

    @property
    def task_spec(self) -> TaskSpec:
        return TaskSpec(self.task, self.task_kind, tuple(self.label_names))  # type: ignore[arg-type]

    def to_dict(self) -> dict:
        return asdict(self)


def encoder_features(
    encoder: PreTrainedModel,
    pooling: str,
    input_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    token_type_ids: torch.Tensor | None = None,
    inputs_embeds: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run ``encoder`` and pool its last layer ("pooler", "cls" or "mean"); shared by student and teacher.

    ``position_ids`` [B, T]: None lets the encoder number the tokens itself (as for clean text).
    """
    kwargs = {"attention_mask": attention_mask}
    if token_type_ids is not None:
        kwargs["token_type_ids"] = token_type_ids
    if position_ids is not None:
        kwargs["position_ids"] = position_ids
    if inputs_embeds is not None:
        out = encoder(inputs_embeds=inputs_embeds, **kwargs)
    else:
        out = encoder(input_ids=input_ids, **kwargs)
    if pooling == "pooler":
        return out.pooler_output
    hidden = out.last_hidden_state
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def resolve_pooling(encoder: PreTrainedModel, pooling: str) -> str:
    """``auto``: the encoder's pooler when its weights came with the checkpoint, else the first token (``cls``).

    roberta-base ships no pooler weights: transformers then adds a randomly initialised pooler,
    and pooling through it would feed student and teacher a random projection of the first token.
    An encoder built in code (not loaded by :func:`load_encoder`) counts as having its pooler trained.
    """
    has_pooler = getattr(encoder, "pooler", None) is not None
    if pooling == "auto":
        return "pooler" if has_pooler and getattr(encoder, "pooler_weights_loaded", True) else "cls"
    if pooling == "pooler" and not has_pooler:
        raise ValueError(f"model.pooling=pooler: {type(encoder).__name__} has no pooler; use cls or mean")
    return pooling


class Classifier(nn.Module):
    def __init__(self, encoder: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, spec: ClassifierSpec):
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.spec = spec
        hidden = encoder.config.hidden_size
        # Linear(H, 256) - ReLU - Linear(256, C) (METHOD.md); slot 0 is an optional dropout, kept as a slot
        # (Identity when off) so that head.safetensors keys are the same with and without it.
        self.head = nn.Sequential(
            nn.Dropout(spec.head_dropout) if spec.head_dropout > 0 else nn.Identity(),
            nn.Linear(hidden, spec.head_hidden),
            nn.ReLU(),
            nn.Linear(spec.head_hidden, len(spec.label_names)),
        )

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

    # -- forward ------------------------------------------------------------------------
    @property
    def word_embeddings(self) -> nn.Embedding:
        return self.encoder.get_input_embeddings()

    @property
    def device(self) -> torch.device:
        return self.head[1].weight.device

    def features(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The pooled feature s = F(x), from token ids or from input embeddings."""
        return encoder_features(self.encoder, self.spec.pooling, input_ids, attention_mask, token_type_ids, inputs_embeds, position_ids)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        return_features: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits h(F(x)); with ``return_features``, the pair (features s = F(x), logits).

        Training objectives reach the student through this one call, so that a wrapper around the
        model (DistributedDataParallel, FSDP) sees every forward pass.
        """
        features = self.features(input_ids, attention_mask, token_type_ids, inputs_embeds, position_ids)
        logits = self.head(features)
        return (features, logits) if return_features else logits

    # -- convenience for evaluation and prediction ----------------------------------------
    @torch.no_grad()
    def predict_proba(self, segments: Sequence[Segments], batch_size: int = 128) -> torch.Tensor:
        """Class probabilities for pre-tokenised inputs, in eval mode (the previous mode is restored).

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

def build_classifier(
    encoder: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    task: TaskSpec,
    encoder_source: str,
    max_length: int = 128,
    pooling: str = "auto",
    head_hidden: int = 256,
    head_dropout: float = 0.0,
    num_layers: int | None = None,
    seed: int | None = None,
) -> Classifier:
    """A classifier over ``encoder`` with a freshly initialised head (seeded when ``seed`` is given)."""
    spec = ClassifierSpec(
        task=task.name,
        task_kind=task.kind,
        label_names=list(task.label_names),
        encoder_source=encoder_source,
        num_layers=num_layers,
        max_length=max_length,
        pooling=resolve_pooling(encoder, pooling),
        head_hidden=head_hidden,
        head_dropout=head_dropout,
    )
    if seed is None:
        return Classifier(encoder, tokenizer, spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Classifier(encoder, tokenizer, spec)
