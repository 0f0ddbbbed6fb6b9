"""The model-query layer: every search asks the victim through it.

One call answers the requests of many examples at once: texts are
de-duplicated across the whole call, looked up in a bounded LRU cache, and
only the misses go to the model, in one ``predict_proba`` call (which batches
them by length). Query counts are exact and per example: an example's count
is the number of distinct texts it asked about, whether the answer came from
the model, the cache or a neighbour's identical request. ``model_texts``
counts what really reached the model.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Protocol

import torch

from ..data.examples import Segments
from ..memory import TRIM_EVERY, release_free_memory


class Victim(Protocol):
    """Anything that maps pre-tokenised inputs to class probabilities (a riftkit Classifier is one)."""

    def predict_proba(self, segments: Sequence[Segments], batch_size: int = 128) -> torch.Tensor: ...


class QueryLayer:
    def __init__(self, victim: Victim, batch_size: int = 32, cache_size: int = 100_000, trim_every: int = TRIM_EVERY):
        """``trim_every``: model calls between handing freed heap memory back to the OS (riftkit.memory; 0: never)."""
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.victim = victim
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.trim_every = trim_every
        self._cache: OrderedDict[Segments, torch.Tensor] = OrderedDict()
        self._seen: dict[Hashable, set[Segments]] = {}
        self.model_texts = 0  # texts sent to the model
        self.model_calls = 0  # predict_proba calls

    # -- per-example accounting -------------------------------------------------------
    def queries(self, owner: Hashable) -> int:
        """Distinct texts ``owner`` has asked about so far."""
        return len(self._seen.get(owner, ()))

    def seen(self, owner: Hashable) -> frozenset[Segments] | set[Segments]:
        """The distinct texts ``owner`` has asked about (read-only view)."""
        return self._seen.get(owner, frozenset())

    def release(self, owner: Hashable) -> int:
        """Forget an owner's bookkeeping (its attack is over); returns its final query count."""
        return len(self._seen.pop(owner, ()))

    # -- the one way to ask the model ----------------------------------------------------
    def probabilities(self, requests: Sequence[tuple[Hashable, Sequence[Segments]]]) -> list[torch.Tensor]:
        """Answer ``[(owner, texts), ...]`` with one probability tensor [len(texts), C] per request."""
        missing: dict[Segments, None] = {}
        for owner, texts in requests:
            seen = self._seen.setdefault(owner, set())
            for text in texts:
                seen.add(text)
                if text not in self._cache and text not in missing:
                    missing[text] = None
        fresh: dict[Segments, torch.Tensor] = {}
        if missing:
            batch = list(missing)
            probs = self.victim.predict_proba(batch, batch_size=self.batch_size).float()
            self.model_texts += len(batch)
            self.model_calls += 1
            if self.trim_every and self.model_calls % self.trim_every == 0:
                release_free_memory()
            fresh = dict(zip(batch, probs))
        answers = []
        for _, texts in requests:
            rows = []
            for text in texts:
                row = fresh.get(text)
                if row is None:
                    row = self._cache[text]
                    self._cache.move_to_end(text)
                rows.append(row)
            answers.append(torch.stack(rows) if rows else torch.empty(0))
        for text, row in fresh.items():
            self._remember(text, row)
        return answers

    def _remember(self, text: Segments, row: torch.Tensor) -> None:
        if self.cache_size == 0:
            return
        # a copy: the row is a view of its call's [N, C] output, which it would otherwise keep alive
        self._cache[text] = row.clone()
        self._cache.move_to_end(text)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    @property
    def cached(self) -> int:
        return len(self._cache)
