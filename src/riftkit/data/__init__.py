"""Data: task shapes, local and Hub loaders, the word-level pre-tokenisation, seeded splits."""

from .examples import DatasetSplits, Example, TaskSpec
from .loading import DataNotFoundError, load_splits
from .pretokenize import PRETOKENIZER_VERSION, detokenize, words
from .readers import DataFormatError, read_acl_imdb, read_file
from .registry import REGISTRY, known_datasets
from .splits import carve, sample

__all__ = [
    "DataFormatError", "DataNotFoundError", "DatasetSplits", "Example", "PRETOKENIZER_VERSION", "REGISTRY",
    "TaskSpec", "carve", "detokenize", "known_datasets", "load_splits", "read_acl_imdb", "read_file", "sample", "words",
]
