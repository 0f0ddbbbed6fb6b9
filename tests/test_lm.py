"""Language models of the attack constraint: Kneser-Ney n-grams (train, score, save, load) and a causal LM."""

from __future__ import annotations

import math
from pathlib import Path

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


# -- the broad corpus and its cache (substitutions/corpus.py) ---------------------------------------


def _jsonl_gz(path, records):
    import gzip
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")


DUPLICATE_REVIEW = "a review in both splits , with its dupeword ."


@pytest.fixture
def tiny_data_dir(tmp_path):
    """Registered data sets in miniature: every test file holds a word found nowhere else."""
    root = tmp_path / "data"
    sentence = "a wonderful film about grief ."
    pieces = [sentence, "wonderful film about grief", "film about grief", "grief"]  # SST-2 is phrase-level
    _jsonl_gz(root / "sst2" / "train.jsonl.gz", [{"text": t, "label": 1} for t in pieces + ["a dull plot ."]])
    _jsonl_gz(root / "sst2" / "dev.jsonl.gz", [{"text": "the ssttestword film .", "label": 1}])
    _jsonl_gz(root / "imdb" / "train.jsonl.gz", [{"text": "An imdbtrainword movie.<br />Great!", "label": 1},
                                                {"text": DUPLICATE_REVIEW, "label": 0}])
    _jsonl_gz(root / "imdb" / "test.jsonl.gz", [{"text": "the imdbtestword movie .", "label": 0}, {"text": DUPLICATE_REVIEW, "label": 0}])
    _jsonl_gz(root / "mr" / "all.jsonl.gz", [{"text": "an mrword story .", "label": 0}])  # test carved from this file
    _jsonl_gz(root / "snli" / "dev.jsonl.gz", [{"premise": "a man snlidevword .", "hypothesis": "a person sleeps .", "label": 0}])
    _jsonl_gz(root / "snli" / "test.jsonl.gz", [{"premise": "a snlitestword man .", "hypothesis": "a man sleeps .", "label": 1}])
    return root


def test_broad_lm_trains_on_train_splits_and_never_on_test_texts(tiny_data_dir, tmp_path):
    from riftkit.substitutions.corpus import broad_ngram_lm, plan_corpus

    plan = plan_corpus(tiny_data_dir)
    assert [s.label for s in plan.sources] == ["imdb/train.jsonl.gz", "snli/dev.jsonl.gz", "sst2/train.jsonl.gz"]
    assert sorted(s.label for s in plan.held_out) == ["imdb/test.jsonl.gz", "snli/test.jsonl.gz", "sst2/dev.jsonl.gz"]
    assert any("mr/all.jsonl.gz" in reason for reason in plan.skipped)
    lm, info = broad_ngram_lm(plan, order=3, cache_dir=tmp_path / "cache")
    for seen in ("wonderful", "imdbtrainword", "snlidevword", "sleeps", "great"):
        assert seen in lm.index, seen
    # test-only words, MR (whose test is carved from its only file), and a train review that is also a test review
    for unseen in ("ssttestword", "imdbtestword", "snlitestword", "mrword", "dupeword"):
        assert unseen not in lm.index, unseen
    assert info["dropped_as_test"] == 1
    # SST-2's sub-phrases are not counted again: one sentence, one dull plot
    assert info["sources"]["sst2/train.jsonl.gz"]["texts"] == 2
    # the premise and the hypothesis are two texts
    assert info["sources"]["snli/dev.jsonl.gz"]["texts"] == 2


def test_held_out_texts_cover_pieces_not_shared_stock_phrases():
    from riftkit.substitutions.corpus import Fingerprints, HeldOut

    held = HeldOut.of([tuple("it ' s a gem . the plot sags in the middle , though .".split())])
    corpus = [
        tuple("it's a gem .".split()),  # a piece of the held-out text, tokenised differently (SST-2 inside MR)
        tuple("the plot sags in the middle , though".split()),
        tuple("it's a gem . but the acting is wooden , the score is loud and the ending drags on forever .".split()),
        tuple("a different film altogether .".split()),
    ]
    assert HeldOut.covers(held, Fingerprints.of(corpus)).tolist() == [True, True, False, False]


def test_broad_lm_is_cached_by_corpus_and_trained_once(tiny_data_dir, tmp_path, monkeypatch):
    from riftkit.substitutions.corpus import broad_ngram_lm, plan_corpus

    trained = []
    real_train = NGramLM.train.__func__
    monkeypatch.setattr(NGramLM, "train", classmethod(lambda cls, *a, **k: trained.append(1) or real_train(cls, *a, **k)))
    cache = tmp_path / "cache"
    first, info = broad_ngram_lm(plan_corpus(tiny_data_dir), cache_dir=cache)
    again, info_again = broad_ngram_lm(plan_corpus(tiny_data_dir), cache_dir=cache)
    assert len(trained) == 1 and info_again["cached"] and not info["cached"]
    assert info_again["key"] == info["key"] and info_again["path"] == info["path"]
    assert again.vocab == first.vocab
    assert sorted(p.name for p in cache.rglob("*")) == [Path(info["path"]).name]  # no temporary files left

    corpus_a, corpus_b = tmp_path / "a.txt", tmp_path / "b.txt"
    corpus_a.write_text("A usercorpusword sentence.\n\nAnother line here.\n")
    corpus_b.write_text("Something else entirely.\n")
    lm_a, info_a = broad_ngram_lm(plan_corpus(tiny_data_dir, [str(corpus_a), str(corpus_b)]), cache_dir=cache)
    _, info_ba = broad_ngram_lm(plan_corpus(tiny_data_dir, [str(corpus_b), str(corpus_a)]), cache_dir=cache)
    assert "usercorpusword" in lm_a.index and "usercorpusword" not in first.index  # user corpora are included
    assert info_a["sources"][f"attack.lm_corpora[0]: {corpus_a}"]["texts"] == 2
    assert len({info["key"], info_a["key"], info_ba["key"]}) == 3 and len(trained) == 3
    # another content under the same file name is another corpus
    corpus_b.write_text("Something new.\n")
    _, info_changed = broad_ngram_lm(plan_corpus(tiny_data_dir, [str(corpus_b), str(corpus_a)]), cache_dir=cache)
    assert info_changed["key"] != info_ba["key"] and len(trained) == 4


def test_interrupted_cache_write_leaves_no_model(tiny_data_dir, tmp_path, monkeypatch):
    from riftkit.substitutions.corpus import broad_ngram_lm, plan_corpus

    def torn_save(self, path, **kwargs):
        Path(path).write_bytes(b"half a model")
        raise KeyboardInterrupt

    monkeypatch.setattr(NGramLM, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        broad_ngram_lm(plan_corpus(tiny_data_dir), cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").rglob("*")) == []


def test_attacked_texts_seen_by_the_broad_lm_give_a_variant_without_them(tiny_data_dir, tmp_path):
    """A data set carved from a file that another one trains on (MR's sentences are inside SST-2's train)."""
    from riftkit.substitutions.corpus import broad_ngram_lm, plan_corpus

    cache, plan = tmp_path / "cache", plan_corpus(tiny_data_dir)
    base, info = broad_ngram_lm(plan, cache_dir=cache, attacked_texts=[("a", "quiet", "test", "text", ".")])
    assert info["variant_of"] is None and "grief" in base.index
    attacked = [("a", "wonderful", "film", "about", "grief", "."), ("another", "one", ".")]
    variant, variant_info = broad_ngram_lm(plan, cache_dir=cache, attacked_texts=attacked)
    assert variant_info["variant_of"] == info["key"] and variant_info["key"] != info["key"]
    assert "grief" not in variant.index and "imdbtrainword" in variant.index
    _, again = broad_ngram_lm(plan, cache_dir=cache, attacked_texts=list(reversed(attacked)))
    assert again["cached"] and again["key"] == variant_info["key"]


def test_user_corpus_errors_name_the_field_and_line(tmp_path):
    from riftkit.substitutions.corpus import broad_ngram_lm, plan_corpus

    with pytest.raises(FileNotFoundError, match=r"attack.lm_corpora\[0\].*missing.txt"):
        plan_corpus(None, [str(tmp_path / "missing.txt")])
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\n\xff\xfe broken\n")
    with pytest.raises(ValueError, match=r"bad.txt, line 2"):
        broad_ngram_lm(plan_corpus(None, [str(bad)]), cache_dir=tmp_path / "cache")


def test_prepare_language_model_resolves_and_records_the_choice(tiny_data_dir, tmp_path, monkeypatch):
    import json

    from riftkit.attacks.runner import prepare_language_model
    from riftkit.config import AttackConfig, ConfigError

    monkeypatch.setenv("RIFTKIT_CACHE_DIR", str(tmp_path / "cache"))
    train = lambda: [("a", "tasktrainword", "film", "."), ("a", "good", "film", ".")]  # noqa: E731
    attacked = lambda: [("a", "test", "text", ".")]  # noqa: E731
    messages = []

    def prepare(folder, **kw):
        return prepare_language_model(AttackConfig(**kw), train, tmp_path / folder, messages.append, data_dir=tiny_data_dir, attacked_texts=attacked)

    broad = prepare("auto-genetic", attack="genetic")
    record = json.loads((tmp_path / "auto-genetic" / "lm.json").read_text())
    assert record["lm"] == "ngram-broad" and record["key"] in messages[-1] and Path(record["path"]).is_file()
    assert "imdbtrainword" in broad.index and "tasktrainword" not in broad.index
    task = prepare("task", attack="genetic", lm="ngram-task")
    assert "tasktrainword" in task.index and json.loads((tmp_path / "task" / "lm.json").read_text())["lm"] == "ngram-task"
    assert prepare("auto-pwws", attack="pwws") is None
    with pytest.raises(ConfigError, match="'ngram' is none of auto"):
        prepare("old-name", attack="genetic", lm="ngram")
    with pytest.raises(ConfigError, match="attack.lm_corpora"):
        prepare("corpora-unused", attack="genetic", lm="ngram-task", lm_corpora=[str(tmp_path / "x.txt")])
    # no registered data set and no user corpus: auto falls back to the task's training texts, and says so
    empty = tmp_path / "empty-data"
    empty.mkdir()
    fallback = prepare_language_model(AttackConfig(attack="genetic"), train, tmp_path / "fallback", messages.append, data_dir=empty, attacked_texts=attacked)
    assert "tasktrainword" in fallback.index and "ngram-task" in messages[-1]
    # a resumed run whose broad LM would now be another corpus is refused
    _jsonl_gz(tiny_data_dir / "imdb" / "train.jsonl.gz", [{"text": "a changed review .", "label": 1}])
    with pytest.raises(ConfigError, match="lm.json"):
        prepare("auto-genetic", attack="genetic")
