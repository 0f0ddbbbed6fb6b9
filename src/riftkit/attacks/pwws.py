"""PWWS, probability-weighted word saliency (Ren et al. 2019), as METHOD.md defines it.

For the true class y and the clean text x:
- saliency S_i = p(y | x) - p(y | x with word i replaced by the unknown token);
- for each word the best substitute w*_i = argmax over S(x_i) of
  dP_i(w) = p(y | x) - p(y | x with word i -> w), both computed on the clean text;
- score H_i = softmax(S)_i * dP_i(w*_i) (softmax over the substitutable words);
- substitute words greedily in decreasing H, one more at a time, until the
  prediction flips.

Queries: the clean text, then ONE batch with every saliency text and every
candidate text of the example, then one text per greedy step.

``adaptive=True`` is the variant TextAttack implements (GreedyWordSwapWIR with
"weighted-saliency"): the same ranking, but at each greedy step every
substitute of that word is scored on the CURRENT text (one batch) and the best
is kept only if it lowers p(y). Stronger, a few more queries; not METHOD.md's
definition, hence off by default.
"""

from __future__ import annotations

import random

import torch

from ..data.examples import Example
from .base import BlackBoxAttack, SearchSteps
from .constraints import Candidates
from .transformation import replace_word


class PWWS(BlackBoxAttack):
    name = "pwws"

    def __init__(self, *args, unknown_word: str = "[UNK]", adaptive: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.unknown_word = unknown_word
        self.adaptive = adaptive

    def search(self, example: Example, words: tuple[str, ...], candidates: Candidates, clean: torch.Tensor, rng: random.Random) -> SearchSteps:
        if not candidates:
            return None
        label = example.label
        swap = self.transformation.with_words
        positions = sorted(candidates)
        masked = [swap(example, replace_word(words, i, self.unknown_word)) for i in positions]
        options = [(i, w) for i in positions for w in candidates[i]]
        probs = yield masked + [swap(example, replace_word(words, i, w)) for i, w in options]
        p_clean = clean[label]
        saliency = p_clean - probs[: len(positions), label]
        drops = p_clean - probs[len(positions) :, label]

        # best substitute per position (first in the set's order on ties)
        best: dict[int, tuple[str, float]] = {}
        for (i, w), drop in zip(options, drops.tolist()):
            if i not in best or drop > best[i][1]:
                best[i] = (w, drop)
        # Ren et al. take the softmax over all words; its denominator is shared, so the ranking of the
        # substitutable words is the same, and words without substitutes need no saliency query.
        weights = torch.softmax(saliency, dim=0).tolist()
        scores = {i: weights[k] * best[i][1] for k, i in enumerate(positions)}
        ranking = sorted(positions, key=lambda i: (-scores[i], i))

        current, p_current = words, float(p_clean)
        for i in ranking:
            if self.adaptive:
                proposals = [t for w in candidates[i] if self.allowed(words, t := replace_word(current, i, w))]
            else:
                proposals = [t for t in (replace_word(current, i, best[i][0]),) if self.allowed(words, t)]
            if not proposals:
                continue
            probs = yield [swap(example, t) for t in proposals]
            k = int(probs[:, label].argmin())
            if self.adaptive and float(probs[k, label]) >= p_current:
                continue  # no substitute of this word helps on the current text
            current, p_current = proposals[k], float(probs[k, label])
            if bool(self.goal.succeeded(probs[k : k + 1], label)[0]):
                return current
        return None
