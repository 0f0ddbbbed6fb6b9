"""Which settings change a result is declared once (field metadata, ``NOT_A_RESULT``); each such declaration is
backed here by identical results under two values of the field: bit-identical weights for training; for attacks,
identical per-example outcomes, texts and query counts (class probabilities within 1e-6: see assert_same_results).
Result fields stay results until a test says otherwise (``train.eval_batch_size``, ``train.num_threads``,
``attack.ascc.examples_per_search``)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from riftkit.attacks.registry import AttackSetup, build_attack
from riftkit.config import (
    AttackConfig, ConfigError, ExperimentConfig, TrainConfig, load_config, result_free_paths, save_config, to_dict,
)
from riftkit.data import Example
from riftkit.training import train
from riftkit.training.loop import check_resumable

from .conftest import SENTIMENT
from .test_attacks_victims import SUBS
from .test_training import tiny_config, toy_splits


def test_the_declared_result_free_fields():
    # train.num_threads is a result: 1 and 2 threads sum in another order, and the weights differ in their last bits
    assert set(result_free_paths(ExperimentConfig)) == {"train.progress", "train.report_to"}
    assert set(result_free_paths(AttackConfig)) == {"allow_overlap", "in_flight", "forward_batch_size", "cache_size", "output_dir",
                                                    "num_threads", "backend"}
    # speed knobs that do change numbers stay result fields
    assert "train.eval_batch_size" not in result_free_paths(ExperimentConfig)
    assert "ascc" in AttackConfig(attack="ascc").result_settings() and "examples_per_search" in AttackConfig(attack="ascc").result_settings()["ascc"]


def _weights(folder) -> dict[str, torch.Tensor]:
    weights = load_file(folder / "best" / "head.safetensors")
    for path in sorted((folder / "best" / "encoder").glob("*.safetensors")):
        weights.update(load_file(path))
    return weights


def test_training_is_bit_identical_with_and_without_progress_bars(make_tiny, tmp_path):
    outputs = []
    for progress in (False, True):
        config = tiny_config(tmp_path / f"p{progress}", epochs=2, progress=progress)
        result = train(config, toy_splits(), model=make_tiny())
        outputs.append((result.output_dir, result.best_dev, result.test))
    (a, dev_a, test_a), (b, dev_b, test_b) = outputs
    assert dev_a == dev_b and test_a == test_b
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_refuses_a_changed_result_field_and_accepts_a_result_free_one(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    config = ExperimentConfig(output_dir=str(out), train=TrainConfig(num_threads=1, progress=False))
    save_config(config, out / "config.yaml")
    check_resumable(out, dataclasses.replace(config, train=dataclasses.replace(config.train, progress=True)))
    for field, value in (("eval_batch_size", 64), ("num_threads", 2)):
        with pytest.raises(ConfigError, match=f"train.{field}"):
            check_resumable(out, dataclasses.replace(config, train=dataclasses.replace(config.train, **{field: value})))


def test_a_run_saved_with_the_old_flat_objective_keys_still_resumes(tmp_path):
    """config.yaml of a run begun before the objective's sections: the migration reads it as today's config."""
    out = tmp_path / "run"
    out.mkdir()
    old = to_dict(ExperimentConfig(output_dir=str(out)))
    objective = old.pop("objective")
    old.pop("attack")
    old["objective"] = {"substitutions": objective["substitutions"], "max_candidates": 8, "beta": 5.0, "adv_steps": 3, "adv_lr": 1.0,
                        "adv_sparse_weight": 15.0, "ptwd_weight": 0.0, "mixout_p": 0.0, "info": "auto", "alpha": 0.7,
                        "info_temperature": 0.2, "info_on": "adversarial", "info_queue_size": 0}
    old["train"]["select_attack_steps"] = 4
    import yaml

    (out / "config.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    # (such a run used the same-length hulls, the only ones then: config.PAST_DEFAULTS)
    hulls = ["objective.adversary.hull=same_length", "attack.ascc.hull=same_length"]
    current = load_config(None, [f"output_dir={out}", "objective.beta=5.0", "objective.adversary.steps=3", "objective.info.alpha=0.7",
                                 "attack.ascc.steps=4", *hulls])
    check_resumable(out, current)
    with pytest.raises(ConfigError, match="objective.adversary.steps: 3 -> 2"):
        check_resumable(out, load_config(None, [f"output_dir={out}", "objective.beta=5.0", "objective.adversary.steps=2",
                                                "objective.info.alpha=0.7", "attack.ascc.steps=4", *hulls]))


def _pwws_records(model, examples, **speed) -> list[dict]:
    config = AttackConfig(attack="pwws", backend="torch", **speed)
    attack = build_attack(AttackSetup(model, SENTIMENT, SUBS, config))
    return [dataclasses.asdict(r) for r in attack.attack(examples)]


PROBABILITIES = ("original_probs", "adversarial_probs")


def assert_same_results(records: list[dict], reference: list[dict]) -> None:
    """Same outcome, text, substitutions and queries for every example; class probabilities within 1e-6.

    The probabilities are not bit-identical: texts share forward passes with other texts (their number set by
    in_flight and forward_batch_size), and padding to another batch length changes float32 sums in the 8th digit.
    """
    assert len(records) == len(reference)
    for got, want in zip(records, reference):
        assert {k: v for k, v in got.items() if k not in PROBABILITIES} == {k: v for k, v in want.items() if k not in PROBABILITIES}
        for key in PROBABILITIES:
            assert torch.allclose(torch.tensor(got[key]), torch.tensor(want[key]), atol=1e-6, rtol=0), (got["uid"], key)


def test_black_box_results_are_identical_under_other_in_flight_and_forward_batch_sizes(make_tiny):
    model = make_tiny(seed=3)
    words = ["a", "good", "great", "film", "very", "and", "the", "plot", "good", "story", "a", "film"]
    texts = [tuple(words[(i * 5 + k) % len(words)] for k in range(3 + i % 6)) for i in range(24)]
    # a random tiny model scores every text near one value: move its decision boundary to their median, so that
    # substitutions flip some predictions (by tiny margins: where batching's float sums would show first)
    p = model.predict_proba([(t,) for t in texts])[:, 1]
    with torch.no_grad():
        model.head[-1].bias[1] -= (p / (1 - p)).log().median()
    probs = model.predict_proba([(t,) for t in texts])[:, 1]
    examples = [Example((t,), int(p > 0.5), f"x{i}") for i, (t, p) in enumerate(zip(texts, probs.tolist()))]
    reference = _pwws_records(model, examples, in_flight=32, forward_batch_size=32)
    assert any(r["outcome"] == "succeeded" for r in reference)  # the comparison covers real searches
    # flips at margins of 1e-4 (p = 0.5001) are found alike
    assert_same_results(_pwws_records(model, examples, in_flight=1, forward_batch_size=3, cache_size=5), reference)
    assert_same_results(_pwws_records(model, examples, in_flight=5, forward_batch_size=7), reference)
    torch.set_num_threads(1)  # (the autouse fixture sets 2 again for the next test)
    assert_same_results(_pwws_records(model, examples), reference)
