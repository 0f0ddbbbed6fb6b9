"""``riftkit demo`` at a tiny size: Standard and RIFT on the same data, PWWS on the same test sentences, a report."""

from __future__ import annotations

import json

from riftkit.cli import main
from riftkit.evaluation.study import read_examples


def test_demo_trains_both_attacks_both_on_the_same_sentences_and_reports(tmp_path, data_dir, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--output-dir", str(out), "--test-examples", "8", "--quiet", "--data-dir", str(data_dir),
            "data.max_train=64", "data.dev_size=32", "train.epochs=1", "model.num_layers=1", "model.max_length=24",
            "train.select_max_examples=8", "objective.adv_steps=2", "train.forgetting_probe_size=8"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "standard" in printed and "rift" in printed and "robust accuracy under PWWS" in printed
    attacked = {}
    for run in ("standard-seed0", "rift-seed0"):
        config = json.loads((out / "runs" / run / "run.json").read_text())["config"]
        assert config["train"]["method"] == run.split("-")[0] and config["data"]["max_train"] == 64
        attacked[run] = [r["uid"] for r in read_examples(out / "runs" / run / "attacks" / "pwws-test-n8-seed0")]
    assert attacked["standard-seed0"] == attacked["rift-seed0"] and len(attacked["rift-seed0"]) == 8
    table = json.loads((out / "table.json").read_text())
    assert {r["variant"] for r in table["rows"]} == {"standard", "rift"}
    page = (out / "report.html").read_text()
    assert 'id="summary"' in page and 'class="example"' in page
    assert main(args) == 0  # run again: everything is finished, nothing is retrained
    assert "training" not in capsys.readouterr().err
