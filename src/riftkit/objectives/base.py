"""The interface every training objective implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from transformers import BatchEncoding

from ..data.examples import Example
from ..models.classifier import Classifier


@dataclass
class TrainBatch:
    examples: Sequence[Example]
    inputs: BatchEncoding  # tokenised examples, on the model's device
    labels: torch.Tensor
    # Each example's index in the training set [B] (the info term's queue masks an anchor's own example by it).
    indices: torch.Tensor | None = None


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor  # scalar to minimise
    logits: torch.Tensor  # clean logits of the batch, for running accuracy
    metrics: dict[str, float] = field(default_factory=dict)  # scalars for the log
    # Pooled student features the loss computed anyway ("clean", "adversarial"), for the info term.
    features: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class ModelInputs:
    """One forward's input for a perturbed batch (x_hat): what ``model(**inputs.as_kwargs())`` takes.

    ``inputs_embeds`` [B, T, H] (word embeddings; the encoder adds position and segment embeddings),
    ``attention_mask`` [B, T], ``token_type_ids`` [B, T] or None, ``position_ids`` [B, T] or None. None
    positions let the encoder number the tokens 0..T-1, which is right when x_hat has the clean text's
    token layout; an adversary whose texts change length (other-length substitutes) sets them, with the
    mask hiding absent slots.
    """

    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor | None = None
    position_ids: torch.Tensor | None = None
    # what the adversary reports for the log (e.g. the share of substitutions of another token count)
    stats: dict[str, float] = field(default_factory=dict)

    def as_kwargs(self) -> dict[str, torch.Tensor | None]:
        return {"inputs_embeds": self.inputs_embeds, "attention_mask": self.attention_mask,
                "token_type_ids": self.token_type_ids, "position_ids": self.position_ids}


class Adversary(Protocol):
    """The seam between an objective and its adversary (ASCC today; PGD- or FreeLB-style ones slot in beside it).

    ``perturb`` finds x_hat for the batch with the model's weights fixed; the returned inputs keep the
    embedding table live, so the outer loss's gradient reaches it. ``state_dict`` holds what a checkpoint
    must carry (e.g. a round counter that keys random starts).
    """

    def perturb(self, model: Classifier, batch: TrainBatch) -> ModelInputs: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class Objective(Protocol):
    def __call__(self, model: Classifier, batch: TrainBatch) -> ObjectiveOutput: ...
