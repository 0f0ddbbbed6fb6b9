"""The transformation: which words an attack may change, and to what.

Only the attacked segment changes (the text; for NLI the hypothesis,
``TaskSpec.attacked_segment``). A word at position i may become any word of
S(x_i), the substitution set of the ORIGINAL word, so changing a word twice
never walks away from the original (a substitute of a substitute is not
allowed). Positions are word indices inside the attacked segment.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..data.examples import Example, Segments
from ..substitutions.sets import SubstitutionSet


@dataclass(frozen=True)
class Substitution:
    position: int
    old: str
    new: str

    def to_list(self) -> list:
        return [self.position, self.old, self.new]


class WordSwap:
    def __init__(self, substitutions: SubstitutionSet, segment: int):
        self.substitutions = substitutions
        self.segment = segment

    def attacked_words(self, example: Example) -> tuple[str, ...]:
        if self.segment >= len(example.segments):
            raise ValueError(f"example {example.uid!r} has {len(example.segments)} segment(s); the attack changes segment {self.segment}")
        return example.segments[self.segment]

    def candidates(self, example: Example) -> dict[int, tuple[str, ...]]:
        """Position -> substitutes of the original word, for every position that has any."""
        words = self.attacked_words(example)
        return {i: subs for i, w in enumerate(words) if (subs := self.substitutions[w])}

    def with_words(self, example: Example, words: tuple[str, ...]) -> Segments:
        """The example's segments with the attacked segment replaced by ``words``."""
        segments = list(example.segments)
        segments[self.segment] = words
        return tuple(segments)


def replace_word(words: tuple[str, ...], position: int, word: str) -> tuple[str, ...]:
    """``words`` with the word at ``position`` replaced by ``word``."""
    return words[:position] + (word,) + words[position + 1 :]


def substitutions_between(original: tuple[str, ...], adversarial: tuple[str, ...]) -> list[Substitution]:
    return [Substitution(i, a, b) for i, (a, b) in enumerate(zip(original, adversarial)) if a != b]
