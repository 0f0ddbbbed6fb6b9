import gzip
import json
from collections import Counter

import pytest

from riftkit.config import DataConfig
from riftkit.data import DataFormatError, DataNotFoundError, TaskSpec, carve, load_splits, read_acl_imdb, read_file, sample

from .conftest import NLI, SENTIMENT


# -- the real data sets (slices of ../shared/data) ------------------------------------


def test_sst2_roles_and_counts(data_dir):
    splits = load_splits(DataConfig(dataset="sst2", dev_size=500, max_train=1000), data_dir)
    assert splits.task.kind == "single" and splits.task.label_names == ("negative", "positive")
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (1000, 500, 872)
    assert Counter(e.label for e in splits.test) == {0: 428, 1: 444}  # the official GLUE dev set
    train_uids = {e.uid for e in splits.train}
    assert not train_uids & {e.uid for e in splits.dev}  # carved dev is disjoint from train
    assert splits.test[0].segments == (("it", "'", "s", "a", "charming", "and", "often", "affecting", "journey", "."),)


def test_snli_offline_trains_on_dev_and_tests_on_test(data_dir):
    splits = load_splits(DataConfig(dataset="snli", dev_size=0.2), data_dir)
    assert splits.task.kind == "pair" and splits.task.num_labels == 3
    assert len(splits.train) + len(splits.dev) == 9842 and len(splits.dev) == round(0.2 * 9842)
    assert len(splits.test) == 9824
    assert splits.provenance["train"] == "dev" and "carved from dev" in splits.provenance["dev"]
    example = splits.train[0]
    assert len(example.segments) == 2 and all(example.segments)


def test_mr_seeded_three_way_split(data_dir):
    a = load_splits(DataConfig(dataset="mr", seed=1), data_dir)
    b = load_splits(DataConfig(dataset="mr", seed=1), data_dir)
    c = load_splits(DataConfig(dataset="mr", seed=2), data_dir)
    assert len(a.train) + len(a.dev) + len(a.test) == 10662
    assert [e.uid for e in a.dev] == [e.uid for e in b.dev]  # same seed, same split
    assert [e.uid for e in a.dev] != [e.uid for e in c.dev]
    assert not {e.uid for e in a.test} & ({e.uid for e in a.train} | {e.uid for e in a.dev})


def test_imdb_removes_line_breaks(data_dir):
    splits = load_splits(DataConfig(dataset="imdb", max_train=300, max_dev=10, max_test=10), data_dir)
    assert len(splits.train) == 300
    assert all("br" not in e.segments[0] or "<" not in e.segments[0] for e in splits.train)
    assert not any("<br" in e.text() for e in splits.train)


def test_no_local_data_and_no_hub_says_what_to_do(tmp_path, monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.delenv("RIFTKIT_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataNotFoundError) as err:
        load_splits(DataConfig(dataset="sst2", data_dir=str(tmp_path)))
    message = str(err.value)
    assert "RIFTKIT_DATA_DIR" in message and "--data-dir" in message and "sst2/train.jsonl.gz" in message


def test_hub_rows_are_mapped_and_unlabelled_pairs_dropped(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return datasets.Dataset.from_dict(
            {"premise": ["A man sleeps.", "A dog runs.", "Kids play."], "hypothesis": ["He rests.", "A cat flies.", "Children are outside."], "label": [0, -1, 0]}
        )

    monkeypatch.delenv("RIFTKIT_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    splits = load_splits(DataConfig(dataset="snli", source="hub"))
    assert ("stanfordnlp/snli", None, "validation") in calls and ("stanfordnlp/snli", None, "train") in calls
    assert len(splits.test) == 2 and splits.skipped == {"no gold label": 3}  # one in each of train, validation, test
    assert splits.test[0].segments == (("a", "man", "sleeps", "."), ("he", "rests", "."))


def test_hub_field_mapping_for_glue(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda path, name=None, split=None: datasets.Dataset.from_dict({"sentence": ["good fun", "dull"], "label": [1, 0], "idx": [0, 1]}))
    splits = load_splits(DataConfig(dataset="sst2", source="hub", dev_size=1))
    assert [e.label for e in splits.test] == [1, 0] and splits.test[0].segments == (("good", "fun"),)


# -- local files and bad input -----------------------------------------------------------


def write_jsonl(path, rows, gz=False):
    text = "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_plain_and_gzip_with_label_names(tmp_path):
    rows = [{"text": "Fine film", "label": "positive"}, {"text": "Bad", "label": 0}, {"text": "ok", "label": "1"}]
    for gz in (False, True):
        path = write_jsonl(tmp_path / ("d.jsonl.gz" if gz else "d.jsonl"), rows, gz)
        examples = read_file(path, SENTIMENT)
        assert [e.label for e in examples] == [1, 0, 1]
        assert examples[0].uid == f"{path.name}:1"


@pytest.mark.parametrize(
    "bad_line, field, problem",
    [
        ('{"text": "broken", "label": 1', None, "malformed JSON"),
        ({"label": 1}, "text", "missing field"),
        ({"text": "ok"}, "label", "missing field"),
        ({"text": "ok", "label": 7}, "label", "unknown label"),
        ({"text": "ok", "label": "great"}, "label", "unknown label"),
        ({"text": "  <br /> ", "label": 0}, "text", "empty text"),
        ({"text": 3, "label": 0}, "text", "expected a string"),
    ],
)
def test_bad_records_name_file_line_and_field(tmp_path, bad_line, field, problem):
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": "good", "label": 1}, {"text": "bad", "label": 0}, bad_line])
    with pytest.raises(DataFormatError) as err:
        read_file(path, SENTIMENT)
    assert err.value.path == str(path) and err.value.line == 3 and err.value.field == field
    assert problem in str(err.value) and str(path) in str(err.value) and "line 3" in str(err.value)


def test_skip_mode_counts_and_reports(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": "good", "label": 1}, {"text": "", "label": 0}, {"text": "x", "label": 9}, "{oops"])
    skipped = Counter()
    examples = read_file(path, SENTIMENT, on_error="skip", skipped=skipped)
    assert len(examples) == 1 and sum(skipped.values()) == 3
    assert skipped == {"text: empty text": 1, "label: unknown label": 1, "record: malformed JSON": 1}


def test_csv_and_tsv_with_column_mapping(tmp_path):
    (tmp_path / "train.csv").write_text('sentence,polarity\n"Great, really great",pos\nawful,neg\n', encoding="utf-8")
    task = TaskSpec("t", "single", ("neg", "pos"))
    examples = read_file(tmp_path / "train.csv", task, fields={"text": "sentence", "label": "polarity"})
    assert [e.label for e in examples] == [1, 0] and examples[0].segments[0] == ("great", ",", "really", "great")
    (tmp_path / "pairs.tsv").write_text('p\th\ty\nA "quoted" man\tA man\t0\nshort\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match="line 3.*3 columns"):
        read_file(tmp_path / "pairs.tsv", NLI, fields={"premise": "p", "hypothesis": "h", "label": "y"})
    with pytest.raises(DataFormatError, match="line 2, field 'text': missing field"):
        read_file(tmp_path / "train.csv", task)  # without the mapping, column "text" does not exist


def test_snli_1_0_format_drops_unlabelled(tmp_path):
    rows = [
        {"gold_label": "entailment", "sentence1": "A man sleeps.", "sentence2": "A person rests.", "annotator_labels": ["entailment"]},
        {"gold_label": "-", "sentence1": "A dog.", "sentence2": "A cat.", "annotator_labels": []},
        {"gold_label": "contradiction", "sentence1": "Kids play.", "sentence2": "Nobody plays."},
    ]
    skipped = Counter()
    examples = read_file(write_jsonl(tmp_path / "snli_1.0_dev.jsonl", rows), NLI, skipped=skipped)
    assert [e.label for e in examples] == [0, 2] and skipped == {"no gold label": 1}
    assert examples[1].segments == (("kids", "play", "."), ("nobody", "plays", "."))


def test_acl_imdb_folder(tmp_path):
    for split in ("train", "test"):
        for name, texts in (("neg", ["Awful.<br />Avoid.", "Bad"]), ("pos", ["Loved it", "Wonderful"])):
            folder = tmp_path / "aclImdb" / split / name
            folder.mkdir(parents=True)
            for i, text in enumerate(texts):
                (folder / f"{10 - i}_{3 if name == 'neg' else 9}.txt").write_text(text)
    examples = read_acl_imdb(tmp_path / "aclImdb", "train", SENTIMENT)
    assert [e.label for e in examples] == [0, 0, 1, 1]
    assert examples[0].uid == "train/neg/9_3.txt" and examples[1].segments == (("awful", ".", "avoid", "."),)
    splits = load_splits(DataConfig(dataset=str(tmp_path / "aclImdb"), dev_size=1))
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (3, 1, 4)
    (tmp_path / "aclImdb" / "test" / "pos" / "11_9.txt").write_text(" ")
    with pytest.raises(DataFormatError, match="11_9.txt.*empty text"):
        read_acl_imdb(tmp_path / "aclImdb", "test", SENTIMENT)


def test_folder_of_split_files_needs_labels(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"text": f"t{i}", "label": i % 2} for i in range(10)])
    write_jsonl(tmp_path / "test.jsonl", [{"text": "x", "label": 1}])
    with pytest.raises(DataNotFoundError, match="data.labels"):
        load_splits(DataConfig(dataset=str(tmp_path)))
    splits = load_splits(DataConfig(dataset=str(tmp_path), labels=["neg", "pos"], dev_size=0.2))
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (8, 2, 1)


def test_carve_and_sample_are_seeded_and_disjoint():
    items = list(range(100))
    dev, test, train = carve(items, [10, 20], seed=3)
    assert (len(dev), len(test), len(train)) == (10, 20, 70)
    assert sorted(dev + test + train) == items and dev == sorted(dev)
    assert carve(items, [10, 20], seed=3) == [dev, test, train]
    assert carve(items, [10, 20], seed=4)[0] != dev
    assert sample(items, 5, seed=0) == sample(items, 5, seed=0) and len(set(sample(items, 5, seed=0))) == 5
    with pytest.raises(ValueError):
        carve(items, [60, 60], seed=0)
