"""Readers for local files: JSON lines (plain or gzip), CSV/TSV (with or without a header), aclImdb folders, SNLI 1.0.

Every reader yields raw records with their line numbers; :func:`to_examples`
turns them into :class:`Example` objects and is the single place where bad
input is detected. A bad record raises :class:`DataFormatError` naming file,
line and field, unless the caller asked for skips, which are then counted by
reason and reported. :func:`detect_kind` tells single-text from pair data by
the fields of a file's first record.

``fields`` maps the task's names (``text``, ``premise``, ``hypothesis``,
``label``) to a record's keys or a header's column names, or, when every value
is an int, to 0-based column positions of a CSV/TSV file without a header row.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from .examples import Example, TaskKind, TaskSpec
from .pretokenize import words

OnError = Literal["error", "skip"]

# Labels that mean "no gold label": SNLI 1.0 uses "-", the Hub copy uses -1.
# Such examples are dropped and counted, never an error.
NO_GOLD_LABELS = ("-", -1, "-1")

# SNLI 1.0 distribution files (snli_1.0_{train,dev,test}.jsonl).
SNLI_1_0_FIELDS = {"premise": "sentence1", "hypothesis": "sentence2", "label": "gold_label"}

Fields = Mapping[str, str | int]


class Malformed(str):
    """A record that could not even be parsed; :func:`to_examples` reports it like any other bad record."""


class DataFormatError(ValueError):
    """A record that cannot be used; the message names file, line and field (an int field is a column position)."""

    def __init__(self, path: str | Path, line: int | None, field: str | int | None, problem: str):
        self.path, self.line, self.field, self.problem = str(path), line, field, problem
        where = self.path if line is None else f"{self.path}, line {line}"
        if field is not None:
            where += f", {_field_name(field)}"
        super().__init__(f"{where}: {problem}")


def _field_name(field: str | int) -> str:
    return f"column {field}" if isinstance(field, int) else f"field {field!r}"


def column_positions(fields: Fields | None) -> dict[str, int] | None:
    """``fields`` as 0-based column positions when every value is an int (a file without a header), else None.

    Raises ValueError naming ``data.fields`` when names and positions are mixed or a position is negative.
    """
    if not fields:
        return None
    is_position = {key: isinstance(value, int) and not isinstance(value, bool) for key, value in fields.items()}
    if not any(is_position.values()):
        return None
    if not all(is_position.values()):
        names = sorted(key for key, flag in is_position.items() if not flag)
        positions = sorted(key for key, flag in is_position.items() if flag)
        raise ValueError(
            f"data.fields: mixes column names ({', '.join(names)}) and column positions ({', '.join(positions)}); "
            f"use names for files with a header (or JSON lines), or 0-based ints for every field of a CSV/TSV file without a header"
        )
    negative = {key: value for key, value in fields.items() if value < 0}
    if negative:
        raise ValueError(f"data.fields: column positions are 0-based and cannot be negative: {negative}")
    return dict(fields)


def _lines(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """(line number, text, problem) for every line of a plain or gzip file, line endings kept.

    A line that is not UTF-8 comes decoded with replacement characters and a problem naming the byte,
    so that the record on it is reported (or skipped and counted) like any other bad record.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    yield number, raw.decode("utf-8"), None
                except UnicodeDecodeError as err:
                    problem = f"not UTF-8 text (byte 0x{raw[err.start]:02x} at byte {err.start + 1} of the line); save the file as UTF-8"
                    yield number, raw.decode("utf-8", errors="replace"), problem
    except (OSError, EOFError) as err:
        raise DataFormatError(path, None, None, f"cannot read file: {err}") from None


def _base_suffix(path: Path) -> str:
    """The format suffix, ignoring a trailing .gz (``train.jsonl.gz`` -> ``.jsonl``)."""
    return Path(path.stem).suffix if path.suffix == ".gz" else path.suffix


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    for number, line, problem in _lines(path):
        if problem:
            yield number, Malformed(problem)
        elif line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as err:
                yield number, Malformed(f"malformed JSON ({err.msg} at column {err.colno})")


def iter_delimited(path: Path, positions: Mapping[str, int] | None = None) -> Iterator[tuple[int, Any]]:
    """Rows of a CSV/TSV file as mappings: column name -> value, or with ``positions`` (no header row) index -> value.

    A row is numbered by the physical line where it ends (quoted fields may span lines); a bad row by the
    line where it starts, so that an unclosed quote is found where it opens.
    """
    delimiter = "\t" if _base_suffix(path) == ".tsv" else ","
    problems: dict[int, str] = {}  # lines that are not UTF-8

    def text() -> Iterator[str]:
        for number, line, problem in _lines(path):
            if problem:
                problems[number] = problem
            yield line

    # TSV files (GLUE, SNLI) are not quoted: a stray quote is text, not a delimiter.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    if positions is not None:
        reader = csv.reader(text(), delimiter=delimiter, quoting=quoting)
        rows = ((row, dict(enumerate(row))) for row in reader if row)  # a blank line is no record, as in JSON lines
        width = None
    else:
        reader = csv.DictReader(text(), delimiter=delimiter, quoting=quoting)
        if reader.fieldnames is None:
            raise DataFormatError(path, 1, None, "empty file: expected a header row naming the columns")
        if 1 in problems:
            raise DataFormatError(path, 1, None, problems[1])
        width = len(reader.fieldnames)
        rows = ((row, row) for row in reader)
    first = reader.line_num + 1
    for _, row in rows:
        last = reader.line_num
        bad = [n for n in problems if first <= n <= last] if problems else []
        if bad:
            yield bad[0], Malformed(problems[bad[0]])
        elif width is not None and (None in row or any(value is None for value in row.values())):
            spans = f" (the row runs on to line {last}: a quote opened on line {first} that is never closed?)" if last > first else ""
            yield first, Malformed(f"expected {width} columns as in the header{spans}")
        else:
            yield last, row
        first = last + 1


def iter_records(path: Path, fields: Fields | None = None) -> Iterator[tuple[int, Any]]:
    """(line number, raw record) pairs of a JSONL / CSV / TSV file; ``fields`` says whether a CSV/TSV file has a header.

    Raises DataFormatError for an unknown format, or column positions in ``fields`` for a JSON lines file.
    """
    suffix = _base_suffix(path)
    positions = column_positions(fields)
    if suffix in (".jsonl", ".json"):
        if positions is not None:
            raise DataFormatError(
                path, None, None,
                f"data.fields gives column positions {positions}, but JSON lines records have field names, not positions: "
                f"map to the names instead (e.g. premise: sentence1)",
            )
        return iter_jsonl(path)
    if suffix in (".csv", ".tsv"):
        return iter_delimited(path, positions)
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
    fields: Fields | None = None,
    on_error: OnError = "error",
    skipped: Counter | None = None,
) -> list[Example]:
    """Validate raw records and pre-tokenise them.

    ``fields`` maps the task's names (``text`` or ``premise``/``hypothesis``,
    and ``label``) to the record's keys, columns or (int) column positions;
    by default they are equal.
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
            for name, key in zip(task.segment_names, segment_keys):
                if key not in record:
                    raise DataFormatError(path, line, key, _missing(record, key, name))
                if not isinstance(record[key], str):
                    raise DataFormatError(path, line, key, f"expected a string, got {type(record[key]).__name__}")
                tokens = words(record[key])
                if not tokens:
                    raise DataFormatError(path, line, key, "empty text")
                segments.append(tuple(tokens))
            if label_key not in record:
                raise DataFormatError(path, line, label_key, _missing(record, label_key, "label"))
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
            where = "record" if err.field is None else f"column {err.field}" if isinstance(err.field, int) else err.field
            skipped[f"{where}: {re.split(r'[:(]', err.problem)[0].strip()}"] += 1
            continue
        examples.append(Example(tuple(segments), label, uid=f"{Path(path).name}:{line}"))
    return examples


def _missing(record: Mapping, key: str | int, name: str) -> str:
    if isinstance(key, int):  # a headerless row that is too short
        return f"missing column (the row has {len(record)} columns; data.fields maps {name!r} to column {key})"
    return "missing field"


def read_file(
    path: str | Path,
    task: TaskSpec,
    fields: Fields | None = None,
    on_error: OnError = "error",
    skipped: Counter | None = None,
) -> list[Example]:
    """Read one JSONL / CSV / TSV file (plain or gzip) into examples of ``task``.

    SNLI 1.0 files are recognised by their keys. With int ``fields`` (column positions)
    a CSV/TSV file has no header row. Raises FileNotFoundError, DataFormatError (file,
    line, field), or ValueError naming ``data.fields`` when it mixes names and positions.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    positions = column_positions(fields)
    unplaced = [name for name in (*task.segment_names, "label") if positions is not None and name not in positions]
    if unplaced:
        raise DataFormatError(
            path, None, None,
            f"data.fields gives column positions for {sorted(positions)} but not for {unplaced}: "
            f"a file without a header needs the position of every field of a {task.kind} task",
        )
    records = list(iter_records(path, fields))
    if records:
        fields = _with_snli_1_0_names(records[0][1], fields)
    mine: Counter = Counter()
    examples = to_examples(records, path, task, fields, on_error, mine)
    if skipped is not None:
        skipped.update(mine)
    if not examples:
        if not records:
            raise DataFormatError(path, None, None, "no examples: the file has no records")
        reasons = ", ".join(f"{reason}: {count}" for reason, count in mine.items())
        raise DataFormatError(path, None, None, f"no examples: all {len(records)} records were skipped ({reasons})")
    return examples


def _with_snli_1_0_names(record: Any, fields: Fields | None) -> Fields | None:
    """SNLI 1.0's names (``sentence1``, ``sentence2``, ``gold_label``) for the task fields ``fields`` leaves unmapped.

    Only for records that have ``sentence1`` and ``sentence2`` and no ``premise``, and only when ``fields`` maps no
    text field: :func:`detect_kind` calls such data pair data, and this is what makes reading it agree.
    """
    if not (isinstance(record, Mapping) and "sentence1" in record and "sentence2" in record and "premise" not in record):
        return fields
    mapped = dict(fields or {})
    if {"text", "premise", "hypothesis"} & mapped.keys():
        return fields
    names = dict(SNLI_1_0_FIELDS)
    if "gold_label" not in record or "label" in record:
        del names["label"]
    return names | mapped


def detect_kind(path: str | Path, fields: Fields | None = None, on_error: OnError = "error") -> TaskKind:
    """``"pair"`` or ``"single"``, told from ``fields`` or from the first record of a JSONL / CSV / TSV file.

    Fields that ``fields`` maps win: ``premise``/``hypothesis`` -> pair, ``text`` -> single.
    Otherwise the first record's keys (a CSV/TSV header's columns) decide: ``premise`` and
    ``hypothesis`` (or SNLI 1.0's ``sentence1`` and ``sentence2``) -> pair, ``text`` -> single.
    Raises DataFormatError naming the file and the fields found when neither (or both) can be
    told, or the file is empty; with ``on_error="skip"`` unparseable leading lines are passed over.
    """
    path = Path(path)
    mapped = dict(fields or {})
    if "premise" in mapped or "hypothesis" in mapped:
        return "pair"
    if "text" in mapped:
        return "single"
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    hint = "set data.task (single or pair) or map the text fields in data.fields (text, or premise and hypothesis)"
    first = _first_record(path, fields, on_error)
    if first is None:
        raise DataFormatError(path, None, None, f"no records, so single-text or pair data cannot be told; {hint}")
    line, record = first
    if not isinstance(record, Mapping):
        raise DataFormatError(path, line, None, f"expected an object with named fields, got {type(record).__name__}; {hint}")
    pair = ("premise" in record and "hypothesis" in record) or ("sentence1" in record and "sentence2" in record)
    single = "text" in record
    if pair != single:
        return "pair" if pair else "single"
    found = list(record.keys())
    why = "has both a text field and a premise/hypothesis pair" if pair else "has neither a 'text' field nor 'premise' and 'hypothesis'"
    raise DataFormatError(path, line, None, f"cannot tell single-text from pair data: the first record {why} (fields found: {found}); {hint}")


def _first_record(path: Path, fields: Fields | None, on_error: OnError) -> tuple[int, Any] | None:
    records = iter_records(path, fields)
    try:
        for line, record in records:
            if isinstance(record, Malformed):
                if on_error == "error":
                    raise DataFormatError(path, line, None, str(record))
                continue
            return line, record
        return None
    finally:
        records.close()  # closes the file before reading it in full


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
