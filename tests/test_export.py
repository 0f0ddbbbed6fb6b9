"""`riftkit export`: transformers.pipeline loads the folder and gives riftkit's probabilities (issue 26, item 2)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch

from riftkit.cli import main
from riftkit.config import ConfigError
from riftkit.data import TaskSpec, words
from riftkit.models import build_classifier, load_classifier, load_tokenizer, save_classifier
from riftkit.models.export import ExportError, export_model, is_exported, push_to_hub
from riftkit.models.io import load_model, model_kind

from .hf_models import save_tiny_roberta

SST2 = TaskSpec("sst2", "single", ("negative", "positive"))
SNLI = TaskSpec("snli", "pair", ("entailment", "neutral", "contradiction"))
EDGE_CASES = [
    "Café crème, naïve résumé — “quoted” words… and emoji 🎬🍿", "ＦＵＬＬＷＩＤＴＨ letters, ﬁne ligatures and ① circled",
    "<br /><br />Line<BR/>breaks<br>everywhere<br  />", "ΟΔΟΣ ΣΟΦΙΑΣ Σ and İstanbul, straße", "hindi हिन्दी and thai ภาษาไทย",
    "zero\u200bwidth, soft\u00adhyphen, tab\there, nbsp\u00a0here", "snake_case_words, $10.50, 3.5% and don't o'clock rock'n'roll",
    "&lt;b&gt;html&lt;/b&gt; <i>tags</i> &amp; entities", "中文字符和日本語のテキスト", "   leading and trailing spaces   ",
    "'quoted' ''twice'' and it's", "e\u0301 combining and \ufb03 ligature",
]


def raw_texts(data_dir: Path, task: str, n: int) -> list:
    name = {"sst2": "sst2/dev.jsonl.gz", "imdb": "imdb/test.jsonl.gz", "snli": "snli/test.jsonl.gz"}[task]
    rows = []
    with gzip.open(data_dir / name, "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            rows.append((row["premise"], row["hypothesis"]) if task == "snli" else row["text"])
            if len(rows) == n:
                break
    return rows


@pytest.fixture(scope="module")
def riftkit_models(tmp_path_factory):
    """Tiny riftkit models, saved: a BERT (WordPiece) for sentiment and for NLI, and a RoBERTa (byte-level BPE)."""
    root = tmp_path_factory.mktemp("export")
    wordpiece = load_tokenizer("embedded")
    roberta_dir = save_tiny_roberta(root / "roberta-src")
    bpe = load_tokenizer(str(roberta_dir))
    from transformers import BertConfig, BertModel, RobertaModel

    def bert(layers: int, seed: int):  # a wide initialisation (hf_models.py): outputs that vary from text to text
        torch.manual_seed(seed)
        return BertModel(BertConfig(vocab_size=wordpiece.vocab_size, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                                    intermediate_size=64, max_position_embeddings=128, initializer_range=0.5))

    models = {}
    for name, tokenizer, encoder, task, pooling in [
        ("bert", wordpiece, bert(2, 0), SST2, "pooler"),
        ("bert-nli", wordpiece, bert(1, 1), SNLI, "mean"),
        ("roberta", bpe, RobertaModel.from_pretrained(roberta_dir), SST2, "mean"),  # this random RoBERTa's <s> ignores the text
    ]:
        model = build_classifier(encoder, tokenizer, task, encoder_source=f"tiny-{name}", max_length=60, pooling=pooling, seed=0)
        models[name] = save_classifier(model, root / name)
    return models


def pipeline_probs(folder: Path, inputs: list, labels) -> torch.Tensor:
    """The probabilities transformers' pipeline gives, called exactly as the model card shows."""
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(folder), trust_remote_code=True)
    if inputs and isinstance(inputs[0], tuple):
        inputs = [{"text": a, "text_pair": b} for a, b in inputs]
    rows = classify(inputs, truncation=True, top_k=None)
    return torch.tensor([[{d["label"]: d["score"] for d in row}[name] for name in labels] for row in rows])


def riftkit_probs(folder: Path, inputs: list) -> torch.Tensor:
    model = load_classifier(folder)
    segments = [tuple(tuple(words(part)) for part in item) if isinstance(item, tuple) else (tuple(words(item)),) for item in inputs]
    return model.predict_proba(segments)


@pytest.mark.parametrize("name", ["bert", "roberta"])
def test_pipeline_gives_riftkits_probabilities_on_raw_imdb_sst2_and_edge_cases(name, riftkit_models, data_dir, tmp_path):
    out = export_model(riftkit_models[name], tmp_path / "exported")
    texts = raw_texts(data_dir, "imdb", 150) + raw_texts(data_dir, "sst2", 200) + EDGE_CASES
    assert sum("<br />" in t for t in texts) > 50  # raw IMDB, line breaks and all
    theirs, ours = pipeline_probs(out, texts, SST2.label_names), riftkit_probs(riftkit_models[name], texts)
    assert (theirs - ours).abs().max() < 1e-4
    assert ours.std(0).max() > 0.01  # outputs that vary: a 1e-4 agreement means something


def test_pipeline_gives_riftkits_probabilities_on_snli_pairs(riftkit_models, data_dir, tmp_path):
    out = export_model(riftkit_models["bert-nli"], tmp_path / "exported")
    pairs = raw_texts(data_dir, "snli", 150) + [(EDGE_CASES[i], EDGE_CASES[-1 - i]) for i in range(len(EDGE_CASES))]
    theirs, ours = pipeline_probs(out, pairs, SNLI.label_names), riftkit_probs(riftkit_models["bert-nli"], pairs)
    assert (theirs - ours).abs().max() < 1e-4


def test_riftkit_reads_an_export_back_without_its_code_and_attacks_it_alike(riftkit_models, tmp_path, data_dir, capsys, monkeypatch):
    out = export_model(riftkit_models["bert"], tmp_path / "exported")
    assert is_exported(out) and model_kind(out) == "exported"
    (out / "modeling_riftkit.py").write_text("raise RuntimeError('riftkit ran the exported code')\n")  # would fail if run
    texts = raw_texts(data_dir, "sst2", 50)
    segments = [(tuple(words(t)),) for t in texts]
    assert torch.equal(load_model(out).predict_proba(segments), load_classifier(riftkit_models["bert"]).predict_proba(segments))

    records = {}
    for label, folder in (("original", riftkit_models["bert"]), ("exported", out)):
        attack_dir = tmp_path / f"attack-{label}"
        assert main(["attack", "--model", str(folder), "--dataset", "sst2", "--attack", "pwws", "--n", "6", "--split", "test",
                     "--output-dir", str(attack_dir), "--data-dir", str(data_dir), "--quiet", "--allow-overlap"]) == 0
        capsys.readouterr()
        records[label] = [{k: v for k, v in json.loads(line).items()} for line in (attack_dir / "examples.jsonl").read_text().splitlines()]
    assert records["exported"] == records["original"]


def test_the_model_card_says_what_the_model_is_and_how_robust(riftkit_models, tmp_path):
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"attack": "pwws", "split": "test", "n": 872, "vanilla_accuracy": 0.79, "robust_accuracy": 0.283,
                                   "success_rate": 0.64, "data_role": {"label": "held-out test"},
                                   "config": {"substitutions": "counterfitted", "lm": "auto", "query_budget": None}}))
    out = export_model(riftkit_models["bert"], tmp_path / "exported", attack_summaries=[summary], repo="someone/robust-minilm")
    from huggingface_hub import ModelCard

    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-classification" and "riftkit" in card.data.tags
    text = card.text
    assert 'pipeline("text-classification", model="someone/robust-minilm", trust_remote_code=True)' in text
    assert "truncation=True, top_k=None" in text and "`tiny-bert`" in text
    assert "| pwws | test (held-out test) | 872 | 0.7900 | 0.2830 | 0.6400 | substitutions=counterfitted, lm=auto |" in text
    from riftkit import __version__

    assert f"riftkit {__version__}, commit" in text


def test_export_refuses_a_non_empty_folder_and_keeps_it_when_a_push_fails(riftkit_models, tmp_path, monkeypatch):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        export_model(riftkit_models["bert"], busy)
    assert (busy / "keep.txt").read_text() == "mine"

    from huggingface_hub import HfApi

    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw)))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: calls.append(("upload", kw["repo_id"], kw["folder_path"])))
    out = tmp_path / "pushed"
    assert main(["export", str(riftkit_models["bert"]), str(out), "--push-to-hub", "someone/robust", "--private"]) == 0
    assert calls[0][:2] == ("create", "someone/robust") and calls[0][2]["private"] is True
    assert calls[1] == ("upload", "someone/robust", str(out))

    def offline(self, **kw):
        raise ConnectionError("no network")

    monkeypatch.setattr(HfApi, "upload_folder", offline)
    with pytest.raises(ExportError, match="the exported folder is kept at"):
        push_to_hub(out, "someone/robust")
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()
