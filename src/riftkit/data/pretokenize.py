"""The one word-level pre-tokenisation used everywhere (training, attacks, prediction).

Attacks substitute whole words taken from a lowercase substitution set, so the
model must see exactly the words an attack can touch. Every text therefore goes
through :func:`words` once, when it is loaded, and the model's subword
tokenizer only ever sees these words (``is_split_into_words=True``).

Rules, in order:
1. HTML line breaks (``<br />``, ``<br/>``, ``<br>``; IMDB) become spaces.
2. Unicode NFKC normalisation, then lowercase.
3. A word is a run of letters and digits, with inner apostrophes kept
   (``don't``, ``o'clock``); every other non-space character is a word of its
   own (punctuation split).
"""

from __future__ import annotations

import re
import unicodedata

PRETOKENIZER_VERSION = "words-v1"

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
# [^\W_] is "a letter or digit" in any script.
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[^\w\s]|_")


def words(text: str) -> list[str]:
    """Split raw text into the lowercase words that models and attacks share."""
    text = _BR.sub(" ", text)
    text = unicodedata.normalize("NFKC", text).lower()
    return _WORD.findall(text)


def detokenize(tokens: list[str] | tuple[str, ...]) -> str:
    """The canonical string form of a word list (words joined by one space)."""
    return " ".join(tokens)
