"""The classifier f(x) = softmax(h(F(x))): a pre-trained encoder F and a task head h.

The feature s = F(x) is the pooled sequence token of the last layer (BERT's
pooler output by default); h is Linear(H, 256) - ReLU - Linear(256, C)
(METHOD.md). The model runs from token ids or from input embeddings, which
the adversarial methods perturb inside the convex hull of substitute words.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..data.examples import TaskSpec
from ..data.pretokenize import PRETOKENIZER_VERSION
from .words import WordLevelClassifier, model_inputs


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
    out = encoder(**model_inputs(input_ids, attention_mask, token_type_ids, inputs_embeds, position_ids))
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


class Classifier(WordLevelClassifier):
    """riftkit's own classifier: a pre-trained encoder, pooled features s = F(x), and the task head h(s)."""

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
