"""The frozen teacher F0: a copy of the pre-trained encoder, taken before fine-tuning starts.

It is always in eval mode (no dropout), has no gradients and no optimiser
state, shares no tensor with the student (a deep copy), and is fed the CLEAN
inputs only: the teacher never sees x_hat (METHOD.md, Eq. 10).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from transformers import BatchEncoding, PreTrainedModel

from ..models.classifier import encoder_features


class FrozenTeacher(nn.Module):
    def __init__(self, encoder: PreTrainedModel, pooling: str):
        super().__init__()
        self.encoder = copy.deepcopy(encoder)
        self.pooling = pooling
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.encoder.eval()

    def train(self, mode: bool = True) -> FrozenTeacher:
        # model.train() on a parent must never switch the teacher's dropout on
        return super().train(False)

    @torch.no_grad()
    def forward(self, clean_inputs: BatchEncoding) -> torch.Tensor:
        """t = F0(x) for the clean inputs, [B, H]."""
        return encoder_features(
            self.encoder, self.pooling, clean_inputs["input_ids"], clean_inputs["attention_mask"], clean_inputs.get("token_type_ids")
        )
