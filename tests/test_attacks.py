"""Searches, query layer, constraints: planted weaknesses, exact counts, batching, NLI segments."""

from __future__ import annotations

import random

import pytest
import torch

from riftkit.attacks import PWWS, SKIPPED, SUCCEEDED, Genetic, QueryLayer, UntargetedClassification, WordSwap
from riftkit.attacks.base import FAILED
from riftkit.attacks.constraints import MaxChangeRate, StopwordFilter
from riftkit.attacks.genetic import parent_weights
from riftkit.data import Example
from riftkit.substitutions import SubstitutionSet

from .test_attacks_victims import SUBS, WEIGHTS, KeywordVictim
from .conftest import NLI, SENTIMENT

TWO_WORD_FLIP = Example((("a", "good", "and", "very", "great", "film"),), 1, "flip-2")


def make(kind, victim, subs=SUBS, segment=0, **kwargs):
    cls = {"pwws": PWWS, "genetic": Genetic}[kind]
    if kind == "genetic":
        kwargs.setdefault("population", 12)
        kwargs.setdefault("generations", 10)
    else:
        kwargs.pop("population", None), kwargs.pop("generations", None)
    return cls(victim, WordSwap(subs, segment), **kwargs)


def check_inside_threat_model(result, subs, segment):
    """Only the attacked segment changes, and every change is a substitute of the original word."""
    for i, (orig, adv) in enumerate(zip(result.original, result.adversarial)):
        if i != segment:
            assert orig == adv
    original, adversarial = result.original[segment], result.adversarial[segment]
    assert len(original) == len(adversarial)
    changes = [(i, a, b) for i, (a, b) in enumerate(zip(original, adversarial)) if a != b]
    assert all(b in subs[a] for _, a, b in changes)
    assert [s.to_list() for s in result.substitutions] == [list(c) for c in changes]


@pytest.mark.parametrize("kind", ["pwws", "genetic"])
def test_search_finds_the_planted_two_word_flip(kind):
    victim = KeywordVictim(WEIGHTS, bias=-1.0)
    assert victim.predict_proba([TWO_WORD_FLIP.segments])[0].argmax() == 1
    (result,) = make(kind, victim).attack([TWO_WORD_FLIP])
    assert result.outcome == SUCCEEDED and result.adversarial_prediction == 0
    adversarial = result.adversarial[0]
    assert adversarial[1] == "okay" and adversarial[4] == "fine"  # the only way to flip
    check_inside_threat_model(result, SUBS, 0)
    assert victim.predict_proba([result.adversarial])[0].argmax() == 0  # a real flip, rechecked
    assert result.changed_share == pytest.approx(len(result.substitutions) / 6)


@pytest.mark.parametrize("kind", ["pwws", "genetic"])
def test_unbreakable_example_fails_and_misclassified_one_is_skipped(kind):
    victim = KeywordVictim(WEIGHTS, bias=-1.0)
    # each "good" may only become "nice" (1.5 -> 1.4): no text in the threat model flips
    strong = Example((("good", "good", "good", "film"),), 1, "strong")
    subs = SubstitutionSet({"good": ["nice"], "film": ["movie"]})
    wrong = Example((("a", "film"),), 1, "wrong")  # score -1: predicted negative, label positive
    results = make(kind, victim, subs).attack([strong, wrong])
    assert [r.outcome for r in results] == [FAILED, SKIPPED]
    assert results[0].adversarial == strong.segments and results[0].substitutions == []
    assert results[1].queries == 1 and results[1].original_prediction == 0


def test_pwws_queries_are_exactly_the_method_and_batched():
    """1 clean text, one batch of (saliency + every candidate), then one text per greedy step."""
    victim = KeywordVictim(WEIGHTS, bias=-1.0)
    attack = make("pwws", victim)
    (result,) = attack.attack([TWO_WORD_FLIP])
    substitutable = [i for i, w in enumerate(TWO_WORD_FLIP.segments[0]) if SUBS[w]]
    candidates = sum(len(SUBS[TWO_WORD_FLIP.segments[0][i]]) for i in substitutable)
    assert [len(call) for call in victim.calls[:2]] == [1, len(substitutable) + candidates]
    masked = victim.calls[1][0][0]
    assert masked[substitutable[0]] == "[UNK]"
    # greedy: the first step's text (one substitution) was already a candidate, so it costs nothing;
    # "good"/"great" (drops to okay/fine) rank first, so the second step flips: one new text
    assert victim.calls[2:] == [[(("a", "okay", "and", "very", "fine", "film"),)]]
    assert result.queries == 1 + len(substitutable) + candidates + 1
    assert result.queries == len(set(victim.texts)) == attack.queries.model_texts


def test_pwws_order_is_softmax_saliency_times_drop():
    # "bad" has the largest saliency but a useless substitute; "dull" has a smaller saliency and a large drop.
    weights = {"bad": -3.0, "awful": -3.0, "dull": -1.0, "lively": 2.5, "movie": 0.0}
    victim = KeywordVictim(weights, bias=0.0)
    subs = SubstitutionSet({"bad": ["awful"], "dull": ["lively"]})
    example = Example((("bad", "dull", "movie"),), 0, "order")
    (result,) = make("pwws", victim, subs).attack([example])
    # "dull" ranks first (H = softmax(S)_dull * drop_dull beats softmax(S)_bad * 0): the second greedy
    # text (the first is a cached candidate) holds both substitutions, "dull" having gone first
    assert victim.calls[2:] == [[(("awful", "lively", "movie"),)]]
    assert result.outcome == FAILED  # -3 + 2.5 < 0 and "awful" does not help


def test_query_counts_are_exact_and_shared_texts_reach_the_model_once():
    victim = KeywordVictim(WEIGHTS, bias=-1.0)
    twin = Example(TWO_WORD_FLIP.segments, 1, "twin")
    attack = make("genetic", victim)
    results = attack.attack([TWO_WORD_FLIP, twin])
    alone = KeywordVictim(WEIGHTS, bias=-1.0)
    (single,) = make("genetic", alone).attack([TWO_WORD_FLIP])
    assert results[0].queries == single.queries == len(set(alone.texts)) == len(alone.texts)  # dedup: no text twice
    # the twin asked its own (seeded) questions; texts both asked reached the model once
    assert len(victim.texts) == len(set(victim.texts)) == attack.queries.model_texts
    assert attack.queries.model_texts <= results[0].queries + results[1].queries


@pytest.mark.parametrize("kind", ["pwws", "genetic"])
def test_examples_attacked_together_share_every_model_call(kind):
    victim = KeywordVictim(WEIGHTS, bias=-1.0)
    examples = [
        TWO_WORD_FLIP,
        Example((("a", "good", "film"),), 1, "one-word"),
        Example((("very", "great", "and", "good", "film", "a"),), 1, "reordered"),
        Example((("a", "great", "film"),), 1, "other"),
    ]
    alone_steps, alone_results = [], []
    for example in examples:
        attack = make(kind, KeywordVictim(WEIGHTS, bias=-1.0))
        steps, ask = [], attack.queries.probabilities
        attack.queries.probabilities = lambda requests, ask=ask, steps=steps: steps.append(1) or ask(requests)
        alone_results.append(attack.attack([example])[0])
        alone_steps.append(len(steps))
    together = make(kind, victim).attack(examples)
    # lockstep: at most one model call per step, for all examples at once (a step whose texts are all cached costs none)
    assert 0 < len(victim.calls) <= max(alone_steps) < sum(alone_steps)
    assert [r.adversarial for r in together] == [r.adversarial for r in alone_results]  # batch composition changes nothing
    assert [r.queries for r in together] == [r.queries for r in alone_results]


def test_in_flight_window_keeps_results_and_order():
    victim = KeywordVictim(WEIGHTS, bias=-1.0)
    examples = [Example(TWO_WORD_FLIP.segments, 1, f"u{i}") for i in range(5)]
    seen = []
    results = make("genetic", victim, in_flight=2).attack(examples, on_result=lambda r: seen.append(r.uid))
    assert [r.uid for r in results] == [e.uid for e in examples] and sorted(seen) == sorted(e.uid for e in examples)
    assert all(r.outcome == SUCCEEDED for r in results)


def test_genetic_is_seeded():
    examples = [Example(TWO_WORD_FLIP.segments, 1, f"u{i}") for i in range(3)]
    first = make("genetic", KeywordVictim(WEIGHTS, bias=-1.0), seed=7).attack(examples)
    second = make("genetic", KeywordVictim(WEIGHTS, bias=-1.0), seed=7).attack(examples)
    assert [(r.adversarial, r.queries) for r in first] == [(r.adversarial, r.queries) for r in second]


def test_parent_selection_favours_stronger_members():
    weights = parent_weights([0.1, 0.5, 0.9], temperature=0.3)
    assert weights[0] < weights[1] < weights[2] and sum(weights) == pytest.approx(1.0)
    rng = random.Random(0)
    draws = rng.choices(range(3), weights=weights, k=3000)
    assert draws.count(2) > draws.count(1) > draws.count(0)


def test_genetic_population_and_generation_budget_is_respected():
    # an unbreakable example runs every generation: population - 1 crossovers in each, perturbed in one batched round at a time
    victim = KeywordVictim(WEIGHTS, bias=-1.0)
    subs = SubstitutionSet({"good": ["nice"], "film": ["movie", "picture"], "a": ["one"]})
    example = Example((("a", "good", "good", "film"),), 1, "hard")
    attack = make("genetic", victim, subs, population=6, generations=4)
    crossovers, perturbed, cross, perturb = [], [], attack.crossover, attack.perturb_all
    attack.crossover = lambda *args: crossovers.append(1) or cross(*args)
    attack.perturb_all = lambda example, original, candidates, members, rng: perturbed.append(len(members)) or (yield from perturb(example, original, candidates, members, rng))
    (result,) = attack.attack([example])
    assert result.outcome == FAILED
    assert perturbed == [6] + [5] * 4 and len(crossovers) == 5 * 4
    # a round asks, per member, for its own text at most once and for the substitutes of ONE position
    assert all(len(call) <= 6 * (1 + 2) for call in victim.calls[1:])


def test_genetic_stops_at_the_first_successful_text():
    # one substitutable word whose substitute "okay" flips the prediction: generation 0's first round finds it
    victim = KeywordVictim(WEIGHTS, bias=-1.0)
    example = Example((("the", "good", "thing"),), 1, "one-flip")
    (result,) = make("genetic", victim, population=12, generations=10).attack([example])
    assert result.outcome == SUCCEEDED and result.adversarial[0] == ("the", "okay", "thing")
    assert len(victim.calls) == 2 and result.queries == 1 + 2  # the clean text, then "nice" and "okay" once each


def test_genetic_changes_each_position_at_most_once_and_only_for_the_better():
    """Every text the search asks about is one substitution away from a text it already knew, at a position that
    lineage had not changed; a member only ever moves to a fitter text."""
    victim = KeywordVictim(WEIGHTS, bias=0.5)  # even with every "good"/"great" replaced the text stays positive
    attack = make("genetic", victim, population=8, generations=6)
    moves, perturb = [], attack.perturb_all

    def spy(example, original, candidates, members, rng):
        result = yield from perturb(example, original, candidates, members, rng)
        moves.extend(zip(members, result))
        return result

    attack.perturb_all = spy
    strong = Example((("a", "good", "and", "very", "great", "good", "film"),), 1, "strong")
    (result,) = attack.attack([strong])
    assert result.outcome == FAILED and moves
    changed = 0
    for before, after in moves:
        diff = [i for i, (x, y) in enumerate(zip(before.words, after.words)) if x != y]
        assert len(diff) <= 1
        if diff:
            changed += 1
            (i,) = diff
            assert i in before.open and i not in after.open and after.fitness > (before.fitness if before.fitness is not None else -1)
            assert after.words[i] in SUBS[strong.segments[0][i]]
        else:
            assert after.open <= before.open
    assert changed > 0


@pytest.mark.parametrize("kind", ["pwws", "genetic"])
def test_nli_attacks_touch_only_the_hypothesis(kind):
    # the premise word "sleeps" would flip the prediction if it could change to "naps"; it must not
    victim = KeywordVictim({"good": 1.5, "great": 1.5}, bias=-1.0, num_labels=3, premise_weights={"sleeps": 0.5, "naps": -5.0})
    subs = SubstitutionSet({**{w: list(SUBS[w]) for w, _ in SUBS.items()}, "sleeps": ["naps"]})
    example = Example((("a", "man", "sleeps"), ("a", "good", "and", "very", "great", "film")), 0, "nli")
    # class 0 gets p * 0.9 where p = sigmoid(score)
    assert victim.predict_proba([example.segments])[0].argmax() == 0
    (result,) = make(kind, victim, subs, segment=NLI.attacked_segment).attack([example])
    assert result.outcome == SUCCEEDED
    check_inside_threat_model(result, subs, 1)
    assert result.adversarial[0] == example.segments[0]
    assert all(call_text[0] == example.segments[0] for call_text in victim.texts)  # never even asked about another premise


def test_nli_fitness_is_the_margin():
    goal = UntargetedClassification()
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.2, 0.5, 0.3]])
    assert goal.fitness(probs, 0).tolist() == pytest.approx([-0.2, 0.3])
    assert goal.succeeded(probs, 0).tolist() == [False, True]
    assert goal.fitness(torch.tensor([[0.7, 0.3]]), 0).tolist() == pytest.approx([0.3])  # binary: 1 - p(y)


@pytest.mark.parametrize("kind", ["pwws", "genetic"])
def test_max_change_rate_and_stopwords_are_respected(kind):
    victim = KeywordVictim(WEIGHTS, bias=-1.0)
    # two changes out of six words are needed: a limit of 1/6 makes the attack fail
    (result,) = make(kind, victim, max_change_rate=1 / 6).attack([TWO_WORD_FLIP])
    assert result.outcome == FAILED
    assert all(sum(a != b for a, b in zip(TWO_WORD_FLIP.segments[0], t[0])) <= 1 for t in victim.texts)
    victim = KeywordVictim(WEIGHTS, bias=-1.0)
    (result,) = make(kind, victim, candidate_filters=[StopwordFilter({"a", "very"})]).attack([TWO_WORD_FLIP])
    assert result.outcome == SUCCEEDED
    assert all(t[0][0] == "a" and t[0][3] == "very" or t[0][1] == "[UNK]" for t in victim.texts)
    assert MaxChangeRate(0.5).allows(("a", "b"), ("x", "b")) and not MaxChangeRate(0.4).allows(("a", "b"), ("x", "b"))


def test_query_layer_cache_is_bounded_and_counts_per_owner():
    victim = KeywordVictim(WEIGHTS)
    layer = QueryLayer(victim, cache_size=2)
    t = [((w,),) for w in ("good", "great", "fine")]
    layer.probabilities([("a", t), ("b", t[:1])])
    assert layer.cached == 2 and layer.queries("a") == 3 and layer.queries("b") == 1 and victim.texts == t
    layer.probabilities([("a", t[:1])])  # evicted -> asked the model again, but not a new query for "a"
    assert layer.queries("a") == 3 and layer.model_texts == 4
    assert layer.release("a") == 3 and layer.queries("a") == 0


def test_query_layer_cache_holds_its_rows_not_the_model_calls_they_came_from():
    # A row kept as a view of its call's [N, C] output would pin all N rows' memory: the cache's memory would
    # grow with the number of calls its survivors came from, not with cache_size (the 30-minute soak saw it).
    victim = KeywordVictim(WEIGHTS)
    layer = QueryLayer(victim, cache_size=1)
    texts = [((w, str(i)),) for i, w in enumerate(["good", "great", "fine", "nice"] * 50)]
    layer.probabilities([("a", texts)])
    (row,) = layer._cache.values()
    assert layer.cached == 1 and row.untyped_storage().nbytes() == row.numel() * row.element_size()


def test_query_layer_hands_freed_memory_back_every_few_model_calls(monkeypatch):
    from riftkit.attacks import queries

    trims = []
    monkeypatch.setattr(queries, "release_free_memory", lambda: trims.append(1) or True)
    layer = QueryLayer(KeywordVictim(WEIGHTS), trim_every=3)
    for i in range(7):
        layer.probabilities([("a", [((f"w{i}",),)])])
        layer.probabilities([("a", [((f"w{i}",),)])])  # cached: no model call, no trim
    assert layer.model_calls == 7 and len(trims) == 2


def test_freed_memory_is_handed_back_and_the_heap_measured_on_glibc():
    import platform

    from riftkit.memory import heap_in_use, release_free_memory

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim and mallinfo2 are glibc's")
    before = heap_in_use()
    block = bytearray(64 << 20)  # 64 MiB from malloc (mmap'd), counted in use while alive
    assert heap_in_use() - before >= 60 << 20
    del block
    assert release_free_memory() is True and heap_in_use() - before < 8 << 20


def tiny_bert_with_a_planted_flip(make_tiny):
    """A real (random, tiny) Classifier, its head bias moved so that one substitution of text 0 flips it;
    the substitution set and five examples (text 2 misclassified)."""
    model = make_tiny(SENTIMENT, seed=3).eval()
    subs = SubstitutionSet({"good": ["nice", "fine", "decent"], "film": ["movie", "picture", "show"], "bad": ["poor", "awful"],
                            "story": ["tale", "plot"], "great": ["superb", "fine"], "boring": ["dull", "tedious"]})
    texts = ["a good film with a great story", "a bad and boring film", "the story is good", "great film", "a boring story , a bad film"]
    first = tuple(texts[0].split())
    variants = [(first,)] + [(first[:i] + (w,) + first[i + 1 :],) for i, word in enumerate(first) for w in subs[word]]
    with torch.no_grad():
        logits = model(**model.encode(variants))
        margin = logits[:, 1] - logits[:, 0]
        threshold = (margin[0] + margin[1:].min()) / 2 if margin[1:].min() < margin[0] else (margin[0] + margin[1:].max()) / 2
        model.head[-1].bias[1] -= threshold  # now text 0 sits between its clean and its weakest variant's margin
    examples = []
    for i, text in enumerate(texts):
        segments = (tuple(text.split()),)
        predicted = int(model.predict_proba([segments])[0].argmax())
        examples.append(Example(segments, predicted if i != 2 else 1 - predicted, f"t{i}"))  # one misclassified
    return model, subs, examples


@pytest.mark.parametrize("kind", ["pwws", "genetic"])
def test_on_a_tiny_bert_every_success_is_a_real_flip(kind, make_tiny):
    model, subs, examples = tiny_bert_with_a_planted_flip(make_tiny)
    results = make(kind, model, subs, population=8, generations=5).attack(examples)
    assert results[0].outcome == SUCCEEDED and results[2].outcome == SKIPPED
    for r in results:
        check_inside_threat_model(r, subs, 0)
        if r.outcome == SUCCEEDED:
            assert int(model.predict_proba([r.adversarial])[0].argmax()) != r.label


@pytest.mark.parametrize("kind", ["pwws", "genetic"])
def test_records_hold_the_probabilities_of_both_predictions(kind, make_tiny):
    """original_probs / adversarial_probs: the model's class probabilities for the two texts of the record."""
    model, subs, examples = tiny_bert_with_a_planted_flip(make_tiny)
    with torch.no_grad():  # a random tiny BERT is within 1e-4 of 0.5: sharpen it (same predictions) so 4 decimals tell the classes apart
        model.head[-1].weight.mul_(1e4)
        model.head[-1].bias.mul_(1e4)
    results = make(kind, model, subs, population=8, generations=5).attack(examples)
    assert {r.outcome for r in results} >= {SUCCEEDED, FAILED, SKIPPED}
    classes = len(SENTIMENT.label_names)
    for r in results:
        record = r.to_record(SENTIMENT.segment_names)
        for key, prediction, text in (("original_probs", record["original_prediction"], r.original),
                                      ("adversarial_probs", record["adversarial_prediction"], r.adversarial)):
            probs = record[key]
            assert len(probs) == classes and sum(probs) == pytest.approx(1.0, abs=1e-3), (r.uid, key)
            assert max(range(classes), key=probs.__getitem__) == prediction, (r.uid, key)
            assert probs == pytest.approx(model.predict_proba([text])[0].tolist(), abs=1e-4), (r.uid, key)  # that text's own numbers
        if r.outcome == SUCCEEDED:
            assert record["adversarial_probs"][r.label] < record["original_probs"][r.label]
        else:  # skipped or failed: the adversarial text is the original
            assert record["adversarial_probs"] == record["original_probs"]


def test_adaptive_pwws_rescores_each_words_substitutes_on_the_current_text():
    victim = KeywordVictim(WEIGHTS, bias=-1.0)
    (result,) = make("pwws", victim, adaptive=True).attack([TWO_WORD_FLIP])
    assert result.outcome == SUCCEEDED and result.adversarial[0][1] == "okay" and result.adversarial[0][4] == "fine"
    # greedy step 1 (every substitute of the top word, on the clean text) is cached; step 2 asks for both
    # substitutes of the second word on the changed text
    assert [len(call) for call in victim.calls[2:]] == [2]
    assert result.queries == len(set(victim.texts))
