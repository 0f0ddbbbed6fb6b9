"""The attack surface at subword level: which token may become which, for the ASCC hull.

A word w at some position may be replaced by any s in S(w). The encoder sees
subword tokens, so the convex hull of Eq. 8 is built per word, over the
tokens of the word and of its substitutes:

* a substitute is usable when it has as many subword tokens as the original
  word (both single tokens is the common case; ``good`` -> ``fine``; but also
  ``unwatchable`` -> ``unbearable`` when both are, say, three pieces);
* the word's tokens share ONE weight vector w_i over its candidates, and the
  perturbed embedding at the word's j-th token is sum_k w_ik E(token_j(c_ik)).

So every vertex of the hull is exactly the embedding sequence of a real
substituted text, and argmax(w_i) decodes to a real word. Substitutes with a
different number of tokens would change the sequence length and are skipped;
:meth:`HullBuilder.coverage` reports how much of the attack surface that leaves.
Words cut by truncation are not perturbed.

The hull of the whole threat model (``length_groups``, issue 24): for one search
round, every attacked word draws one token-count group among its candidates (the
word and its substitutes; a candidate drawn uniformly, so a group's chance is its
share of the candidates) and the text is re-tokenised with each word replaced by
its group's first member (the original word when it is in the group). The hull is
then built on that anchor text, with each word's group as its candidates: the
relaxation runs inside the groups, every vertex is still a real substituted text
(the groups' members share the anchor's token layout), and over rounds every
(word, substitute) pair of the set is reachable, whatever its token count
(:meth:`HullBuilder.length_groups`). The draw is keyed by (seed, example, round),
so it does not depend on the batch.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import BatchEncoding, PreTrainedTokenizerBase

from ..data.examples import Example
from .sets import SubstitutionSet


@dataclass
class PerturbableWord:
    segment: int
    position: int  # index of the word in its segment
    candidates: tuple[str, ...]  # candidates[0] is the word of the hull's text (the original word, or a length group's anchor)


@dataclass
class Hull:
    """Candidate tokens for a batch. B examples, T tokens, W words (max per example), K candidates."""

    candidate_ids: torch.Tensor  # [B, T, K] token id of candidate k at each token; column 0 is the input token
    word_of_token: torch.Tensor  # [B, T] index of the perturbable word a token belongs to, -1 if none
    candidate_mask: torch.Tensor  # [B, W, K] valid candidates of each word (column 0 always valid)
    words: list[list[PerturbableWord]]  # per example, aligned with the W axis

    @property
    def num_words(self) -> int:
        return self.candidate_mask.shape[1]

    def to(self, device) -> Hull:
        return Hull(self.candidate_ids.to(device), self.word_of_token.to(device), self.candidate_mask.to(device), self.words)

    def select(self, rows: Sequence[int], tokens: int | None = None) -> Hull:
        """The hull of the sub-batch ``rows``, cut to its first ``tokens`` token positions (None: all) and to
        its widest row's words: what :meth:`HullBuilder.build` gives for those examples encoded alone."""
        index = torch.tensor(list(rows), dtype=torch.long, device=self.candidate_ids.device)
        words = [self.words[r] for r in rows]
        width = max((len(w) for w in words), default=0)
        return Hull(self.candidate_ids[index, :tokens], self.word_of_token[index, :tokens], self.candidate_mask[index, :width], words)

    def token_weights(self, word_weights: torch.Tensor) -> torch.Tensor:
        """Spread per-word weights [B, W, K] onto tokens [B, T, K]; unperturbed tokens get one-hot on column 0."""
        B, T, K = self.candidate_ids.shape
        index = self.word_of_token.clamp_min(0)
        if word_weights.shape[1] == 0:
            spread = word_weights.new_zeros(B, T, K)
        else:
            spread = torch.gather(word_weights, 1, index.unsqueeze(-1).expand(B, T, K))
        fixed = torch.zeros_like(spread)
        fixed[..., 0] = 1.0
        return torch.where((self.word_of_token >= 0).unsqueeze(-1), spread, fixed)

    def mix(self, word_weights: torch.Tensor, embedding: torch.nn.Embedding | torch.Tensor) -> torch.Tensor:
        """Input embeddings inside the hull: sum_k w_k E(c_k) at every token, [B, T, H].

        ``embedding``: the embedding layer, or the candidates' embeddings [B, T, K, H]
        looked up once beforehand (the adversary's inner loop reuses them every step).
        """
        weights = self.token_weights(word_weights)
        table = embedding(self.candidate_ids) if isinstance(embedding, torch.nn.Module) else embedding
        return (weights.unsqueeze(-1) * table).sum(2)

    def decode(self, examples: Sequence[Example], word_weights: torch.Tensor) -> list[tuple[Example, list[tuple[int, int, str, str]]]]:
        """The discrete text at argmax(w_i) of every word: (new example, [(segment, position, old, new)])."""
        choice = word_weights.argmax(-1).tolist()
        out = []
        for b, example in enumerate(examples):
            segments = [list(s) for s in example.segments]
            changes = []
            for w, word in enumerate(self.words[b]):
                k = choice[b][w]
                if k:
                    new = word.candidates[k]
                    changes.append((word.segment, word.position, word.candidates[0], new))
                    segments[word.segment][word.position] = new
            out.append((Example(tuple(tuple(s) for s in segments), example.label, example.uid), changes))
        return out


HULL_KINDS = ("same_length", "length_groups")
# one token-count group of a word's candidates per round: {(segment, position): (anchor, *other members)} per example
Groups = list[dict[tuple[int, int], tuple[str, ...]]]


class HullBuilder:
    """Builds :class:`Hull` tensors for encoded batches; caches each word's subword ids.

    The hull's width (substitutes a word may have in it) is the substitution set's: its widest word
    (``SubstitutionSet.widest``; 8 for the counter-fitted set), so that the hull cuts no substitute that the
    black-box attacks may use (it cut every list at 8 before issue 24). ``max_candidates`` narrows it
    explicitly (the first substitutes of each list are kept), for experiments only.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, substitutions: SubstitutionSet, max_candidates: int | None = None):
        self.tokenizer = tokenizer
        self.substitutions = substitutions
        self.max_candidates = max(substitutions.widest, 1) if max_candidates is None else max_candidates
        self._ids: dict[str, tuple[int, ...]] = {}

    def token_ids(self, word: str) -> tuple[int, ...]:
        ids = self._ids.get(word)
        if ids is None:
            ids = tuple(self.tokenizer([word], is_split_into_words=True, add_special_tokens=False)["input_ids"])
            self._ids[word] = ids
        return ids

    def usable_substitutes(self, word: str) -> list[tuple[str, tuple[int, ...]]]:
        """Substitutes with as many subword tokens as ``word`` (see module docstring)."""
        length = len(self.token_ids(word))
        usable = []
        for sub in self.substitutions[word][: self.max_candidates]:
            ids = self.token_ids(sub)
            if len(ids) == length:
                usable.append((sub, ids))
        return usable

    def length_groups(self, examples: Sequence[Example], segments: Sequence[int], seed: int, round_: int) -> tuple[list[Example], Groups]:
        """One token-count group per attacked word for search round ``round_`` (see the module docstring).

        Returns the anchor examples (each word replaced by its group's first member: the original word when
        the group holds it) and, per example, each word's group, for :meth:`build` on the anchors' encoding.
        The draw is keyed by (seed, example uid, round_) alone.
        """
        anchors, groups = [], []
        for example in examples:
            draw = random.Random(f"{seed}\x00{example.uid}\x00{round_}\x00length-group")
            texts = [list(s) for s in example.segments]
            chosen: dict[tuple[int, int], tuple[str, ...]] = {}
            for segment in segments:
                for position, word in enumerate(example.segments[segment]):
                    subs = self.substitutions[word][: self.max_candidates]
                    if not subs:
                        continue
                    candidates = (word, *subs)
                    length = len(self.token_ids(candidates[draw.randrange(len(candidates))]))
                    chosen[(segment, position)] = group = tuple(c for c in candidates if len(self.token_ids(c)) == length)
                    texts[segment][position] = group[0]
            anchors.append(Example(tuple(tuple(s) for s in texts), example.label, example.uid))
            groups.append(chosen)
        return anchors, groups

    def for_round(self, kind: str, examples: Sequence[Example], encoding: BatchEncoding | None, segments: Sequence[int], seed: int,
                  round_: int, encode: Callable[[Sequence[Example]], BatchEncoding]) -> tuple[Sequence[Example], BatchEncoding, Hull]:
        """The texts a search round starts from, their encoding and their hull, for a hull ``kind``: the examples
        themselves and ``encoding`` (same_length), or each word at its group's anchor for round ``round_``, encoded with
        ``encode`` (length_groups). The one place both the training adversary and the white-box attack build it."""
        if kind == "same_length":
            return examples, encoding, self.build(examples, encoding, segments)
        anchors, groups = self.length_groups(examples, segments, seed, round_)
        encoded = encode(anchors)
        return anchors, encoded, self.build(anchors, encoded, segments, groups)

    def build(self, examples: Sequence[Example], encoding: BatchEncoding, segments: Sequence[int], groups: Groups | None = None) -> Hull:
        """``segments``: which texts may change (NLI: only the hypothesis). ``groups`` (from :meth:`length_groups`, with
        ``examples`` its anchors): each word's candidates; None: the word and its same-token-count substitutes."""
        input_ids = encoding["input_ids"].cpu()
        B, T = input_ids.shape
        K = self.max_candidates + 1
        candidate_ids = torch.zeros(B, T, K, dtype=torch.long)
        candidate_ids[..., 0] = input_ids
        word_of_token = torch.full((B, T), -1, dtype=torch.long)
        words: list[list[PerturbableWord]] = []
        masks: list[list[list[bool]]] = []
        allowed = set(segments)
        for b, example in enumerate(examples):
            # token positions of each (segment, word)
            spans: dict[tuple[int, int], list[int]] = {}
            for t, (word_id, seq_id) in enumerate(zip(encoding.word_ids(b), encoding.sequence_ids(b))):
                if word_id is not None and seq_id in allowed:
                    spans.setdefault((seq_id, word_id), []).append(t)
            example_words, example_masks = [], []
            for (segment, position), tokens in spans.items():
                word = example.segments[segment][position]
                if len(tokens) != len(self.token_ids(word)):
                    continue  # cut by truncation
                if groups is None:
                    usable = self.usable_substitutes(word)
                else:  # the group's first member is the anchor text's word
                    usable = [(c, self.token_ids(c)) for c in groups[b].get((segment, position), (word,))[1:]]
                if not usable:
                    continue
                w = len(example_words)
                for j, t in enumerate(tokens):
                    word_of_token[b, t] = w
                    for k, (_, ids) in enumerate(usable, start=1):
                        candidate_ids[b, t, k] = ids[j]
                example_words.append(PerturbableWord(segment, position, (word, *(s for s, _ in usable))))
                example_masks.append([True] * (1 + len(usable)) + [False] * (K - 1 - len(usable)))
            words.append(example_words)
            masks.append(example_masks)
        W = max((len(m) for m in masks), default=0)
        candidate_mask = torch.zeros(B, W, K, dtype=torch.bool)
        candidate_mask[..., 0] = True
        for b, example_masks in enumerate(masks):
            if example_masks:
                candidate_mask[b, : len(example_masks)] = torch.tensor(example_masks)
        return Hull(candidate_ids, word_of_token, candidate_mask, words)

    def coverage(self, examples: Sequence[Example], segments: Sequence[int]) -> dict[str, float]:
        """Share of the attack surface's (word occurrence, substitute) pairs that the hull can reach."""
        pairs = covered = single = 0
        for example in examples:
            for segment in segments:
                for word in example.segments[segment]:
                    subs = self.substitutions[word][: self.max_candidates]
                    if not subs:
                        continue
                    pairs += len(subs)
                    usable = self.usable_substitutes(word)
                    covered += len(usable)
                    if len(self.token_ids(word)) == 1:
                        single += len(usable)
        return {
            "pairs": pairs,
            "covered_share": covered / pairs if pairs else 0.0,
            "single_token_share": single / pairs if pairs else 0.0,
        }
