"""The protocol: seeded sample, per-example JSONL, resume after an interruption, summary, CLI."""

from __future__ import annotations

import contextlib
import json
import random
from types import SimpleNamespace

import pytest

from riftkit.attacks import runner
from riftkit.attacks.runner import ResultLog, run_attack
from riftkit.evaluation.outcomes import summarize
from riftkit.cli import main
from riftkit.config import AttackConfig, ConfigError, GeneticConfig
from riftkit.data import DatasetSplits, Example
from riftkit.models import save_classifier

from .test_attacks_victims import SUBS, WEIGHTS, KeywordVictim
from .conftest import SENTIMENT

VOCAB = ["a", "good", "great", "film", "very", "and", "the", "plot", "poor", "story"]


class LabelledVictim(KeywordVictim):
    spec = SimpleNamespace(label_names=list(SENTIMENT.label_names))


def toy_splits(n: int = 12, seed: int = 0) -> DatasetSplits:
    rng = random.Random(seed)
    victim = LabelledVictim(WEIGHTS, bias=-1.0)
    def example(i: int) -> Example:
        words = tuple(rng.choice(VOCAB) for _ in range(rng.randint(3, 8)))
        label = int(victim.predict_proba([(words,)])[0].argmax())
        return Example((words,), label if i % 5 else 1 - label, f"test:{i}")  # every 5th misclassified
    test = [example(i) for i in range(n)]
    train = [Example((tuple(rng.choice(VOCAB) for _ in range(6)),), 0, f"train:{i}") for i in range(40)]
    return DatasetSplits(SENTIMENT, train, [], test)


@pytest.fixture
def subs_file(tmp_path):
    path = tmp_path / "subs.json"
    path.write_text(json.dumps({w: list(s) for w, s in SUBS.items()}))
    return str(path)


def config(subs_file, attack, **kw) -> AttackConfig:
    base = dict(attack=attack, n=10, seed=1, substitutions=subs_file, genetic=GeneticConfig(population=8, generations=6), in_flight=3)
    return AttackConfig(**(base | kw))


def records(folder) -> dict:
    return ResultLog(folder / runner.RESULTS_FILE).read()


@contextlib.contextmanager
def crash_after(monkeypatch, n: int):
    """A kill after ``n`` examples were logged: the next append raises KeyboardInterrupt (restored on exit)."""
    real_append, written = ResultLog.append, []

    def append(self, record):
        if len(written) == n:
            raise KeyboardInterrupt
        written.append(record["uid"])
        real_append(self, record)

    monkeypatch.setattr(ResultLog, "append", append)
    try:
        yield
    finally:
        monkeypatch.setattr(ResultLog, "append", real_append)


@pytest.mark.parametrize("attack", ["pwws", "genetic"])
def test_interrupted_run_resumes_to_the_same_results(tmp_path, subs_file, attack, monkeypatch):
    monkeypatch.delenv("RIFTKIT_DATA_DIR", raising=False)  # lm: auto then has no broad corpus and trains on the task's texts
    splits, model = toy_splits(), LabelledVictim(WEIGHTS, bias=-1.0)
    whole = run_attack(model, splits, config(subs_file, attack), "toy-model", tmp_path / "whole", progress=False, log=lambda m: None)

    with crash_after(monkeypatch, 4), pytest.raises(KeyboardInterrupt):
        run_attack(model, splits, config(subs_file, attack), "toy-model", tmp_path / "resumed", progress=False, log=lambda m: None)
    assert len(records(tmp_path / "resumed")) == 4
    # a torn last line (killed while writing) is dropped and that example attacked again
    with open(tmp_path / "resumed" / runner.RESULTS_FILE, "a") as handle:
        handle.write('{"uid": "test:')
    resumed = run_attack(model, splits, config(subs_file, attack, in_flight=5), "toy-model", tmp_path / "resumed", progress=False, log=lambda m: None)

    assert records(tmp_path / "resumed") == records(tmp_path / "whole")
    assert resumed["examples_this_session"] == 6 and whole["examples_this_session"] == 10
    for key in ("n", "succeeded", "failed", "skipped", "robust_accuracy", "success_rate", "mean_queries"):
        assert resumed[key] == whole[key]
    assert whole["n"] == 10 and whole["skipped"] >= 1 and whole["succeeded"] >= 1
    if attack == "genetic":  # lm: auto without a data directory trains and saves an n-gram model in the attack folder
        assert (tmp_path / "whole" / "lm-ngram3.safetensors").is_file()


def test_summary_numbers_follow_the_protocol():
    rows = [
        {"outcome": "skipped", "changed_share": 0.0, "queries": 1, "original": "a b"},
        {"outcome": "succeeded", "changed_share": 0.25, "queries": 10, "original": "a b c d"},
        {"outcome": "succeeded", "changed_share": 0.5, "queries": 20, "original": "a b"},
        {"outcome": "failed", "changed_share": 0.0, "queries": 30, "original": "a b c d e f"},
    ]
    s = summarize(rows)
    assert (s["vanilla_accuracy"], s["robust_accuracy"], s["success_rate"]) == (0.75, 0.25, pytest.approx(2 / 3))
    assert s["mean_changed_share"] == pytest.approx(0.375) and s["mean_queries"] == 20 and s["mean_words"] == 3.5


def test_resume_with_other_settings_and_damaged_logs_are_named(tmp_path, subs_file):
    splits, model = toy_splits(), LabelledVictim(WEIGHTS, bias=-1.0)
    folder = tmp_path / "run"
    run_attack(model, splits, config(subs_file, "pwws", n=4), "toy-model", folder, progress=False, log=lambda m: None)
    with pytest.raises(ConfigError, match="seed=1.*now asked for 2"):
        run_attack(model, splits, config(subs_file, "pwws", n=4, seed=2), "toy-model", folder, progress=False, log=lambda m: None)
    log = folder / runner.RESULTS_FILE
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match=r"examples.jsonl, line 2: malformed JSON"):
        run_attack(model, splits, config(subs_file, "pwws", n=4), "toy-model", folder, progress=False, log=lambda m: None)
    bad = json.loads(lines[0]) | {"queries": "many"}
    log.write_text("\n".join([json.dumps(bad), *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match="line 1, field 'queries'"):
        ResultLog(log).read()


def test_settings_hold_only_the_section_of_the_attack_run(tmp_path, subs_file):
    """A PWWS folder is not refused because attack.genetic changed; a Genetic folder is; older flat settings resume."""
    splits, model = toy_splits(), LabelledVictim(WEIGHTS, bias=-1.0)
    quiet = dict(progress=False, log=lambda m: None)
    run_attack(model, splits, config(subs_file, "pwws", n=4), "toy-model", tmp_path / "pwws", **quiet)
    settings = json.loads((tmp_path / "pwws" / runner.SETTINGS_FILE).read_text())
    assert settings["pwws"] == {"adaptive": False} and "genetic" not in settings and "ascc" not in settings
    assert "in_flight" not in settings and settings["seed"] == 1
    other_genetic = config(subs_file, "pwws", n=4, genetic=GeneticConfig(population=20))
    assert run_attack(model, splits, other_genetic, "toy-model", tmp_path / "pwws", **quiet)["examples_this_session"] == 0

    folder = tmp_path / "genetic"
    run_attack(model, splits, config(subs_file, "genetic", n=4, lm="none"), "toy-model", folder, **quiet)
    with pytest.raises(ConfigError, match="genetic=.*'population': 8.*now asked for .*'population': 20"):
        run_attack(model, splits, config(subs_file, "genetic", n=4, lm="none", genetic=GeneticConfig(population=20)), "toy-model", folder, **quiet)
    # a folder begun when the searches' knobs were flat fields of the attack config still resumes
    path = folder / runner.SETTINGS_FILE
    flat = json.loads(path.read_text())
    genetic = flat.pop("genetic")
    flat |= {"pwws_adaptive": False, "population": genetic["population"], "generations": genetic["generations"],
             "temperature": genetic["temperature"], "ascc_steps": 10, "ascc_decode": "strong"}
    path.write_text(json.dumps(flat))
    assert run_attack(model, splits, config(subs_file, "genetic", n=4, lm="none"), "toy-model", folder, **quiet)["examples_this_session"] == 0
    with pytest.raises(ConfigError, match="genetic="):
        run_attack(model, splits, config(subs_file, "genetic", n=4, lm="none", genetic=GeneticConfig(population=20)), "toy-model", folder, **quiet)


def test_records_hold_what_the_protocol_promises(tmp_path, subs_file):
    splits, model = toy_splits(), LabelledVictim(WEIGHTS, bias=-1.0)
    run_attack(model, splits, config(subs_file, "pwws"), "toy-model", tmp_path, progress=False, log=lambda m: None)
    by_uid = {e.uid: e for e in splits.test}
    for uid, r in records(tmp_path).items():
        example = by_uid[uid]
        assert r["original"] == " ".join(example.segments[0]) and r["label"] == example.label
        adversarial = r["adversarial"].split()
        assert [[i, a, b] for i, (a, b) in enumerate(zip(example.segments[0], adversarial)) if a != b] == r["substitutions"]
        assert r["changed_share"] == pytest.approx(len(r["substitutions"]) / len(example.segments[0]), abs=1e-6)
        if r["outcome"] == "succeeded":
            assert model.predict_proba([(tuple(adversarial),)])[0].argmax() != example.label
        assert (r["outcome"] == "skipped") == (r["original_prediction"] != example.label)
        # both texts' class probabilities, rounded, as the model gives them
        assert r["original_probs"] == pytest.approx(model.predict_proba([example.segments])[0].tolist(), abs=1e-4)
        assert r["adversarial_probs"] == pytest.approx(model.predict_proba([(tuple(adversarial),)])[0].tolist(), abs=1e-4)


def saved_model_and_data(tmp_path, make_tiny):
    """A tiny saved classifier and a folder of toy split files, for the command line."""
    model_dir = save_classifier(make_tiny(SENTIMENT), tmp_path / "model")
    data = tmp_path / "toy"
    data.mkdir()
    rows = [{"text": f"a {w} film , very good", "label": i % 2} for i, w in enumerate(["good", "great", "plot", "story"] * 4)]
    for split in ("train", "test"):
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return model_dir, data


def test_cli_attack_writes_the_folder_and_resumes(tmp_path, make_tiny, subs_file, capsys):
    model_dir, data = saved_model_and_data(tmp_path, make_tiny)
    out = tmp_path / "attack"
    argv = ["attack", "--model", str(model_dir), "--attack", "pwws", "--n", "6", "--dataset", str(data), "--output-dir", str(out),
            "--quiet", "data.labels=[negative, positive]", f"attack.substitutions={subs_file}"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Accuracy under attack:" in printed and "Avg num queries:" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 6 and len(records(out)) == 6 and summary["config"]["attack"] == "pwws"
    assert main(argv) == 0  # everything done: resumes with nothing to attack
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["examples_this_session"] == 0
    assert main([*argv[:-1], "attack.bogus=1"]) == 2
    assert "bogus" in capsys.readouterr().err


def test_unknown_attack_is_a_config_error(tmp_path, subs_file):
    with pytest.raises(ConfigError, match="'nope' is not a known attack; known: .*genetic, pwws"):
        run_attack(LabelledVictim(WEIGHTS), toy_splits(), config(subs_file, "nope"), "toy-model", tmp_path, progress=False, log=lambda m: None)


def test_ascc_runs_through_the_same_runner_and_cli(tmp_path, make_tiny, subs_file, capsys):
    """The white-box ASCC attack plugs into the runner: same folder, records, summary and resume."""
    model_dir, data = saved_model_and_data(tmp_path, make_tiny)
    out = tmp_path / "attack"
    argv = ["attack", "--model", str(model_dir), "--attack", "ascc", "--n", "6", "--dataset", str(data), "--output-dir", str(out),
            "--quiet", "data.labels=[negative, positive]", f"attack.substitutions={subs_file}", "attack.ascc.steps=3", "attack.ascc.decode=single"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 6 and summary["config"]["attack"] == "ascc"
    done = records(out)
    assert len(done) == 6 and all(r["queries"] == 5 for r in done.values())  # 3 steps + clean + confirming pass
    for r in done.values():  # the white-box attack records both texts' class probabilities too
        for key, prediction in (("original_probs", r["original_prediction"]), ("adversarial_probs", r["adversarial_prediction"])):
            assert len(r[key]) == 2 and sum(r[key]) == pytest.approx(1.0, abs=1e-3) and r[key].index(max(r[key])) == prediction
        assert (r["adversarial_probs"] == r["original_probs"]) == (r["outcome"] != "succeeded")
    capsys.readouterr()
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["examples_this_session"] == 0
