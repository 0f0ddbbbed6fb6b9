"""The training adversary's random start depends on (seed, example, step), never on the batch it is in."""

from __future__ import annotations

import torch

from riftkit.data import Example
from riftkit.objectives import TrainBatch
from riftkit.objectives.ascc import ASCCAdversary, ASCCTrainingAdversary
from riftkit.substitutions import SubstitutionSet
from riftkit.substitutions.hull import HullBuilder

SUBS = SubstitutionSet({"good": ["fine", "nice", "great"], "film": ["movie", "cinema"], "bad": ["poor", "awful"], "plot": ["story"]})
ONE = Example((("a", "good", "film"),), 1, "one")
OTHERS = [Example((tuple(("a bad plot and a good film " * k).split()),), 0, f"other{k}") for k in range(1, 6)]


def adversary(model, seed=0):
    return ASCCTrainingAdversary(ASCCAdversary(steps=3), HullBuilder(model.tokenizer, SUBS), segments=(0,), seed=seed)


def batch_of(model, examples):
    return TrainBatch(examples, model.encode_examples(examples), torch.tensor([e.label for e in examples]))


def test_an_examples_start_is_the_same_alone_and_in_a_batch(make_tiny):
    model = make_tiny()
    alone = adversary(model).starts(model, batch_of(model, [ONE]), step=7)
    mixed = adversary(model).starts(model, batch_of(model, [*OTHERS[:2], ONE, *OTHERS[2:]]), step=7)
    words = alone.shape[1]
    assert torch.equal(alone[0], mixed[2, :words])  # bit-identical
    assert not mixed[2, words:].any()  # padding rows of the batch stay zero
    # other steps and seeds draw other starts
    assert not torch.equal(alone, adversary(model).starts(model, batch_of(model, [ONE]), step=8))
    assert not torch.equal(alone, adversary(model, seed=1).starts(model, batch_of(model, [ONE]), step=7))


def test_an_examples_adversarial_example_does_not_depend_on_its_batch_mates(make_tiny):
    model = make_tiny()
    alone = adversary(model).perturb(model, batch_of(model, [ONE]), step=3).inputs_embeds
    mixed = adversary(model).perturb(model, batch_of(model, [*OTHERS, ONE]), step=3).inputs_embeds
    length = alone.shape[1]
    assert torch.allclose(alone[0], mixed[-1, :length], atol=1e-5)
