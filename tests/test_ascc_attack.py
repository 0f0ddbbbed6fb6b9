"""The white-box ASCC attack's discrete step: it must find the flips that enumeration finds.

A tiny model is taught a polarity per word, so single substitutions flip short
texts; some flipping substitutes have another subword length than their word
("bad" -> "lou ##sy", "boring" -> "ted ##ious"), which the hull cannot hold.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

from riftkit.attacks.ascc import ASCCAttack
from riftkit.attacks.registry import AttackSetup, build_attack
from riftkit.config import ASCCSearchConfig, AttackConfig, ConfigError, ExperimentConfig
from riftkit.data import DatasetSplits, Example
from riftkit.models import build_classifier, random_encoder
from riftkit.substitutions import SubstitutionSet
from riftkit.substitutions.hull import HullBuilder
from riftkit.training.loop import DevEvaluator

from .conftest import SENTIMENT

SUBS = SubstitutionSet({
    "bad": ["poor", "awful", "lousy", "wicked"],  # lousy: 2 tokens, positive; wicked: 1 token, positive
    "good": ["fine", "nice", "decent"],
    "boring": ["dull", "tedious", "monotonous"],  # tedious: 2 tokens, positive; monotonous: 3 tokens
    "film": ["movie", "picture"],
    "plot": ["story"],
})
POLARITY = {"bad": -1, "poor": -1, "awful": -1, "lousy": 1, "wicked": 1, "good": 1, "fine": -1, "nice": 1, "decent": 1,
            "boring": -1, "dull": -1, "tedious": 1, "monotonous": -1, "film": 0, "movie": 0, "picture": 0.4, "plot": 0, "story": -0.4}
VICTIMS = ["bad", "good", "boring", "bad film", "good plot", "boring film", "good film", "bad plot", "film", "nice film", "dull plot"]


def label_of(words) -> int:
    return int(sum(POLARITY.get(w, 0) for w in words) > 0)


@pytest.fixture(scope="module")
def polar(tokenizer):
    """A tiny classifier trained to sum the words' polarities (a few seconds)."""
    torch.manual_seed(0)
    model = build_classifier(random_encoder(tokenizer.vocab_size, seed=0), tokenizer, SENTIMENT, "tiny", max_length=16, head_dropout=0.0, seed=0)
    vocabulary = list(POLARITY)
    texts = [(w,) for w in vocabulary] + [(a, b) for a in vocabulary for b in ("film", "plot")]
    texts = [t for t in texts if sum(POLARITY[w] for w in t) != 0]
    batch = [Example((t,), label_of(t)) for t in texts]
    inputs, labels = model.encode_examples(batch), torch.tensor([e.label for e in batch])
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(40):
        loss = F.cross_entropy(model(**inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def victims():
    return [Example((tuple(t.split()),), label_of(t.split()), uid=f"v{i}") for i, t in enumerate(VICTIMS)]


def brute_force(model, example: Example) -> list[tuple[tuple[str, ...], float]]:
    """Every flipping text of the example's whole neighbourhood, with its true-class probability."""
    words = example.segments[0]
    texts = [t for t in itertools.product(*[(w, *SUBS[w]) for w in words]) if t != words]
    probs = model.predict_proba([(t,) for t in texts])
    return [(t, float(p[example.label])) for t, p in zip(texts, probs) if int(p.argmax()) != example.label]


def attack(model, examples, **kwargs):
    return ASCCAttack(model, HullBuilder(model.tokenizer, SUBS), steps=10, **kwargs).attack(examples)


def test_strong_finds_every_flip_that_enumeration_finds(polar):
    examples = victims()
    results = attack(polar, examples)
    truth = {e.uid: brute_force(polar, e) for e in examples}
    clean = polar.predict_proba([e.segments for e in examples]).argmax(-1).tolist()
    attacked = [e for e, p in zip(examples, clean) if p == e.label]
    assert sum(bool(truth[e.uid]) for e in attacked) >= 4 and any(not truth[e.uid] for e in attacked)  # the test has teeth
    expected = ["skipped" if p != e.label else "succeeded" if truth[e.uid] else "failed" for e, p in zip(examples, clean)]
    assert [r.outcome for r in results] == expected
    for result in results:  # the record's class probabilities are the model's for its two texts
        assert result.original_probs == pytest.approx(polar.predict_proba([result.original])[0].tolist(), abs=1e-4)
        assert result.adversarial_probs == pytest.approx(polar.predict_proba([result.adversarial])[0].tolist(), abs=1e-4)
    for example, result, pred in zip(examples, results, clean):
        if pred != example.label:
            continue
        flips = truth[example.uid]
        if flips:
            # the reported text: fewest substitutions, then the lowest true-class probability
            changes = lambda t: sum(a != b for a, b in zip(t, example.segments[0]))  # noqa: E731
            best = min(flips, key=lambda f: (changes(f[0]), f[1]))
            assert result.adversarial[0] == best[0]
            assert polar.predict_proba([result.adversarial]).argmax().item() != example.label
        # exact enumeration: clean pass + every text of the neighbourhood, no search
        size = 1
        for w in example.segments[0]:
            size *= 1 + len(SUBS[w])
        assert result.queries == 1 + size - 1


def test_single_decode_misses_flips_outside_the_hull(polar):
    """The paper's variant cannot reach "bad" -> "lousy" (2 tokens); the strong variant enumerates it."""
    example = Example((("bad",),), 0, "lousy-only")
    only_lousy = SubstitutionSet({"bad": ["poor", "lousy"]})
    hulls = HullBuilder(polar.tokenizer, only_lousy)
    assert polar.predict_proba([(("lousy",),)]).argmax().item() == 1 and polar.predict_proba([(("bad",),)]).argmax().item() == 0
    assert ASCCAttack(polar, hulls, decode="single").attack([example])[0].outcome == "failed"
    strong = ASCCAttack(polar, hulls).attack([example])[0]
    assert strong.outcome == "succeeded" and strong.adversarial == (("lousy",),)


def test_search_path_scores_the_whole_neighbourhood_of_a_one_word_text(polar):
    """With enumeration off, the argmax text, its next-best hull candidates and the substitutes of another
    subword length (outside the hull) cover every substitute of a one-word text."""
    examples = [e for e in victims() if len(e.segments[0]) == 1]
    results = attack(polar, examples, enumerate_max=0, restarts=0, candidates=8, hull="same_length")
    for example, result in zip(examples, results):
        if result.outcome == "skipped":
            continue
        assert (result.outcome == "succeeded") == bool(brute_force(polar, example))
        # clean + 10 steps + every substitute once
        assert result.queries == 1 + 10 + len(SUBS[example.segments[0][0]])
    # length groups: the texts start from each word's group anchor, and a move back to the original word is one of them
    grouped = attack(polar, examples, enumerate_max=0, restarts=0, candidates=8, hull="length_groups")
    for example, result in zip(examples, grouped):
        if result.outcome != "skipped":
            assert (result.outcome == "succeeded") == bool(brute_force(polar, example))
            assert result.queries <= 1 + 10 + len(SUBS[example.segments[0][0]])  # no text scored twice
    hulls = HullBuilder(polar.tokenizer, SUBS)
    boring = next(r for e, r in zip(examples, results) if e.segments[0] == ("boring",))
    assert boring.adversarial == (("tedious",),) and hulls.usable_substitutes("boring") == [("dull", hulls.token_ids("dull"))]


def test_single_decode_is_the_papers_pipeline(polar):
    from riftkit.objectives.ascc import ASCCAdversary, start_logits

    examples = victims()
    results = attack(polar, examples, decode="single", seed=3, hull="same_length")
    hulls = HullBuilder(polar.tokenizer, SUBS)
    inputs = polar.encode_examples(examples)
    hull = hulls.build(examples, inputs, [0])
    init = start_logits(hull, [e.uid for e in examples], 3, 0, polar.spec.max_length)  # per (seed, uid): batch-independent
    found = ASCCAdversary(steps=10, loss="ce").search(polar, inputs, hull, torch.tensor([e.label for e in examples]), init=init)
    decoded = hull.decode(examples, found.weights)
    predictions = polar.predict_proba([d.segments for d, _ in decoded]).argmax(-1).tolist()
    for result, (adv, _), pred in zip(results, decoded, predictions):
        assert result.queries == 12  # 10 steps + clean + confirming pass
        if result.outcome != "skipped":
            assert (result.outcome == "succeeded") == (pred != result.label)
            if result.outcome == "succeeded":
                assert result.adversarial == adv.segments


def test_strong_result_does_not_depend_on_the_batch(polar):
    """Restarts are drawn per (seed, uid): an example alone and in any batch gets the same result."""
    examples = victims()[3:9]
    kwargs = {"enumerate_max": 0, "restarts": 2, "candidates": 2, "seed": 5}
    together = attack(polar, examples, batch_size=len(examples), **kwargs)
    assert any(r.queries > 1 + 10 + 3 for r in together)  # some example ran a restart
    for example, result in zip(examples, together):
        alone = attack(polar, [example], **kwargs)[0]
        assert (alone.outcome, alone.adversarial, alone.queries) == (result.outcome, result.adversarial, result.queries)
    reordered = attack(polar, examples[::-1], batch_size=4, **kwargs)[::-1]
    assert [(r.outcome, r.adversarial, r.queries) for r in reordered] == [(r.outcome, r.adversarial, r.queries) for r in together]


def test_enumeration_stops_at_the_max_length_window(make_tiny):
    model = make_tiny(max_length=4)  # [CLS] w1 w2 [SEP]: two words visible
    example = Example((("bad", "film", "good", "plot", "boring"),), 0, "long")
    ascc = ASCCAttack(model, HullBuilder(model.tokenizer, SUBS))
    texts = ascc.neighbourhood(example)
    assert len(texts) == 5 * 3 - 1 and all(t[2:] == example.segments[0][2:] for t in texts)
    assert ASCCAttack(model, HullBuilder(model.tokenizer, SUBS), enumerate_max=13).neighbourhood(example) is None


def test_config_chooses_the_decode_and_rejects_bad_values(polar):
    def build(**fields):
        return build_attack(AttackSetup(polar, SENTIMENT, SUBS, AttackConfig(attack="ascc", ascc=ASCCSearchConfig(**fields))))

    assert build().decode == "strong" and build(decode="single").decode == "single"
    assert build(restarts=0, candidates=3).candidates == 3
    with pytest.raises(ConfigError, match=r"attack\.ascc\.restarts"):
        build(restarts=-1)


def test_model_selection_uses_the_strong_decode(polar):
    """DevEvaluator's robust accuracy is the strong attack with its defaults."""
    examples = victims()
    config = ExperimentConfig()
    config.train.method, config.train.select_max_examples = "adv", None
    hulls = HullBuilder(polar.tokenizer, SUBS)
    evaluator = DevEvaluator(config, DatasetSplits(SENTIMENT, examples, examples, examples), polar, hulls)
    strong = ASCCAttack(polar, hulls).attack(evaluator.robust_dev)
    expected = sum(r.outcome == "failed" for r in strong) / len(strong)
    assert evaluator.robust(polar, evaluator.robust_dev)["robust_accuracy"] == pytest.approx(expected)
    single = ASCCAttack(polar, hulls, decode="single").attack(evaluator.robust_dev)
    assert expected < sum(r.outcome == "failed" for r in single) / len(single)


def test_model_selection_runs_the_attack_that_riftkit_attack_runs_by_default(make_tiny, monkeypatch):
    """Selection's robust metric and `riftkit attack --attack ascc` come from one section (attack.ascc) and one builder:
    with defaults on both sides, every setting of the two attacks is the same (the hull width included)."""
    import riftkit.training.selection as selection
    from riftkit.config import TrainConfig

    model = make_tiny()
    examples = [Example((("a", "good", "film"),), 1, "e0")]
    evaluator = DevEvaluator(ExperimentConfig(train=TrainConfig(method="adv")), DatasetSplits(SENTIMENT, examples, examples, examples),
                             model, HullBuilder(model.tokenizer, SUBS))
    assert evaluator.metric == "dev_robust_ascc"
    built = []
    real = ASCCAttack.from_config
    monkeypatch.setattr(selection.ASCCAttack, "from_config", lambda *a, **k: built.append(real(*a, **k)) or built[-1])
    evaluator.robust(model, examples)
    command_line = build_attack(AttackSetup(model, SENTIMENT, SUBS, AttackConfig(attack="ascc")))

    def settings(attack: ASCCAttack) -> dict:
        values = {k: v for k, v in vars(attack).items() if k not in ("model", "hulls", "generator", "adversary")}
        return {**values, **vars(attack.adversary), "hull_width": attack.hulls.max_candidates}

    assert built[0] is not command_line and settings(built[0]) == settings(command_line)
    assert settings(command_line)["decode"] == "strong" and settings(command_line)["steps"] == 10


def test_single_decode_result_does_not_depend_on_the_batch(polar):
    """The paper's single decode too: its start is drawn per (seed, uid), not from a generator shared across
    batches and scaled by the batch's widest example (it was: an example's result depended on its batch mates)."""
    examples = victims()
    together = attack(polar, examples, decode="single", batch_size=len(examples), seed=3)
    for example, result in zip(examples, together):
        alone = attack(polar, [example], decode="single", seed=3)[0]
        assert (alone.outcome, alone.adversarial) == (result.outcome, result.adversarial), example.uid
    reordered = attack(polar, examples[::-1], decode="single", batch_size=3, seed=3)[::-1]
    assert [(r.outcome, r.adversarial) for r in reordered] == [(r.outcome, r.adversarial) for r in together]


@pytest.mark.parametrize("field, value", [("stopwords", True), ("max_change_rate", 0.5), ("lm", "ngram-task")])
def test_ascc_refuses_the_constraints_it_does_not_apply(polar, field, value):
    """The white-box attack applies neither candidate filters nor a change budget; its settings file used to record
    them as if it did. Now such a run is refused, naming the field."""
    with pytest.raises(ConfigError, match=rf"attack\.{field}"):  # refused where the config is built, before any work
        AttackConfig(attack="ascc", **{field: value})
    build_attack(AttackSetup(polar, SENTIMENT, SUBS, AttackConfig(attack="ascc", lm="none")))  # none: fine
    AttackConfig(attack="pwws", **{field: value})  # the black-box searches apply it


def test_length_group_search_reaches_substitutes_of_another_token_count(polar):
    """attack.ascc.hull: length_groups (issue 24): the relaxed search itself reaches "bad" -> "lousy"/"tedious"
    (2 tokens), with no enumeration and no one-word moves bolted on; the same-length hull cannot."""
    subs = SubstitutionSet({"bad": ["poor", "lousy", "tedious"]})
    example = Example((("bad", "plot"),), 0, "other-length")
    kwargs = {"enumerate_max": 0, "candidates": 0, "restarts": 12, "seed": 1}
    same = ASCCAttack(polar, HullBuilder(polar.tokenizer, subs), hull="same_length", **kwargs).attack([example])[0]
    assert same.outcome == "failed" and same.queries == 1 + 13 * 10 + 1  # every round's argmax is one text ("poor plot")
    grouped = ASCCAttack(polar, HullBuilder(polar.tokenizer, subs), hull="length_groups", **kwargs).attack([example])[0]
    assert grouped.outcome == "succeeded" and grouped.adversarial[0][0] in ("lousy", "tedious")


def test_length_group_result_does_not_depend_on_the_batch(polar):
    examples = victims()[3:9]
    kwargs = {"enumerate_max": 0, "restarts": 3, "candidates": 2, "seed": 5, "hull": "length_groups"}
    together = attack(polar, examples, batch_size=len(examples), **kwargs)
    for example, result in zip(examples, together):
        alone = attack(polar, [example], **kwargs)[0]
        assert (alone.outcome, alone.adversarial, alone.queries) == (result.outcome, result.adversarial, result.queries)
    single = attack(polar, examples, decode="single", batch_size=len(examples), **kwargs)
    for example, result in zip(examples, single):
        alone = attack(polar, [example], decode="single", **kwargs)[0]
        assert (alone.outcome, alone.adversarial) == (result.outcome, result.adversarial)


def test_the_config_chooses_the_search_hull(polar):
    search = ASCCSearchConfig(hull="length_groups")
    built = ASCCAttack.from_config(polar, HullBuilder(polar.tokenizer, SUBS), search, seed=0)
    assert built.hull == "length_groups"
    with pytest.raises(ValueError, match="attack.ascc.hull"):
        ASCCAttack(polar, HullBuilder(polar.tokenizer, SUBS), hull="bogus")
