import json

import pytest

from riftkit.cli import main


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
    assert result["n"] == 8 and 0.0 <= result["accuracy"] <= 1.0

    inputs = tmp_path / "in.txt"
    inputs.write_text('good nice film\n\n{"text": "bad old film"}\n')
    assert main(["predict", "--model", str(out / "best"), "--input", str(inputs)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == ["good nice film", "bad old film"]
    assert all(line["label"] in ("neg", "pos") and abs(sum(line["probs"].values()) - 1) < 1e-4 for line in lines)


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
