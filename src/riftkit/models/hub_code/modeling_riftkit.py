"""A riftkit classifier for ``transformers``: a pre-trained encoder, pooled, and riftkit's task head.

Shipped by ``riftkit export`` so that ``AutoModelForSequenceClassification`` and ``pipeline`` load the model
(``trust_remote_code=True``): riftkit's head, Linear(H, 256) - ReLU - Linear(256, C) on the pooled feature
(RIFT, NeurIPS 2021; riftkit's METHOD.md), is not one that a standard transformers class holds.
Only transformers and torch are imported; the encoder is any architecture ``AutoModel`` knows.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class RiftkitConfig(PretrainedConfig):
    model_type = "riftkit"

    def __init__(self, encoder: dict | None = None, pooling: str = "pooler", head_hidden: int = 256, riftkit: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = dict(encoder or {})  # the encoder's own config (model_type included)
        self.pooling = pooling  # "pooler", "cls" or "mean"
        self.head_hidden = head_hidden
        self.riftkit = dict(riftkit or {})  # riftkit's description of the model (format version, spec)


class RiftkitForSequenceClassification(PreTrainedModel):
    config_class = RiftkitConfig
    base_model_prefix = "encoder"

    def __init__(self, config: RiftkitConfig):
        super().__init__(config)
        settings = dict(config.encoder)
        encoder_config = AutoConfig.for_model(settings.pop("model_type"), **settings)
        self.encoder = AutoModel.from_config(encoder_config)
        hidden = encoder_config.hidden_size
        self.head = nn.Sequential(nn.Identity(), nn.Linear(hidden, config.head_hidden), nn.ReLU(),
                                  nn.Linear(config.head_hidden, config.num_labels))
        self.post_init()

    def _init_weights(self, module):  # every weight comes from model.safetensors
        pass

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                labels=None, **kwargs) -> SequenceClassifierOutput:
        inputs = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        if position_ids is not None:
            inputs["position_ids"] = position_ids
        if inputs_embeds is not None:
            inputs["inputs_embeds"] = inputs_embeds
        else:
            inputs["input_ids"] = input_ids
        out = self.encoder(**inputs)
        if self.config.pooling == "pooler":
            pooled = out.pooler_output
        elif self.config.pooling == "cls":
            pooled = out.last_hidden_state[:, 0]
        else:
            hidden = out.last_hidden_state
            mask = (attention_mask if attention_mask is not None else torch.ones(hidden.shape[:2], device=hidden.device))
            mask = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        logits = self.head(pooled)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)
