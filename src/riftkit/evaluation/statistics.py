"""Telling a 1-2 point effect from noise: means with confidence intervals, and paired differences.

Two questions a multi-seed study asks of one metric (robust accuracy, say):

* How well does a method do, over seeds?  :func:`mean_ci` gives the mean and
  the Student-t 95% interval over the per-seed values (scipy.stats.t), the
  usual choice for a handful of seeds.
* Is method A better than method B?  Seeds and test examples are both sources
  of noise, and the two methods share both (same seed index, same data order,
  same attacked examples), so the comparison is paired: :func:`paired_bootstrap`
  takes the per-example outcome matrix of each method, ``[seeds, examples]``,
  and resamples seeds and examples (a two-level bootstrap: the same resampled
  examples for every resampled seed, keeping the pairing) to get a 95% interval
  and a two-sided p-value for the mean difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class MeanCI:
    """Mean over seeds and its confidence interval (``low == high == mean`` for one value)."""

    mean: float
    low: float
    high: float
    n: int
    values: tuple[float, ...]

    def to_dict(self) -> dict:
        return {**asdict(self), "values": list(self.values)}


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> MeanCI:
    """Mean and Student-t confidence interval of ``values`` (one per seed).

    Raises ValueError on an empty sequence. With one value the interval is the
    value itself (no spread can be estimated); with identical values, too.
    """
    data = np.asarray([float(v) for v in values], dtype=np.float64)
    if data.size == 0:
        raise ValueError("mean_ci: no values")
    mean = float(data.mean())
    if data.size == 1 or float(data.std()) == 0.0:
        return MeanCI(mean, mean, mean, int(data.size), tuple(data.tolist()))
    low, high = stats.t.interval(confidence, df=data.size - 1, loc=mean, scale=stats.sem(data))
    return MeanCI(mean, float(low), float(high), int(data.size), tuple(data.tolist()))


@dataclass(frozen=True)
class PairedDifference:
    """Mean of (A - B) over seeds and examples, with its bootstrap interval and two-sided p-value."""

    mean: float
    low: float
    high: float
    p_value: float
    seeds: int
    examples: int
    resamples: int

    @property
    def decided(self) -> bool:
        """The interval excludes 0: the sign of the difference is told from noise at this level."""
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict:
        return {**asdict(self), "decided": self.decided}


def paired_bootstrap(a: np.ndarray, b: np.ndarray, resamples: int = 10_000, confidence: float = 0.95, seed: int = 0) -> PairedDifference:
    """Paired two-level bootstrap of mean(a - b).

    ``a`` and ``b``: per-example scores (e.g. 1 = robust, 0 = not), shape ``[seeds, examples]``,
    where row s of both comes from the same seed index and column i is the same test example.
    Each resample draws seed rows and example columns with replacement (columns shared by all
    rows, so the pairing of a and b is kept) and takes the mean difference. The interval is the
    percentile interval; the p-value is twice the smaller tail share of resampled means at or
    beyond 0 (at least 1/resamples). Raises ValueError when shapes differ or are empty.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.size == 0:
        raise ValueError(f"paired_bootstrap: need two equal [seeds, examples] arrays, got {a.shape} and {b.shape}")
    diff = a - b
    seeds, examples = diff.shape
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // (seeds * examples))  # bounded memory: resample in chunks
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        rows = rng.integers(0, seeds, size=(k, seeds))
        cols = rng.integers(0, examples, size=(k, examples))
        # mean over the resampled grid = mean over rows of (mean of the row's resampled columns)
        picked = diff[rows[:, :, None], cols[:, None, :]]  # [k, seeds, examples]
        means[start:start + k] = picked.mean(axis=(1, 2))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    tail = min((means <= 0).mean(), (means >= 0).mean())
    p_value = min(1.0, max(2 * tail, 1 / resamples))
    return PairedDifference(float(diff.mean()), float(low), float(high), float(p_value), seeds, examples, resamples)


def format_mean_ci(value: MeanCI | None, scale: float = 100.0, digits: int = 1) -> str:
    """``"45.3 ± 2.1"`` (half-width of the interval), in percent by default; ``"–"`` for None."""
    if value is None:
        return "–"
    half = (value.high - value.low) / 2
    if value.n == 1 or math.isclose(half, 0.0):
        return f"{scale * value.mean:.{digits}f}"
    return f"{scale * value.mean:.{digits}f} ± {scale * half:.{digits}f}"
