"""The data sets riftkit knows by name: where their files are locally and on the Hub."""

from __future__ import annotations

from dataclasses import dataclass, field

from .examples import TaskSpec

SENTIMENT = ("negative", "positive")
NLI = ("entailment", "neutral", "contradiction")


@dataclass(frozen=True)
class HubSource:
    """A data set on the Hugging Face Hub, loaded with ``datasets.load_dataset``."""

    path: str
    name: str | None = None
    # riftkit role name -> Hub split name
    splits: dict[str, str] = field(default_factory=dict)
    # riftkit field name -> Hub column name
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetInfo:
    task: TaskSpec
    # split name -> file path relative to the data directory
    local_files: dict[str, str]
    # Default roles (train, dev, test) -> split name; None means "carve from train".
    local_roles: tuple[str, str | None, str | None]
    hub: HubSource
    hub_roles: tuple[str, str | None, str | None]
    note: str = ""


REGISTRY: dict[str, DatasetInfo] = {
    "sst2": DatasetInfo(
        task=TaskSpec("sst2", "single", SENTIMENT),
        local_files={"train": "sst2/train.jsonl.gz", "dev": "sst2/dev.jsonl.gz"},
        # GLUE hides the test labels: select on a dev carved from train, test on the official dev.
        local_roles=("train", None, "dev"),
        hub=HubSource("nyu-mll/glue", "sst2", {"train": "train", "dev": "validation"}, {"text": "sentence"}),
        hub_roles=("train", None, "dev"),
        note="SST-2: dev is carved from train; test is the official GLUE dev set (GLUE test labels are hidden).",
    ),
    "mr": DatasetInfo(
        task=TaskSpec("mr", "single", SENTIMENT),
        local_files={"all": "mr/all.jsonl.gz"},
        local_roles=("all", None, None),
        hub=HubSource("cornell-movie-review-data/rotten_tomatoes", None, {"train": "train", "dev": "validation", "test": "test"}),
        hub_roles=("train", "dev", "test"),
        note="MR has no official split locally: dev and test are seeded carve-outs.",
    ),
    "imdb": DatasetInfo(
        task=TaskSpec("imdb", "single", SENTIMENT),
        local_files={"train": "imdb/train.jsonl.gz", "test": "imdb/test.jsonl.gz"},
        local_roles=("train", None, "test"),
        hub=HubSource("stanfordnlp/imdb", None, {"train": "train", "test": "test"}),
        hub_roles=("train", None, "test"),
        note="IMDB: dev is carved from train.",
    ),
    "snli": DatasetInfo(
        task=TaskSpec("snli", "pair", NLI),
        local_files={"dev": "snli/dev.jsonl.gz", "test": "snli/test.jsonl.gz"},
        # No SNLI train offline: train on part of dev, select on the rest, test on test.
        local_roles=("dev", None, "test"),
        hub=HubSource("stanfordnlp/snli", None, {"train": "train", "dev": "validation", "test": "test"}),
        hub_roles=("train", "dev", "test"),
        note="SNLI offline: trained on a seeded part of SNLI dev, selected on the rest of dev, tested on test.",
    ),
    "ag_news": DatasetInfo(
        task=TaskSpec("ag_news", "single", ("world", "sports", "business", "sci/tech")),
        local_files={"train": "ag_news/train.jsonl.gz", "test": "ag_news/test.jsonl.gz"},
        local_roles=("train", None, "test"),
        hub=HubSource("fancyzhx/ag_news", None, {"train": "train", "test": "test"}),
        hub_roles=("train", None, "test"),
    ),
    "mnli": DatasetInfo(
        task=TaskSpec("mnli", "pair", NLI),
        local_files={"train": "mnli/train.jsonl.gz", "dev": "mnli/dev_matched.jsonl.gz"},
        local_roles=("train", None, "dev"),
        hub=HubSource("nyu-mll/glue", "mnli", {"train": "train", "dev": "validation_matched"}),
        hub_roles=("train", None, "dev"),
        note="MNLI: dev is carved from train; test is the matched dev set.",
    ),
}


def known_datasets() -> list[str]:
    return sorted(REGISTRY)
