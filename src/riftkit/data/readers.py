"""Readers for local files: JSON lines (plain or gzip), CSV/TSV, aclImdb folders, SNLI 1.0.

Every reader yields raw records with their line numbers; :func:`to_examples`
turns them into :class:`Example` objects and is the single place where bad
input is detected. A bad record raises :class:`DataFormatError` naming file,
line and field, unless the caller asked for skips, which are then counted by
reason and reported.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from .examples import Example, TaskSpec
from .pretokenize import words

OnError = Literal["error", "skip"]

# Labels that mean "no gold label": SNLI 1.0 uses "-", the Hub copy uses -1.
# Such examples are dropped and counted, never an error.
NO_GOLD_LABELS = ("-", -1, "-1")

# SNLI 1.0 distribution files (snli_1.0_{train,dev,test}.jsonl).
SNLI_1_0_FIELDS = {"premise": "sentence1", "hypothesis": "sentence2", "label": "gold_label"}


class Malformed(str):
    """A record that could not even be parsed; :func:`to_examples` reports it like any other bad record."""


class DataFormatError(ValueError):
    """A record that cannot be used; the message names file, line and field."""

    def __init__(self, path: str | Path, line: int | None, field: str | None, problem: str):
        self.path, self.line, self.field, self.problem = str(path), line, field, problem
        where = self.path if line is None else f"{self.path}, line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _base_suffix(path: Path) -> str:
    """The format suffix, ignoring a trailing .gz (``train.jsonl.gz`` -> ``.jsonl``)."""
    return Path(path.stem).suffix if path.suffix == ".gz" else path.suffix


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    with _open_text(path) as handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as err:
                    yield number, Malformed(f"malformed JSON ({err.msg} at column {err.colno})")
        except (OSError, UnicodeDecodeError, EOFError) as err:
            raise DataFormatError(path, None, None, f"cannot read file: {err}") from None


def iter_delimited(path: Path) -> Iterator[tuple[int, Any]]:
    delimiter = "\t" if _base_suffix(path) == ".tsv" else ","
    with _open_text(path) as handle:
        # TSV files (GLUE, SNLI) are not quoted: a stray quote is text, not a delimiter.
        quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        reader = csv.DictReader(handle, delimiter=delimiter, quoting=quoting)
        if reader.fieldnames is None:
            raise DataFormatError(path, 1, None, "empty file: expected a header row naming the columns")
        width = len(reader.fieldnames)
        for row in reader:
            if None in row or any(value is None for value in row.values()):
                yield reader.line_num, Malformed(f"expected {width} columns as in the header")
            else:
                yield reader.line_num, row


def iter_records(path: Path) -> Iterator[tuple[int, Any]]:
    suffix = _base_suffix(path)
    if suffix in (".jsonl", ".json"):
        return iter_jsonl(path)
    if suffix in (".csv", ".tsv"):
        return iter_delimited(path)
    raise DataFormatError(path, None, None, f"unknown file format {suffix!r}: expected .jsonl, .csv or .tsv (optionally .gz)")


def parse_label(value: Any, task: TaskSpec) -> int:
    """An integer id, a numeric string, or a label name (case-insensitive)."""
    if isinstance(value, bool):
        raise ValueError(f"label {value!r} is not a class id or name")
    if isinstance(value, int):
        label = value
    elif isinstance(value, float) and value.is_integer():
        label = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        label = int(value.strip())
    elif isinstance(value, str):
        names = [name.lower() for name in task.label_names]
        if value.strip().lower() not in names:
            raise ValueError(f"unknown label: {value!r} is not one of {list(task.label_names)} or 0..{task.num_labels - 1}")
        return names.index(value.strip().lower())
    else:
        raise ValueError(f"label {value!r} is not a class id or name")
    if not 0 <= label < task.num_labels:
        raise ValueError(f"unknown label: {value!r} is not one of {list(task.label_names)} or 0..{task.num_labels - 1}")
    return label


def to_examples(
    records: Iterable[tuple[int, Any]],
    path: str | Path,
    task: TaskSpec,
    fields: Mapping[str, str] | None = None,
    on_error: OnError = "error",
    skipped: Counter | None = None,
) -> list[Example]:
    """Validate raw records and pre-tokenise them.

    ``fields`` maps the task's names (``text`` or ``premise``/``hypothesis``,
    and ``label``) to the record's keys or columns; by default they are equal.
    """
    fields = dict(fields or {})
    segment_keys = [fields.get(name, name) for name in task.segment_names]
    label_key = fields.get("label", "label")
    skipped = Counter() if skipped is None else skipped
    examples: list[Example] = []
    for line, record in records:
        try:
            if isinstance(record, Malformed):
                raise DataFormatError(path, line, None, str(record))
            if not isinstance(record, Mapping):
                raise DataFormatError(path, line, None, f"expected an object with fields {segment_keys + [label_key]}, got {type(record).__name__}")
            segments = []
            for key in segment_keys:
                if key not in record:
                    raise DataFormatError(path, line, key, "missing field")
                if not isinstance(record[key], str):
                    raise DataFormatError(path, line, key, f"expected a string, got {type(record[key]).__name__}")
                tokens = words(record[key])
                if not tokens:
                    raise DataFormatError(path, line, key, "empty text")
                segments.append(tuple(tokens))
            if label_key not in record:
                raise DataFormatError(path, line, label_key, "missing field")
            if record[label_key] in NO_GOLD_LABELS:
                skipped["no gold label"] += 1
                continue
            try:
                label = parse_label(record[label_key], task)
            except ValueError as err:
                raise DataFormatError(path, line, label_key, str(err)) from None
        except DataFormatError as err:
            if on_error == "error":
                raise
            # Count by reason (not by value), so that the report stays short on a large file.
            skipped[f"{err.field or 'record'}: {re.split(r'[:(]', err.problem)[0].strip()}"] += 1
            continue
        examples.append(Example(tuple(segments), label, uid=f"{Path(path).name}:{line}"))
    return examples


def read_file(
    path: str | Path,
    task: TaskSpec,
    fields: Mapping[str, str] | None = None,
    on_error: OnError = "error",
    skipped: Counter | None = None,
) -> list[Example]:
    """Read one JSONL / CSV / TSV file (plain or gzip). SNLI 1.0 files are recognised by their keys."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    records = list(iter_records(path))
    if fields is None and records and _is_snli_1_0(records[0][1]):
        fields = SNLI_1_0_FIELDS
    return to_examples(records, path, task, fields, on_error, skipped)


def _is_snli_1_0(record: Any) -> bool:
    return isinstance(record, Mapping) and "gold_label" in record and "sentence1" in record


def is_acl_imdb(path: Path) -> bool:
    return path.is_dir() and any((path / split / "pos").is_dir() for split in ("train", "test"))


def read_acl_imdb(root: str | Path, split: str, task: TaskSpec, on_error: OnError = "error", skipped: Counter | None = None) -> list[Example]:
    """The original aclImdb layout: ``root/{train,test}/{neg,pos}/<id>_<rating>.txt`` (neg=0, pos=1).

    Files are read in a fixed order (label, then numeric id), so uids and seeded
    splits do not depend on the file system.
    """
    folder = Path(root) / split
    if not folder.is_dir():
        raise FileNotFoundError(f"aclImdb split folder not found: {folder}")

    def order(file: Path) -> tuple[int, str]:
        head = file.stem.split("_")[0]
        return (int(head), file.name) if head.isdigit() else (1 << 62, file.name)

    examples: list[Example] = []
    for label, name in enumerate(("neg", "pos")):
        for file in sorted((folder / name).glob("*.txt"), key=order):
            record = (1, {"text": file.read_text(encoding="utf-8"), "label": label})
            for example in to_examples([record], file, task, on_error=on_error, skipped=skipped):
                examples.append(Example(example.segments, example.label, uid=f"{split}/{name}/{file.name}"))
    return examples
