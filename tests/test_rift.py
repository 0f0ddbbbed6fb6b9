"""RIFT: the frozen teacher, class-conditional InfoNCE (Eq. 10), the feature queue, the RIFT recipe (Eq. 11)."""

import math

import pytest
import torch
import torch.nn.functional as F

from riftkit.config import AdversaryConfig, ExperimentConfig, InfoConfig, ObjectiveConfig, TrainConfig
from riftkit.data import DatasetSplits, Example
from riftkit.objectives import TrainBatch, build_objective
from riftkit.objectives.info import FeatureQueue, InfoNCELoss, info_nce
from riftkit.objectives.teacher import FrozenTeacher
from riftkit.substitutions import SubstitutionSet
from riftkit.training import train
from riftkit.training.log import read_metrics

from .conftest import NLI, SENTIMENT

SUBS = SubstitutionSet({"good": ["fine", "nice"], "bad": ["poor", "awful"], "film": ["movie"], "plot": ["story"]})


def test_loss_is_log_n_when_all_scores_are_equal_with_unequal_class_counts():
    torch.manual_seed(0)
    loss_fn = InfoNCELoss(hidden=16, num_classes=2)
    labels = torch.tensor([0, 1, 1, 0, 1, 0, 1, 1])  # 3 of class 0, 5 of class 1
    same = torch.randn(1, 16).expand(8, 16)  # every student and every teacher feature identical
    loss, metrics = loss_fn(same, torch.randn(1, 16).expand(8, 16), labels)
    assert loss.item() == pytest.approx((math.log(3) + math.log(5)) / 2, abs=1e-5)
    assert metrics["info_bound"] == pytest.approx(0.0, abs=1e-5)


def test_per_class_masking_matches_a_manual_computation():
    torch.manual_seed(1)
    loss_fn = InfoNCELoss(hidden=8, num_classes=3, temperature=0.2)
    student, teacher = torch.randn(7, 8), torch.randn(7, 8)
    labels = torch.tensor([2, 0, 2, 2, 0, 1, 1])
    loss, _ = loss_fn(student, teacher, labels)
    manual = []
    for c in range(3):
        idx = (labels == c).nonzero().flatten()
        s = F.normalize(loss_fn.student_heads[c](student[idx]), dim=-1)
        t = F.normalize(loss_fn.teacher_heads[c](teacher[idx]), dim=-1)
        scores = s @ t.T / 0.2  # [i, j]
        manual.append(-sum(scores[j, j] - torch.logsumexp(scores[:, j], 0) for j in range(len(idx))) / len(idx))
    torch.testing.assert_close(loss, torch.stack(manual).mean())


def test_unconditional_ablation_uses_one_pair_of_heads_and_the_whole_batch():
    loss_fn = InfoNCELoss(hidden=8, num_classes=3, conditional=False)
    assert len(loss_fn.student_heads) == 1
    same = torch.ones(6, 8)
    loss, _ = loss_fn(same, same, torch.tensor([0, 1, 2, 0, 1, 2]))
    assert loss.item() == pytest.approx(math.log(6), abs=1e-5)


def test_loss_falls_toward_zero_for_aligned_well_separated_pairs():
    pairs = torch.eye(4)  # student j == teacher j, orthogonal across j
    losses = [info_nce(pairs, pairs, tau).item() for tau in (1.0, 0.2, 0.05)]
    assert losses[0] > losses[1] > losses[2] and losses[1] < 0.05 and losses[2] < 1e-6
    assert info_nce(pairs, pairs.roll(1, 0), 0.05).item() > math.log(4)  # misaligned: worse than chance


def test_bound_on_random_data():
    """log N - L is ~0 in expectation on independent data (I = 0, so a valid bound is <= 0 up to noise)
    and clearly positive on dependent data (teacher = student + small noise) once the critic can see the
    dependence (here: v_c = u_c, instead of training the heads)."""
    torch.manual_seed(0)
    loss_fn = InfoNCELoss(hidden=32, num_classes=2)
    for u, v in zip(loss_fn.student_heads, loss_fn.teacher_heads):
        v.load_state_dict(u.state_dict())
    labels = torch.tensor([0, 1] * 16)
    independent, dependent = [], []
    for _ in range(50):
        s = torch.randn(32, 32)
        independent.append(loss_fn(s, torch.randn(32, 32), labels)[1]["info_bound"])
        dependent.append(loss_fn(s, s + 0.1 * torch.randn(32, 32), labels)[1]["info_bound"])
    mean_independent = sum(independent) / 50
    assert mean_independent < 0.05  # no information "found" where there is none (a valid bound is <= I = 0)
    assert sum(dependent) / 50 > 1.0  # information found where there is some (log 16 = 2.77 at most)


def test_queue_enqueue_dequeue_wraps_and_never_carries_gradients():
    queue = FeatureQueue(groups=2, size=4, dim=3)
    first = torch.arange(9.0).reshape(3, 3).requires_grad_(True)
    queue.enqueue(0, first * 2, torch.tensor([10, 11, 12]))
    features, ids = queue.get(0)
    assert features.shape == (3, 3) and ids.tolist() == [10, 11, 12] and queue.get(1)[0].shape == (0, 3)
    assert not features.requires_grad
    queue.enqueue(0, torch.full((3, 3), -1.0), torch.tensor([20, 21, 22]))  # 6 in a queue of 4: the oldest two are overwritten
    features, ids = queue.get(0)
    assert features.shape == (4, 3) and sorted(features[:, 0].tolist()) == [-1.0, -1.0, -1.0, 12.0]
    assert sorted(ids.tolist()) == [12, 20, 21, 22] and ids[features[:, 0] == 12.0].tolist() == [12]  # ids travel with their features
    other = FeatureQueue(groups=2, size=4, dim=3)
    other.load_state_dict(queue.state_dict())
    assert torch.equal(other.get(0)[0], features) and torch.equal(other.get(0)[1], ids) and int(other.position[0]) == 2


def unit(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def identity_heads(loss_fn: InfoNCELoss) -> InfoNCELoss:
    """Projection heads replaced by the identity, so that scores are cosines of the raw features / tau."""
    for heads in (loss_fn.student_heads, loss_fn.teacher_heads):
        for i in range(len(heads)):
            heads[i] = torch.nn.Identity()
    return loss_fn


def nce_by_hand(positive: float, others: list[float], tau: float) -> float:
    """-log(exp(cos(positive)/tau) / sum over positive and others), angles in degrees."""
    terms = [math.exp(math.cos(math.radians(a)) / tau) for a in [positive, *others]]
    return -math.log(terms[0] / sum(terms))


def test_queue_loss_matches_a_hand_computation_and_masks_the_anchors_own_example():
    """Students at 0 and 90 degrees, their teachers at 30 and 120; the queue holds an unrelated teacher feature
    (200 degrees, example 7) and example 1's own teacher feature (30 degrees), which must not be a negative of
    example 1's anchor but is an ordinary negative for example 2's."""
    tau = 0.5
    loss_fn = identity_heads(InfoNCELoss(hidden=2, num_classes=1, conditional=False, temperature=tau, queue_size=8))
    loss_fn.queue.enqueue(0, torch.tensor([unit(200), unit(30)]), torch.tensor([7, 1]))
    student, teacher = torch.tensor([unit(0), unit(90)]), torch.tensor([unit(30), unit(120)])
    loss, metrics = loss_fn(student, teacher, torch.tensor([0, 0]), torch.tensor([1, 2]))
    # angle between anchor and each candidate: anchor 1 (0 deg) sees t1 (30, positive), t2 (120), q_7 (200); q_1 is masked
    first = nce_by_hand(30, [120, 200], tau)
    # anchor 2 (90 deg) sees t2 (120, positive: 30 apart), t1 (60 apart), q_7 (110 apart), q_1 (60 apart)
    second = nce_by_hand(30, [60, 110, 60], tau)
    assert loss.item() == pytest.approx((first + second) / 2, abs=1e-6)
    assert metrics["info_bound"] == pytest.approx((math.log(3) + math.log(4)) / 2 - (first + second) / 2, abs=1e-6)
    # the batch joined the queue with its ids
    assert sorted(loss_fn.queue.get(0)[1].tolist()) == [1, 1, 2, 7]


def test_queue_loss_has_one_direction_from_the_first_step():
    """With a queue, even the first (empty-queue) step normalises over teacher candidates for each student anchor,
    not over students as Eq. 10 does: the loss does not change its definition when the queue fills."""
    tau = 0.5
    student, teacher = torch.tensor([unit(0), unit(90), unit(100)]), torch.tensor([unit(30), unit(120), unit(250)])
    with_queue = identity_heads(InfoNCELoss(hidden=2, num_classes=1, conditional=False, temperature=tau, queue_size=8))
    loss, _ = with_queue(student, teacher, torch.zeros(3, dtype=torch.long), torch.tensor([0, 1, 2]))
    s, t = [0, 90, 100], [30, 120, 250]
    over_teachers = sum(nce_by_hand(t[j] - s[j], [t[k] - s[j] for k in range(3) if k != j], tau) for j in range(3)) / 3
    over_students = sum(nce_by_hand(t[j] - s[j], [t[j] - s[i] for i in range(3) if i != j], tau) for j in range(3)) / 3
    assert abs(over_teachers - over_students) > 0.05  # the two directions differ on these features
    assert loss.item() == pytest.approx(over_teachers, abs=1e-6)
    without_queue = identity_heads(InfoNCELoss(hidden=2, num_classes=1, conditional=False, temperature=tau))
    assert without_queue(student, teacher, torch.zeros(3, dtype=torch.long))[0].item() == pytest.approx(over_students, abs=1e-6)  # Eq. 10


def test_queue_requires_example_ids():
    with pytest.raises(ValueError, match="example ids"):
        InfoNCELoss(hidden=4, num_classes=2, queue_size=4)(torch.randn(2, 4), torch.randn(2, 4), torch.tensor([0, 1]))


@pytest.mark.parametrize("queue_size", [0, 48])
def test_estimated_bound_rises_as_teacher_depends_more_on_student(queue_size):
    """teacher = student + noise of decreasing size: more mutual information, so the estimate must rise
    (heads tied, v_c = u_c, so that the critic sees the dependence without training)."""
    torch.manual_seed(0)
    loss_fn = InfoNCELoss(hidden=16, num_classes=2, queue_size=queue_size)
    for u, v in zip(loss_fn.student_heads, loss_fn.teacher_heads):
        v.load_state_dict(u.state_dict())
    labels = torch.tensor([0, 1] * 8)
    means = []
    for noise in (3.0, 1.0, 0.3):
        bounds = []
        for batch in range(8):
            s = torch.randn(16, 16)
            bounds.append(loss_fn(s, s + noise * torch.randn(16, 16), labels, torch.arange(16) + 16 * batch)[1]["info_bound"])
        means.append(sum(bounds[2:]) / len(bounds[2:]))  # after the queue has filled
    assert all(a < b for a, b in zip(means, means[1:])), means
    assert means[-1] - means[0] > 1.0, means


def test_frozen_teacher_is_a_separate_frozen_copy(make_tiny):
    model = make_tiny()
    teacher = FrozenTeacher(model.encoder, model.spec.pooling)
    assert all(not p.requires_grad for p in teacher.parameters())
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(teacher.parameters(), model.encoder.parameters()))
    teacher.train()
    assert not teacher.training and not teacher.encoder.training
    inputs = model.encode_examples([Example((("a", "good", "film"),), 1)])
    model.eval()
    torch.testing.assert_close(teacher(inputs), model.features(**inputs))


def rift_batch(model):
    examples = [Example((tuple(t.split()),), y) for t, y in [("a good film", 1), ("bad plot", 0), ("good plot", 1), ("the bad film", 0)]]
    return TrainBatch(examples, model.encode_examples(examples), torch.tensor([e.label for e in examples]))


def test_rift_gradients_reach_student_and_heads_never_the_teacher(make_tiny):
    model = make_tiny().train()
    recipe = build_objective("rift", ObjectiveConfig(adversary=AdversaryConfig(steps=2), info=InfoConfig(alpha=0.7)), model, SUBS)
    out = recipe(model, rift_batch(model))
    assert {"loss_ce", "kl", "loss_info", "info_bound"} <= set(out.metrics)
    expected = out.metrics["loss_ce"] + 10.0 * out.metrics["kl"] + 0.7 * out.metrics["loss_info"]
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
    out.loss.backward()
    assert model.encoder.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in recipe.info.parameters())
    assert all(p.grad is None for p in recipe.teacher.parameters())
    assert recipe.task_modules() == [recipe.info]


def test_info_on_clean_features_option(make_tiny):
    model = make_tiny().train()
    recipe = build_objective("rift", ObjectiveConfig(adversary=AdversaryConfig(steps=1), info=InfoConfig(on="clean", kind="unconditional")), model, SUBS)
    out = recipe(model, rift_batch(model))
    assert len(recipe.info.student_heads) == 1 and out.metrics["loss_info"] > 0
    with pytest.raises(ValueError, match="info term"):
        build_objective("rift", ObjectiveConfig(info=InfoConfig(kind="none")), model, SUBS)


def test_rift_training_keeps_the_teacher_bit_identical(make_tiny, tmp_path, monkeypatch):
    model = make_tiny()
    initial = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    captured = {}
    import riftkit.training.loop as loop

    original = loop.build_objective

    def spy(*args, **kwargs):
        captured["recipe"] = original(*args, **kwargs)
        return captured["recipe"]

    monkeypatch.setattr(loop, "build_objective", spy)
    examples = [Example((tuple(f"{w} {'good' if i % 2 else 'bad'} film".split()),), i % 2, f"t{i}") for i, w in enumerate(["a", "the", "one", "this"] * 4)]
    splits = DatasetSplits(SENTIMENT, examples[:12], examples[12:], examples[12:])
    config = ExperimentConfig(output_dir=str(tmp_path / "run"), train=TrainConfig(method="rift", epochs=2, batch_size=4, lr=1e-3, balanced_batches=True, progress=False, select_max_examples=4),
                              objective=ObjectiveConfig(adversary=AdversaryConfig(steps=2), info=InfoConfig(queue_size=8)))
    monkeypatch.setattr("riftkit.training.loop.load_substitutions", lambda *a, **k: SUBS)
    train(config, splits, model=model)
    teacher = captured["recipe"].teacher.encoder.state_dict()
    assert all(torch.equal(teacher[k], initial[k]) for k in initial)
    assert any(not torch.equal(model.encoder.state_dict()[k], initial[k]) for k in initial)  # the student moved
    epochs = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["event"] == "train_epoch"]
    assert all("loss_info" in r and "kl" in r and r["theta_distance"] > 0 for r in epochs)


def test_conditional_info_requires_balanced_batches(make_tiny, tmp_path, monkeypatch):
    monkeypatch.setattr("riftkit.training.loop.load_substitutions", lambda *a, **k: SUBS)
    examples = [Example((("good",),), 1), Example((("bad",),), 0)] * 4
    config = ExperimentConfig(output_dir=str(tmp_path / "r"), train=TrainConfig(method="rift", epochs=1, batch_size=4, progress=False))
    with pytest.raises(ValueError, match="balanced_batches"):
        train(config, DatasetSplits(SENTIMENT, examples, examples, examples), model=make_tiny())


def test_the_queue_on_several_processes_is_refused_naming_its_key(make_tiny, tmp_path, monkeypatch):
    """The message names the key a user sets (objective.info.queue_size; it named model.info_queue_size)."""
    from types import SimpleNamespace

    monkeypatch.setattr("riftkit.training.loop.load_substitutions", lambda *a, **k: SUBS)
    monkeypatch.setattr("riftkit.training.loop.distributed_processes", lambda: SimpleNamespace(process_index=0, num_processes=2))
    examples = [Example((("good",),), 1, "a"), Example((("bad",),), 0, "b")] * 4
    config = ExperimentConfig(output_dir=str(tmp_path / "r"), train=TrainConfig(method="rift", epochs=1, batch_size=4, balanced_batches=True, progress=False),
                              objective=ObjectiveConfig(adversary=AdversaryConfig(steps=1), info=InfoConfig(queue_size=4)))
    with pytest.raises(ValueError, match=r"objective\.info\.queue_size > 0 \(the teacher-feature queue\) runs on one process only"):
        train(config, DatasetSplits(SENTIMENT, examples, examples, examples), model=make_tiny())
