"""Model selection on dev: the dev evaluator, and the "is this better? then save best/" rule.

The loop calls :meth:`ModelSelection.update` after every dev evaluation; the selected
model lives on disk only (``<output_dir>/best/``, written by
:func:`riftkit.models.io.save_classifier`), and :meth:`ModelSelection.restore_best`
loads its weights back into the training model at the end, before test is looked at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from safetensors.torch import load_file

from ..attacks.ascc import ASCCAttack, robust_accuracy
from ..config import ExperimentConfig
from ..data.examples import DatasetSplits, Example
from ..data.roles import DataRecord
from ..data.splits import sample
from ..evaluation.accuracy import evaluate_accuracy
from ..models.classifier import Classifier
from ..models.io import ENCODER_DIR, HEAD_FILE, save_classifier
from ..substitutions.hull import HullBuilder

BEST_DIR = "best"


class DevEvaluator:
    """Clean dev accuracy, and robust accuracy under ASCC when selecting by it."""

    def __init__(self, config: ExperimentConfig, splits: DatasetSplits, model: Classifier, hulls: HullBuilder | None):
        cfg = config.train
        metric = cfg.select_metric
        if metric == "auto":
            metric = "dev_accuracy" if config.train.method == "standard" else "dev_robust_ascc"
        self.with_robust = metric == "dev_robust_ascc" or cfg.eval_robust_ascc
        if self.with_robust and hulls is None:
            raise ValueError("robust accuracy under ASCC needs a substitution set")
        self.metric, self.config, self.hulls = metric, cfg, hulls
        self.search = config.attack.ascc  # the evaluation attack's section: selection measures what `riftkit attack` does
        self.dev = splits.dev
        self.robust_dev = sample(splits.dev, cfg.select_max_examples, seed=cfg.seed)

    def robust(self, model: Classifier, examples: list[Example]) -> dict:
        attack = ASCCAttack.from_config(model, self.hulls, self.search, seed=self.config.seed)
        return robust_accuracy(attack.attack(examples))

    def __call__(self, model: Classifier) -> tuple[float, dict]:
        values = {}
        clean = evaluate_accuracy(model, self.dev, self.config.eval_batch_size)
        values["dev_accuracy"], values["dev_loss"] = clean["accuracy"], clean["loss"]
        # the signed margin p(true) - max p(other): how far the model is from flipping (issue 24's margin collapse)
        values["dev_margin_median"], values["dev_margin_mean"] = clean["margin_median"], clean["margin_mean"]
        if self.with_robust:
            robust = self.robust(model, self.robust_dev)
            values["dev_robust_ascc"] = robust["robust_accuracy"]
            values["dev_robust_n"] = robust["n"]
            values["dev_robust_subset_accuracy"] = robust["vanilla_accuracy"]  # clean accuracy on the same subset
        return values[self.metric], values


class ModelSelection:
    """Keeps the best dev value seen so far and writes its model to ``folder`` (``best/``) when it improves.

    The first evaluation reaching the best value is kept (strictly greater replaces). ``best_metric``,
    ``best_step`` and ``best_epoch`` are plain attributes, so that a checkpoint carries them.

    ``best/`` is replaced atomically: the new model is written to a temporary folder beside it, then
    swapped in by renames, so that a kill while saving leaves the previous best model (see :meth:`recover`).
    """

    def __init__(self, model: Classifier, folder: str | Path, metric: str, data_record: DataRecord | None = None):
        self.model, self.folder, self.metric, self.data_record = model, Path(folder), metric, data_record
        self.best_metric = float("-inf")
        self.best_step = -1
        self.best_epoch = -1.0

    @property
    def _temporary(self) -> Path:
        return self.folder.with_name(f".tmp-{self.folder.name}")

    @property
    def _previous(self) -> Path:
        return self.folder.with_name(f".old-{self.folder.name}")

    def update(self, step: int, epoch_progress: float, values: dict) -> bool:
        """Record one dev evaluation; save the model and return True when it is the best so far."""
        metric = values[self.metric]
        if not metric > self.best_metric:
            return False
        self.best_metric, self.best_step, self.best_epoch = metric, step, epoch_progress
        self.save(extra={"selected_by": self.metric, "dev": values, "step": step, "epoch": epoch_progress})
        return True

    def save(self, extra: dict) -> None:
        temporary, previous = self._temporary, self._previous
        shutil.rmtree(temporary, ignore_errors=True)
        save_classifier(self.model, temporary, extra=extra)
        if self.data_record is not None:  # the data that made the model: attacks default to its own held-out test
            self.data_record.save(temporary)
        _fsync_tree(temporary)
        if self.folder.exists():
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(self.folder, previous)
        os.replace(temporary, self.folder)
        shutil.rmtree(previous, ignore_errors=True)

    def recover(self) -> None:
        """After a kill: put back a best model left aside during a swap, drop a half-written one."""
        if not self.folder.exists() and self._previous.exists():
            os.replace(self._previous, self.folder)
        shutil.rmtree(self._temporary, ignore_errors=True)
        shutil.rmtree(self._previous, ignore_errors=True)

    def state_dict(self) -> dict:
        return {"best_metric": self.best_metric, "best_step": self.best_step, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.best_metric, self.best_step, self.best_epoch = state["best_metric"], state["best_step"], state["best_epoch"]

    def restore_best(self) -> bool:
        """Load the weights saved in ``best/`` into the model (in place); False when nothing was saved."""
        if self.best_step < 0 or not (self.folder / HEAD_FILE).is_file():
            return False
        encoder = self.folder / ENCODER_DIR
        weights = {}
        for path in sorted(encoder.glob("*.safetensors")):
            weights.update(load_file(path))
        _load_plain_state_dict(self.model.encoder, weights)
        self.model.head.load_state_dict(load_file(self.folder / HEAD_FILE))
        return True


def _load_plain_state_dict(module, weights: dict) -> None:
    """Load a state dict saved under plain names (``models.io.plain_state_dict``) into ``module``.

    A Mixout-parametrized weight takes the saved learned weight as its ``...parametrizations.weight.original``.
    """
    parameters = {name for name, _ in module.named_parameters()}
    state = {}
    for key in module.state_dict():
        if ".parametrizations." in key:
            if not key.endswith(".original"):
                continue
            head, _, rest = key.partition(".parametrizations.")
            plain = f"{head}.{rest.split('.')[0]}"
        else:
            plain = key
        if plain in weights:
            state[key] = weights[plain]
        elif key in parameters:  # a buffer save_pretrained left out (constant position ids) keeps its value
            raise KeyError(f"best model: no saved weight for {plain!r}")
    unexpected = module.load_state_dict(state, strict=False).unexpected_keys
    if unexpected:
        raise KeyError(f"best model: unexpected weights {unexpected}")


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
