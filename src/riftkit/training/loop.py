"""The training loop (the paper's Algorithm 1), one screen, top to bottom.

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
import yaml
from tqdm.auto import tqdm

from ..config import ConfigError, ExperimentConfig, ModelConfig, read_yaml_mapping, save_config, to_dict
from ..data.examples import DatasetSplits, TaskSpec
from ..data.roles import DataRecord
from ..data.splits import sample
from ..evaluation.accuracy import evaluate_accuracy
from ..models.classifier import Classifier, build_classifier
from ..models.encoder import load_encoder, load_tokenizer
from ..objectives import TrainBatch, build_objective
from ..substitutions.hull import HullBuilder
from ..substitutions.sets import load_substitutions
from .checkpoint import (
    CHECKPOINT_DIR, checkpoint_name, config_changes, latest_checkpoint, load_checkpoint, prune_checkpoints, rng_state,
    save_checkpoint, set_rng_state,
)
from .forgetting import ForgettingProbe
from .log import MetricsLog, RunningMean
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
    """Refuse to resume a run whose configuration changed (``train.progress``, ``train.num_threads`` may)."""
    saved_path = out / "config.yaml"
    if not saved_path.is_file():
        raise ConfigError(f"cannot resume: {saved_path} is missing")
    current = yaml.safe_load(yaml.safe_dump(to_dict(config), sort_keys=False))  # as the saved file has it
    changes = config_changes(read_yaml_mapping(saved_path), current)
    if changes:
        raise ConfigError(f"cannot resume {out}: the configuration changed since the run started: " + "; ".join(changes)
                          + " (resume with the run's own configuration, or start a new run without --resume)")


def _say(message: str) -> None:
    print(f"riftkit train: {message}", file=sys.stderr)


def train(
    config: ExperimentConfig,
    splits: DatasetSplits,
    model: Classifier | None = None,
    evaluate_test: bool = True,
    data_dir: str | Path | None = None,
    resume: bool = False,
) -> TrainResult:
    """Fine-tune and select on dev; ``resume``: continue from the newest checkpoint in ``output_dir`` (if any).

    ``model`` (tests): a freshly built classifier; when resuming, its weights are replaced by the checkpoint's.
    """
    cfg = config.train
    processes = distributed_processes()
    rank, world = (processes.process_index, processes.num_processes) if processes else (0, 1)
    if world > 1 and rank > 0:
        # Every process runs this same loop on its shard of each batch, with gradients averaged over all of
        # them, so their weights stay identical; only the main process writes into output_dir.
        config = dataclasses.replace(config, output_dir=str(Path(config.output_dir) / f".process-{rank}"),
                                     train=dataclasses.replace(cfg, progress=False))
        cfg = config.train
    for key in ("checkpoint_every_steps", "log_forgetting_every_steps", "forgetting_probe_size"):
        if getattr(cfg, key) < 0:
            raise ValueError(f"train.{key} must be >= 0, got {getattr(cfg, key)}")
    if cfg.keep_checkpoints < 1:
        raise ValueError(f"train.keep_checkpoints must be >= 1, got {cfg.keep_checkpoints}")
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    out = Path(config.output_dir)
    checkpoints = out / CHECKPOINT_DIR
    checkpoint = None
    if resume:
        newest = latest_checkpoint(checkpoints)
        if newest is None:
            _say(f"--resume: no complete checkpoint in {checkpoints}; starting from scratch")
        else:
            check_resumable(out, config)
            checkpoint = load_checkpoint(newest)
            if checkpoint["trainer"]["data"] != data_fingerprint(splits):
                raise ConfigError(f"cannot resume {out}: the training examples differ from the run's (same config, other data files?)")
            _say(f"resuming from {newest} (step {checkpoint['trainer']['state']['step']})")
    if checkpoint is None and checkpoints.exists():
        shutil.rmtree(checkpoints)  # a new run: checkpoints of an earlier run in this folder must never be resumed
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    (out / "data.json").write_text(json.dumps({"summary": splits.summary(), **splits.provenance, "skipped": splits.skipped}, indent=2) + "\n")
    # The selected model keeps the data that made it, so that attacks default to its own held-out test.
    data_record = DataRecord.from_splits(config.data, splits, data_dir)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = (model or build_model(config.model, splits.task, cfg.seed)).to(device)
    needs_substitutions = cfg.method != "standard" or cfg.select_metric == "dev_robust_ascc" or cfg.eval_robust_ascc
    substitutions = load_substitutions(config.objective.substitutions, data_dir or config.data.data_dir) if needs_substitutions else None
    # Everything taken from the pre-trained model is taken now, before a checkpoint's weights are loaded:
    # the forgetting signal's theta_0 and F0 features (Fig. 2), the frozen teacher, PTWD's theta_0, Mixout's W0.
    forgetting = ForgettingProbe(model, sample(splits.dev, cfg.forgetting_probe_size, seed=cfg.seed) if cfg.forgetting_probe_size else [], cfg.eval_batch_size)
    objective = build_objective(cfg.method, config.objective, model, substitutions, seed=cfg.seed)
    hulls = HullBuilder(model.tokenizer, substitutions, config.objective.max_candidates) if substitutions else None
    evaluate_dev = DevEvaluator(config, splits, model, hulls)
    if objective.info is not None and objective.info.conditional and not cfg.balanced_batches:
        raise ValueError("the class-conditional info term needs train.balanced_batches: true (every class needs in-batch negatives)")
    if objective.info is not None and world > 1:
        if objective.info.queue is not None:
            raise ValueError("model.info_queue_size > 0 (the teacher-feature queue) runs on one process only")
        objective.info.gather_candidates = gather_from_processes  # every anchor sees the whole batch's negatives
    optimizer = build_optimizer(model.encoder, [model.head, *objective.task_modules()], cfg.lr, cfg.encoder_weight_decay, cfg.head_weight_decay)
    train_set = splits.train
    sampler = BatchSampler([e.label for e in train_set], cfg.batch_size, splits.task.num_labels, cfg.balanced_batches, cfg.seed,
                           process_index=rank, num_processes=world)
    scheduler = build_scheduler(optimizer, cfg.epochs * len(sampler), cfg.warmup_ratio, cfg.warmup_start_factor)  # stepped per batch
    log = MetricsLog(out / "metrics.jsonl")
    selection = ModelSelection(model, out / BEST_DIR, evaluate_dev.metric, data_record)
    state = TrainState()
    running: dict[str, RunningMean] = {}  # the epoch in progress
    lr = optimizer.param_groups[0]["lr"]
    start = time.time()

    if checkpoint is not None:
        trainer = checkpoint["trainer"]
        model.load_state_dict(checkpoint["model"])
        objective.load_state_dict(checkpoint["objective"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        sampler.load_state_dict(trainer["sampler"])
        selection.load_state_dict(trainer["selection"])
        selection.recover()
        state = TrainState(**trainer["state"])
        running = {k: RunningMean.from_state(v) for k, v in trainer["running"].items()}
        lr = trainer["lr"]
        log.truncate(trainer["log_offset"])  # records written after the checkpoint are written again
        log.elapsed = trainer["elapsed_s"]
        start = time.time() - trainer["elapsed_s"]
        set_rng_state(checkpoint["rng"])  # last: building the objective above drew from the generators
        del checkpoint
    else:
        if resume and log.path.exists():
            log.truncate(0)  # from scratch: the log starts over too
        log.write("start", name=config.name, method=cfg.method, select_metric=evaluate_dev.metric, data=splits.summary(),
                  train_examples=len(train_set), steps_per_epoch=len(sampler), device=str(device),
                  pooling=model.spec.pooling, pooling_asked=config.model.pooling)
        if cfg.log_forgetting_every_steps:  # the curve's starting point: 0 / 0 / cosine 1
            log.write("forgetting", step=0, epoch=0.0, lr=lr, **forgetting(model))

    def evaluate_and_select(epoch_progress: float) -> None:
        if rank > 0:  # the main process evaluates and selects; the weights are the same on every process
            return
        _, values = evaluate_dev(model)
        improved = selection.update(state.step, epoch_progress, values)
        state.best_metric, state.best_step, state.best_epoch = selection.best_metric, selection.best_step, selection.best_epoch
        record = log.write("eval", step=state.step, epoch=round(epoch_progress, 4), **values, best=improved)
        state.history.append(record)
        (out / "train_state.json").write_text(json.dumps(asdict(state), indent=2) + "\n")

    def save() -> None:
        bundle = {
            "model": model.state_dict(),
            "objective": objective.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_state(),
            "trainer": {
                "state": asdict(state), "selection": selection.state_dict(), "sampler": sampler.state_dict(),
                "running": {k: v.state_dict() for k, v in running.items()}, "lr": lr,
                "log_offset": log.offset(), "elapsed_s": log.elapsed, "data": data_fingerprint(splits),
            },
        }
        save_checkpoint(checkpoints / checkpoint_name(state.step), bundle)
        prune_checkpoints(checkpoints, cfg.keep_checkpoints)

    while sampler.epoch < cfg.epochs:
        epoch = state.epoch = sampler.epoch
        model.train()
        if sampler.position == 0:
            running = {}
        first = sampler.position  # > 0: resumed in the middle of this epoch
        bar = tqdm(sampler, total=len(sampler), initial=first, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not cfg.progress, leave=False)
        for batch_index, indices in enumerate(bar, start=first):
            examples = [train_set[i] for i in indices]
            batch = TrainBatch(examples, model.encode_examples(examples).to(device), torch.tensor([e.label for e in examples], device=device),
                               torch.tensor(indices, device=device))

            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.autocast == "bf16"):
                result = objective(model, batch)
            if not torch.isfinite(result.loss.detach()).all():  # stop before the step: the weights and checkpoints stay good
                raise FloatingPointError(f"the training loss is {result.loss.item()} at step {state.step + 1} (epoch {epoch + 1}, batch {batch_index + 1}); "
                                         f"the last good checkpoint is {latest_checkpoint(checkpoints) or 'none (no checkpoint written yet)'}")
            optimizer.zero_grad(set_to_none=True)
            result.loss.backward()
            if world > 1:  # the gradient of the mean loss over the whole batch: every process's shard is the same size
                average_gradients(optimizer)
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            lr = optimizer.param_groups[0]["lr"]  # the rate this step used (every group shares it)
            optimizer.step()
            scheduler.step()
            state.step += 1

            accuracy = (result.logits.argmax(-1) == batch.labels).float().mean().item()
            step_metrics = {"loss": result.loss.item(), "accuracy": accuracy, **result.metrics}
            if world > 1:  # the whole batch's numbers in the log, not this shard's
                step_metrics = mean_over_processes(step_metrics)
            for key, value in step_metrics.items():
                running.setdefault(key, RunningMean()).add(value, len(indices) * world)
            bar.set_postfix({k: f"{running[k].mean:.4f}" for k in ("loss", "accuracy", "adv_accuracy", "loss_info") if k in running})
            mid_epoch = batch_index + 1 < len(sampler)
            if cfg.eval_every_steps and state.step % cfg.eval_every_steps == 0 and mid_epoch:
                evaluate_and_select(epoch + (batch_index + 1) / len(sampler))
                model.train()
            if cfg.log_forgetting_every_steps and state.step % cfg.log_forgetting_every_steps == 0:
                log.write("forgetting", step=state.step, epoch=round(epoch + (batch_index + 1) / len(sampler), 4), lr=lr, **forgetting(model))
            if cfg.checkpoint_every_steps and state.step % cfg.checkpoint_every_steps == 0 and mid_epoch:
                save()  # (the epoch's last step is saved below, once the epoch is logged and evaluated)
        log.write("train_epoch", epoch=epoch + 1, step=state.step, **{k: v.mean for k, v in running.items()}, lr=lr, **forgetting(model))
        evaluate_and_select(epoch + 1.0)
        save()

    if rank > 0:  # the main process has the selected model and the summary; this process's copy goes
        processes.wait_for_everyone()
        shutil.rmtree(out, ignore_errors=True)
        return TrainResult(out, {}, None, state, time.time() - start)
    # The selected model (best on dev) is the result, reloaded from best/; test is looked at once, here.
    selection.restore_best()
    best_dev = {evaluate_dev.metric: state.best_metric, "selected_by": evaluate_dev.metric, "step": state.best_step, "epoch": state.best_epoch}
    best_record = next(r for r in state.history if r["step"] == state.best_step and r["best"])
    best_dev["accuracy"] = best_record["dev_accuracy"]
    # robust accuracy is measured on a seeded subset of dev: keep the clean accuracy on that same subset beside it
    for key in ("dev_robust_ascc", "dev_robust_n", "dev_robust_subset_accuracy"):
        if key in best_record:
            best_dev[key] = best_record[key]
    test = None
    if evaluate_test and splits.test:
        test = evaluate_accuracy(model, splits.test, cfg.eval_batch_size)
        if evaluate_dev.with_robust:
            robust = evaluate_dev.robust(model, sample(splits.test, cfg.select_max_examples, seed=cfg.seed))
            test["robust_ascc"], test["robust_n"] = robust["robust_accuracy"], robust["n"]
            test["robust_subset_accuracy"] = robust["vanilla_accuracy"]  # clean accuracy on the robust subset
    wall = time.time() - start
    log.write("end", best_dev=best_dev, test=test, wall_time_s=round(wall, 1))
    summary = {"name": config.name, "method": cfg.method, "best_dev": best_dev, "test": test, "wall_time_s": round(wall, 1), "data": splits.summary(), "best_model": str(out / BEST_DIR)}
    if world > 1:
        summary["processes"] = world
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if world > 1:
        processes.wait_for_everyone()
    return TrainResult(out, best_dev, test, state, wall)


def distributed_processes():
    """Accelerate's view of the processes when launched as several (``accelerate launch``, torchrun), else None."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())  # CPU processes talk over gloo


def average_gradients(optimizer: torch.optim.Optimizer) -> None:
    """All-reduce every gradient to its mean over the processes (what DistributedDataParallel does, without a wrapper).

    The gradients travel as one flat buffer: one collective per step, not one per parameter tensor.
    """
    from accelerate.utils import reduce

    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return
    flat = reduce(torch.cat([g.reshape(-1) for g in grads]), reduction="mean")
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def gather_from_processes(features: torch.Tensor, ids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Every process's rows, this process's first; gradients flow back to each process's own rows.

    ``torch.distributed.nn.functional.all_gather`` sums the gradients of a row over the processes in
    backward; with the gradients then averaged over processes, the update is the one-process one.
    Needs the same number of rows on every process (class-balanced shards have it).
    """
    import torch.distributed as dist
    from torch.distributed.nn.functional import all_gather

    rank = dist.get_rank()
    parts = list(all_gather(features))
    ordered = [parts[rank]] + [p for i, p in enumerate(parts) if i != rank]
    gathered_ids = None
    if ids is not None:
        id_parts = [torch.empty_like(ids) for _ in parts]
        dist.all_gather(id_parts, ids.contiguous())
        gathered_ids = torch.cat([id_parts[rank]] + [p for i, p in enumerate(id_parts) if i != rank])
    return torch.cat(ordered), gathered_ids


def mean_over_processes(values: dict[str, float]) -> dict[str, float]:
    from accelerate.utils import reduce

    keys = sorted(values)
    means = reduce(torch.tensor([float(values[k]) for k in keys], dtype=torch.float64), reduction="mean")
    return dict(zip(keys, means.tolist()))
