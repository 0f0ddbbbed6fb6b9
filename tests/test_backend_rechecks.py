"""An approximate forward path (bf16) searches; the exact model decides every reported outcome."""

from __future__ import annotations

import json

import pytest

from riftkit.attacks.registry import AttackSetup, build_attack
from riftkit.attacks.runner import run_attack
from riftkit.config import AttackConfig, GeneticConfig
from riftkit.models import backends
from riftkit.models.backends import Bf16Victim, resolve_backend

from .conftest import SENTIMENT
from .test_attacks_runner import LabelledVictim, config, toy_splits
from .test_attacks_runner import subs_file  # noqa: F401 (a fixture)
from .test_attacks_victims import SUBS, WEIGHTS
from .test_backends import sharpen

EXACT = LabelledVictim(WEIGHTS, bias=-1.0)
SEARCH_KEYS = ("uid", "outcome", "adversarial", "substitutions", "original_prediction", "adversarial_prediction", "stop_reason")


def attack_with(attack: str, victim, exact=None, **settings):
    cfg = AttackConfig(attack=attack, lm="none", seed=1, genetic=GeneticConfig(population=8, generations=6), in_flight=3, **settings)
    setup = AttackSetup(model=EXACT, task=SENTIMENT, substitutions=SUBS, config=cfg, victim=victim, exact_victim=exact)
    examples = toy_splits(n=30).test
    return [r.to_record(SENTIMENT.segment_names) for r in build_attack(setup).attack(examples)]


def search_view(record: dict) -> dict:
    return {k: record.get(k) for k in SEARCH_KEYS}


@pytest.mark.parametrize("attack", ["pwws", "genetic"])
def test_an_approximate_path_that_agrees_changes_nothing_and_counts_rechecks_apart(attack):
    plain = attack_with(attack, EXACT)
    checked = attack_with(attack, LabelledVictim(WEIGHTS, bias=-1.0), exact=EXACT)
    assert [search_view(r) for r in checked] == [search_view(r) for r in plain]
    assert [r["queries"] for r in checked] == [r["queries"] for r in plain]  # rechecks are not search queries
    assert all(r["recheck"] == "confirmed" for r in checked) and not any("recheck" in r for r in plain)
    # the original is rechecked always, the adversarial text when the search reported a flip
    assert [r["rechecks"] for r in checked] == [2 if r["outcome"] == "succeeded" else 1 for r in checked]


@pytest.mark.parametrize("attack", ["pwws", "genetic"])
def test_a_flip_the_exact_model_refutes_is_searched_again_exactly(attack):
    # the approximate path believes "picture" (a substitute of "film") is strongly negative; the exact model does not
    wrong = LabelledVictim({**WEIGHTS, "picture": -6.0}, bias=-1.0)
    plain = attack_with(attack, EXACT)
    checked = attack_with(attack, wrong, exact=EXACT)
    assert any(r["recheck"] == "rerun" for r in checked)
    # the rerun is the exact search itself (same per-example seed): every outcome and text is the exact path's
    assert [search_view(r) for r in checked] == [search_view(r) for r in plain]
    for r in checked:
        if r["recheck"] == "rerun":  # its queries: the refuted approximate search's and the exact rerun's
            assert r["queries"] > next(p["queries"] for p in plain if p["uid"] == r["uid"])


def test_the_exact_model_decides_the_clean_prediction():
    shifted = LabelledVictim(WEIGHTS, bias=2.0)  # the approximate path calls nearly everything positive
    plain = attack_with("pwws", EXACT)
    checked = attack_with("pwws", shifted, exact=EXACT)
    assert [r["original_prediction"] for r in checked] == [r["original_prediction"] for r in plain]
    assert [r["outcome"] == "skipped" for r in checked] == [r["outcome"] == "skipped" for r in plain]
    assert any(r["recheck"] == "exact search" for r in checked)  # searched on the exact model from the start
    for r in checked:  # every reported success is a success for the exact model
        if r["outcome"] == "succeeded":
            assert int(EXACT.predict_proba([(tuple(r["adversarial"].split()),)])[0].argmax()) != r["label"]


def test_a_rerun_spends_only_what_is_left_of_the_query_budget():
    wrong = LabelledVictim({**WEIGHTS, "picture": -6.0}, bias=-1.0)
    checked = attack_with("genetic", wrong, exact=EXACT, query_budget=5)
    assert any(r["recheck"] == "rerun" for r in checked)
    assert max(r["queries"] for r in checked) <= 5


def test_auto_picks_bf16_with_rechecks_and_falls_back_when_it_disagrees(make_tiny, monkeypatch):
    model, probe = sharpen(make_tiny()), [(("a", "good", "film"),), (("a", "bad", "plot"),)] * 4
    victim, record = resolve_backend(model, "auto", probe)
    assert isinstance(victim, Bf16Victim) and record["backend"] == "bf16" and record["approximate"] is True
    assert record["probe"]["texts"] == len(probe)
    monkeypatch.setattr(backends, "APPROXIMATE_MIN_AGREEMENT", 1.01)  # no probe can agree this well
    victim, record = resolve_backend(model, "auto", probe)
    assert victim is model and record["backend"] == "torch" and "agrees with fp32 on only" in record["why"]
    assert isinstance(resolve_backend(model, "bf16", probe)[0], Bf16Victim)  # asked for by name: no fallback


def test_attacks_on_the_default_path_are_rechecked_and_say_so(tmp_path, make_tiny, subs_file):
    splits, model = toy_splits(), sharpen(make_tiny())
    assert AttackConfig().backend == "auto"
    summaries, logs = {}, {}
    for backend in ("torch", "auto"):
        folder = tmp_path / backend
        summaries[backend] = run_attack(model, splits, config(subs_file, "pwws", backend=backend, lm="none"), "tiny", folder,
                                        progress=False, log=lambda m: None)
        logs[backend] = [json.loads(line) for line in (folder / "examples.jsonl").read_text().splitlines()]
    assert summaries["auto"]["backend"]["backend"] == "bf16" and summaries["torch"]["backend"]["backend"] == "torch"
    assert json.loads((tmp_path / "auto" / "settings.json").read_text())["backend"]["backend"] == "bf16"
    assert summaries["auto"]["rechecked"] == summaries["auto"]["n"] and "rechecked" not in summaries["torch"]
    assert summaries["auto"]["vanilla_accuracy"] == summaries["torch"]["vanilla_accuracy"]
    assert [r["original_prediction"] for r in logs["auto"]] == [r["original_prediction"] for r in logs["torch"]]
