"""The hull of the whole threat model (objective.adversary.hull: length_groups): substitutes of every token count
are reachable by the training adversary, and every vertex is a real substituted text."""

from __future__ import annotations

import random

import torch

from riftkit.data import Example
from riftkit.objectives import TrainBatch
from riftkit.objectives.ascc import ASCCAdversary, ASCCTrainingAdversary
from riftkit.substitutions import SubstitutionSet
from riftkit.substitutions.hull import HullBuilder

# lousy, tedious: 2 WordPiece tokens; monotonous: 3; the rest 1 (checked below)
SUBS = SubstitutionSet({
    "bad": ["poor", "awful", "lousy", "wicked"],
    "good": ["fine", "nice", "decent"],
    "boring": ["dull", "tedious", "monotonous"],
    "film": ["movie", "picture"],
})
TEXTS = ["a bad film", "a good but boring film", "boring , bad and good", "the film was fine"]


def examples() -> list[Example]:
    return [Example((tuple(t.split()),), i % 2, f"x{i}") for i, t in enumerate(TEXTS)]


def test_the_substitution_set_has_several_token_counts(tokenizer):
    hulls = HullBuilder(tokenizer, SUBS)
    assert {len(hulls.token_ids(w)) for w in ("lousy", "tedious", "monotonous", "bad")} == {1, 2, 3}


def test_every_pair_is_reachable_over_rounds_and_draws_do_not_depend_on_the_batch(tokenizer):
    hulls = HullBuilder(tokenizer, SUBS)
    batch = examples()
    reached: dict[str, set[str]] = {}
    for round_ in range(60):
        anchors, groups = hulls.length_groups(batch, [0], seed=0, round_=round_)
        alone = hulls.length_groups(batch[2:3], [0], seed=0, round_=round_)
        assert alone[1][0] == groups[2] and alone[0][0] == anchors[2]  # keyed by (seed, uid, round) only
        for example, anchor, chosen in zip(batch, anchors, groups):
            for (segment, position), group in chosen.items():
                word = example.segments[segment][position]
                assert anchor.segments[segment][position] == group[0]
                assert len({len(hulls.token_ids(c)) for c in group}) == 1  # one token count a group
                assert (word in group) == (group[0] == word)  # the original anchors its own group
                reached.setdefault(word, set()).update(group)
    for word in ("bad", "good", "boring", "film"):
        assert reached[word] == {word, *SUBS[word]}  # every substitute, of every token count


def test_every_vertex_is_the_real_substituted_text(make_tiny):
    """At any vertex of a length-group hull, the model's outputs equal those of the real text within 1e-5."""
    model = make_tiny().eval()
    hulls = HullBuilder(model.tokenizer, SUBS)
    batch = examples()
    pick = random.Random(0)
    checked_other_lengths = 0
    for round_ in range(8):
        anchors, groups = hulls.length_groups(batch, [0], seed=1, round_=round_)
        inputs = model.encode_examples(anchors)
        hull = hulls.build(anchors, inputs, [0], groups)
        B, W, K = hull.candidate_mask.shape
        for _ in range(3):
            weights = torch.zeros(B, W, K)
            for b in range(B):
                for w in range(len(hull.words[b])):
                    valid = hull.candidate_mask[b, w].nonzero().flatten().tolist()
                    weights[b, w, pick.choice(valid)] = 1.0
            with torch.no_grad():
                relaxed = model(inputs_embeds=hull.mix(weights, model.word_embeddings), attention_mask=inputs["attention_mask"],
                                token_type_ids=inputs.get("token_type_ids"))
                texts = [decoded for decoded, _ in hull.decode(anchors, weights)]
                real = model(**model.encode_examples(texts))
            assert torch.allclose(relaxed, real, atol=1e-5)
            checked_other_lengths += sum(len(hulls.token_ids(n)) != len(hulls.token_ids(o)) for t, e in zip(texts, batch)
                                         for n, o in zip(t.segments[0], e.segments[0]))
    assert checked_other_lengths > 0  # vertices with substitutes of another token count were among them


def test_the_adversary_reports_how_often_it_picks_other_lengths(make_tiny):
    model = make_tiny().train()
    batch = examples()
    inputs = model.encode_examples(batch)
    train_batch = TrainBatch(batch, inputs, torch.tensor([e.label for e in batch]))
    shares = {}
    for kind in ("same_length", "length_groups"):
        adversary = ASCCTrainingAdversary(ASCCAdversary(steps=2), HullBuilder(model.tokenizer, SUBS), (0,), seed=0, hull=kind)
        stats = [adversary.perturb(model, train_batch).stats for _ in range(6)]
        assert adversary.step == 6 and all(0 <= s["adv_other_length_share"] <= s["adv_changed_share"] <= 1 for s in stats)
        shares[kind] = sum(s["adv_other_length_share"] for s in stats)
    assert shares["same_length"] == 0 and shares["length_groups"] > 0
    # x_hat of another length: its own attention mask, so that the objective's forward takes it as it is
    x_hat = ASCCTrainingAdversary(ASCCAdversary(steps=1), HullBuilder(model.tokenizer, SUBS), (0,), hull="length_groups").perturb(model, train_batch)
    logits = model(**x_hat.as_kwargs())
    assert logits.shape == (len(batch), 2) and x_hat.inputs_embeds.shape[:2] == x_hat.attention_mask.shape
