"""Is an evaluation held out? The examples evaluated against the model's own train and dev examples.

Rules (the evaluation protocol): on the ``test`` role, any example that
trained (train) or selected (dev) the model is refused, naming the overlap,
unless the user allows it explicitly; the summary then says so. Evaluating on
``dev`` is allowed and labelled as model-selection data. Word-for-word
duplicates of training texts under other ids (IMDB has some across its
official train and test splits) are counted and reported, never refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config import ConfigError
from ..data.examples import DatasetSplits, Example
from ..data.roles import DataRecord, example_keys, source_id, text_hash


class DataOverlapError(ConfigError):
    """The test examples include examples that trained or selected the model."""


def held_out_report(record: DataRecord | None, data_config, splits: DatasetSplits, examples: Sequence[Example], split: str,
                    allow_overlap: bool = False, model: str = "the model", foreign: bool = False) -> dict:
    """How the evaluated ``examples`` (drawn from role ``split``) relate to the model's data.

    Returns a mapping for the summary: ``label`` (held-out test / model-selection data / training
    data / unknown), ``overlap_train`` and ``overlap_dev`` (examples that played that role for the
    model), ``text_duplicates_of_train`` (other examples whose text equals a train or dev text),
    ``overlap_allowed``. Raises :class:`DataOverlapError` on an overlapping test evaluation
    unless ``allow_overlap``. ``foreign``: the model was not trained by riftkit (a Hugging Face classifier),
    so no record can exist and its overlap with the evaluated examples is unknown.
    """
    if record is None:
        why = ("a Hugging Face classifier has no riftkit data record: which of these examples trained or selected it is not known"
               if foreign else "the model folder has no data record (saved before riftkit recorded one)")
        return {"label": f"unknown: {why}", "overlap_train": None,
                "overlap_dev": None, "text_duplicates_of_train": None, "overlap_allowed": allow_overlap}
    keys = example_keys(source_id(data_config, splits), examples)
    train, dev = set(record.keys.get("train", ())), set(record.keys.get("dev", ()))
    in_train = [k for k in keys if k in train]
    in_dev = [k for k in keys if k in dev]
    seen_texts = set(record.hashes.get("train", ())) | set(record.hashes.get("dev", ()))
    overlapping = set(in_train) | set(in_dev)
    duplicates = sum(1 for k, e in zip(keys, examples) if k not in overlapping and text_hash(e) in seen_texts)
    report = {"overlap_train": len(in_train), "overlap_dev": len(in_dev), "text_duplicates_of_train": duplicates,
              "overlap_allowed": allow_overlap}
    if split == "test":
        if overlapping and not allow_overlap:
            example = (in_dev or in_train)[0].split("|", 1)[1]
            carving = {k: record.config.get(k) for k in ("dataset", "dev_size", "test_size", "seed", "max_train", "max_dev", "max_test")}
            raise DataOverlapError(
                f"refusing to evaluate {model} on 'test': {len(in_dev)} of its {len(examples)} examples were the model's dev "
                f"(model-selection) examples and {len(in_train)} its training examples (e.g. {example!r}). The model was "
                f"trained with data {carving} (its data.json); leave out --dataset and data.* overrides to evaluate on its own "
                "test split, or pass --allow-overlap (attack.allow_overlap=true) to evaluate anyway"
            )
        report["label"] = "test, overlapping the model's train/dev (allowed explicitly)" if overlapping else "held-out test"
    elif split == "dev":
        report["label"] = "dev: model-selection data (the model was selected on it)" if in_dev else "dev, not the model's selection data"
    else:
        report["label"] = "train: the model's training data" if in_train else "train"
    return report
