"""Adv-Mixout as Lee et al. (ICLR 2020) set it up: Mixout on every encoder Linear, the encoder's dropout off."""

import copy

import pytest
import torch
from torch.nn.utils import parametrize

from riftkit.config import AdversaryConfig, MixoutConfig, ObjectiveConfig
from riftkit.data import Example
from riftkit.objectives import build_objective
from riftkit.objectives.mixout import apply_mixout

from .test_adversarial import SUBS


def inputs_of(model):
    return model.encode_examples([Example((tuple(t.split()),), 1) for t in ("a good film", "the bad man , nice plot", "good")])


def linear_layers(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


def test_mixout_with_p_1_trains_the_pretrained_encoder(make_tiny):
    """p = 1 replaces every Linear weight by its pre-trained value: in training mode the encoder then computes
    exactly what the pre-trained one computes (no dropout either), however far the learned weights have moved."""
    model = make_tiny()
    pretrained = copy.deepcopy(model.encoder).eval()
    build_objective("adv_mixout", ObjectiveConfig(mixout=MixoutConfig(p=1.0), adversary=AdversaryConfig(steps=1)), model, SUBS)
    layers = linear_layers(model.encoder)
    assert len(layers) > 0 and all(parametrize.is_parametrized(layer, "weight") for layer in layers)  # every Linear
    assert all(m.p == 0.0 for m in model.encoder.modules() if isinstance(m, torch.nn.Dropout))  # dropout off
    with torch.no_grad():
        for layer in layers:
            layer.parametrizations.weight.original.add_(0.5 * torch.randn_like(layer.parametrizations.weight.original))
    inputs = inputs_of(model)
    model.train()
    with torch.no_grad():
        expected = pretrained(**inputs).last_hidden_state
        torch.testing.assert_close(model.encoder(**inputs).last_hidden_state, expected, rtol=0, atol=1e-6)
        model.eval()  # evaluation uses the learned (here: moved) weights
        assert (model.encoder(**inputs).last_hidden_state - expected).abs().max() > 0.1


def test_mixout_with_p_0_leaves_the_model_unchanged(make_tiny):
    model, untouched = make_tiny(), make_tiny()
    build_objective("adv", ObjectiveConfig(mixout=MixoutConfig(p=0.0), adversary=AdversaryConfig(steps=1)), model, SUBS)  # Mixout off: nothing is changed
    assert not any(parametrize.is_parametrized(layer, "weight") for layer in linear_layers(model.encoder))
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [m.p for m in untouched.modules() if isinstance(m, torch.nn.Dropout)]
    apply_mixout(model.encoder, 0.0)  # and Mixout(0) itself is the identity, in training mode too
    inputs = inputs_of(model)
    outputs = []
    for candidate in (model, untouched):
        candidate.train()
        torch.manual_seed(7)  # the same dropout masks
        with torch.no_grad():
            outputs.append(candidate(**inputs))
    assert torch.equal(outputs[0], outputs[1])


def test_mixout_p_outside_0_1_is_an_error(make_tiny):
    with pytest.raises(ValueError, match="mixout.p"):
        ObjectiveConfig(mixout=MixoutConfig(p=1.5))
