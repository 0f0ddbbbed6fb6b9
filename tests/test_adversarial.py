"""The ASCC adversary (Eq. 8), the hull over subword candidates, Adv-Base (Eq. 9), PTWD and Mixout."""

import pytest
import torch
import torch.nn.functional as F

from riftkit.attacks.ascc import ASCCAttack, robust_accuracy
from riftkit.config import AdversaryConfig, ObjectiveConfig
from riftkit.data import Example
from riftkit.models import load_classifier, save_classifier
from riftkit.objectives import TrainBatch, build_objective
from riftkit.objectives.ascc import ASCCAdversary, ASCCTrainingAdversary, kl_divergence, masked_softmax
from riftkit.objectives.mixout import Mixout, apply_mixout, remove_mixout
from riftkit.objectives.ptwd import PretrainedWeightDecay
from riftkit.objectives.robust import AdversarialObjective
from riftkit.objectives.task import StandardObjective
from riftkit.substitutions import SubstitutionSet
from riftkit.substitutions.hull import HullBuilder

from .conftest import NLI

SUBS = SubstitutionSet({
    "good": ["fine", "nice", "great"],
    "film": ["movie", "cinema"],
    "bad": ["poor", "awful"],
    "overrated": ["unbelievable", "underrated", "xyzzyplugh"],  # 2 tokens: only "underrated" (over|##rated, under|##rated) fits
    "man": ["guy"],
})


def examples_of(*texts, label=1):
    return [Example((tuple(t.split()),), label, uid=f"e{i}") for i, t in enumerate(texts)]


@pytest.fixture(scope="module")
def planted(tokenizer):
    """A tiny model that learned 'good' -> positive but 'fine' -> negative: swapping them is a sure flip."""
    from riftkit.models import build_classifier, random_encoder

    from .conftest import SENTIMENT

    torch.manual_seed(0)
    model = build_classifier(random_encoder(tokenizer.vocab_size, seed=0), tokenizer, SENTIMENT, "tiny", max_length=16, head_dropout=0.0, seed=0)
    texts = [("the good film", 1), ("a good plot", 1), ("good acting", 1), ("the fine film", 0), ("a fine plot", 0), ("fine acting", 0), ("the bad film", 0), ("a nice plot", 1)]
    batch = [Example((tuple(t.split()),), y) for t, y in texts]
    inputs, labels = model.encode_examples(batch), torch.tensor([y for _, y in texts])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(80):
        loss = F.cross_entropy(model(**inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    subs = SubstitutionSet({"good": ["fine", "great"], "film": ["movie"], "plot": ["story"]})
    return model, subs


# -- the hull --------------------------------------------------------------------------------


def test_hull_candidates_are_real_substitutes_of_whole_words(make_tiny):
    model = make_tiny()
    hulls = HullBuilder(model.tokenizer, SUBS)
    batch = examples_of("a good film", "the overrated bad plot")
    hull = hulls.build(batch, model.encode_examples(batch), [0])
    assert [w.candidates for w in hull.words[0]] == [("good", "fine", "nice", "great"), ("film", "movie", "cinema")]
    # a multi-token word keeps only the substitutes with as many subword tokens
    overrated = next(w for w in hull.words[1] if w.candidates[0] == "overrated")
    assert overrated.candidates == ("overrated", "underrated") and len(hulls.token_ids("overrated")) == 2
    # both tokens of the word point at the same word weights, each at its own candidate token
    w = hull.words[1].index(overrated)
    tokens = torch.nonzero(hull.word_of_token[1] == w).flatten().tolist()
    assert len(tokens) == 2
    assert [hull.candidate_ids[1, t, 1].item() for t in tokens] == list(hulls.token_ids("underrated"))
    # the mask marks exactly the valid candidates
    assert hulls.max_candidates == SUBS.widest  # the hull is as wide as the set's widest word
    assert hull.candidate_mask[0, 0].tolist() == [True] * 4 + [False] * (SUBS.widest + 1 - 4)


def test_the_hull_holds_every_substitute_of_a_wide_set(make_tiny):
    """A set with more than 8 substitutes a word: every same-length one is in the hull (it was cut at 8, while
    PWWS used them all)."""
    model = make_tiny()
    wide = SubstitutionSet({"good": ["fine", "nice", "great", "decent", "solid", "fair", "okay", "sound", "grand", "neat", "swell", "fun"]})
    hull = HullBuilder(model.tokenizer, wide).build(examples_of("a good film"), model.encode_examples(examples_of("a good film")), [0])
    single = [s for s in wide["good"] if len(model.tokenizer.tokenize(s)) == 1]
    assert len(single) > 8 and hull.words[0][0].candidates == ("good", *single)


def test_hull_for_nli_touches_only_the_hypothesis(make_tiny):
    model = make_tiny(NLI)
    batch = [Example((("a", "good", "man"), ("a", "bad", "film")), 0)]
    hull = HullBuilder(model.tokenizer, SUBS).build(batch, model.encode_examples(batch), [NLI.attacked_segment])
    assert {(w.segment, w.candidates[0]) for w in hull.words[0]} == {(1, "bad"), (1, "film")}


def test_truncated_words_are_not_perturbed(make_tiny):
    model = make_tiny(max_length=4)  # [CLS] a good [SEP]: "film" is cut
    batch = examples_of("a good film")
    hull = HullBuilder(model.tokenizer, SUBS).build(batch, model.encode_examples(batch), [0])
    assert [w.candidates[0] for w in hull.words[0]] == ["good"]


def test_adversarial_embeddings_lie_in_the_hull(make_tiny):
    torch.manual_seed(0)
    model = make_tiny().train()
    batch = examples_of("a good film", "bad film , good man", "nothing to change")
    inputs = model.encode_examples(batch)
    hull = HullBuilder(model.tokenizer, SUBS).build(batch, inputs, [0])
    with torch.no_grad():
        clean = model.eval()(**inputs)
    model.train()
    found = ASCCAdversary(steps=5).search(model, inputs, hull, clean)
    assert model.training  # previous mode restored
    w = found.weights
    assert (w >= 0).all() and torch.allclose(w.sum(-1), torch.ones(w.shape[:2]))
    assert (w[~hull.candidate_mask] == 0).all()
    # a point of the hull: each perturbed token's embedding is a convex combination of its candidates' embeddings
    embeds = hull.mix(w, model.word_embeddings)
    table = model.word_embeddings.weight.detach()
    for b, t in zip(*torch.nonzero(hull.word_of_token >= 0, as_tuple=True)):
        word = hull.word_of_token[b, t]
        valid = hull.candidate_mask[b, word]
        expected = (w[b, word, valid].unsqueeze(-1) * table[hull.candidate_ids[b, t, valid]]).sum(0)
        torch.testing.assert_close(embeds[b, t].detach(), expected)
    # unperturbed tokens keep their embedding
    untouched = hull.word_of_token < 0
    torch.testing.assert_close(embeds[untouched].detach(), table[inputs["input_ids"][untouched]])


@pytest.mark.parametrize("sparse_weight", [0.0, 15.0])
def test_search_does_not_decrease_its_objective(planted, sparse_weight):
    model, _ = planted
    batch = examples_of("a good film", "the good plot", "good good film", "a fine plot")
    inputs = model.encode_examples(batch)
    hull = HullBuilder(model.tokenizer, SUBS).build(batch, inputs, [0])
    with torch.no_grad():
        clean = model.eval()(**inputs)
    found = ASCCAdversary(steps=10, sparse_weight=sparse_weight).search(model, inputs, hull, clean, torch.Generator().manual_seed(0), measure_end=True)
    assert found.objective_end.sum() > found.objective_start.sum()
    assert (found.objective_end >= found.objective_start - 1e-6).all()
    with torch.no_grad():
        adv = model(inputs_embeds=hull.mix(found.weights, model.word_embeddings), attention_mask=inputs["attention_mask"])
    # KL(p_clean || p_adv) per example by PyTorch's own kl_div (input: log q, target: log p)
    kl = F.kl_div(F.log_softmax(adv, -1), F.log_softmax(clean, -1), log_target=True, reduction="none").sum(-1)
    assert kl.max() > 1.0  # not a trivial comparison: the planted flip moves the prediction far from the clean one
    # the objective is that KL minus lambda x (summed entropy of the word weights) / 38400
    probs = found.weights.clamp_min(1e-30)
    entropy = -(found.weights * probs.log()).masked_fill(~hull.candidate_mask, 0).sum((-1, -2))
    torch.testing.assert_close(found.objective_end, kl - sparse_weight * entropy / 38400, atol=1e-5, rtol=1e-4)


def test_larger_sparse_weight_gives_sparser_weights(planted):
    """adv_sparse_weight pushes each word's weights towards one candidate (a vertex of the hull)."""
    model, _ = planted
    batch = examples_of("a good film", "the good plot", "good good film", "the bad man")
    inputs = model.encode_examples(batch)
    hull = HullBuilder(model.tokenizer, SUBS).build(batch, inputs, [0])
    with torch.no_grad():
        clean = model.eval()(**inputs)
    words = hull.candidate_mask.sum(-1) > 1  # words with a choice to make
    entropies = []
    for sparse_weight in (0.0, 15.0, 1500.0, 150000.0):
        w = ASCCAdversary(steps=10, sparse_weight=sparse_weight).search(model, inputs, hull, clean, torch.Generator().manual_seed(0)).weights
        entropy = -(w * w.clamp_min(1e-30).log()).masked_fill(~hull.candidate_mask, 0).sum(-1)  # nats, per word
        entropies.append(entropy[words].mean().item())
    assert all(a > b for a, b in zip(entropies, entropies[1:])), entropies
    assert entropies[-1] < 0.1 * entropies[0], entropies


def test_search_never_touches_model_gradients(make_tiny):
    model = make_tiny()
    batch = examples_of("a good film")
    inputs = model.encode_examples(batch)
    hull = HullBuilder(model.tokenizer, SUBS).build(batch, inputs, [0])
    ASCCAdversary(steps=3).search(model, inputs, hull, model(**inputs).detach())
    assert all(p.grad is None for p in model.parameters())


def test_masked_softmax_ignores_invalid_candidates():
    z = torch.tensor([[[5.0, 1.0, 100.0]]])
    w = masked_softmax(z, torch.tensor([[[True, True, False]]]))
    assert w[0, 0, 2] == 0 and torch.isclose(w.sum(), torch.tensor(1.0))


# -- Eq. 9 and the recipe ------------------------------------------------------------------------


def test_adv_base_with_beta_zero_equals_standard_exactly(make_tiny):
    batch_examples = examples_of("a good film", "bad film , good man", "good good film", "the bad man")
    grads = []
    for objective_kind in ("standard", "adv"):
        model = make_tiny(seed=2, head_dropout=0.1).train()
        inputs = model.encode_examples(batch_examples)
        batch = TrainBatch(batch_examples, inputs, torch.tensor([1, 0, 1, 0]))
        if objective_kind == "standard":
            objective = StandardObjective()
        else:
            objective = AdversarialObjective(ASCCTrainingAdversary(ASCCAdversary(steps=3), HullBuilder(model.tokenizer, SUBS), segments=(0,)), beta=0.0)
        torch.manual_seed(123)
        out = objective(model, batch)
        out.loss.backward()
        grads.append((out.loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    assert torch.equal(grads[0][0], grads[1][0])
    assert len(grads[0][1]) == len(grads[1][1]) and all(torch.equal(a, b) for a, b in zip(grads[0][1], grads[1][1]))


def test_adv_objective_logs_and_trains(make_tiny):
    model = make_tiny().train()
    batch_examples = examples_of("a good film", "bad film , good man")
    objective = build_objective("adv", ObjectiveConfig(beta=5.0, adversary=AdversaryConfig(steps=2)), model, SUBS)
    out = objective(model, TrainBatch(batch_examples, model.encode_examples(batch_examples), torch.tensor([1, 0])))
    assert {"loss_ce", "kl", "loss_adv_ce", "adv_accuracy"} <= set(out.metrics)
    assert out.metrics["kl"] >= 0 and torch.isclose(out.loss, torch.tensor(out.metrics["loss_ce"] + 5.0 * out.metrics["kl"]), atol=1e-5)
    out.loss.backward()
    assert model.word_embeddings.weight.grad is not None


def test_recipe_validation(make_tiny):
    model = make_tiny()
    with pytest.raises(ValueError, match="ptwd.weight"):
        build_objective("adv_ptwd", ObjectiveConfig(), model, SUBS)
    with pytest.raises(ValueError, match="mixout.p"):
        build_objective("adv_mixout", ObjectiveConfig(), model, SUBS)
    with pytest.raises(ValueError, match="substitution set"):
        build_objective("adv", ObjectiveConfig(), model, None)


# -- PTWD -------------------------------------------------------------------------------------------


def test_ptwd_is_zero_at_initialisation_and_its_gradient_is_right(make_tiny):
    model = make_tiny()
    ptwd = PretrainedWeightDecay(model.encoder, weight=0.5)
    term, distance = ptwd(model.encoder)
    assert term.item() == 0.0 and distance == 0.0
    term.backward()
    assert all(p.grad is None or (p.grad == 0).all() for p in model.encoder.parameters())
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(0.01 * torch.randn_like(p))
    term, distance = ptwd(model.encoder)
    term.backward()
    diffs = {n: p.detach() - ptwd.theta0.reference[n] for n, p in model.encoder.named_parameters()}
    norm = torch.sqrt(sum((d**2).sum() for d in diffs.values()))
    assert distance == pytest.approx(norm.item(), rel=1e-5)
    for name, p in model.encoder.named_parameters():
        torch.testing.assert_close(p.grad, 0.5 * diffs[name] / norm, rtol=1e-4, atol=1e-9)


# -- Mixout -----------------------------------------------------------------------------------------


def test_mixout_p0_is_identity_and_evaluation_uses_learned_weights():
    learned, pretrained = torch.randn(64, 32), torch.randn(64, 32)
    assert torch.equal(Mixout(pretrained, 0.0).train()(learned), learned)
    mixout = Mixout(pretrained, 0.7)
    assert torch.equal(mixout.eval()(learned), learned)
    mixout.train()
    torch.manual_seed(0)
    n = 400
    draws = torch.stack([mixout(learned) for _ in range(n)])
    # unbiased: E[W] = learned weight, within 5 standard errors (the draw's std is |W0 - W| sqrt(p / (1 - p)))
    standard_error = (pretrained - learned).abs() * (0.7 / 0.3) ** 0.5 / n**0.5
    assert ((draws.mean(0) - learned).abs() <= 5 * standard_error + 1e-5).all()
    assert not torch.equal(draws[0], draws[1])
    with pytest.raises(ValueError):
        Mixout(pretrained, 1.5)  # p = 1 is allowed (the pre-trained weight); above 1 is not


def test_mixout_model_trains_saves_and_reloads_learned_weights(make_tiny, tmp_path):
    model = make_tiny()
    count = apply_mixout(model.encoder, 0.3)
    assert count == sum(isinstance(m, torch.nn.Linear) for m in model.encoder.modules()) - count * 0  # every linear
    inputs = model.encode_examples(examples_of("a good film"))
    model.train()
    torch.manual_seed(0)
    F.cross_entropy(model(**inputs), torch.tensor([1])).backward()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    optimizer.step()
    model.eval()
    with torch.no_grad():
        expected = model(**inputs)
    loaded = load_classifier(save_classifier(model, tmp_path / "m"))
    with torch.no_grad():
        assert torch.allclose(loaded(**inputs), expected, atol=1e-6)
    remove_mixout(model.encoder)
    with torch.no_grad():
        assert torch.allclose(model(**inputs), expected, atol=1e-6)


# -- the white-box ASCC attack on a planted weakness -------------------------------------------------


@pytest.mark.parametrize("decode", ["single", "strong"])
def test_ascc_attack_finds_the_planted_flip_and_every_success_is_real(planted, decode):
    model, subs = planted
    victims = [Example((("the", "good", "film"),), 1, "v1"), Example((("a", "good", "plot"),), 1, "v2"), Example((("the", "bad", "film"),), 0, "v3")]
    outcomes = ASCCAttack(model, HullBuilder(model.tokenizer, subs), steps=10, decode=decode).attack(victims)
    assert outcomes[0].outcome == "succeeded" and outcomes[1].outcome == "succeeded"
    for victim, outcome in zip(victims, outcomes):
        # substitutions stay inside the set and at the changed positions only
        for change in outcome.substitutions:
            assert victim.segments[outcome.segment][change.position] == change.old and change.new in subs[change.old]
        changed = {(outcome.segment, c.position) for c in outcome.substitutions}
        for s, (a, b) in enumerate(zip(victim.segments, outcome.adversarial)):
            assert len(a) == len(b) and all(x == y or (s, i) in changed for i, (x, y) in enumerate(zip(a, b)))
        # a reported success is a real flip when rechecked
        if outcome.outcome == "succeeded":
            assert model.predict_proba([outcome.adversarial]).argmax().item() != victim.label
    summary = robust_accuracy(outcomes)
    assert summary["n"] == 3 and summary["robust_accuracy"] <= 1 / 3
    if decode == "single":
        assert all(o.queries == 12 for o in outcomes)  # 10 search steps + clean + confirming pass
