"""The training loop (the paper's Algorithm 1): :meth:`Trainer.train` reads top to bottom in one screen.

For every batch: the objective computes the loss (Standard: CE; Adv-*: the
ASCC adversary finds x_hat (Eq. 8), then CE + beta KL (Eq. 9), plus PTWD or
Mixout when configured), one AdamW step follows, then one step of the learning-rate
schedule (linear warm-up, then constant: ``optim.py``). Every epoch end logs the
forgetting signal (``forgetting.py``, paper Fig. 2). At every epoch end (and every
``eval_every_steps``) the model is evaluated on dev and the best one is kept in
``best/`` (``selection.py``): by clean accuracy, or by robust accuracy under the
white-box ASCC attack for the adversarial methods. Test is evaluated once, on the
selected model (reloaded from ``best/``), at the end.

Checkpoints (``checkpoint.py``) are written at every epoch end and every
``checkpoint_every_steps``; ``train(..., resume=True)`` continues from the newest
one bit-identically: same batches, same random draws, same log.

:class:`Trainer` has torchtune's recipe seams: ``setup`` (model, objective, optimiser,
sampler, selection, resume), ``train`` (the epochs), ``train_step`` (one batch),
``evaluate_and_select``, ``save_checkpoint`` / ``load_checkpoint``, ``finish`` (test,
summary). Several processes: ``distributed.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..config import ConfigError, ExperimentConfig, ModelConfig, load_config, load_saved_config, result_free_paths, save_config, to_dict
from ..data.examples import DatasetSplits, TaskSpec
from ..data.roles import DataRecord
from ..data.splits import sample
from ..evaluation.accuracy import evaluate_accuracy
from ..models.classifier import Classifier, build_classifier
from ..models.encoder import load_encoder, load_tokenizer
from ..objectives import TrainBatch, build_objective
from ..substitutions.hull import HullBuilder
from ..substitutions.sets import load_substitutions
from .distributed import average_gradients, distributed_processes, gather_from_processes, mean_over_processes
from .checkpoint import (
    CHECKPOINT_DIR, checkpoint_name, config_changes, latest_checkpoint, load_checkpoint, prune_checkpoints, rng_state,
    save_checkpoint, set_rng_state,
)
from .forgetting import ForgettingProbe
from .log import MetricsLog, RunningMean, TensorBoardReporter
from .optim import build_optimizer, build_scheduler
from .sampler import BatchSampler
from .selection import BEST_DIR, DevEvaluator, ModelSelection

__all__ = ["BEST_DIR", "DevEvaluator", "TrainResult", "TrainState", "build_model", "seed_everything", "train"]


@dataclass
class TrainState:
    """Progress and model-selection state (saved as JSON after every evaluation, and in every checkpoint)."""

    step: int = 0
    epoch: int = 0
    best_metric: float = float("-inf")
    best_step: int = -1
    best_epoch: float = -1.0
    history: list[dict] = field(default_factory=list)


@dataclass
class TrainResult:
    output_dir: Path
    best_dev: dict
    test: dict | None
    state: TrainState
    wall_time_s: float


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    # Deterministic kernels where PyTorch has them; warn (not fail) where it does not.
    torch.use_deterministic_algorithms(True, warn_only=True)


def build_model(config: ModelConfig, task: TaskSpec, seed: int) -> Classifier:
    encoder = load_encoder(config.encoder, config.num_layers)
    tokenizer = load_tokenizer(config.encoder)
    return build_classifier(
        encoder, tokenizer, task, encoder_source=config.encoder, max_length=config.max_length,
        pooling=config.pooling, head_hidden=config.head_hidden, head_dropout=config.head_dropout,
        num_layers=config.num_layers, seed=seed,
    )


def data_fingerprint(splits: DatasetSplits) -> str:
    """SHA-256 of the training examples' ids and labels, in order (a resumed run must see the same data)."""
    digest = hashlib.sha256()
    for example in splits.train:
        digest.update(f"{example.uid}\t{example.label}\n".encode())
    return digest.hexdigest()


def check_resumable(out: Path, config: ExperimentConfig) -> None:
    """Refuse to resume a run whose configuration changed in a result field (``NOT_A_RESULT`` fields may change).

    The saved ``config.yaml`` is read as today's code reads any config (moved keys migrated, defaults of fields
    added since filled in), so that a run begun before a key moved still resumes.
    """
    saved_path = out / "config.yaml"
    if not saved_path.is_file():
        raise ConfigError(f"cannot resume: {saved_path} is missing")
    saved = to_dict(load_saved_config(saved_path))
    changes = config_changes(saved, to_dict(config), ignored=result_free_paths(ExperimentConfig))
    if changes:
        raise ConfigError(f"cannot resume {out}: the configuration changed since the run started: " + "; ".join(changes)
                          + " (resume with the run's own configuration, or start a new run without --resume)")


def _say(message: str) -> None:
    print(f"riftkit train: {message}", file=sys.stderr)


class Trainer:
    """One training run, along torchtune's recipe seams: :meth:`setup` (in the constructor), :meth:`train`
    (Algorithm 1: epochs of :meth:`train_step`), :meth:`evaluate_and_select`, :meth:`save_checkpoint`,
    :meth:`finish`. ``resume``: continue from the newest checkpoint in ``output_dir`` (if any).
    ``model`` (tests): a freshly built classifier; when resuming, its weights are replaced by the checkpoint's.
    """

    def __init__(self, config: ExperimentConfig, splits: DatasetSplits, model: Classifier | None = None,
                 data_dir: str | Path | None = None, resume: bool = False):
        self.processes = distributed_processes()
        self.rank, self.world = (self.processes.process_index, self.processes.num_processes) if self.processes else (0, 1)
        if self.world > 1 and self.rank > 0:  # only the main process writes into output_dir
            config = dataclasses.replace(config, output_dir=str(Path(config.output_dir) / f".process-{self.rank}"),
                                         train=dataclasses.replace(config.train, progress=False))
        self.config, self.cfg, self.splits = config, config.train, splits
        self.setup(model, data_dir, resume)

    # -- setup -------------------------------------------------------------------------------------
    def setup(self, model: Classifier | None, data_dir: str | Path | None, resume: bool) -> None:
        """Seeds, the output folder, the model and everything taken from the pre-trained one, the objective,
        optimiser, schedule, sampler and selection; then the checkpoint's state, or the log's first records."""
        config, cfg, splits = self.config, self.cfg, self.splits
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        seed_everything(cfg.seed)
        self.out = Path(config.output_dir)
        self.checkpoints = self.out / CHECKPOINT_DIR
        checkpoint = self._find_checkpoint() if resume else None
        if checkpoint is None and self.checkpoints.exists():
            shutil.rmtree(self.checkpoints)  # a new run: checkpoints of an earlier run in this folder must never be resumed
        self.out.mkdir(parents=True, exist_ok=True)
        save_config(config, self.out / "config.yaml")
        (self.out / "data.json").write_text(json.dumps({"summary": splits.summary(), **splits.provenance, "skipped": splits.skipped}, indent=2) + "\n")
        # The selected model keeps the data that made it, so that attacks default to its own held-out test.
        data_record = DataRecord.from_splits(config.data, splits, data_dir)

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model = (model or build_model(config.model, splits.task, cfg.seed)).to(self.device)
        needs_substitutions = cfg.method != "standard" or cfg.select_metric == "dev_robust_ascc" or cfg.eval_robust_ascc
        substitutions = load_substitutions(config.objective.substitutions, data_dir or config.data.data_dir) if needs_substitutions else None
        # Everything taken from the pre-trained model is taken now, before a checkpoint's weights are loaded:
        # the forgetting signal's theta_0 and F0 features (Fig. 2), the frozen teacher, PTWD's theta_0, Mixout's W0.
        probe = sample(splits.dev, cfg.forgetting_probe_size, seed=cfg.seed) if cfg.forgetting_probe_size else []
        self.forgetting = ForgettingProbe(model, probe, cfg.eval_batch_size)
        self.objective = objective = build_objective(cfg.method, config.objective, model, substitutions, seed=cfg.seed)
        if self.world > 1 and config.objective.adversary.warm_starts and cfg.method != "standard":
            # each process would remember its own shard's searches, and only the main process writes checkpoints
            raise ConfigError("objective.adversary.warm_starts needs one process (resume could not restore the other "
                              "processes' warm starts); set it to 0 or train in one process")
        self.evaluate_dev = DevEvaluator(config, splits, model, HullBuilder(model.tokenizer, substitutions) if substitutions else None)
        self._check_info_term()
        self.optimizer = build_optimizer(model.encoder, [model.head, *objective.task_modules()], cfg.lr, cfg.encoder_weight_decay, cfg.head_weight_decay)
        self.sampler = BatchSampler([e.label for e in splits.train], cfg.batch_size, splits.task.num_labels, cfg.balanced_batches, cfg.seed,
                                    process_index=self.rank, num_processes=self.world, label_names=splits.task.label_names)
        self.scheduler = build_scheduler(self.optimizer, cfg.epochs * len(self.sampler), cfg.warmup_ratio, cfg.warmup_start_factor)  # per batch
        self.log = MetricsLog(self.out / "metrics.jsonl")
        self.selection = ModelSelection(model, self.out / BEST_DIR, self.evaluate_dev.metric, data_record)
        self.state = TrainState()
        self.running: dict[str, RunningMean] = {}  # the epoch in progress
        self.lr = self.optimizer.param_groups[0]["lr"]
        self.start = time.time()
        if checkpoint is not None:
            self.load_checkpoint(checkpoint)
        if "tensorboard" in cfg.report_to and self.rank == 0:  # the other processes' numbers are the main one's
            self.log.reporters.append(TensorBoardReporter(self.out / "tensorboard", purge_step=self.state.step + 1 if checkpoint else None))
        if checkpoint is None:
            if resume and self.log.path.exists():
                self.log.truncate(0)  # from scratch: the log starts over too
            self.log.write("start", name=config.name, method=cfg.method, select_metric=self.evaluate_dev.metric, data=splits.summary(),
                           train_examples=len(splits.train), steps_per_epoch=len(self.sampler), device=str(self.device),
                           pooling=model.spec.pooling, pooling_asked=config.model.pooling)
            if cfg.log_forgetting_every_steps:  # the curve's starting point: 0 / 0 / cosine 1
                self.log.write("forgetting", step=0, epoch=0.0, lr=self.lr, **self.forgetting(model))

    def _find_checkpoint(self) -> dict | None:
        newest = latest_checkpoint(self.checkpoints)
        if newest is None:
            _say(f"--resume: no complete checkpoint in {self.checkpoints}; starting from scratch")
            return None
        check_resumable(self.out, self.config)
        checkpoint = load_checkpoint(newest)
        if checkpoint["trainer"]["data"] != data_fingerprint(self.splits):
            raise ConfigError(f"cannot resume {self.out}: the training examples differ from the run's (same config, other data files?)")
        _say(f"resuming from {newest} (step {checkpoint['trainer']['state']['step']})")
        return checkpoint

    def _check_info_term(self) -> None:
        info = self.objective.info
        if info is None:
            return
        if info.conditional and not self.cfg.balanced_batches:
            raise ValueError("the class-conditional info term needs train.balanced_batches: true (every class needs in-batch negatives)")
        if self.world > 1:
            if info.queue is not None:
                raise ValueError("objective.info.queue_size > 0 (the teacher-feature queue) runs on one process only")
            info.gather_candidates = gather_from_processes  # every anchor sees the whole batch's negatives

    # -- Algorithm 1 ---------------------------------------------------------------------------------
    def train(self) -> None:
        """Every epoch, every batch: x_hat, the loss, one AdamW step and one schedule step (:meth:`train_step`);
        dev evaluation and model selection at every epoch end (and every ``eval_every_steps``)."""
        cfg = self.cfg
        while self.sampler.epoch < cfg.epochs:
            epoch = self.state.epoch = self.sampler.epoch
            self.model.train()
            if self.sampler.position == 0:
                self.running = {}
            first = self.sampler.position  # > 0: resumed in the middle of this epoch
            bar = tqdm(self.sampler, total=len(self.sampler), initial=first, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not cfg.progress, leave=False)
            for batch_index, indices in enumerate(bar, start=first):
                self.train_step(indices, epoch, batch_index)
                bar.set_postfix({k: f"{self.running[k].mean:.4f}" for k in ("loss", "accuracy", "adv_accuracy", "loss_info") if k in self.running})
                self.after_step(epoch + (batch_index + 1) / len(self.sampler), mid_epoch=batch_index + 1 < len(self.sampler))
            self.log.write("train_epoch", epoch=epoch + 1, step=self.state.step, **{k: v.mean for k, v in self.running.items()}, lr=self.lr,
                           **self.forgetting(self.model))
            self.evaluate_and_select(epoch + 1.0)
            self.save_checkpoint()

    def train_step(self, indices: list[int], epoch: int, batch_index: int) -> None:
        """One optimiser step on the batch ``indices``: the objective (adversary included), backward, AdamW, schedule."""
        model, device, cfg = self.model, self.device, self.cfg
        examples = [self.splits.train[i] for i in indices]
        batch = TrainBatch(examples, model.encode_examples(examples).to(device), torch.tensor([e.label for e in examples], device=device),
                           torch.tensor(indices, device=device))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.autocast == "bf16"):
            result = self.objective(model, batch)
        if not torch.isfinite(result.loss.detach()).all():  # stop before the step: the weights and checkpoints stay good
            raise FloatingPointError(f"the training loss is {result.loss.item()} at step {self.state.step + 1} (epoch {epoch + 1}, batch {batch_index + 1}); "
                                     f"the last good checkpoint is {latest_checkpoint(self.checkpoints) or 'none (no checkpoint written yet)'}")
        self.optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        if self.world > 1:  # the gradient of the mean loss over the whole batch: every process's shard is the same size
            average_gradients(self.optimizer)
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        self.lr = self.optimizer.param_groups[0]["lr"]  # the rate this step used (every group shares it)
        self.optimizer.step()
        self.scheduler.step()
        self.state.step += 1
        accuracy = (result.logits.argmax(-1) == batch.labels).float().mean().item()
        step_metrics = {"loss": result.loss.item(), "accuracy": accuracy, **result.metrics}
        if self.world > 1:  # the whole batch's numbers in the log, not this shard's
            step_metrics = mean_over_processes(step_metrics)
        for key, value in step_metrics.items():
            self.running.setdefault(key, RunningMean()).add(value, len(indices) * self.world)

    def after_step(self, epoch_progress: float, mid_epoch: bool) -> None:
        """What runs every N steps: dev evaluation, the forgetting signal, a checkpoint (the epoch's last step is
        evaluated and saved by :meth:`train`, once the epoch is logged)."""
        cfg, step = self.cfg, self.state.step
        if cfg.eval_every_steps and step % cfg.eval_every_steps == 0 and mid_epoch:
            self.evaluate_and_select(epoch_progress)
            self.model.train()
        if cfg.log_forgetting_every_steps and step % cfg.log_forgetting_every_steps == 0:
            self.log.write("forgetting", step=step, epoch=round(epoch_progress, 4), lr=self.lr, **self.forgetting(self.model))
        if cfg.checkpoint_every_steps and step % cfg.checkpoint_every_steps == 0 and mid_epoch:
            self.save_checkpoint()

    # -- evaluate and select -------------------------------------------------------------------------
    def evaluate_and_select(self, epoch_progress: float) -> None:
        """Dev evaluation; ``best/`` is replaced when the selection metric improves (main process only: the weights
        are the same on every process)."""
        if self.rank > 0:
            return
        state = self.state
        _, values = self.evaluate_dev(self.model)
        improved = self.selection.update(state.step, epoch_progress, values)
        state.best_metric, state.best_step, state.best_epoch = self.selection.best_metric, self.selection.best_step, self.selection.best_epoch
        record = self.log.write("eval", step=state.step, epoch=round(epoch_progress, 4), **values, best=improved)
        state.history.append(record)
        (self.out / "train_state.json").write_text(json.dumps(asdict(state), indent=2) + "\n")

    # -- checkpoints ---------------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        bundle = {
            "model": self.model.state_dict(),
            "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(),
            "trainer": {
                "state": asdict(self.state), "selection": self.selection.state_dict(), "sampler": self.sampler.state_dict(),
                "running": {k: v.state_dict() for k, v in self.running.items()}, "lr": self.lr,
                "log_offset": self.log.offset(), "elapsed_s": self.log.elapsed, "data": data_fingerprint(self.splits),
            },
        }
        save_checkpoint(self.checkpoints / checkpoint_name(self.state.step), bundle)
        prune_checkpoints(self.checkpoints, self.cfg.keep_checkpoints)

    def load_checkpoint(self, checkpoint: dict) -> None:
        trainer = checkpoint["trainer"]
        self.model.load_state_dict(checkpoint["model"])
        self.objective.load_state_dict(checkpoint["objective"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.sampler.load_state_dict(trainer["sampler"])
        self.selection.load_state_dict(trainer["selection"])
        self.selection.recover()
        self.state = TrainState(**trainer["state"])
        self.running = {k: RunningMean.from_state(v) for k, v in trainer["running"].items()}
        self.lr = trainer["lr"]
        self.log.truncate(trainer["log_offset"])  # records written after the checkpoint are written again
        self.log.elapsed = trainer["elapsed_s"]
        self.start = time.time() - trainer["elapsed_s"]
        set_rng_state(checkpoint["rng"])  # last: building the objective drew from the generators

    # -- finish ----------------------------------------------------------------------------------------
    def finish(self, evaluate_test: bool = True) -> TrainResult:
        """The selected model (best on dev), reloaded from ``best/``, is the result; test is looked at once, here."""
        out, cfg, state = self.out, self.cfg, self.state
        if self.rank > 0:  # the main process has the selected model and the summary; this process's copy goes
            self.processes.wait_for_everyone()
            shutil.rmtree(out, ignore_errors=True)
            return TrainResult(out, {}, None, state, time.time() - self.start)
        self.selection.restore_best()
        best_dev = self._best_dev()
        test = self._test() if evaluate_test and self.splits.test else None
        wall = time.time() - self.start
        self.log.write("end", best_dev=best_dev, test=test, wall_time_s=round(wall, 1))
        self.log.close()
        summary = {"name": self.config.name, "method": cfg.method, "best_dev": best_dev, "test": test, "wall_time_s": round(wall, 1),
                   "data": self.splits.summary(), "best_model": str(out / BEST_DIR)}
        if self.world > 1:
            summary["processes"] = self.world
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if self.world > 1:
            self.processes.wait_for_everyone()
        return TrainResult(out, best_dev, test, state, wall)

    def _best_dev(self) -> dict:
        state, metric = self.state, self.evaluate_dev.metric
        best_dev = {metric: state.best_metric, "selected_by": metric, "step": state.best_step, "epoch": state.best_epoch}
        best_record = next(r for r in state.history if r["step"] == state.best_step and r["best"])
        best_dev["accuracy"] = best_record["dev_accuracy"]
        best_dev["margin_median"] = best_record["dev_margin_median"]  # signed: p(true) - max p(other), median over dev
        # robust accuracy is measured on a seeded subset of dev: keep the clean accuracy on that same subset beside it
        for key in ("dev_robust_ascc", "dev_robust_n", "dev_robust_subset_accuracy"):
            if key in best_record:
                best_dev[key] = best_record[key]
        return best_dev

    def _test(self) -> dict:
        cfg = self.cfg
        test = evaluate_accuracy(self.model, self.splits.test, cfg.eval_batch_size)
        if self.evaluate_dev.with_robust:
            robust = self.evaluate_dev.robust(self.model, sample(self.splits.test, cfg.select_max_examples, seed=cfg.seed))
            test["robust_ascc"], test["robust_n"] = robust["robust_accuracy"], robust["n"]
            test["robust_subset_accuracy"] = robust["vanilla_accuracy"]  # clean accuracy on the robust subset
        return test


def train(config: ExperimentConfig, splits: DatasetSplits, model: Classifier | None = None, evaluate_test: bool = True,
          data_dir: str | Path | None = None, resume: bool = False) -> TrainResult:
    """Fine-tune on ``splits.train``, select on dev, evaluate the selected model on test once (:class:`Trainer`)."""
    trainer = Trainer(config, splits, model, data_dir, resume)
    trainer.train()
    return trainer.finish(evaluate_test)
