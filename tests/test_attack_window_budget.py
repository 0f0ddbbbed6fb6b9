"""Attacks see what the model sees (the max_length window), and a query budget per example holds."""

from __future__ import annotations

import random

import pytest

from riftkit.attacks import PWWS, Genetic, WordSwap
from riftkit.attacks.base import FAILED, QUERY_BUDGET, SKIPPED, SUCCEEDED
from riftkit.attacks.runner import run_attack
from riftkit.config import AttackConfig, GeneticConfig
from riftkit.data import DatasetSplits, Example, read_file, sample
from riftkit.substitutions import load_substitutions

from .conftest import SENTIMENT
from .test_attacks_runner import LabelledVictim, subs_file, toy_splits  # noqa: F401 (fixture)
from .test_attacks_victims import SUBS, WEIGHTS, KeywordVictim


class TruncatingVictim(KeywordVictim):
    """A keyword victim that reads only the first ``window`` words, like a model with a max_length."""

    def __init__(self, *args, window: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.window = window

    def score(self, segments) -> float:
        return super().score(tuple(tuple(s[: self.window]) for s in segments))

    def visible_words(self, segments) -> tuple[int, ...]:
        return tuple(min(len(s), self.window) for s in segments)


def make(kind, victim, truncated=False, **kwargs):
    if kind == "genetic":
        return Genetic(victim, WordSwap(SUBS, 0), population=12, generations=10, attack_truncated_words=truncated, **kwargs)
    return PWWS(victim, WordSwap(SUBS, 0), attack_truncated_words=truncated, **kwargs)


# Inside the first 6 words: the two-word flip; past them: many substitutable words the model never sees.
LONG = Example((("a", "good", "and", "very", "great", "film") + ("a", "very", "good", "film", "great") * 3,), 1, "long")


@pytest.mark.parametrize("kind", ["pwws", "genetic"])
def test_words_past_the_window_are_not_attacked(kind):
    victim = TruncatingVictim(WEIGHTS, bias=-1.0, window=6)
    (windowed,) = make(kind, victim).attack([LONG])
    asked = victim.texts
    (whole,) = make(kind, TruncatingVictim(WEIGHTS, bias=-1.0, window=6), truncated=True).attack([LONG])

    assert windowed.outcome == SUCCEEDED and windowed.attackable_words == 6
    assert all(s.position < 6 for s in windowed.substitutions)
    assert windowed.changed_share == pytest.approx(len(windowed.substitutions) / 6)
    assert all(t[0][6:] == LONG.segments[0][6:] for t in asked)  # never a query about an unseen word
    assert whole.outcome == SUCCEEDED and whole.attackable_words == len(LONG.segments[0])
    if kind == "pwws":  # deterministic given the ranking: the same in-window substitutions
        assert [s for s in whole.substitutions if s.position < 6] == windowed.substitutions
    assert windowed.queries < whole.queries


@pytest.fixture(scope="module")
def long_sst2_texts(data_dir):
    examples = read_file(data_dir / "sst2" / "dev.jsonl.gz", SENTIMENT)
    return sample([e for e in examples if len(e.segments[0]) >= 24], 6, seed=0)


def test_on_a_tiny_bert_pwws_gives_the_same_outcome_and_in_window_changes_with_fewer_queries(make_tiny, data_dir, long_sst2_texts):
    model = make_tiny(SENTIMENT, max_length=16)
    substitutions = load_substitutions("counterfitted", data_dir)
    # label each text with the model's own prediction, so every example is attacked
    examples = [Example(e.segments, int(model.predict_proba([e.segments])[0].argmax()), e.uid) for e in long_sst2_texts]
    windowed = PWWS(model, WordSwap(substitutions, 0)).attack(examples)
    whole = PWWS(model, WordSwap(substitutions, 0), attack_truncated_words=True).attack(examples)
    saved = 0
    for a, b, example in zip(windowed, whole, examples):
        window = model.visible_words(example.segments)[0]
        assert a.attackable_words == window < len(example.segments[0])
        assert a.outcome == b.outcome != SKIPPED
        assert a.substitutions == [s for s in b.substitutions if s.position < window]
        assert a.queries <= b.queries
        saved += b.queries - a.queries
    assert saved > 0


def test_visible_words_are_the_words_the_model_reads_whole(make_tiny, data_dir, long_sst2_texts):
    model = make_tiny(SENTIMENT, max_length=16)
    words = long_sst2_texts[0].segments[0]
    (visible,) = model.visible_words((words,))
    assert 0 < visible < len(words)
    original = model.predict_proba([(words,)])[0]
    past = words[:visible] + ("xylophone",) + words[visible + 1 :]
    assert model.predict_proba([(past,)])[0].tolist() == original.tolist()  # unseen: no effect at all
    inside = words[: visible - 1] + ("xylophone",) + words[visible:]
    assert model.predict_proba([(inside,)])[0].tolist() != original.tolist()
    # a word split into several pieces is visible only if all its pieces fit
    encoded = model.encode([(words,)])
    pieces = [w for w in encoded.word_ids(0) if w is not None]
    assert visible == (max(pieces) + 1 if all(pieces.count(w) == len(model.tokenizer.tokenize(words[w])) for w in set(pieces)) else max(pieces))


def test_pairs_truncate_either_segment(make_tiny):
    from .conftest import NLI

    model = make_tiny(NLI, max_length=24)
    premise = tuple("the man in a red coat walks his small dog along the quiet river bank".split())
    hypothesis = tuple("a person is outside with an animal near some water today".split())
    visible = model.visible_words((premise, hypothesis))
    assert visible[0] < len(premise) and visible[1] <= len(hypothesis)
    assert sum(visible) <= 24 - 3  # [CLS] p [SEP] h [SEP]
    encoded = model.encode([(premise, hypothesis)])
    seen = {(s, w) for s, w in zip(encoded.sequence_ids(0), encoded.word_ids(0)) if w is not None}
    assert all((0, i) in seen for i in range(visible[0])) and all((1, i) in seen for i in range(visible[1]))


# -- the query budget ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["pwws", "genetic"])
@pytest.mark.parametrize("budget", [1, 5, 50])
def test_no_example_goes_over_its_query_budget(kind, budget):
    rng = random.Random(budget)
    vocab = ["a", "good", "great", "film", "very", "and", "the", "plot", "nice", "fine"]
    examples = [Example((tuple(rng.choice(vocab) for _ in range(rng.randint(3, 9))),), rng.randint(0, 1), f"t{i}") for i in range(12)]
    examples.append(Example((("a", "good", "and", "very", "great", "film"),), 1, "flip-2"))
    victim = KeywordVictim(WEIGHTS, bias=-1.0)
    results = make(kind, victim, query_budget=budget, in_flight=4).attack(examples)
    unlimited = make(kind, KeywordVictim(WEIGHTS, bias=-1.0)).attack(examples)
    assert all(r.queries <= budget for r in results)
    for r, free in zip(results, unlimited):
        assert (r.outcome == SKIPPED) == (free.outcome == SKIPPED)
        if r.stop_reason == QUERY_BUDGET:
            assert r.outcome == FAILED and free.queries > budget
        if free.outcome != SKIPPED and free.queries > budget:  # the budget binds: spent, or a flip inside it
            assert r.stop_reason == QUERY_BUDGET or r.outcome == SUCCEEDED
        if free.queries <= budget:  # the budget never bound: the same result
            assert (r.outcome, r.substitutions, r.queries) == (free.outcome, free.substitutions, free.queries)
        if r.outcome == SUCCEEDED:
            assert victim.predict_proba([r.adversarial])[0].argmax() != r.label
    if budget == 1:
        assert all(r.outcome == SKIPPED or r.stop_reason == QUERY_BUDGET for r in results)
    assert any(r.stop_reason == QUERY_BUDGET for r in results) == any(f.queries > budget for f in unlimited if f.outcome == FAILED)


def test_budget_exhausted_examples_are_counted_in_the_summary(tmp_path, subs_file):
    splits, model = toy_splits(), LabelledVictim(WEIGHTS, bias=-1.0)
    config = AttackConfig(attack="genetic", n=10, seed=1, substitutions=subs_file, genetic=GeneticConfig(population=8, generations=6), query_budget=3, lm="none")
    summary = run_attack(model, splits, config, "toy-model", tmp_path, progress=False, log=lambda m: None)
    lines = [r for r in (tmp_path / "examples.jsonl").read_text().splitlines()]
    exhausted = sum('"stop_reason": "query_budget"' in line for line in lines)
    assert summary["budget_exhausted"] == exhausted > 0
    assert summary["max_queries"] <= 3


def test_a_budget_below_one_is_refused():
    with pytest.raises(ValueError, match="query_budget must be >= 1"):
        make("pwws", KeywordVictim(WEIGHTS), query_budget=0)
