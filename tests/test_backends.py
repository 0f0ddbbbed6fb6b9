"""The attacks' ONNX Runtime path: used only where it is exact, and changes no result (bf16: test_backend_rechecks.py)."""

from __future__ import annotations

import json

import pytest
import torch

from riftkit.attacks.runner import run_attack
from riftkit.config import AttackConfig, ConfigError
from riftkit.models import backends
from riftkit.models.backends import BackendError, OnnxRuntimeVictim, agreement, resolve_backend

from .conftest import NLI
from .test_attacks_runner import subs_file, toy_splits  # noqa: F401 (subs_file: a fixture)

pytest.importorskip("onnxruntime")


def sharpen(model):
    """A random tiny model predicts ~0.5 everywhere; scale its last layer so classes differ (same argmax)."""
    with torch.no_grad():
        model.head[-1].weight.mul_(50.0)
    return model


def test_onnx_runtime_victim_matches_pytorch_on_singles_and_pairs(make_tiny):
    for task, texts in ((None, [(("a", "good", "film"),), (("a", "very", "bad", "film", "indeed", "with", "many", "words"),)] * 20),
                        (NLI, [(("a", "man", "sleeps"), ("a", "person", "rests")), (("two", "dogs"), ("animals", "play", "outside", "now"))] * 20)):
        model = sharpen(make_tiny(task) if task else make_tiny())
        check = agreement(model, OnnxRuntimeVictim(model), texts, batch_size=7)  # uneven batches: padding differs per batch
        assert check["argmax_agreement"] == 1.0 and check["max_abs_prob_diff"] < backends.EXACT_TOLERANCE


def test_onnx_is_used_only_when_exact(make_tiny, monkeypatch):
    model, probe = sharpen(make_tiny()), [(("a", "good", "film"),)] * 4
    victim, record = resolve_backend(model, "onnxruntime", probe)
    assert record["backend"] == "onnxruntime" and isinstance(victim, OnnxRuntimeVictim)
    assert resolve_backend(model, "torch", probe) == (model, {"backend": "torch"})
    monkeypatch.setattr(backends, "EXACT_TOLERANCE", -1.0)  # nothing is exact now
    with pytest.raises(BackendError, match="not exact"):
        resolve_backend(model, "onnxruntime", probe)


def test_attacks_through_onnx_give_the_same_records_and_say_which_path(tmp_path, make_tiny, subs_file):
    from .test_attacks_runner import config

    splits, model = toy_splits(), sharpen(make_tiny())
    for attack in ("pwws", "genetic"):
        folders = {}
        for backend in ("torch", "onnxruntime"):
            folders[backend] = tmp_path / f"{attack}-{backend}"
            summary = run_attack(model, splits, config(subs_file, attack, backend=backend, lm="none"), "tiny", folders[backend],
                                 progress=False, log=lambda m: None)
            assert summary["backend"]["backend"] == backend
        lines = [(folders[b] / "examples.jsonl").read_text().splitlines() for b in ("torch", "onnxruntime")]
        torch_records, onnx_records = ([json.loads(x) for x in side] for side in lines)
        for a, b in zip(torch_records, onnx_records):  # same outcomes, texts and queries; probabilities within tolerance
            assert {k: v for k, v in a.items() if not k.endswith("_probs")} == {k: v for k, v in b.items() if not k.endswith("_probs")}
        settings = json.loads((folders["onnxruntime"] / "settings.json").read_text())
        assert settings["backend"]["backend"] == "onnxruntime"


def test_explicit_onnx_on_a_victim_it_cannot_export_is_a_config_error(tmp_path, subs_file):
    from .test_attacks_runner import WEIGHTS, LabelledVictim, config

    with pytest.raises(ConfigError, match="needs a riftkit Classifier"):
        run_attack(LabelledVictim(WEIGHTS, bias=-1.0), toy_splits(), config(subs_file, "pwws", backend="onnxruntime"), "toy", tmp_path / "x",
                   progress=False, log=lambda m: None)
    with pytest.raises(ConfigError, match="needs a riftkit Classifier"):
        run_attack(LabelledVictim(WEIGHTS, bias=-1.0), toy_splits(), config(subs_file, "pwws", backend="bf16"), "toy", tmp_path / "y",
                   progress=False, log=lambda m: None)
    assert "backend" not in AttackConfig().result_settings()
