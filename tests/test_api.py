"""The Python API (issue 26, item 3): the README's example runs, and the API keeps the command line's checks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import riftkit
from riftkit.config import ConfigError
from riftkit.evaluation.leakage import DataOverlapError

from .hf_models import save_tiny_bert

REPO = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- python-api-example[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md lost its Python API example"
    return match.group(1)


def test_the_readme_python_example_runs(tmp_path, monkeypatch, data_dir, capsys):
    (tmp_path / "configs").symlink_to(REPO / "configs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RIFTKIT_DATA_DIR", str(data_dir))
    exec(compile(readme_example(), "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    run = tmp_path / "runs" / "api-example"
    assert (run / "best" / "riftkit.json").is_file() and (run / "exported" / "model.safetensors").is_file()
    summaries = list((run).glob("attack-pwws-test-n10-seed0/summary.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
    assert summary["n"] == 10 and summary["data_role"]["label"] == "held-out test"
    assert printed[1].split() == [repr(summary["vanilla_accuracy"]), repr(summary["robust_accuracy"]), repr(summary["success_rate"])]
    assert "'label':" in printed[2] and "'probs':" in printed[2]
    card = (run / "exported" / "README.md").read_text()
    assert "| pwws | test (held-out test) | 10 |" in card  # the attack the example ran, found beside the model


def test_the_api_keeps_the_leak_guard_and_the_label_checks(tmp_path, data_dir, make_tiny):
    from riftkit.config import DataConfig
    from riftkit.data import load_splits
    from riftkit.data.roles import DataRecord
    from riftkit.models import save_classifier

    # a model whose record says it trained on 30 of SST-2's test sentences: evaluating on test is refused, as on the command line
    from riftkit.data.examples import DatasetSplits

    model = make_tiny(task=riftkit_sst2_task(data_dir))
    folder = save_classifier(model, tmp_path / "model")
    config = DataConfig(dataset="sst2", max_train=20, dev_size=10, data_dir=str(data_dir))
    splits = load_splits(config)
    leaky = DatasetSplits(splits.task, splits.train + splits.test[:30], splits.dev, splits.test[30:], splits.provenance)
    DataRecord.from_splits(config, leaky).save(folder)
    loaded = riftkit.load(folder)
    with pytest.raises(DataOverlapError, match="refusing to evaluate"):
        riftkit.evaluate(loaded, data={"dataset": "sst2"}, data_dir=data_dir)
    assert riftkit.evaluate(loaded, data={"dataset": "sst2"}, data_dir=data_dir, allow_overlap=True)["data_role"]["overlap_train"] == 30
    with pytest.raises(ConfigError, match="name the data"):
        riftkit.evaluate(save_tiny_bert(tmp_path / "hf", model.tokenizer), data_dir=data_dir)
    hf = riftkit.load(tmp_path / "hf", dataset="sst2", data_dir=data_dir)
    assert riftkit.evaluate(hf, dataset="sst2", n=20, data_dir=data_dir)["data_role"]["label"].startswith("unknown: a Hugging Face")
    with pytest.raises(ConfigError, match="a single-text model takes strings"):
        riftkit.predict(loaded, [("premise", "hypothesis")])


def riftkit_sst2_task(data_dir):
    from riftkit.config import DataConfig
    from riftkit.data import load_splits

    return load_splits(DataConfig(dataset="sst2", max_train=8, dev_size=8, data_dir=str(data_dir))).task


def test_a_model_built_in_python_is_attacked_into_the_folder_given(make_tiny, tmp_path, data_dir):
    model = make_tiny(task=riftkit_sst2_task(data_dir))
    with pytest.raises(ConfigError, match="give output_dir"):
        riftkit.attack(model, "pwws", dataset="sst2", n=2, data_dir=data_dir)
    summary = riftkit.attack(model, "pwws", dataset="sst2", n=2, data_dir=data_dir, output_dir=tmp_path / "a", progress=False)
    assert summary["n"] == 2 and summary["data_role"]["label"].startswith("unknown") and (tmp_path / "a" / "examples.jsonl").is_file()
