"""The training loop: one screen, top to bottom.

For every batch: the objective computes the loss (cross-entropy for Standard;
the adversarial and information terms join it as further pieces), one AdamW
step follows. At every epoch end (and every ``eval_every_steps``) the model is
evaluated on dev and the best one is kept; test is evaluated once, on the
selected model, at the end.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..config import ExperimentConfig, ModelConfig, save_config
from ..data.examples import DatasetSplits, TaskSpec
from ..evaluation.accuracy import evaluate_accuracy
from ..models.classifier import Classifier, build_classifier
from ..models.encoder import load_encoder, load_tokenizer
from ..models.io import save_classifier
from ..objectives import build_objective
from .log import MetricsLog, RunningMean
from .optim import build_optimizer
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


def train(config: ExperimentConfig, splits: DatasetSplits, model: Classifier | None = None, evaluate_test: bool = True) -> TrainResult:
    cfg = config.train
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    (out / "data.json").write_text(json.dumps({"summary": splits.summary(), **splits.provenance, "skipped": splits.skipped}, indent=2) + "\n")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = (model or build_model(config.model, splits.task, cfg.seed)).to(device)
    objective = build_objective(cfg.method)
    optimizer = build_optimizer(model.encoder, [model.head], cfg.lr, cfg.encoder_weight_decay, cfg.head_weight_decay)
    train_set = splits.train
    sampler = BatchSampler([e.label for e in train_set], cfg.batch_size, splits.task.num_labels, cfg.balanced_batches, cfg.seed)
    log = MetricsLog(out / "metrics.jsonl")
    state = TrainState()
    best_weights: dict[str, torch.Tensor] | None = None
    start = time.time()
    log.write("start", name=config.name, data=splits.summary(), train_examples=len(train_set), steps_per_epoch=len(sampler), device=str(device))

    def evaluate_and_select(epoch_progress: float) -> None:
        nonlocal best_weights
        dev = evaluate_accuracy(model, splits.dev, cfg.eval_batch_size)
        metric = dev["accuracy"]  # train.select_metric; robust accuracy joins with the attacks
        improved = metric > state.best_metric
        if improved:
            state.best_metric, state.best_step, state.best_epoch = metric, state.step, epoch_progress
            best_weights = copy.deepcopy(model.state_dict())
            save_classifier(model, out / BEST_DIR, extra={"selected_by": cfg.select_metric, "dev": dev, "step": state.step, "epoch": epoch_progress})
        record = log.write("eval", step=state.step, epoch=round(epoch_progress, 4), dev_accuracy=dev["accuracy"], dev_loss=dev["loss"], best=improved)
        state.history.append(record)
        (out / "train_state.json").write_text(json.dumps(asdict(state), indent=2) + "\n")

    for epoch in range(cfg.epochs):
        state.epoch = epoch
        model.train()
        loss_mean, acc_mean, extra = RunningMean(), RunningMean(), {}
        bar = tqdm(sampler, total=len(sampler), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not cfg.progress, leave=False)
        for batch_index, indices in enumerate(bar):
            examples = [train_set[i] for i in indices]
            inputs = model.encode_examples(examples).to(device)
            labels = torch.tensor([e.label for e in examples], device=device)

            result = objective(model, inputs, labels)
            optimizer.zero_grad(set_to_none=True)
            result.loss.backward()
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            state.step += 1

            loss_mean.add(result.loss.item(), len(indices))
            acc_mean.add((result.logits.argmax(-1) == labels).float().mean().item(), len(indices))
            for key, value in result.metrics.items():
                extra.setdefault(key, RunningMean()).add(value, len(indices))
            bar.set_postfix(loss=f"{loss_mean.mean:.4f}", acc=f"{acc_mean.mean:.3f}")
            if cfg.eval_every_steps and state.step % cfg.eval_every_steps == 0 and batch_index + 1 < len(sampler):
                evaluate_and_select(epoch + (batch_index + 1) / len(sampler))
                model.train()
        log.write("train_epoch", epoch=epoch + 1, step=state.step, loss=loss_mean.mean, accuracy=acc_mean.mean, **{k: v.mean for k, v in extra.items()})
        evaluate_and_select(epoch + 1.0)

    # The selected model (best on dev) is the result; test is looked at once, here.
    if best_weights is not None:
        model.load_state_dict(best_weights)
    best_dev = {"accuracy": state.best_metric, "step": state.best_step, "epoch": state.best_epoch}
    test = evaluate_accuracy(model, splits.test, cfg.eval_batch_size) if evaluate_test and splits.test else None
    wall = time.time() - start
    log.write("end", best_dev_accuracy=state.best_metric, best_epoch=state.best_epoch, test_accuracy=test["accuracy"] if test else None, wall_time_s=round(wall, 1))
    summary = {"name": config.name, "best_dev": best_dev, "test": test, "wall_time_s": round(wall, 1), "data": splits.summary(), "best_model": str(out / BEST_DIR)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return TrainResult(out, best_dev, test, state, wall)
