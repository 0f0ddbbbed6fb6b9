"""Data shapes: single vs pair detected from the user's own files, and headerless CSV/TSV read by column position."""

import json
from collections import Counter

import pytest

from riftkit.config import ConfigError, DataConfig, load_config
from riftkit.data import DataFormatError, load_splits, read_file

from .conftest import NLI

NLI_LABELS = ["entailment", "neutral", "contradiction"]

PAIRS = [
    ("A man sleeps on a couch.", "A person rests.", "entailment"),
    ("A dog runs in the park.", "A cat flies.", "contradiction"),
    ("Kids play football.", "Children are outside.", "neutral"),
    ("A woman reads a book.", "Someone is reading.", "entailment"),
    ("Two men cook dinner.", "Nobody is cooking.", "contradiction"),
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# -- task: auto on a user's own data -------------------------------------------------


def test_folder_of_jsonl_pairs_is_detected_as_pair(tmp_path):
    rows = [{"premise": p, "hypothesis": h, "label": y} for p, h, y in PAIRS]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "dev.jsonl", rows[:2])
    write_jsonl(tmp_path / "test.jsonl", rows[2:])
    splits = load_splits(DataConfig(dataset=str(tmp_path), labels=NLI_LABELS))
    assert splits.task.kind == "pair"
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (5, 2, 3)
    assert splits.test[0].segments == (("kids", "play", "football", "."), ("children", "are", "outside", "."))
    assert [e.label for e in splits.test] == [1, 0, 2]


def test_one_snli_1_0_file_is_detected_as_pair(tmp_path):
    rows = [{"gold_label": y, "sentence1": p, "sentence2": h} for p, h, y in PAIRS]
    path = write_jsonl(tmp_path / "snli_1.0_dev.jsonl", rows)
    splits = load_splits(DataConfig(dataset=str(path), labels=NLI_LABELS, dev_size=1, test_size=1))
    assert splits.task.kind == "pair" and len(splits.train) == 3
    assert all(len(e.segments) == 2 for e in splits.train + splits.dev + splits.test)


def test_csv_with_header_and_named_fields_is_detected_as_pair(tmp_path):
    lines = ["s1,s2,y"] + [f"{p},{h},{y}" for p, h, y in PAIRS]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = DataConfig(dataset=str(tmp_path), labels=NLI_LABELS, fields={"premise": "s1", "hypothesis": "s2", "label": "y"}, dev_size=1)
    splits = load_splits(config)
    assert splits.task.kind == "pair" and len(splits.train) + len(splits.dev) == 5


def test_text_field_is_detected_as_single(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"text": "great fun", "label": 1}, {"text": "dull", "label": 0}, {"text": "fine", "label": 1}])
    splits = load_splits(DataConfig(dataset=str(tmp_path), labels=["neg", "pos"], dev_size=1, test_size=1))
    assert splits.task.kind == "single" and len(splits.train) == 1


def test_explicit_task_wins_over_detection(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"premise": p, "hypothesis": h, "label": y} for p, h, y in PAIRS])
    with pytest.raises(DataFormatError, match="line 1, field 'text': missing field"):
        load_splits(DataConfig(dataset=str(tmp_path), labels=NLI_LABELS, task="single"))


@pytest.mark.parametrize(
    "first, found",
    [
        ({"sentence": "good", "label": 1}, "['sentence', 'label']"),
        ({"text": "good", "premise": "a", "hypothesis": "b", "label": 1}, "['text', 'premise', 'hypothesis', 'label']"),
    ],
)
def test_undetectable_shape_names_file_and_fields_found(tmp_path, first, found):
    path = write_jsonl(tmp_path / "train.jsonl", [first, {"sentence": "bad", "label": 0}])
    with pytest.raises(DataFormatError) as err:
        load_splits(DataConfig(dataset=str(tmp_path), labels=["neg", "pos"]))
    message = str(err.value)
    assert str(path) in message and found in message
    assert "data.task" in message and "data.fields" in message


# -- CSV/TSV without a header, read by column position ------------------------------


def write_textfooler_tsv(path, labels):
    # TextFooler's NLI files: label<TAB>premise<TAB>hypothesis, no header.
    path.write_text("".join(f"{y}\t{p}\t{h}\n" for (p, h, _), y in zip(PAIRS, labels)), encoding="utf-8")
    return path


POSITIONS = {"label": 0, "premise": 1, "hypothesis": 2}


@pytest.mark.parametrize("labels", [[y for _, _, y in PAIRS], [NLI_LABELS.index(y) for _, _, y in PAIRS]], ids=["names", "ids"])
def test_headerless_tsv_in_textfooler_layout(tmp_path, labels):
    path = write_textfooler_tsv(tmp_path / "snli.tsv", labels)
    examples = read_file(path, NLI, fields=POSITIONS)
    assert [e.label for e in examples] == [0, 2, 1, 0, 2]  # every line is an example: no header row is dropped
    assert examples[0].segments == (("a", "man", "sleeps", "on", "a", "couch", "."), ("a", "person", "rests", "."))
    assert examples[0].uid == "snli.tsv:1"
    (tmp_path / "nli").mkdir()
    write_textfooler_tsv(tmp_path / "nli" / "train.tsv", labels)
    write_textfooler_tsv(tmp_path / "nli" / "test.tsv", labels[:2])
    splits = load_splits(DataConfig(dataset=str(tmp_path / "nli"), labels=NLI_LABELS, fields=POSITIONS, dev_size=1))
    assert splits.task.kind == "pair"  # task: auto, told by the fields' names
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (4, 1, 2)


def test_headerless_csv_single_text_by_position(tmp_path):
    (tmp_path / "train.csv").write_text('1,"Great, really great"\n0,awful\n', encoding="utf-8")
    splits = load_splits(DataConfig(dataset=str(tmp_path / "train.csv"), labels=["neg", "pos"], fields={"text": 1, "label": 0}, dev_size=0, test_size=0))
    assert splits.task.kind == "single"
    assert [(e.segments[0], e.label) for e in splits.train] == [(("great", ",", "really", "great"), 1), (("awful",), 0)]


def test_short_row_names_file_line_and_column(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("entailment\tA man sleeps.\tA person rests.\nneutral\tonly a premise\n\ncontradiction\tA dog.\tA cat.\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        read_file(path, NLI, fields=POSITIONS)
    assert err.value.path == str(path) and err.value.line == 2 and err.value.field == 2
    assert f"{path}, line 2, column 2" in str(err.value) and "hypothesis" in str(err.value)
    skipped = Counter()
    examples = read_file(path, NLI, fields=POSITIONS, on_error="skip", skipped=skipped)
    assert [e.label for e in examples] == [0, 2] and examples[1].uid == "train.tsv:4"  # the blank line 3 is no record
    assert skipped == {"column 2: missing column": 1}


def test_positions_must_place_every_field(tmp_path):
    path = write_textfooler_tsv(tmp_path / "train.tsv", [y for _, _, y in PAIRS])
    with pytest.raises(DataFormatError, match=r"data.fields.*not for \['hypothesis'\]") as err:
        read_file(path, NLI, fields={"label": 0, "premise": 1})
    assert str(path) in str(err.value)


def test_mixed_names_and_positions_are_an_error_naming_data_fields(tmp_path):
    path = write_textfooler_tsv(tmp_path / "train.tsv", [y for _, _, y in PAIRS])
    mixed = {"label": 0, "premise": "p", "hypothesis": 2}
    with pytest.raises(ConfigError, match="data.fields"):
        load_splits(DataConfig(dataset=str(tmp_path), labels=NLI_LABELS, fields=mixed))
    with pytest.raises(ValueError, match="data.fields"):
        read_file(path, NLI, fields=mixed)
    with pytest.raises(ConfigError, match="data.fields.*-1"):
        load_splits(DataConfig(dataset=str(tmp_path), labels=NLI_LABELS, fields={"label": -1, "premise": 1, "hypothesis": 2}))


def test_positions_for_jsonl_are_an_error(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"premise": p, "hypothesis": h, "label": y} for p, h, y in PAIRS])
    with pytest.raises(DataFormatError) as err:
        load_splits(DataConfig(dataset=str(tmp_path), labels=NLI_LABELS, fields=POSITIONS))
    assert str(path) in str(err.value) and "data.fields" in str(err.value) and "names" in str(err.value)


def test_positions_from_a_config_override(tmp_path):
    write_textfooler_tsv(tmp_path / "train.tsv", [y for _, _, y in PAIRS])
    config = load_config(overrides=[f"data.dataset={tmp_path}", "data.labels=[entailment, neutral, contradiction]", "data.fields={label: 0, premise: 1, hypothesis: 2}", "data.dev_size=1", "data.test_size=1"])
    assert config.data.fields == POSITIONS
    splits = load_splits(config.data)
    assert splits.task.kind == "pair" and len(splits.train) == 3
