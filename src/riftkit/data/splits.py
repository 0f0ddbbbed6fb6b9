"""Seeded splits and samples: every random choice here is a function of (data, seed)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def resolve_size(size: float, total: int, what: str) -> int:
    """``size`` < 1 is a fraction of ``total``; >= 1 is a count."""
    if size < 0:
        raise ValueError(f"{what}: size must be >= 0, got {size}")
    count = round(size * total) if size < 1 else int(size)
    if count > total:
        raise ValueError(f"{what}: asked for {count} examples but only {total} are available")
    return count


def carve(items: Sequence[T], sizes: Sequence[int], seed: int) -> list[list[T]]:
    """Split off ``sizes`` disjoint random parts; the rest is the last part.

    Parts keep the original order of ``items``, so a carve-out is a subset
    in file order (stable uids, stable batches).
    """
    if sum(sizes) > len(items):
        raise ValueError(f"cannot carve {list(sizes)} examples out of {len(items)}")
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    parts, start = [], 0
    for size in sizes:
        parts.append(sorted(order[start : start + size]))
        start += size
    parts.append(sorted(order[start:]))
    return [[items[i] for i in part] for part in parts]


def sample(items: Sequence[T], n: int | None, seed: int) -> list[T]:
    """A seeded sample of ``n`` items in their original order (all items when n is None or too large)."""
    if n is None or n >= len(items):
        return list(items)
    chosen = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[i] for i in chosen]
