"""Language models of the attack constraint: Kneser-Ney n-grams (train, score, save, load) and a causal LM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from riftkit.attacks.constraints import LanguageModelFilter
from riftkit.substitutions.lm import CausalLM, NGramLM, Window, load_language_model

CORPUS = [
    ("the", "film", "is", "great"),
    ("the", "movie", "is", "great"),
    ("the", "film", "is", "good"),
    ("a", "great", "film"),
    ("the", "plot", "is", "thin"),
    ("this", "film", "is", "a", "great", "film"),
] * 3


@pytest.fixture(scope="module")
def lm():
    return NGramLM.train(CORPUS, order=3)


@pytest.mark.parametrize("history", [("<s>", "<s>"), ("the", "film"), ("film", "is"), ("never", "seen"), (None, "is"), (None, None)])
def test_kneser_ney_distributions_sum_to_one(lm, history):
    ids = [-1 if w is None else lm.index.get(w, 0) for w in history]
    words = np.arange(lm.size)
    probs = np.exp(lm.logprob(np.array([ids] * lm.size), words))
    assert probs.sum() == pytest.approx(1.0, abs=1e-9)
    assert (probs > 0).all()  # the uniform floor: no word, not even an unknown one, gets probability 0


def test_seen_continuations_beat_unseen_ones(lm):
    p = lambda h, w: float(np.exp(lm.logprob(np.array([[lm.index[h[0]], lm.index[h[1]]]]), np.array([lm.index.get(w, 0)])))[0])
    assert p(("film", "is"), "great") > p(("film", "is"), "plot") > 0
    assert p(("the", "film"), "is") > 0.5
    # the window drop of a fluent substitute is smaller than that of a disfluent one
    drops = lm.window_drops(("the", "film", "is", "great"), {1: ["movie", "is"]}, radius=2)
    assert drops[1][0] < drops[1][1]
    assert lm.perplexity(CORPUS[:6]) < lm.perplexity([tuple(reversed(t)) for t in CORPUS[:6]])


def test_window_drop_matches_direct_scoring(lm):
    words = ("this", "film", "is", "a", "great", "film")
    (drop,) = lm.window_drops(words, {4: ["good"]}, radius=1)[4]
    original = lm.window_logprobs([Window(("a", "great", "film"), False, True)])[0]
    changed = lm.window_logprobs([Window(("a", "good", "film"), False, True)])[0]
    assert drop == pytest.approx(original - changed)


def test_save_and_load_round_trip_without_pickle(lm, tmp_path):
    path = lm.save(tmp_path / "lm.safetensors")
    assert path.read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle stream
    again = load_language_model(str(path))
    windows = [Window(t, True, True) for t in CORPUS[:6]] + [Window(("never", "seen", "words"), False, False)]
    assert again.window_logprobs(windows) == pytest.approx(lm.window_logprobs(windows))
    (tmp_path / "bad.safetensors").write_bytes(b"junk")
    with pytest.raises(Exception):
        NGramLM.load(tmp_path / "bad.safetensors")
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        NGramLM.load(tmp_path / "missing.safetensors")


def test_vocabulary_limit_and_key_range():
    small = NGramLM.train(CORPUS, order=3, max_vocab=3)
    assert len(small.vocab) == 6 and small.index.get("plot") is None  # <unk> <s> </s> + 3 most frequent
    assert math.isfinite(small.window_logprobs([Window(("the", "plot", "is", "thin"), True, True)])[0])
    with pytest.raises(ValueError, match="64-bit"):
        NGramLM.train([tuple(f"w{i}" for i in range(3000))], order=6)


def test_language_model_filter_removes_what_drops_more_than_the_threshold(lm):
    words = ("the", "film", "is", "great")
    candidates = {1: ("movie", "is", "plot"), 3: ("good", "the")}
    drops = lm.window_drops(words, candidates, radius=2)
    threshold = sorted(d for ds in drops.values() for d in ds)[2]
    filt = LanguageModelFilter(lm, max_drop=threshold, radius=2)
    kept = filt.filter(words, candidates)
    expected = {i: tuple(s for s, d in zip(candidates[i], drops[i]) if d <= threshold) for i in candidates}
    assert kept == {i: s for i, s in expected.items() if s}
    assert filt.checked == 5 and filt.removed == 5 - sum(len(s) for s in expected.values()) and filt.removed > 0


def test_causal_lm_scores_are_batch_independent(tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=tokenizer.vocab_size, n_layer=1, n_embd=32, n_head=2, n_positions=64, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id))
    lm = CausalLM(model, tokenizer, batch_size=2)
    windows = [Window(("a", "great", "film"), True, False), Window(("the", "plot", "is", "thin", "and", "dull"), False, True), Window(("ok",), False, False)]
    together = lm.window_logprobs(windows)
    alone = [lm.window_logprobs([w])[0] for w in windows]
    assert together == pytest.approx(alone, abs=1e-4)
    assert all(s < 0 for s in together)
    (drop,) = lm.window_drops(("a", "great", "film"), {1: ["good"]}, radius=1)[1]
    original, changed = lm.window_logprobs([Window(("a", "great", "film"), True, True), Window(("a", "good", "film"), True, True)])
    assert drop == pytest.approx(original - changed, abs=1e-4) and drop != 0


def test_sub_phrases_are_dropped_before_counting():
    from riftkit.substitutions.lm import drop_subphrases

    texts = [("a", "great", "film"), ("great", "film"), ("a", "great", "film"), ("film",), ("a", "dull", "plot"), ("great", "plot")]
    assert sorted(drop_subphrases(texts)) == [("a", "dull", "plot"), ("a", "great", "film"), ("great", "plot")]
