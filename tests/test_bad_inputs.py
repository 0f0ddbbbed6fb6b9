"""Bad inputs: each gets a clear error naming the place (file, line, field or key), or a documented, counted skip,
and no result already computed is lost.

====  ===============================================  =====================================================  ===========================================
case  input                                            what it gets                                           test
====  ===============================================  =====================================================  ===========================================
1     empty text                                       DataFormatError "file, line N, field 'text': empty     test_bad_record_names_file_line_and_field
                                                       text"; with data.on_error: skip a counted skip         [empty-text], test_bad_records_are_skipped_
                                                                                                              and_counted_on_request
2     whitespace-only text                             the same as 1                                          ...[whitespace-text]
3     unknown label name                               "line N, field 'label': unknown label: 'great' is not  ...[unknown-label-name]
                                                       one of [...]"
4     label id out of range                            the same, for the id                                   ...[label-id-out-of-range]
5     malformed JSON line                              "line N: malformed JSON (...)"                         ...[malformed-json]
6     malformed CSV line (extra column;                "line N: expected 2 columns as in the header"; an      ...[csv-extra-column], [csv-unclosed-quote]
      unclosed quote)                                  unclosed quote names the line where the quote opens
7     malformed TSV line (missing column)              "line N: expected 2 columns as in the header"          ...[tsv-missing-column]
8     latin-1 bytes in a UTF-8 file                    "line N: not UTF-8 text (...)" in JSONL, CSV, TSV and  ...[latin1-jsonl/csv/tsv/jsonl-gz]
                                                       .gz; counted skip with on_error: skip
9     NLI example without hypothesis                   "line N, field 'hypothesis': missing field"            ...[nli-without-hypothesis]
10    a text far beyond max_length                     runs: truncated, only the window attacked; the record  test_a_text_far_beyond_max_length_is_
                                                       says words and attackable_words                        attacked_in_its_window_only
11    words absent from the substitution set           attack runs; example failed (or skipped), unchanged    test_words_without_substitutes_leave_the_
                                                                                                              example_unchanged
12    no substitutable word (white-box ASCC)           attack runs; example failed, unchanged                 test_ascc_on_an_example_with_no_
                                                                                                              substitutable_word
13    empty data set (zero rows)                       DataFormatError "file: no examples (the file has no    test_an_empty_file_is_an_error_naming_it
                                                       records)"; all rows skipped: says how many and why
14    class missing with train.balanced_batches        CLI: error naming the class ('positive'); train():     test_a_class_missing_with_balanced_batches_
                                                       the sampler's error names the class id                 is_named
15    model folder with other labels                   attack / evaluate refuse, naming both label lists      test_a_model_with_other_labels_is_refused
16    truncated model.safetensors (best/, step-N/)     error naming the file; resume falls back to the        test_truncated_weights_in_best_name_the_
                                                       previous complete checkpoint                           file, test_truncated_checkpoint_...
17    config with an unknown key                       ConfigError naming the file and the key                test_config_errors_name_file_and_key
18    config value of the wrong type                   ConfigError naming the file and the key                test_config_errors_name_file_and_key
19    zero or negative batch size                      ConfigError naming train.batch_size / attack.batch_    test_batch_sizes_must_be_positive
                                                       size (also eval_batch_size, in_flight, max_length)
20    NaN / infinite loss                              FloatingPointError naming step and epoch; the last     test_a_nan_loss_stops_training_naming_the_
                                                       good checkpoint (step-2) is kept and loads             step
21    --n beyond the split's size                      attacks all, says so; summary n = actual count         test_asking_for_more_examples_than_exist
22    missing data directory                           DataNotFoundError naming the path and how to set it    test_a_missing_data_directory_is_named
23    full disk (RLIMIT_FSIZE) while writing           OSError naming the file; attack: complete lines kept,  test_a_full_disk_during_an_attack_loses_no_
                                                       rerun resumes and finishes; training: the checkpoint   finished_example, test_a_full_disk_during_
                                                       being written is ignored, the previous one loads       a_checkpoint_keeps_the_previous_one
====  ===============================================  =====================================================  ===========================================
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import torch

from riftkit.attacks import runner
from riftkit.attacks.base import FAILED, SKIPPED
from riftkit.attacks.runner import ResultLog, run_attack
from riftkit.cli import main
from riftkit.config import AttackConfig, ConfigError, DataConfig, ExperimentConfig, TrainConfig, from_dict, load_config
from riftkit.data import DataFormatError, DatasetSplits, Example, load_splits, read_file
from riftkit.models import load_classifier, save_classifier
from riftkit.training import train
from riftkit.training.checkpoint import latest_checkpoint, load_checkpoint

from .conftest import NLI, REPO, SENTIMENT
from .test_attacks_runner import LabelledVictim, subs_file, toy_splits  # noqa: F401 (fixture)
from .test_attacks_victims import WEIGHTS
from .test_training import tiny_config
from .test_training import toy_splits as train_splits

# -- 1-9: bad records --------------------------------------------------------------------------------------------

GOOD = '{"text": "a good film", "label": 1}\n'
BAD_RECORDS = {
    # id: (file name, content, task, expected pieces of the message)
    "empty-text": ("d.jsonl", GOOD + '{"text": "", "label": 0}\n', SENTIMENT, ["line 2", "field 'text'", "empty text"]),
    "whitespace-text": ("d.jsonl", GOOD + '{"text": " \\t  ", "label": 0}\n', SENTIMENT, ["line 2", "field 'text'", "empty text"]),
    "unknown-label-name": ("d.jsonl", GOOD + '{"text": "fine", "label": "great"}\n', SENTIMENT, ["line 2", "field 'label'", "'great'", "negative"]),
    "label-id-out-of-range": ("d.jsonl", GOOD + '{"text": "fine", "label": 7}\n', SENTIMENT, ["line 2", "field 'label'", "7", "0..1"]),
    "malformed-json": ("d.jsonl", GOOD + '{"text": "fine", "label": 1\n', SENTIMENT, ["line 2", "malformed JSON"]),
    "csv-extra-column": ("d.csv", "text,label\ngood,1\nbad,0,oops\n", SENTIMENT, ["line 3", "expected 2 columns"]),
    "csv-unclosed-quote": ("d.csv", 'text,label\ngood,1\n"bad film,0\nfine,1\nok,0\n', SENTIMENT, ["line 3", "expected 2 columns", "quote"]),
    "tsv-missing-column": ("d.tsv", "text\tlabel\ngood\t1\nbad\n", SENTIMENT, ["line 3", "expected 2 columns"]),
    "latin1-jsonl": ("d.jsonl", (GOOD + '{"text": "caf\xe9", "label": 0}\n').encode("latin-1"), SENTIMENT, ["line 2", "not UTF-8"]),
    "latin1-csv": ("d.csv", "text,label\ngood,1\ncaf\xe9 ok,0\nfine,1\n".encode("latin-1"), SENTIMENT, ["line 3", "not UTF-8"]),
    "latin1-tsv": ("d.tsv", "text\tlabel\ngood\t1\nfine\t1\ncaf\xe9 ok\t0\n".encode("latin-1"), SENTIMENT, ["line 4", "not UTF-8"]),
    "latin1-jsonl-gz": ("d.jsonl.gz", gzip.compress((GOOD * 3 + '{"text": "caf\xe9", "label": 0}\n').encode("latin-1")), SENTIMENT,
                        ["line 4", "not UTF-8"]),
    "nli-without-hypothesis": ("d.jsonl", '{"premise": "a man", "hypothesis": "a person", "label": 0}\n{"premise": "a dog", "label": 1}\n', NLI,
                               ["line 2", "field 'hypothesis'", "missing field"]),
}


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_bad_record_names_file_line_and_field(tmp_path, case):
    name, content, task, pieces = BAD_RECORDS[case]
    path = write(tmp_path / name, content)
    with pytest.raises(DataFormatError) as err:
        read_file(path, task)
    message = str(err.value)
    assert message.startswith(str(path)), message
    for piece in pieces:
        assert piece in message, message


@pytest.mark.parametrize("case", [c for c in BAD_RECORDS if c != "csv-unclosed-quote"])
def test_bad_records_are_skipped_and_counted_on_request(tmp_path, case):
    name, content, task, _ = BAD_RECORDS[case]
    path = write(tmp_path / name, content)
    skipped = Counter()
    examples = read_file(path, task, on_error="skip", skipped=skipped)
    assert len(examples) >= 1 and sum(skipped.values()) == 1, skipped  # the good records are kept, the bad one counted


# -- 10-12: texts the attack cannot (fully) change -----------------------------------------------------------------


def attack_config(subs_file, attack="pwws", **kw) -> AttackConfig:
    return AttackConfig(attack=attack, n=None, seed=0, substitutions=subs_file, lm="none", backend="torch", in_flight=4, **kw)


def one_example_splits(words: tuple[str, ...], label: int, task=SENTIMENT) -> DatasetSplits:
    train = [Example((("a", "film"),), i % 2, f"train:{i}") for i in range(4)]
    return DatasetSplits(task, train, [], [Example((words,), label, "only")])


def test_a_text_far_beyond_max_length_is_attacked_in_its_window_only(tmp_path, subs_file, make_tiny):
    model = make_tiny(max_length=16).eval()
    words = ("a", "good", "film", "and", "very", "great", "plot") * 60  # 420 words, the window holds ~14
    label = int(model.predict_proba([(words,)])[0].argmax())
    summary = run_attack(model, one_example_splits(words, label), attack_config(subs_file), "tiny", tmp_path / "a", progress=False, log=lambda m: None)
    (record,) = ResultLog(tmp_path / "a" / runner.RESULTS_FILE).read().values()
    assert summary["n"] == 1 and record["words"] == 420
    assert 0 < record["attackable_words"] < 16  # said in the record: the words inside the model's window
    assert all(position < record["attackable_words"] for position, *_ in record["substitutions"])
    assert record["adversarial"].split()[record["attackable_words"]:] == list(words[record["attackable_words"]:])


@pytest.mark.parametrize("attack", ["pwws", "genetic"])
def test_words_without_substitutes_leave_the_example_unchanged(tmp_path, subs_file, attack):
    words = ("zqxv", "blorft", "quomp")  # in no substitution list
    splits = one_example_splits(words, 0)
    config = attack_config(subs_file, attack)
    summary = run_attack(LabelledVictim(WEIGHTS, bias=-1.0), splits, config, "toy", tmp_path / attack, progress=False, log=lambda m: None)
    (record,) = ResultLog(tmp_path / attack / runner.RESULTS_FILE).read().values()
    assert summary["n"] == 1 and record["outcome"] in (FAILED, SKIPPED)
    assert record["adversarial"] == record["original"] and record["substitutions"] == []


def test_ascc_on_an_example_with_no_substitutable_word(tmp_path, subs_file, make_tiny):
    model = make_tiny().eval()
    words = ("zqxv", "blorft", "quomp")
    label = int(model.predict_proba([(words,)])[0].argmax())
    summary = run_attack(model, one_example_splits(words, label), attack_config(subs_file, "ascc"), "tiny", tmp_path / "a", progress=False, log=lambda m: None)
    (record,) = ResultLog(tmp_path / "a" / runner.RESULTS_FILE).read().values()
    assert summary["n"] == 1 and record["outcome"] == FAILED and record["adversarial"] == record["original"]


# -- 13-14: data sets that cannot train ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, content", [("empty.jsonl", ""), ("blank.jsonl", "\n\n"), ("header-only.csv", "text,label\n"), ("header-only.tsv", "text\tlabel\n")])
def test_an_empty_file_is_an_error_naming_it(tmp_path, name, content):
    path = write(tmp_path / name, content)
    with pytest.raises(DataFormatError, match="no examples") as err:
        read_file(path, SENTIMENT)
    assert str(path) in str(err.value)


def test_a_file_whose_every_record_is_skipped_says_so(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "", "label": 0}\n{"text": "x", "label": 9}\n')
    with pytest.raises(DataFormatError, match="all 2 records were skipped") as err:
        read_file(path, SENTIMENT, on_error="skip")
    assert str(path) in str(err.value) and "empty text" in str(err.value)


def test_a_class_missing_with_balanced_batches_is_named(tmp_path, tiny_encoder_dir, make_tiny, capsys):
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"text": f"a bad film {i}", "label": "negative"} for i in range(12)]
    write(data / "train.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    write(data / "test.jsonl", '{"text": "a good film", "label": "positive"}\n{"text": "a bad one", "label": "negative"}\n')
    config = write(tmp_path / "exp.yaml", f"data:\n  dataset: {data}\n  labels: [negative, positive]\n  dev_size: 2\n"
                                          f"model:\n  encoder: {tiny_encoder_dir}\ntrain:\n  balanced_batches: true\n  batch_size: 4\n  progress: false\n")
    assert main(["train", str(config), "--output-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "train.balanced_batches" in err and "'positive'" in err and "Traceback" not in err
    # the library call: the same check (one rule, in the sampler), the same message
    splits = DatasetSplits(SENTIMENT, [Example((("bad",),), 0, f"t{i}") for i in range(8)], [Example((("bad",),), 0, "d")], [])
    with pytest.raises(ConfigError, match=r"train.balanced_batches: true .* no example of class\(es\) \['positive'\]"):
        train(tiny_config(tmp_path / "lib", balanced_batches=True, batch_size=4), splits, model=make_tiny())


# -- 15-16: model folders that do not fit ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["attack", "evaluate"])
def test_a_model_with_other_labels_is_refused(tmp_path, make_tiny, subs_file, command, capsys):
    model_dir = save_classifier(make_tiny(), tmp_path / "best")  # labels [negative, positive]
    data = write(tmp_path / "nli.jsonl", "".join(json.dumps({"text": f"w{i} x", "label": ["a", "b", "c"][i % 3]}) + "\n" for i in range(30)))
    args = [command, "--model", str(model_dir), "--dataset", str(data), "data.labels=[a, b, c]", "--split", "test"]
    if command == "attack":
        args += ["--output-dir", str(tmp_path / "attack"), f"attack.substitutions={subs_file}", "attack.lm=none", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "['negative', 'positive']" in err and "['a', 'b', 'c']" in err
    assert not (tmp_path / "attack" / runner.RESULTS_FILE).exists()


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("damaged", ["encoder/model.safetensors", "head.safetensors"])
def test_truncated_weights_in_best_name_the_file(tmp_path, make_tiny, damaged, capsys):
    folder = save_classifier(make_tiny(), tmp_path / "best")
    truncate(folder / damaged)
    with pytest.raises(ValueError, match="damaged or truncated") as err:
        load_classifier(folder)
    assert str(folder / damaged) in str(err.value)
    assert main(["evaluate", "--model", str(folder), "--dataset", str(tmp_path)]) == 2
    assert str(folder / damaged) in capsys.readouterr().err


def test_truncated_checkpoint_names_the_file_and_resume_falls_back(tmp_path, make_tiny, capsys):
    config = tiny_config(tmp_path, epochs=1, checkpoint_every_steps=1, keep_checkpoints=2)
    splits = train_splits()
    train(config, splits, model=make_tiny(), evaluate_test=False)  # 4 steps: step-3 and step-4 kept
    root = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["step-3", "step-4"]
    truncate(root / "step-4" / "model.safetensors")
    with pytest.raises(ValueError, match="damaged or truncated") as err:
        load_checkpoint(root / "step-4")
    assert str(root / "step-4" / "model.safetensors") in str(err.value)
    assert latest_checkpoint(root) == root / "step-3"
    assert "step-4" in capsys.readouterr().err  # the damaged one is reported when passed over
    result = train(config, splits, model=make_tiny(), evaluate_test=False, resume=True)
    assert result.state.step == 4
    assert "resuming from" in capsys.readouterr().err
    load_checkpoint(root / "step-4")  # written again, complete


# -- 17-19: configs -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("yaml_text, pieces", [
    ("train:\n  epochz: 3\n", ["train", "unknown key(s) ['epochz']"]),
    ("train:\n  epochs: three\n", ["train.epochs", "expected int", "'three'"]),
    ("model:\n  max_length: [1]\n", ["model.max_length", "expected int"]),
])
def test_config_errors_name_file_and_key(tmp_path, yaml_text, pieces):
    path = write(tmp_path / "exp.yaml", yaml_text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(str(path))
    for piece in pieces:
        assert piece in str(err.value)


@pytest.mark.parametrize("key, value", [("train.batch_size", 0), ("train.batch_size", -4), ("train.eval_batch_size", 0), ("model.max_length", 0)])
def test_batch_sizes_must_be_positive(key, value):
    with pytest.raises(ConfigError, match=rf"{key} must be >= 1, got {value}"):
        load_config(None, [f"{key}={value}"])


@pytest.mark.parametrize("key, value", [("forward_batch_size", 0), ("forward_batch_size", -1), ("in_flight", 0), ("ascc.examples_per_search", 0)])
def test_attack_batch_sizes_must_be_positive(key, value, capsys, tmp_path):
    with pytest.raises(ConfigError, match=rf"attack.{key} must be >= 1, got {value}"):
        section, _, name = key.rpartition(".")
        from_dict(AttackConfig, {section: {name: value}} if section else {key: value}, "attack")
    # the command line says the same, before loading anything
    assert main(["attack", "--model", str(tmp_path / "none"), f"attack.{key}={value}"]) == 2
    assert f"attack.{key} must be >= 1" in capsys.readouterr().err


# -- 20: a NaN loss -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_nan_loss_stops_training_naming_the_step(tmp_path, make_tiny, monkeypatch, bad):
    import riftkit.training.loop as loop

    real_build = loop.build_objective

    class Poisoned:
        def __init__(self, inner):
            self.inner, self.calls = inner, 0

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def __call__(self, model, batch):
            self.calls += 1
            result = self.inner(model, batch)
            return dataclasses.replace(result, loss=result.loss * bad) if self.calls == 3 else result

    monkeypatch.setattr(loop, "build_objective", lambda *a, **k: Poisoned(real_build(*a, **k)))
    config = tiny_config(tmp_path, epochs=2, checkpoint_every_steps=1)
    with pytest.raises(FloatingPointError) as err:
        train(config, train_splits(), model=make_tiny())
    message = str(err.value)
    assert "step 3" in message and "epoch 1" in message and "step-2" in message, message
    root = tmp_path / "run" / "checkpoints"
    assert latest_checkpoint(root) == root / "step-2"
    checkpoint = load_checkpoint(root / "step-2")
    assert checkpoint["trainer"]["state"]["step"] == 2
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())


# -- 21-22: asking for what is not there ---------------------------------------------------------------------------


def test_asking_for_more_examples_than_exist(tmp_path, subs_file):
    said = []
    splits = toy_splits(n=20)
    summary = run_attack(LabelledVictim(WEIGHTS, bias=-1.0), splits, AttackConfig(attack="pwws", n=10000, substitutions=subs_file, lm="none"),
                         "toy", tmp_path / "a", progress=False, log=said.append)
    assert summary["n"] == 20 and len(ResultLog(tmp_path / "a" / runner.RESULTS_FILE).read()) == 20
    assert any("asked for 10000" in m and "20" in m for m in said), said


def test_a_missing_data_directory_is_named(tmp_path, capsys, monkeypatch):
    with pytest.raises(Exception) as err:
        load_splits(DataConfig(dataset="sst2"), "/nonexistent")
    assert "/nonexistent" in str(err.value) and "--data-dir" in str(err.value) and "RIFTKIT_DATA_DIR" in str(err.value)
    config = write(tmp_path / "exp.yaml", "data:\n  dataset: sst2\n")
    assert main(["train", str(config), "--data-dir", "/nonexistent", "--output-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "data directory not found: /nonexistent" in err and "RIFTKIT_DATA_DIR" in err and "not reachable" not in err  # refused before trying the Hub


# -- 23: a full disk ------------------------------------------------------------------------------------------------

LIMIT = """
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write raises OSError(EFBIG) instead of killing the process
def full_disk(size):
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))
"""


def run_script(body: str) -> subprocess.CompletedProcess:
    script = textwrap.dedent(LIMIT) + textwrap.dedent(body)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_a_full_disk_during_an_attack_loses_no_finished_example(tmp_path, subs_file):
    folder = tmp_path / "attack"
    cfg = dict(attack="pwws", n=20, seed=1, substitutions=subs_file, lm="none", in_flight=2)
    done = run_script(f"""
        from riftkit.attacks.runner import ResultLog, run_attack
        from riftkit.config import AttackConfig
        from tests.test_attacks_runner import LabelledVictim, toy_splits
        from tests.test_attacks_victims import WEIGHTS
        real = ResultLog.append
        def append(self, record):
            if not self.path.exists():
                full_disk(1200)  # a few lines fit, then the disk is "full"
            real(self, record)
        ResultLog.append = append
        run_attack(LabelledVictim(WEIGHTS, bias=-1.0), toy_splits(n=20), AttackConfig(**{cfg!r}), "toy", {str(folder)!r}, progress=False)
    """)
    assert done.returncode != 0
    assert f"{folder / runner.RESULTS_FILE}" in done.stderr and "cannot write" in done.stderr, done.stderr[-2000:]
    raw = (folder / runner.RESULTS_FILE).read_bytes()
    assert 0 < len(raw) <= 1200 and not raw.endswith(b"\n")  # torn last line
    complete = raw[: raw.rfind(b"\n") + 1].decode().splitlines()
    assert len(complete) >= 1
    # the rerun without the limit drops the torn line, keeps every complete one, and finishes
    summary = run_attack(LabelledVictim(WEIGHTS, bias=-1.0), toy_splits(n=20), AttackConfig(**cfg), "toy", folder, progress=False, log=lambda m: None)
    assert summary["n"] == 20 and summary["examples_this_session"] == 20 - len(complete)
    assert (folder / runner.RESULTS_FILE).read_text().splitlines()[: len(complete)] == complete
    whole = run_attack(LabelledVictim(WEIGHTS, bias=-1.0), toy_splits(n=20), AttackConfig(**cfg), "toy", tmp_path / "whole", progress=False, log=lambda m: None)
    assert ResultLog(folder / runner.RESULTS_FILE).read() == ResultLog(tmp_path / "whole" / runner.RESULTS_FILE).read()
    assert summary["succeeded"] == whole["succeeded"]


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path):
    out = tmp_path / "run"
    done = run_script(f"""
        import riftkit.training.loop as loop
        from riftkit.models import build_classifier, load_tokenizer, random_encoder
        from riftkit.training import train
        from tests.conftest import SENTIMENT
        from tests.test_training import tiny_config, toy_splits
        from pathlib import Path
        real, saves = loop.save_checkpoint, []
        def save(folder, bundle):
            saves.append(folder)
            if len(saves) == 3:
                full_disk(1 << 20)  # the weights of step 3 no longer fit
            return real(folder, bundle)
        loop.save_checkpoint = save
        tokenizer = load_tokenizer("embedded")
        model = build_classifier(random_encoder(tokenizer.vocab_size), tokenizer, SENTIMENT, encoder_source="random-tiny", max_length=32)
        train(tiny_config(Path({str(tmp_path)!r}), epochs=1, checkpoint_every_steps=1), toy_splits(), model=model)
    """)
    assert done.returncode != 0
    root = out / "checkpoints"
    assert "cannot write" in done.stderr and str(root / ".tmp-step-3") in done.stderr, done.stderr[-2000:]
    assert latest_checkpoint(root) == root / "step-2"  # the incomplete step-3 is ignored
    assert load_checkpoint(root / "step-2")["trainer"]["state"]["step"] == 2
