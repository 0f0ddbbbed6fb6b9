"""Any Hugging Face sequence classifier as riftkit sees its own models: attacked, evaluated and predicted the same way.

A local ``AutoModelForSequenceClassification`` folder (``save_pretrained``; a model fine-tuned with the
``transformers`` Trainer) or a Hub name (with internet; the resolved commit is recorded). The model sees
riftkit's words (:func:`riftkit.data.words`) through its own tokenizer, exactly as riftkit's own models do,
so that the attacks substitute the same words in every model; PWWS and Genetic query it in batches, and
the white-box ASCC attack reaches it through its input embeddings.

Safety: no model code is ever run (``trust_remote_code=False``: a folder whose class lives in its own
Python files is refused). Weights come from safetensors files, or, for older checkpoints that ship only
``pytorch_model.bin`` (most ``textattack/*`` classifiers on the Hub), through ``transformers``' loader,
which unpickles them with ``torch.load(weights_only=True)``: tensors only, no code. Refusing ``.bin`` would
lock out the first models a user of an attack tool brings; loading it this way costs no safety.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..config import ConfigError
from ..data.examples import TaskSpec
from .classifier import ClassifierSpec
from .encoder import SAFE_LOADING, EncoderNotFoundError, load_tokenizer, quiet_transformers
from .words import WordLevelClassifier, model_inputs

GENERIC_LABEL = re.compile(r"^LABEL_\d+$")
LABEL_MAP_EXAMPLE = "data.label_map='{LABEL_0: negative, LABEL_1: positive}'"
NO_LENGTH_LIMIT = 1_000_000  # tokenizers without a known limit report model_max_length = 1e30


class HFClassifier(WordLevelClassifier):
    """A ``transformers`` sequence classifier with its logits in the data's label order.

    ``label_order[i]`` is the model's output index of the data's label ``i`` (:func:`align_labels`).
    ``source``: what was loaded, for the attack folder's settings (``name``, ``revision`` on the Hub, ``class``).
    """

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, spec: ClassifierSpec,
                 label_order: Sequence[int], source: dict):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.spec = spec
        self.source = source
        self.register_buffer("label_order", torch.tensor(list(label_order), dtype=torch.long), persistent=False)

    @property
    def word_embeddings(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    def aligned(self, task: TaskSpec, label_map: Mapping[str, str] | None = None) -> HFClassifier:
        """The same model (weights shared) with its logits in ``task``'s label order (:func:`align_labels`)."""
        order = align_labels(self.source["model_labels"], task.label_names, label_map, model=self.source["name"])
        return self._twin(order, task=task.name, task_kind=task.kind, label_names=list(task.label_names))

    def reading(self, kind: str) -> HFClassifier:
        """The same model (weights shared, labels in the same order) reading ``kind`` inputs: "single" or "pair"."""
        return self._twin(self.label_order.tolist(), task_kind=kind)

    def _twin(self, order: Sequence[int], **spec_changes) -> HFClassifier:
        spec = ClassifierSpec(**{**self.spec.to_dict(), **spec_changes})
        return HFClassifier(self.model, self.tokenizer, spec, order, self.source).to(self.device).train(self.training)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        return_features: bool = False,
    ) -> torch.Tensor:
        """Logits [B, C] in the data's label order, from token ids or from input embeddings [B, T, H]."""
        if return_features:
            raise ValueError("a Hugging Face classifier has no riftkit feature s = F(x); fine-tune its encoder instead "
                             "(model.encoder=<its folder or name>)")
        inputs = model_inputs(input_ids, attention_mask, token_type_ids, inputs_embeds, position_ids)
        return self.model(**inputs).logits.index_select(-1, self.label_order)


def align_labels(model_labels: Sequence[str], data_labels: Sequence[str], label_map: Mapping[str, str] | None,
                 model: str = "the model") -> list[int]:
    """The model's output index for each of the data's labels: ``order[i]`` holds data label ``i``.

    Without ``label_map``, names are matched case-insensitively. ``label_map`` maps the model's label
    names to the data's (``data.label_map``). Raises ConfigError, naming both label lists, when the
    model's labels are generic (``LABEL_0``, ...) and no map is given, or when the labels cannot be
    aligned one to one.
    """
    model_labels, data_labels = [str(x) for x in model_labels], [str(x) for x in data_labels]
    both = f"the model's labels {model_labels}, the data's {data_labels}"
    if len(model_labels) != len(data_labels):
        raise ConfigError(f"{model} has {len(model_labels)} labels and the data {len(data_labels)}: {both}")
    if label_map:
        unknown = [k for k in label_map if k not in model_labels]
        if unknown:
            raise ConfigError(f"data.label_map names {unknown[0]!r}, which is not a label of {model}: {both}")
        mapped = {str(label_map.get(name, name)).lower(): index for index, name in enumerate(model_labels)}
    elif all(GENERIC_LABEL.match(name) for name in model_labels):
        raise ConfigError(f"{model} has generic label names, so riftkit cannot tell which is which: {both}. "
                          f"Map them explicitly, e.g. {LABEL_MAP_EXAMPLE}")
    else:
        mapped = {name.lower(): index for index, name in enumerate(model_labels)}
    missing = [name for name in data_labels if name.lower() not in mapped]
    if missing or len(mapped) != len(model_labels):
        raise ConfigError(f"cannot align the labels of {model} with the data's ({missing[0] if missing else 'a label twice'!r} "
                          f"has no partner): {both}. Map them with data.label_map, e.g. {LABEL_MAP_EXAMPLE}")
    return [mapped[name.lower()] for name in data_labels]


def max_length_of(tokenizer: PreTrainedTokenizerBase, config) -> int:
    """The longest input the model takes, in tokens: the tokenizer's limit (what ``pipeline(truncation=True)`` cuts
    at), else the model's position table less RoBERTa-style offsets."""
    limit = getattr(tokenizer, "model_max_length", None)
    if limit is not None and limit < NO_LENGTH_LIMIT:
        return int(limit)
    positions = getattr(config, "max_position_embeddings", 512)
    pad = getattr(config, "pad_token_id", None)
    offset = pad + 1 if config.model_type in ("roberta", "xlm-roberta", "camembert") and pad is not None else 0
    return int(positions - offset)


def load_hf_classifier(source: str, task: TaskSpec | None = None, label_map: Mapping[str, str] | None = None,
                       revision: str | None = None, device: str = "cpu") -> HFClassifier:
    """Load a sequence classifier (folder or Hub name) in eval mode, its logits in ``task``'s label order.

    ``task``: the data's task (labels aligned by :func:`align_labels`); None (``riftkit predict``) keeps
    the model's own labels and order, single-text. Raises EncoderNotFoundError (neither a folder nor
    reachable on the Hub), ConfigError (a regression or multi-label model, remote code, no fast
    tokenizer, labels that cannot be aligned).
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    local = Path(source).is_dir()
    kwargs = dict(SAFE_LOADING, **({"revision": revision} if revision else {}))
    try:
        with quiet_transformers():
            config = AutoConfig.from_pretrained(source, **kwargs)
    except OSError as err:
        where = f"{source} has no readable config.json" if local else (
            f"{source!r} is not a local folder, and the Hugging Face Hub could not provide it (offline, or no such model)")
        raise EncoderNotFoundError(f"cannot load the classifier: {where}: {str(err).splitlines()[0][:300]}") from None
    except ValueError as err:  # transformers: "... requires you to execute the configuration file ..." / unknown model type
        raise ConfigError(f"{source}: riftkit never runs a model's own code, and this model needs it "
                          f"(or is of a type this transformers does not know): {str(err).splitlines()[0][:300]}") from None
    if getattr(config, "problem_type", None) == "regression" or config.num_labels < 2:
        raise ConfigError(f"{source}: a regression model (num_labels={config.num_labels}); riftkit attacks classifiers "
                          "with two or more labels")
    if getattr(config, "problem_type", None) == "multi_label_classification":
        raise ConfigError(f"{source}: a multi-label classifier; riftkit attacks single-label classifiers")
    tokenizer = load_tokenizer(source, **({"revision": revision} if revision else {}))
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"{source}: the tokenizer {type(tokenizer).__name__} is not a fast (Rust) tokenizer; riftkit maps "
                          "subword tokens back to words with word_ids(), which only fast tokenizers give. Save the model "
                          "with a tokenizer.json (AutoTokenizer.from_pretrained(..., use_fast=True).save_pretrained(folder))")
    try:
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(source, **kwargs)
    except Exception as err:  # torch.load(weights_only=True) refusing a pickle that holds code raises UnpicklingError
        if type(err).__name__ != "UnpicklingError":
            raise ConfigError(f"{source}: cannot load a sequence classifier: {str(err).splitlines()[0][:300]}") from None
        raise ConfigError(f"{source}: pytorch_model.bin holds more than tensors, so it is refused: riftkit loads .bin weights only "
                          f"with torch.load(weights_only=True), which never runs code ({str(err).splitlines()[-1][:200]}). "
                          "Convert a checkpoint you trust to safetensors (model.save_pretrained(folder) in transformers >= 5)") from None
    model_labels = [config.id2label.get(i, f"LABEL_{i}") for i in range(config.num_labels)]
    name = Path(source).name if local else source
    if task is None:
        task, order = TaskSpec(name, "single", tuple(model_labels)), list(range(len(model_labels)))
    else:
        order = align_labels(model_labels, task.label_names, label_map, model=source)
    spec = ClassifierSpec(task=task.name, task_kind=task.kind, label_names=list(task.label_names), encoder_source=source,
                          num_layers=None, max_length=max_length_of(tokenizer, config), pooling="model", head_hidden=0)
    record = {"kind": "transformers", "name": str(Path(source).resolve()) if local else source, "class": type(model).__name__,
              "model_labels": model_labels}
    if not local:
        record["revision"] = getattr(config, "_commit_hash", None) or revision
    return HFClassifier(model, tokenizer, spec, order, record).to(device).eval()
