import json

import pytest
import torch

from riftkit.cli import main
from riftkit.data import words
from riftkit.models import load_classifier


@pytest.fixture
def toy_data(tmp_path):
    folder = tmp_path / "toy"
    folder.mkdir()
    rows = [{"text": f"{'good' if i % 2 else 'bad'} {w} film", "label": i % 2} for i, w in enumerate(["plain", "nice", "long", "short", "old", "new"] * 8)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:8]))
    return folder


def test_train_evaluate_predict_end_to_end(tmp_path, toy_data, tiny_encoder_dir, capsys):
    config = tmp_path / "exp.yaml"
    config.write_text(f"name: toy\ndata:\n  dataset: {toy_data}\n  labels: [neg, pos]\n  dev_size: 8\nmodel:\n  encoder: {tiny_encoder_dir}\n  max_length: 16\ntrain:\n  epochs: 1\n  batch_size: 8\n  lr: 1.0e-3\n")
    out = tmp_path / "run"
    assert main(["train", str(config), "train.epochs=4", "train.progress=false", "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "best dev accuracy" in printed and "test accuracy" in printed
    assert sum(1 for line in (out / "metrics.jsonl").read_text().splitlines() if '"train_epoch"' in line) == 4

    assert main(["evaluate", "--model", str(out / "best"), "--config", str(config), "--split", "test"]) == 0
    result = json.loads(capsys.readouterr().out)
    # recomputed independently: the saved model's argmax on test.jsonl's texts against its labels
    model = load_classifier(out / "best")
    rows = [json.loads(line) for line in (toy_data / "test.jsonl").read_text().splitlines()]
    with torch.no_grad():
        logits = model(**model.encode([(tuple(words(r["text"])),) for r in rows]))
    expected = sum(int(p == r["label"]) for p, r in zip(logits.argmax(-1).tolist(), rows)) / len(rows)
    assert result["split"] == "test" and result["n"] == 8 and result["accuracy"] == pytest.approx(expected)
    test_row = next(line for line in printed.splitlines() if line.startswith("test accuracy"))
    assert test_row.endswith(f"{expected:.4f} on 8 examples")  # train's report: the same selected model on the same test

    inputs = tmp_path / "in.txt"
    inputs.write_text('good nice film\n\n{"text": "bad old film"}\n')
    assert main(["predict", "--model", str(out / "best"), "--input", str(inputs)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == ["good nice film", "bad old film"]
    with torch.no_grad():
        probs = torch.softmax(model(**model.encode([(("good", "nice", "film"),), (("bad", "old", "film"),)])), -1)
    assert [line["label"] for line in lines] == [("neg", "pos")[i] for i in probs.argmax(-1).tolist()]
    assert [line["probs"][name] for line in lines for name in ("neg", "pos")] == pytest.approx(probs.flatten().tolist(), abs=1e-5)


def test_errors_are_reported_not_raised(tmp_path, toy_data, capsys):
    config = tmp_path / "exp.yaml"
    config.write_text("train:\n  epohcs: 3\n")
    assert main(["train", str(config)]) == 2
    assert "epohcs" in capsys.readouterr().err
    (toy_data / "train.jsonl").write_text('{"text": "fine", "label": 1}\n{"text": "x", "label": "maybe"}\n')
    config.write_text(f"data:\n  dataset: {toy_data}\n  labels: [neg, pos]\n")
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert "train.jsonl, line 2, field 'label'" in err and "maybe" in err


def test_overrides_may_follow_options(tmp_path, capsys):
    config = tmp_path / "exp.yaml"
    config.write_text("train:\n  epochs: 1\n")
    # the override after --data-dir is parsed (and here rejected as unknown), not an argparse usage error
    assert main(["train", str(config), "--data-dir", str(tmp_path), "train.bogus=1"]) == 2
    assert "bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", str(config), "--no-such-flag"])


def test_robust_and_clean_accuracy_are_reported_on_the_same_dev_examples(tmp_path, toy_data, tiny_encoder_dir, capsys):
    """Robust accuracy comes from a seeded subset of dev; the table shows clean accuracy on that subset beside it."""
    from riftkit.data import load_splits, sample
    from riftkit.config import load_config
    from riftkit.evaluation import evaluate_accuracy
    from riftkit.models import load_classifier

    from .test_attacks_victims import SUBS

    subs = tmp_path / "subs.json"
    subs.write_text(json.dumps({w: list(s) for w, s in SUBS.items()}))
    config = tmp_path / "exp.yaml"
    config.write_text(f"name: toy\ndata:\n  dataset: {toy_data}\n  labels: [neg, pos]\n  dev_size: 12\nmodel:\n  encoder: {tiny_encoder_dir}\n  max_length: 16\n"
                      f"train:\n  epochs: 1\n  batch_size: 8\n  lr: 1.0e-3\n  progress: false\n  eval_robust_ascc: true\n  select_max_examples: 5\n"
                      f"  select_attack_steps: 2\nobjective:\n  substitutions: {subs}\n")
    out = tmp_path / "run"
    assert main(["train", str(config), "--output-dir", str(out)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("best dev robust (ASCC)"))
    summary = json.loads((out / "summary.json").read_text())["best_dev"]
    assert summary["dev_robust_n"] == 5 and summary["selected_by"] == "dev_accuracy"
    splits = load_splits(load_config(config).data)
    subset = sample(splits.dev, 5, seed=0)
    clean = evaluate_accuracy(load_classifier(out / "best"), subset)["accuracy"]
    assert summary["dev_robust_subset_accuracy"] == pytest.approx(clean)
    assert f"on 5 dev examples, clean accuracy on them {clean:.4f}" in row


@pytest.mark.parametrize("command, override, sections", [
    (["attack", "--model", "no-such-model", "--attack", "pwws", "--n", "3"], "train.epochs=3", "attack.*, data.*"),
    (["evaluate", "--model", "no-such-model"], "attack.n=5", "data.*"),
])
def test_overrides_a_command_does_not_read_are_errors(command, override, sections, capsys):
    """Issue 26, item 5: `riftkit attack ... train.epochs=3` used to run and drop the override without a word."""
    assert main([*command, override]) == 2
    err = capsys.readouterr().err
    assert override.split("=")[0] in err and sections in err
    assert err.count(f"riftkit {command[0]}") == 1  # the command is named once, not twice
