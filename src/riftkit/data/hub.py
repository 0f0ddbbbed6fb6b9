"""Hugging Face Hub data sets, for users with internet (``datasets.load_dataset``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from .examples import Example, TaskSpec
from .readers import OnError, to_examples


class HubUnavailableError(RuntimeError):
    pass


def load_hub_split(
    path: str,
    name: str | None,
    split: str,
    task: TaskSpec,
    fields: Mapping[str, str] | None = None,
    on_error: OnError = "error",
    skipped: Counter | None = None,
) -> list[Example]:
    import datasets  # imported lazily: it is slow to import and only needed online

    where = f"hub:{path}" + (f"/{name}" if name else "") + f"[{split}]"
    try:
        rows = datasets.load_dataset(path, name, split=split)
    except Exception as err:  # the datasets library raises many types for "offline" / "not found"
        raise HubUnavailableError(f"could not load {where} from the Hugging Face Hub: {type(err).__name__}: {err}") from err
    # Row numbers are 1-based like file lines, so errors read "hub:...[train], line 17".
    return to_examples(((i + 1, row) for i, row in enumerate(rows)), where, task, fields, on_error, skipped)
