"""Any Hugging Face sequence classifier is attacked, evaluated and predicted like riftkit's own models (issue 26, item 1)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch

from .hf_models import save_tiny_bert, save_tiny_roberta
from riftkit.cli import main
from riftkit.config import ConfigError
from riftkit.data import TaskSpec, words
from riftkit.models import EncoderNotFoundError, load_encoder
from riftkit.models.hf_classifier import HFClassifier, align_labels
from riftkit.models.io import load_model, model_kind

SST2 = TaskSpec("sst2", "single", ("negative", "positive"))


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    from riftkit.models import load_tokenizer

    root = tmp_path_factory.mktemp("hf")
    tokenizer = load_tokenizer("embedded")
    return {"bert": save_tiny_bert(root / "bert", tokenizer), "roberta": save_tiny_roberta(root / "roberta"),
            "bert_reversed": save_tiny_bert(root / "bert-reversed", tokenizer, labels=("positive", "negative")),
            "bert_generic": save_tiny_bert(root / "bert-generic", tokenizer, labels=("LABEL_0", "LABEL_1"))}


def sst2_texts(data_dir: Path, n: int) -> list[dict]:
    with gzip.open(data_dir / "sst2" / "dev.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for _, line in zip(range(n), handle)]


def pipeline_probs(folder: Path, texts: list[str], labels) -> torch.Tensor:
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(folder), truncation=True, top_k=None)
    return torch.tensor([[{d["label"]: d["score"] for d in row}[name] for name in labels] for row in classify(texts)])


def test_a_bert_classifier_sees_what_its_own_pipeline_sees_on_sst2(hf_dirs, data_dir):
    """The same probabilities as transformers' pipeline on the raw sentences (SST-2 is lowercased and tokenised)."""
    rows = sst2_texts(data_dir, 120)
    model = load_model(hf_dirs["bert"], SST2)
    assert isinstance(model, HFClassifier) and model_kind(hf_dirs["bert"]) == "transformers"
    ours = model.predict_proba([(tuple(words(r["text"])),) for r in rows])
    theirs = pipeline_probs(hf_dirs["bert"], [r["text"] for r in rows], SST2.label_names)
    assert (ours - theirs).abs().max() < 1e-5
    assert ours.std(0).max() > 0.01  # a model whose outputs vary, so that the comparison means something


def test_labels_are_aligned_by_name_not_position(hf_dirs):
    straight, reversed_ = load_model(hf_dirs["bert"], SST2), load_model(hf_dirs["bert_reversed"], SST2)
    assert reversed_.label_order.tolist() == [1, 0] and straight.label_order.tolist() == [0, 1]
    segments = [(("a", "fine", "film"),), (("dreadful",),)]
    with torch.no_grad():
        raw = torch.softmax(reversed_.model(**reversed_.encode(segments)).logits, -1)
    assert torch.allclose(reversed_.predict_proba(segments), raw[:, [1, 0]], atol=1e-6)  # column i is the data's label i


def test_generic_labels_need_an_explicit_map(hf_dirs):
    with pytest.raises(ConfigError) as err:
        load_model(hf_dirs["bert_generic"], SST2)
    message = str(err.value)
    assert "['LABEL_0', 'LABEL_1']" in message and "['negative', 'positive']" in message and "data.label_map" in message
    mapped = load_model(hf_dirs["bert_generic"], SST2, {"LABEL_0": "positive", "LABEL_1": "negative"})
    assert mapped.label_order.tolist() == [1, 0]
    with pytest.raises(ConfigError, match="'LABEL_7', which is not a label"):
        load_model(hf_dirs["bert_generic"], SST2, {"LABEL_7": "positive"})


def test_labels_that_cannot_be_aligned_are_refused_naming_both_lists():
    with pytest.raises(ConfigError, match=r"\['pos', 'neg'\].*\['negative', 'positive'\]"):
        align_labels(["pos", "neg"], ["negative", "positive"], None)
    with pytest.raises(ConfigError, match="has 3 labels and the data 2"):
        align_labels(["entailment", "neutral", "contradiction"], ["negative", "positive"], None)
    assert align_labels(["Entailment", "Neutral", "Contradiction"], ["contradiction", "entailment", "neutral"], None) == [2, 0, 1]


def _attack(folder, attack, tmp_path, data_dir, capsys, *extra):
    out = tmp_path / f"attack-{attack}-{Path(folder).name}"
    args = ["attack", "--model", str(folder), "--dataset", "sst2", "--attack", attack, "--n", "4", "--split", "test",
            "--output-dir", str(out), "--data-dir", str(data_dir), "--quiet", *extra]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return out, summary


@pytest.mark.parametrize("kind, attack, extra", [("bert", "pwws", ()), ("roberta", "ascc", ()),
                                                 ("bert", "genetic", ("attack.lm=none", "attack.genetic.population=6", "attack.genetic.generations=3"))])
def test_pwws_genetic_and_ascc_attack_a_hugging_face_classifier(hf_dirs, kind, attack, extra, tmp_path, data_dir, capsys):
    folder = hf_dirs[kind]
    out, summary = _attack(folder, attack, tmp_path, data_dir, capsys, *extra)
    records = [json.loads(line) for line in (out / "examples.jsonl").read_text().splitlines()]
    assert summary["n"] == 4 and len(records) == 4
    assert summary["data_role"]["label"].startswith("unknown: a Hugging Face classifier")
    settings = json.loads((out / "settings.json").read_text())
    assert settings["model_source"]["class"].endswith("ForSequenceClassification") and settings["model_sha256"]
    # every outcome is the model's own verdict: a success's adversarial text flips the model (through its tokenizer)
    model = load_model(folder, SST2)
    for record in records:
        original = model.predict_proba([(tuple(record["original"].split()),)])[0].argmax().item()
        if record["outcome"] == "success":
            adversarial = model.predict_proba([(tuple(record["adversarial"].split()),)])[0].argmax().item()
            assert original == record["label"] and adversarial != record["label"]
    # and it resumes: nothing left to do, the same records
    _, again = _attack(folder, attack, tmp_path, data_dir, capsys, *extra)
    assert again["examples_this_session"] == 0 and [json.loads(x) for x in (out / "examples.jsonl").read_text().splitlines()] == records


def test_evaluate_and_predict_a_hugging_face_classifier(hf_dirs, tmp_path, data_dir, capsys):
    assert main(["evaluate", "--model", str(hf_dirs["bert"]), "--dataset", "sst2", "--n", "40", "--data-dir", str(data_dir)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 40 and result["data_role"]["overlap_train"] is None and "unknown" in result["data_role"]["label"]
    assert main(["evaluate", "--model", str(hf_dirs["bert"]), "--data-dir", str(data_dir)]) == 2
    assert "name the data to evaluate it on (--dataset sst2" in capsys.readouterr().err
    inputs = tmp_path / "in.txt"
    inputs.write_text("a fine film\nit is dreadful\n")
    assert main(["predict", "--model", str(hf_dirs["bert_reversed"]), "--input", str(inputs)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    theirs = pipeline_probs(hf_dirs["bert_reversed"], ["a fine film", "it is dreadful"], ("positive", "negative"))
    assert [line["probs"][k] for line in lines for k in ("positive", "negative")] == pytest.approx(theirs.flatten().tolist(), abs=1e-5)
    # --pair: a foreign classifier reads sentence pairs when told (the model's own pair encoding, as its pipeline)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("a man plays\tsomeone makes music\n")
    assert main(["predict", "--model", str(hf_dirs["bert"]), "--input", str(pairs), "--pair"]) == 0
    line = json.loads(capsys.readouterr().out)
    from transformers import pipeline

    row = pipeline("text-classification", model=str(hf_dirs["bert"]))({"text": "a man plays", "text_pair": "someone makes music"}, top_k=None)
    assert line["premise"] == "a man plays" and [line["probs"][d["label"]] for d in row] == pytest.approx([d["score"] for d in row], abs=1e-5)


def test_a_classifiers_encoder_can_start_a_riftkit_fine_tuning(hf_dirs):
    from transformers import AutoModelForSequenceClassification

    encoder = load_encoder(str(hf_dirs["bert"]))
    classifier = AutoModelForSequenceClassification.from_pretrained(hf_dirs["bert"])
    theirs = classifier.bert.state_dict()
    assert all(torch.equal(value, theirs[key]) for key, value in encoder.state_dict().items())


# -- bad input ---------------------------------------------------------------------------------


def test_a_regression_model_is_refused(tmp_path):
    from riftkit.models import load_tokenizer

    folder = save_tiny_bert(tmp_path / "regression", load_tokenizer("embedded"), labels=("score",), problem_type="regression")
    with pytest.raises(ConfigError, match="regression model"):
        load_model(folder, SST2)


def test_a_model_without_a_fast_tokenizer_is_refused(tmp_path):
    from transformers import CanineConfig, CanineForSequenceClassification, CanineTokenizer

    folder = tmp_path / "canine"
    config = CanineConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, num_labels=2,
                          id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    CanineForSequenceClassification(config).save_pretrained(folder)
    CanineTokenizer().save_pretrained(folder)
    with pytest.raises(ConfigError, match="not a fast .Rust. tokenizer"):
        load_model(folder, SST2)


def test_a_hub_name_offline_and_a_folder_of_neither_kind_are_named(tmp_path):
    with pytest.raises(EncoderNotFoundError, match="'textattack/bert-base-uncased-SST-2' is not a local folder, and the Hugging Face Hub"):
        load_model("textattack/bert-base-uncased-SST-2", SST2)
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("hello")
    with pytest.raises(FileNotFoundError, match="neither a riftkit model folder"):
        load_model(tmp_path / "stuff", SST2)
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        load_model(tmp_path / "missing" / "best", SST2)


def test_a_bin_checkpoint_loads_as_tensors_only_and_a_pickle_with_code_is_refused(hf_dirs, tmp_path):
    import shutil

    from safetensors.torch import load_file

    folder = tmp_path / "bin-only"
    shutil.copytree(hf_dirs["bert"], folder)
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    segments = [(("a", "fine", "film"),)]
    assert torch.allclose(load_model(folder, SST2).predict_proba(segments), load_model(hf_dirs["bert"], SST2).predict_proba(segments))

    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"x": Payload()}, folder / "pytorch_model.bin")
    with pytest.raises(ConfigError, match="holds more than tensors, so it is refused"):
        load_model(folder, SST2)
    assert not marker.exists()


def test_a_model_that_needs_its_own_code_is_refused_without_running_it(hf_dirs, tmp_path):
    import shutil

    folder = tmp_path / "remote-code"
    shutil.copytree(hf_dirs["bert"], folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="custom-thing", auto_map={"AutoConfig": "configuration_custom.CustomConfig",
                                                        "AutoModelForSequenceClassification": "modeling_custom.CustomModel"})
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "code-ran"
    (folder / "configuration_custom.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    with pytest.raises(ConfigError, match="never runs a model's own code"):
        load_model(folder, SST2)
    assert not marker.exists()
