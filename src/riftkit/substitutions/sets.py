"""Substitution sets S(w): which words may replace a word (the attack surface).

The standard set is the counter-fitted-vector neighbourhood of Alzantot et al.
(2018) as released by Jia et al. (2019), at most 8 neighbours a word, the set
of the RIFT paper: ``substitutions/counterfitted_neighbors.json`` under the
data directory. Users with internet can get the same file from the RIFT
authors' repository (github.com/dongxinshuai/RIFT-NeurIPS2021,
``attack/counterfitted_neighbors.json``) and point ``--substitutions`` at it.

Words are looked up after riftkit's pre-tokenisation (lowercase words), so
the attack surface and the model see the same words. A word with no entry
has no substitutes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..config import resolve_data_dir
from ..data.examples import Example

COUNTERFITTED = "counterfitted"
COUNTERFITTED_FILE = "substitutions/counterfitted_neighbors.json"


class SubstitutionSet:
    """An immutable mapping word -> tuple of substitute words (never containing the word itself)."""

    def __init__(self, neighbours: Mapping[str, Iterable[str]], name: str = "custom"):
        self.name = name
        self._table: dict[str, tuple[str, ...]] = {}
        for word, subs in neighbours.items():
            unique = tuple(dict.fromkeys(s for s in subs if s != word))
            if unique:
                self._table[word] = unique
        # the most substitutes any word has: the hull's width, so that it cuts none (substitutions.hull)
        self.widest = max((len(subs) for subs in self._table.values()), default=0)

    def __getitem__(self, word: str) -> tuple[str, ...]:
        return self._table.get(word, ())

    def __contains__(self, word: str) -> bool:
        return word in self._table

    def __len__(self) -> int:
        """Number of words that have at least one substitute."""
        return len(self._table)

    def items(self):
        return self._table.items()

    def restrict(self, vocabulary: Iterable[str]) -> SubstitutionSet:
        """Keep only substitutes (and words) inside ``vocabulary``."""
        vocab = set(vocabulary)
        return SubstitutionSet({w: [s for s in subs if s in vocab] for w, subs in self._table.items() if w in vocab}, f"{self.name}|restricted")

    def coverage(self, examples: Iterable[Example], segment: int | None = None) -> dict[str, float]:
        """How much of a data set's text the set can change.

        ``segment``: which text of each example (None: all; NLI attacks use the hypothesis, 1).
        """
        words = substitutable = candidates = 0
        types: Counter = Counter()
        for example in examples:
            segments = example.segments if segment is None else (example.segments[segment],)
            for tokens in segments:
                for word in tokens:
                    words += 1
                    types[word] += 1
                    subs = self[word]
                    if subs:
                        substitutable += 1
                        candidates += len(subs)
        return {
            "words": words,
            "share_of_words_with_substitutes": substitutable / words if words else 0.0,
            "substitutes_per_substitutable_word": candidates / substitutable if substitutable else 0.0,
            "word_types": len(types),
            "share_of_types_with_substitutes": sum(1 for w in types if w in self) / len(types) if types else 0.0,
        }


def load_substitutions(name_or_path: str = COUNTERFITTED, data_dir: str | Path | None = None) -> SubstitutionSet:
    """``counterfitted`` (from the data directory) or a JSON file ``{word: [substitutes]}``."""
    if name_or_path == COUNTERFITTED:
        root = resolve_data_dir(None, str(data_dir) if data_dir else None)
        if root is None or not (root / COUNTERFITTED_FILE).is_file():
            raise FileNotFoundError(
                f"the counter-fitted substitution set was not found{f' under {root}' if root else ''}: expected {COUNTERFITTED_FILE} "
                "in the data directory (set RIFTKIT_DATA_DIR or --data-dir), or download counterfitted_neighbors.json "
                "from github.com/dongxinshuai/RIFT-NeurIPS2021 (attack/) and pass its path"
            )
        path = root / COUNTERFITTED_FILE
    else:
        path = Path(name_or_path)
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"substitution set file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}, line {err.lineno}: malformed JSON ({err.msg})") from None
    if not isinstance(table, dict):
        raise ValueError(f"{path}: expected a JSON object mapping each word to a list of substitutes")
    for word, subs in table.items():
        if not isinstance(subs, list) or not all(isinstance(s, str) for s in subs):
            raise ValueError(f"{path}, entry {word!r}: expected a list of strings")
    return SubstitutionSet(table, name=COUNTERFITTED if name_or_path == COUNTERFITTED else path.stem)
