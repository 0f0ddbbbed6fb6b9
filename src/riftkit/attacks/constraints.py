"""Constraints on substitutions.

Two kinds, by when they can be decided:

- candidate filters look at the original text only and prune the
  (position, substitute) table once per example: stopwords, and the language
  model (as in Jia et al. 2019, the LM check compares each substitute with the
  original word in the original text, so it is computed once, batched);
- text constraints look at a whole candidate text against the original:
  the maximum share of changed words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..substitutions.lm import LanguageModel

Candidates = dict[int, tuple[str, ...]]

# Function words an attack with the stopword constraint leaves alone (riftkit's own list).
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers
    herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves""".split()
)


class StopwordFilter:
    """Never change a stopword."""

    def __init__(self, stopwords: Iterable[str] = STOPWORDS):
        self.stopwords = frozenset(stopwords)

    def filter(self, words: Sequence[str], candidates: Candidates) -> Candidates:
        return {i: subs for i, subs in candidates.items() if words[i] not in self.stopwords}


class LanguageModelFilter:
    """Allow a substitute only if the LM log-probability of the window around it drops by at most ``max_drop`` nats.

    The window is ``radius`` words either side of the position, scored with the
    original word and with each substitute.
    """

    def __init__(self, lm: LanguageModel, max_drop: float = 5.0, radius: int = 3):
        self.lm = lm
        self.max_drop = max_drop
        self.radius = radius
        self.checked = 0  # substitutes looked at
        self.removed = 0  # substitutes pruned

    def filter(self, words: Sequence[str], candidates: Candidates) -> Candidates:
        drops = self.lm.window_drops(tuple(words), candidates, self.radius)
        kept: Candidates = {}
        for position, subs in candidates.items():
            allowed = tuple(s for s, d in zip(subs, drops[position]) if d <= self.max_drop)
            self.checked += len(subs)
            self.removed += len(subs) - len(allowed)
            if allowed:
                kept[position] = allowed
        return kept

    @property
    def removed_share(self) -> float:
        return self.removed / self.checked if self.checked else 0.0


class MaxChangeRate:
    """At most ``rate`` of the attacked segment's words may differ from the original."""

    def __init__(self, rate: float):
        if not 0 < rate <= 1:
            raise ValueError(f"max change rate must be in (0, 1], got {rate}")
        self.rate = rate

    def allows(self, original: Sequence[str], words: Sequence[str]) -> bool:
        changed = sum(a != b for a, b in zip(original, words))
        return changed <= self.rate * len(original)
