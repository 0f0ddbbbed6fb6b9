"""The training loop (the paper's Algorithm 1), one screen, top to bottom.

For every batch: the objective computes the loss (Standard: CE; Adv-*: the
ASCC adversary finds x_hat (Eq. 8), then CE + beta KL (Eq. 9), plus PTWD or
Mixout when configured), one AdamW step follows, then one step of the learning-rate
schedule (linear warm-up, then constant: ``optim.py``). Every epoch end logs the
forgetting signal (``forgetting.py``, paper Fig. 2). At every epoch end (and every
``eval_every_steps``) the model is evaluated on dev and the best one is kept:
by clean accuracy, or by robust accuracy under the white-box ASCC attack for
the adversarial methods. Test is evaluated once, on the selected model, at the end.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..attacks.ascc import ASCCAttack, robust_accuracy
from ..config import ExperimentConfig, ModelConfig, save_config
from ..data.examples import DatasetSplits, Example, TaskSpec
from ..data.roles import DataRecord
from ..data.splits import sample
from ..evaluation.accuracy import evaluate_accuracy
from ..models.classifier import Classifier, build_classifier
from ..models.encoder import load_encoder, load_tokenizer
from ..models.io import save_classifier
from ..objectives import TrainBatch, build_objective
from ..substitutions.hull import HullBuilder
from ..substitutions.sets import load_substitutions
from .forgetting import ForgettingProbe
from .log import MetricsLog, RunningMean
from .optim import build_optimizer, build_scheduler
from .sampler import BatchSampler

BEST_DIR = "best"


@dataclass
class TrainState:
    """Progress and model-selection state (saved as JSON after every evaluation)."""

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
        self.dev = splits.dev
        self.robust_dev = sample(splits.dev, cfg.select_max_examples, seed=cfg.seed)

    def robust(self, model: Classifier, examples: list[Example]) -> dict:
        attack = ASCCAttack(model, self.hulls, steps=self.config.select_attack_steps, batch_size=self.config.eval_batch_size // 4 or 1, seed=self.config.seed)
        return robust_accuracy(attack.attack(examples))

    def __call__(self, model: Classifier) -> tuple[float, dict]:
        values = {}
        clean = evaluate_accuracy(model, self.dev, self.config.eval_batch_size)
        values["dev_accuracy"], values["dev_loss"] = clean["accuracy"], clean["loss"]
        if self.with_robust:
            robust = self.robust(model, self.robust_dev)
            values["dev_robust_ascc"] = robust["robust_accuracy"]
            values["dev_robust_n"] = robust["n"]
            values["dev_robust_subset_accuracy"] = robust["vanilla_accuracy"]  # clean accuracy on the same subset
        return values[self.metric], values


def train(
    config: ExperimentConfig,
    splits: DatasetSplits,
    model: Classifier | None = None,
    evaluate_test: bool = True,
    data_dir: str | Path | None = None,
) -> TrainResult:
    cfg = config.train
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    (out / "data.json").write_text(json.dumps({"summary": splits.summary(), **splits.provenance, "skipped": splits.skipped}, indent=2) + "\n")
    # The selected model keeps the data that made it, so that attacks default to its own held-out test.
    data_record = DataRecord.from_splits(config.data, splits, data_dir)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = (model or build_model(config.model, splits.task, cfg.seed)).to(device)
    needs_substitutions = cfg.method != "standard" or cfg.select_metric == "dev_robust_ascc" or cfg.eval_robust_ascc
    substitutions = load_substitutions(config.objective.substitutions, data_dir or config.data.data_dir) if needs_substitutions else None
    # the forgetting signal (Fig. 2), whatever the method: theta_0 and F0's features on a seeded dev probe, taken now
    for key in ("log_forgetting_every_steps", "forgetting_probe_size"):
        if getattr(cfg, key) < 0:
            raise ValueError(f"train.{key} must be >= 0, got {getattr(cfg, key)}")
    forgetting = ForgettingProbe(model, sample(splits.dev, cfg.forgetting_probe_size, seed=cfg.seed) if cfg.forgetting_probe_size else [], cfg.eval_batch_size)
    objective = build_objective(cfg.method, config.objective, model, substitutions, seed=cfg.seed)
    hulls = HullBuilder(model.tokenizer, substitutions, config.objective.max_candidates) if substitutions else None
    evaluate_dev = DevEvaluator(config, splits, model, hulls)
    if objective.info is not None and objective.info.conditional and not cfg.balanced_batches:
        raise ValueError("the class-conditional info term needs train.balanced_batches: true (every class needs in-batch negatives)")
    optimizer = build_optimizer(model.encoder, [model.head, *objective.task_modules()], cfg.lr, cfg.encoder_weight_decay, cfg.head_weight_decay)
    train_set = splits.train
    sampler = BatchSampler([e.label for e in train_set], cfg.batch_size, splits.task.num_labels, cfg.balanced_batches, cfg.seed)
    scheduler = build_scheduler(optimizer, cfg.epochs * len(sampler), cfg.warmup_ratio, cfg.warmup_start_factor)  # stepped per batch
    log = MetricsLog(out / "metrics.jsonl")
    state = TrainState()
    best_weights: dict[str, torch.Tensor] | None = None
    start = time.time()
    log.write("start", name=config.name, method=cfg.method, select_metric=evaluate_dev.metric, data=splits.summary(),
              train_examples=len(train_set), steps_per_epoch=len(sampler), device=str(device),
              pooling=model.spec.pooling, pooling_asked=config.model.pooling)

    record_saved = False

    def evaluate_and_select(epoch_progress: float) -> None:
        nonlocal best_weights, record_saved
        metric, values = evaluate_dev(model)
        improved = metric > state.best_metric
        if improved:
            state.best_metric, state.best_step, state.best_epoch = metric, state.step, epoch_progress
            best_weights = copy.deepcopy(model.state_dict())
            save_classifier(model, out / BEST_DIR, extra={"selected_by": evaluate_dev.metric, "dev": values, "step": state.step, "epoch": epoch_progress})
            if not record_saved:  # the record never changes: written once, with the first best/
                data_record.save(out / BEST_DIR)
                record_saved = True
        record = log.write("eval", step=state.step, epoch=round(epoch_progress, 4), **values, best=improved)
        state.history.append(record)
        (out / "train_state.json").write_text(json.dumps(asdict(state), indent=2) + "\n")

    if cfg.log_forgetting_every_steps:  # the curve's starting point: 0 / 0 / cosine 1
        log.write("forgetting", step=0, epoch=0.0, lr=optimizer.param_groups[0]["lr"], **forgetting(model))
    for epoch in range(cfg.epochs):
        state.epoch = epoch
        model.train()
        running: dict[str, RunningMean] = {}
        bar = tqdm(sampler, total=len(sampler), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not cfg.progress, leave=False)
        for batch_index, indices in enumerate(bar):
            examples = [train_set[i] for i in indices]
            batch = TrainBatch(examples, model.encode_examples(examples).to(device), torch.tensor([e.label for e in examples], device=device),
                               torch.tensor(indices, device=device))

            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.autocast == "bf16"):
                result = objective(model, batch)
            optimizer.zero_grad(set_to_none=True)
            result.loss.backward()
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            lr = optimizer.param_groups[0]["lr"]  # the rate this step used (every group shares it)
            optimizer.step()
            scheduler.step()
            state.step += 1

            accuracy = (result.logits.argmax(-1) == batch.labels).float().mean().item()
            for key, value in {"loss": result.loss.item(), "accuracy": accuracy, **result.metrics}.items():
                running.setdefault(key, RunningMean()).add(value, len(indices))
            bar.set_postfix({k: f"{running[k].mean:.4f}" for k in ("loss", "accuracy", "adv_accuracy", "loss_info") if k in running})
            if cfg.eval_every_steps and state.step % cfg.eval_every_steps == 0 and batch_index + 1 < len(sampler):
                evaluate_and_select(epoch + (batch_index + 1) / len(sampler))
                model.train()
            if cfg.log_forgetting_every_steps and state.step % cfg.log_forgetting_every_steps == 0:
                log.write("forgetting", step=state.step, epoch=round(epoch + (batch_index + 1) / len(sampler), 4), lr=lr, **forgetting(model))
        log.write("train_epoch", epoch=epoch + 1, step=state.step, **{k: v.mean for k, v in running.items()}, lr=lr, **forgetting(model))
        evaluate_and_select(epoch + 1.0)

    # The selected model (best on dev) is the result; test is looked at once, here.
    if best_weights is not None:
        model.load_state_dict(best_weights)
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
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return TrainResult(out, best_dev, test, state, wall)
