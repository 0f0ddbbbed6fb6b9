import copy
import json

import pytest
import torch
import torch.nn.functional as F

from riftkit.config import (
    AdversaryConfig, ASCCSearchConfig, DataConfig, ExperimentAttackConfig, ExperimentConfig, ModelConfig, ObjectiveConfig, TrainConfig,
)
from riftkit.data import DatasetSplits, Example, load_splits
from riftkit.models import load_classifier
from riftkit.models.classifier import encoder_features
from riftkit.training import train
from riftkit.training.log import read_metrics

from .conftest import SENTIMENT


def toy_splits(n: int = 48) -> DatasetSplits:
    """A learnable toy task: the label is whether 'good' or 'bad' appears."""
    fillers = ["the", "film", "was", "plot", "acting", "quite", "really", "story"]
    examples = []
    for i in range(n):
        label = i % 2
        words = [fillers[(i * 3 + k) % len(fillers)] for k in range(4)]
        words.insert(i % 5, "good" if label else "bad")
        examples.append(Example((tuple(words),), label, uid=f"toy:{i}"))
    return DatasetSplits(SENTIMENT, examples[: n - 16], examples[n - 16 : n - 8], examples[n - 8 :])


def tiny_config(tmp_path, select_attack_steps: int = 10, **train) -> ExperimentConfig:
    """``select_attack_steps``: the steps of model selection's ASCC search (``attack.ascc.steps``)."""
    return ExperimentConfig(
        name="tiny", output_dir=str(tmp_path / "run"),
        train=TrainConfig(**{"epochs": 10, "batch_size": 8, "lr": 1e-3, "progress": False, **train}),
        attack=ExperimentAttackConfig(ascc=ASCCSearchConfig(steps=select_attack_steps)),
    )


def test_standard_training_on_a_tiny_model_learns_and_logs(make_tiny, tmp_path):
    config = tiny_config(tmp_path, eval_every_steps=2)
    result = train(config, toy_splits(), model=make_tiny())
    assert result.best_dev["accuracy"] == 1.0 and result.test["accuracy"] == 1.0
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    events = [r["event"] for r in records]
    assert events[0] == "start" and events[-1] == "end" and events.count("train_epoch") == 10
    evals = [r for r in records if r["event"] == "eval"]
    assert len(evals) == 10 + 10  # every epoch end, plus step 2 of each 4-step epoch
    best = max(evals, key=lambda r: r["dev_accuracy"])
    saved = json.loads((tmp_path / "run" / "best" / "riftkit.json").read_text())
    assert saved["extra"]["dev"]["dev_accuracy"] == result.best_dev["accuracy"] == best["dev_accuracy"]
    assert saved["extra"]["step"] == best["step"]  # the first step reaching the best value is kept
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test"]["accuracy"] == result.test["accuracy"]


def test_best_checkpoint_is_the_selected_model(make_tiny, tmp_path):
    splits = toy_splits()
    result = train(tiny_config(tmp_path), splits, model=make_tiny())
    reloaded = load_classifier(result.output_dir / "best")
    from riftkit.evaluation import evaluate_accuracy

    assert evaluate_accuracy(reloaded, splits.dev)["accuracy"] == result.best_dev["accuracy"]
    assert evaluate_accuracy(reloaded, splits.test)["accuracy"] == result.test["accuracy"]


def test_training_is_deterministic_on_cpu(make_tiny, tmp_path):
    runs = []
    for name in ("a", "b"):
        config = tiny_config(tmp_path / name, balanced_batches=True)
        config.model = ModelConfig(head_dropout=0.1)
        train(config, toy_splits(), model=make_tiny(head_dropout=0.1))
        runs.append([(r["event"], r.get("loss"), r.get("dev_loss")) for r in read_metrics(tmp_path / name / "run" / "metrics.jsonl") if r["event"] != "end"])
        state = load_classifier(tmp_path / name / "run" / "best").state_dict()
        runs[-1].append(sum(v.double().sum().item() for v in state.values()))
    assert runs[0] == runs[1]


def test_train_builds_the_recipes_optimizer_groups(make_tiny, tmp_path, monkeypatch):
    """The groups train() gives AdamW: the encoder undecayed, the head and RIFT's InfoNCE heads decayed (2e-4),
    every trainable parameter exactly once, the frozen teacher nowhere."""
    import riftkit.training.loop as loop

    from .test_rift import SUBS

    captured = {}
    for name in ("build_optimizer", "build_objective"):
        real = getattr(loop, name)
        monkeypatch.setattr(loop, name, lambda *a, _real=real, _name=name, **k: captured.setdefault(_name, _real(*a, **k)))
    monkeypatch.setattr(loop, "load_substitutions", lambda *a, **k: SUBS)
    model = make_tiny()
    config = tiny_config(tmp_path, method="rift", epochs=1, balanced_batches=True, select_max_examples=2, select_attack_steps=1,
                         encoder_weight_decay=0.0, head_weight_decay=2e-4)
    config.objective = ObjectiveConfig(adversary=AdversaryConfig(steps=1))
    train(config, toy_splits(24), model=model, evaluate_test=False)
    optimizer, recipe = captured["build_optimizer"], captured["build_objective"]
    placed = [(id(p), group["weight_decay"]) for group in optimizer.param_groups for p in group["params"]]
    decay = dict(placed)
    assert len(placed) == len(decay)  # no parameter twice
    assert {decay.get(id(p)) for p in model.encoder.parameters()} == {0.0}
    assert {decay.get(id(p)) for p in model.head.parameters()} == {2e-4}
    assert {decay.get(id(p)) for p in recipe.info.parameters()} == {2e-4}  # the InfoNCE projection heads u_c, v_c
    assert set(decay) == {id(p) for p in model.parameters()} | {id(p) for p in recipe.info.parameters()}
    assert not {id(p) for p in recipe.teacher.parameters()} & set(decay)


def test_warmup_then_constant_schedule():
    from riftkit.training.optim import build_scheduler

    weight = torch.nn.Parameter(torch.zeros(1))
    for ratio, expected in [(0.0, [1.0] * 10), (0.4, [0.1, 0.325, 0.55, 0.775] + [1.0] * 6)]:
        optimizer = torch.optim.AdamW([weight], lr=2e-5)
        scheduler = build_scheduler(optimizer, total_steps=10, warmup_ratio=ratio, start_factor=0.1)
        rates = []
        for _ in range(10):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        assert rates == pytest.approx([2e-5 * f for f in expected], rel=1e-12, abs=0)
    with pytest.raises(ValueError, match="train.warmup_ratio"):
        build_scheduler(torch.optim.AdamW([weight]), 10, 1.0)
    with pytest.raises(ValueError, match="train.warmup_start_factor"):
        build_scheduler(torch.optim.AdamW([weight]), 10, 0.1, start_factor=0.0)
    assert TrainConfig().warmup_ratio == 0.0  # no warm-up unless a config asks: CPU numbers stay as measured


def test_training_steps_the_schedule_per_batch_and_logs_lr_and_forgetting(make_tiny, tmp_path):
    """8 steps (2 epochs x 4 batches), warm-up over 6 from 0.1 x lr; the forgetting signal every 2 steps."""
    config = tiny_config(tmp_path, epochs=2, warmup_ratio=0.75, warmup_start_factor=0.1, log_forgetting_every_steps=2)
    train(config, toy_splits(), model=make_tiny(), evaluate_test=False)
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    probes = [r for r in records if r["event"] == "forgetting"]
    assert [r["step"] for r in probes] == [0, 2, 4, 6, 8]
    # step k (1-based) used lr x (0.1 + 0.9 (k - 1) / 6) during warm-up, lr after it
    used = {k: 1e-3 * (0.1 + 0.9 * (k - 1) / 6 if k <= 6 else 1.0) for k in (2, 4, 6, 8)}
    assert [r["lr"] for r in probes[1:]] == pytest.approx([used[k] for k in (2, 4, 6, 8)], rel=1e-9)
    epochs = [r for r in records if r["event"] == "train_epoch"]
    assert [r["lr"] for r in epochs] == pytest.approx([used[4], used[8]], rel=1e-9)
    start = probes[0]
    assert start["theta_distance"] == 0.0 and start["feature_distance"] == 0.0 and start["feature_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert all(r["theta_distance"] > 0 and r["feature_distance"] > 0 and r["feature_cosine"] < 1 for r in probes[1:] + epochs)
    assert epochs[-1]["theta_distance"] == probes[-1]["theta_distance"]  # the same measurement at the same step


def test_forgetting_probe_measures_distance_to_the_pretrained_encoder(make_tiny):
    from riftkit.training.forgetting import ForgettingProbe

    model = make_tiny()
    probe_set = toy_splits().dev
    pretrained = copy.deepcopy(model.encoder).eval()
    probe = ForgettingProbe(model, probe_set, batch_size=3)
    at_start = probe(model)
    assert at_start == {"theta_distance": 0.0, "feature_distance": 0.0, "feature_cosine": pytest.approx(1.0, abs=1e-6)}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    inputs = model.encode_examples(probe_set)
    model.train()
    for _ in range(3):
        optimizer.zero_grad()
        F.cross_entropy(model(**inputs), torch.tensor([e.label for e in probe_set])).backward()
        optimizer.step()
    moved = probe(model)
    assert model.training  # the probe restores the mode
    # independently: the pre-trained copy's and the student's pooled features, eval mode, one batch
    with torch.no_grad():
        model.eval()
        student = model.features(**inputs)
        reference = encoder_features(pretrained, model.spec.pooling, inputs["input_ids"], inputs["attention_mask"], inputs.get("token_type_ids"))
    assert moved["feature_distance"] > 0.01 and moved["feature_distance"] == pytest.approx((student - reference).norm(dim=-1).mean().item(), rel=1e-4)
    assert moved["feature_cosine"] < 1 and moved["feature_cosine"] == pytest.approx(F.cosine_similarity(student, reference).mean().item(), abs=1e-5)
    theta = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(model.encoder.parameters(), pretrained.parameters())))
    assert moved["theta_distance"] == pytest.approx(theta.item(), rel=1e-4)


def test_head_is_the_papers_mlp_without_dropout_and_older_models_keep_theirs(tokenizer, tmp_path):
    from riftkit.models import build_classifier, random_encoder, save_classifier

    assert ModelConfig().head_dropout == 0.0
    model = build_classifier(random_encoder(tokenizer.vocab_size), tokenizer, SENTIMENT, "tiny")  # the defaults
    layers = [m for m in model.head if not isinstance(m, torch.nn.Identity)]
    assert [type(m) for m in layers] == [torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear]  # Linear(H, 256) - ReLU - Linear(256, C)
    assert (layers[0].in_features, layers[0].out_features, layers[2].out_features) == (64, 256, 2)
    assert not any(isinstance(m, torch.nn.Dropout) for m in model.head.modules())
    # a model saved with head dropout (riftkit.json records 0.1) reloads with it and with its weights
    older = build_classifier(random_encoder(tokenizer.vocab_size), tokenizer, SENTIMENT, "tiny", head_dropout=0.1, seed=1)
    reloaded = load_classifier(save_classifier(older, tmp_path / "older"))
    assert reloaded.spec.head_dropout == 0.1 and isinstance(reloaded.head[0], torch.nn.Dropout) and reloaded.head[0].p == 0.1
    assert all(torch.equal(a, b) for a, b in zip(reloaded.head.state_dict().values(), older.head.state_dict().values()))
    assert reloaded.head.state_dict().keys() == model.head.state_dict().keys()


def test_standard_selected_by_dev_robust_accuracy_says_so(make_tiny, tmp_path, monkeypatch):
    """The paper's selection for every method: a Standard run with select_metric dev_robust_ascc keeps the epoch
    of highest dev robust accuracy, and its summary and saved model say which metric chose it."""
    from .test_rift import SUBS

    monkeypatch.setattr("riftkit.training.loop.load_substitutions", lambda *a, **k: SUBS)
    config = tiny_config(tmp_path, epochs=3, select_metric="dev_robust_ascc", select_max_examples=4, select_attack_steps=2)
    result = train(config, toy_splits(), model=make_tiny(), evaluate_test=False)
    evals = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["event"] == "eval"]
    best = max(evals, key=lambda r: r["dev_robust_ascc"])  # the first of the highest
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())["best_dev"]
    saved = json.loads((tmp_path / "run" / "best" / "riftkit.json").read_text())["extra"]
    assert summary["selected_by"] == saved["selected_by"] == "dev_robust_ascc"
    assert summary["dev_robust_ascc"] == best["dev_robust_ascc"] and summary["step"] == best["step"] == saved["step"]


def test_standard_fine_tuning_of_embedded_minilm_on_sst2(data_dir, tmp_path):
    """500 SST-2 training phrases are enough for the pre-trained MiniLM to be far above chance.

    Bar: 0.70 on 150 carved dev phrases and on 300 GLUE dev sentences. Chance is
    about 0.51 (majority class); an input-blind model stays below 0.58 with
    probability > 0.99 at n=300. Measured with this recipe on data seeds 0, 1, 2:
    test 0.82 / 0.78 / 0.79 (about 30 s each), so the bar has a margin of about
    8 points against run-to-run noise and still fails if fine-tuning breaks.
    """
    config = ExperimentConfig(
        name="sst2-small", output_dir=str(tmp_path / "run"),
        data=DataConfig(dataset="sst2", max_train=500, dev_size=150, max_test=300, seed=0),
        model=ModelConfig(max_length=48),
        train=TrainConfig(epochs=3, batch_size=16, lr=1e-4, progress=False),
    )
    splits = load_splits(config.data, data_dir)
    result = train(config, splits)
    assert result.best_dev["accuracy"] >= 0.70, result.best_dev
    assert result.test["accuracy"] >= 0.70, result.test


def test_bf16_autocast_trains_and_is_off_by_default(make_tiny, tmp_path):
    """train.autocast: bf16 runs the step's forward passes in bfloat16 (the losses differ from fp32), still learns."""
    assert TrainConfig().autocast == "fp32"
    fp32 = train(tiny_config(tmp_path / "fp32", epochs=3), toy_splits(), model=make_tiny())
    bf16 = train(tiny_config(tmp_path / "bf16", epochs=3, autocast="bf16"), toy_splits(), model=make_tiny())
    losses = [[r["loss"] for r in read_metrics(p / "run" / "metrics.jsonl") if r["event"] == "train_epoch"] for p in (tmp_path / "fp32", tmp_path / "bf16")]
    assert losses[0] != losses[1] and all(abs(a - b) < 0.05 for a, b in zip(*losses))  # rounding, not another computation
    assert bf16.best_dev["accuracy"] >= fp32.best_dev["accuracy"] - 0.125


def test_every_dev_evaluation_logs_the_signed_margin(make_tiny, tmp_path):
    """The signed margin p(true) - max p(other): the diagnostic of issue 24's margin collapse, in metrics.jsonl at
    every dev evaluation and in the summary, equal to the selected model's margins on dev."""
    import json

    from riftkit.evaluation.accuracy import signed_margins
    from riftkit.models import load_classifier

    margins = signed_margins(torch.tensor([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.2, 0.1, 0.7]]), torch.tensor([0, 0, 2]))
    assert torch.allclose(margins, torch.tensor([0.5, -0.3, 0.5]))
    splits = toy_splits()
    result = train(tiny_config(tmp_path, epochs=2, eval_every_steps=2), splits, model=make_tiny())
    evals = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["event"] == "eval"]
    assert len(evals) == 4 and all(-1 <= r["dev_margin_median"] <= 1 and -1 <= r["dev_margin_mean"] <= 1 for r in evals)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    best = load_classifier(tmp_path / "run" / "best")
    probs = best.predict_proba([e.segments for e in splits.dev])
    expected = signed_margins(probs, torch.tensor([e.label for e in splits.dev])).median().item()
    assert summary["best_dev"]["margin_median"] == pytest.approx(expected, abs=1e-6) == result.best_dev["margin_median"]
