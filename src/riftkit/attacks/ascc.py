"""The white-box ASCC attack: Eq. 8 with the cross-entropy on the true label, then discrete texts.

The relaxed search (:class:`riftkit.objectives.ascc.ASCCAdversary`, loss "ce")
moves per-word weights inside the convex hull of substitute embeddings. Its
answer is a point of the hull, not a text; a success is only counted when a
real substituted text flips the prediction. Two ways to get texts from it:

* ``decode="single"``: the paper's variant. One search per example, the argmax
  candidate of every word, one confirming forward pass (queries: steps + clean +
  confirming pass). Its random start is keyed by (seed, uid), as the strong
  decode's; until issue 24 it came from one generator shared across batches,
  scaled by the batch's widest example, so an example's result depended on its
  batch mates. Its estimate is weak: one argmax misses flips that sit on other
  vertices (a one-word review whose flip is one substitute that is not the
  argmax is reported robust).
* ``decode="strong"`` (default), per example:

  1. if its whole discrete neighbourhood, with the FULL substitution set
     (every substitute of every word the model sees under ``max_length``,
     including those of another subword length, which no fixed-length hull can
     hold), has at most ``enumerate_max`` texts, score them all: the outcome is
     exact and no search runs;
  2. else up to ``1 + restarts`` searches, each from its own random start,
     stopping at the first that yields a flip. After each search, score its
     argmax text, up to ``candidates`` texts that move one word of the argmax
     text to another hull candidate (highest weight first), and up to
     ``candidates`` texts that move one word of it to a substitute of another
     subword length, which the hull cannot hold (words the search moved most
     first). On SST-2 the last family is most of what PWWS finds and the hull
     misses (benchmarks/ascc_strength.py).

  All texts of a batch of examples go to the model in a few batched forward
  passes. An example succeeds when any scored text flips the prediction; the
  reported text has the fewest substitutions, then the lowest true-class
  probability. ``queries`` = forward passes for the example: 1 (clean) +
  search steps run + distinct texts scored. The random start of search r is
  keyed by (seed, uid, r) alone (:func:`riftkit.objectives.ascc.start_logits`),
  so an example's result does not depend on which examples share its batch.

It is the robust-accuracy estimate used for model selection: :meth:`ASCCAttack.from_config` builds it
from an ``attack.ascc`` section for ``riftkit attack`` and for
:class:`riftkit.training.selection.DevEvaluator` alike.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from transformers import BatchEncoding

from ..config import AttackConfig, ASCCSearchConfig
from ..data.examples import Example
from ..models.classifier import Classifier
from ..objectives.ascc import ASCCAdversary, start_logits
from ..substitutions.hull import HULL_KINDS, Hull, HullBuilder
from .base import FAILED, SKIPPED, SUCCEEDED, AttackResult, build_result, outcome_rates
from ..models.modes import eval_mode

DECODES = ("single", "strong")
# Defaults live in ASCCSearchConfig, attack.ascc (benchmarks/ascc_strength.py measures the choice).
DECODE, RESTARTS, HULL = ASCCSearchConfig.decode, ASCCSearchConfig.restarts, ASCCSearchConfig.hull
CANDIDATES, ENUMERATE_MAX = ASCCSearchConfig.candidates, ASCCSearchConfig.enumerate_max
FORWARD_BATCH_SIZE = AttackConfig.forward_batch_size


@dataclass
class _Flip:
    changes: int
    true_probability: float
    words: tuple[str, ...]
    prediction: int
    probabilities: torch.Tensor  # the model's class probabilities for ``words`` (for the record)

    def better_than(self, other: _Flip | None) -> bool:
        return other is None or (self.changes, self.true_probability) < (other.changes, other.true_probability)


@dataclass
class SearchTexts:
    """The discrete texts taken from one search of one example (attacked segment only)."""

    argmax: tuple[str, ...]  # every word at its highest-weight candidate
    hull_moves: list[tuple[str, ...]]  # argmax with one word at another hull candidate, highest weight first
    outside_moves: list[tuple[str, ...]]  # argmax with one word at a substitute of another subword length

    def all(self) -> list[tuple[str, ...]]:
        return [self.argmax, *self.hull_moves, *self.outside_moves]


@dataclass
class _State:
    """One example under the strong decode."""

    example: Example
    words: tuple[str, ...]  # the attacked segment
    queries: int = 1  # the clean forward pass
    seen: set[tuple[str, ...]] = field(default_factory=set)
    flip: _Flip | None = None
    visible: int | None = None  # words of the attacked segment the model sees (computed when needed)


class ASCCAttack:
    name = "ascc"

    def __init__(
        self, model: Classifier, hulls: HullBuilder, steps: int = 10, lr: float = 1.0, sparse_weight: float = 15.0,
        batch_size: int = 32, seed: int = 0, decode: str = DECODE, restarts: int = RESTARTS, candidates: int = CANDIDATES,
        enumerate_max: int = ENUMERATE_MAX, forward_batch_size: int = 32, hull: str = HULL,
    ):
        """``batch_size``: examples per search; ``forward_batch_size``: texts per forward when scoring discrete texts.

        Raises ConfigError (a ValueError) for an unknown ``decode`` or a negative count: the checks of
        ``attack.ascc`` (:class:`~riftkit.config.ASCCSearchConfig`), the one place they live.
        """
        ASCCSearchConfig(steps=steps, decode=decode, restarts=restarts, candidates=candidates, enumerate_max=enumerate_max,
                         examples_per_search=batch_size)
        if hull not in HULL_KINDS:
            raise ValueError(f"attack.ascc.hull must be one of {list(HULL_KINDS)}, got {hull!r}")
        self.hull = hull
        self.model, self.hulls, self.batch_size, self.seed = model, hulls, batch_size, seed
        self.decode, self.restarts, self.candidates, self.enumerate_max = decode, restarts, candidates, enumerate_max
        self.forward_batch_size = forward_batch_size
        self.adversary = ASCCAdversary(steps=steps, lr=lr, sparse_weight=sparse_weight, loss="ce")
        self.segments = (model.spec.task_spec.attacked_segment,)

    @classmethod
    def from_config(cls, model: Classifier, hulls: HullBuilder, search: ASCCSearchConfig, seed: int,
                    forward_batch_size: int = FORWARD_BATCH_SIZE) -> ASCCAttack:
        """The attack of an ``attack.ascc`` section: the one builder that ``riftkit attack --attack ascc``
        (``registry.build_ascc``) and model selection (``training.selection.DevEvaluator``) share."""
        return cls(model, hulls, steps=search.steps, batch_size=search.examples_per_search, seed=seed, decode=search.decode,
                   restarts=search.restarts, candidates=search.candidates, enumerate_max=search.enumerate_max,
                   forward_batch_size=forward_batch_size, hull=search.hull)

    def attack(self, examples: Sequence[Example], on_result: Callable[[AttackResult], None] | None = None) -> list[AttackResult]:
        """One result per example, in input order; ``on_result`` is called as each batch finishes."""
        order = list(range(len(examples)))
        if self.decode == "strong":
            # Its results do not depend on the batch, so batch examples of similar length: less padding in the searches.
            order.sort(key=lambda i: sum(len(s) for s in examples[i].segments))
        attack_batch = self._attack_batch_single if self.decode == "single" else self._attack_batch_strong
        results: list[AttackResult | None] = [None] * len(examples)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            for i, result in zip(chunk, attack_batch([examples[i] for i in chunk])):
                results[i] = result
                if on_result is not None:
                    on_result(result)
        return results  # type: ignore[return-value]

    # -- the paper's variant: one search, argmax, one confirming pass ----------------------------------------
    def _attack_batch_single(self, examples: Sequence[Example]) -> list[AttackResult]:
        model = self.model
        with eval_mode(model):
            inputs = model.encode_examples(examples).to(model.device)
            labels = torch.tensor([e.label for e in examples], device=model.device)
            with torch.no_grad():
                clean_probs = torch.softmax(model(**inputs).float(), dim=-1).cpu()
            predictions = clean_probs.argmax(-1)
            texts, search_inputs, hull = self._hull(examples, inputs, 0)
            hull = hull.to(model.device)
            # the start is drawn per (seed, uid), as the strong decode's: an example's result does not depend on its batch
            init = start_logits(hull, [e.uid for e in examples], self.seed, 0, model.spec.max_length).to(model.device)
            found = self.adversary.search(model, search_inputs, hull, labels, init=init)
            decoded = hull.decode(texts, found.weights.cpu())
            adversarial_probs = model.predict_proba([adv.segments for adv, _ in decoded])
            adversarial_predictions = adversarial_probs.argmax(-1)
        segment = self.segments[0]
        results = []
        for example, pred, (adv, _), adv_pred, p_clean, p_adv in zip(examples, predictions.tolist(), decoded, adversarial_predictions.tolist(),
                                                                     clean_probs, adversarial_probs):
            if pred != example.label:
                outcome = SKIPPED
            else:
                outcome = SUCCEEDED if adv_pred != example.label else FAILED
            # queries: forward passes for this example (search steps, the clean and the confirming pass)
            results.append(build_result(example, segment, adv.segments[segment], outcome, self.adversary.steps + 2, pred, adv_pred,
                                        original_probs=p_clean, adversarial_probs=p_adv))
        return results

    # -- the strong variant ----------------------------------------------------------------------------------
    def _attack_batch_strong(self, examples: Sequence[Example]) -> list[AttackResult]:
        model, segment = self.model, self.segments[0]
        with eval_mode(model):
            inputs = model.encode_examples(examples).to(model.device)
            with torch.no_grad():
                clean_probs = torch.softmax(model(**inputs).float(), dim=-1).cpu()
            predictions = clean_probs.argmax(-1).tolist()
            states = [_State(e, e.segments[segment]) for e in examples]
            attacked = [i for i, (e, p) in enumerate(zip(examples, predictions)) if p == e.label]
            neighbourhoods = {i: self.neighbourhood(examples[i], visible=lambda i=i: self._visible(states[i])) for i in attacked}
            self._score([(states[i], texts) for i, texts in neighbourhoods.items() if texts is not None])
            pending = [i for i in attacked if neighbourhoods[i] is None]
            # same_length: one hull, built once and sliced per round; length_groups: one per round (its own groups)
            hull = self.hulls.build(examples, inputs, self.segments) if pending and self.hull == "same_length" else None
            for round_ in range(1 + self.restarts):
                pending = [i for i in pending if states[i].flip is None]
                if pending:
                    pending = self._search_round(states, pending, inputs, hull, round_)
        results = []
        for state, pred, p_clean in zip(states, predictions, clean_probs):
            example = state.example
            if pred != example.label:
                results.append(build_result(example, segment, None, SKIPPED, state.queries, pred, pred, original_probs=p_clean))
            elif state.flip is None:
                results.append(build_result(example, segment, None, FAILED, state.queries, pred, pred, original_probs=p_clean))
            else:
                results.append(build_result(example, segment, state.flip.words, SUCCEEDED, state.queries, pred, state.flip.prediction,
                                            original_probs=p_clean, adversarial_probs=state.flip.probabilities))
        return results

    def _hull(self, examples: Sequence[Example], inputs: BatchEncoding, round_: int) -> tuple[Sequence[Example], BatchEncoding, Hull]:
        """The texts the search of ``round_`` starts from, their encoding and their hull: the examples themselves
        (same_length), or each word at the anchor of its token-count group for that round (length_groups; the draw is
        keyed by (seed, uid, round_), so it does not depend on the batch)."""
        return self.hulls.for_round(self.hull, examples, inputs, self.segments, self.seed, round_,
                                    lambda anchors: self.model.encode_examples(anchors).to(self.model.device))

    def _search_round(self, states: list[_State], pending: list[int], inputs: BatchEncoding, hull: Hull | None, round_: int) -> list[int]:
        """Search ``round_`` (0: the first) for the ``pending`` rows of the batch (``inputs``; ``hull``: the batch's
        same-length hull, None for length groups, which are drawn here for the round) from each one's random start for
        that round, then score its discrete texts; returns the rows worth another search (same_length: a row with no
        word in the hull gets its outside-hull texts once, no search; length_groups: the next round draws new groups)."""
        model, segment = self.model, self.segments[0]
        if hull is None:
            anchors, inputs, hull = self._hull([states[i].example for i in pending], None, round_)
            bases = [a.segments[segment] for a in anchors]
            at = list(range(len(pending)))  # row of each pending example in this round's inputs and hull
        else:
            bases = [states[i].words for i in pending]
            at = pending
        K = hull.candidate_mask.shape[-1]
        requests = [(states[i], self.search_texts(hull, r, torch.zeros(0, K), states[i].words, self._visible(states[i]), base).all())
                    for i, r, base in zip(pending, at, bases) if not hull.words[r]]
        rows = [(i, r, base) for i, r, base in zip(pending, at, bases) if hull.words[r]]
        if rows:
            # the rows as if encoded alone: the same padding width, hence the same numbers as a fresh encoding
            index = torch.tensor([r for _, r, _ in rows], device=inputs["attention_mask"].device)
            width = int(inputs["attention_mask"][index].sum(-1).max())
            sub_inputs = BatchEncoding({k: v[index, :width] for k, v in inputs.items()})
            sub_hull = hull.select([r for _, r, _ in rows], width)
            labels = torch.tensor([states[i].example.label for i, _, _ in rows], device=model.device)
            init = start_logits(sub_hull, [states[i].example.uid for i, _, _ in rows], self.seed, round_, model.spec.max_length)
            weights = self.adversary.search(model, sub_inputs, sub_hull.to(model.device), labels, init=init).weights.cpu()
            for b, (i, _, base) in enumerate(rows):
                states[i].queries += self.adversary.steps
                requests.append((states[i], self.search_texts(sub_hull, b, weights[b], states[i].words, self._visible(states[i]), base).all()))
        self._score(requests)
        return pending if self.hull == "length_groups" else [i for i, _, _ in rows]

    def _visible(self, state: _State) -> int:
        if state.visible is None:
            state.visible = self.model.visible_words(state.example.segments)[self.segments[0]]
        return state.visible

    def search_texts(self, hull: Hull, b: int, weights: torch.Tensor, words: tuple[str, ...], visible: int,
                     base: tuple[str, ...] | None = None) -> SearchTexts:
        """Discrete texts from one example's search weights [W, K] (W: its words in the hull, may be 0).

        ``words``: the attacked segment; ``visible``: how many of its words the model sees (max_length);
        ``base``: the text the hull was built on (length groups: each word at its group's anchor; default ``words``).
        """
        base = words if base is None else base
        W = len(hull.words[b])
        weights = weights[:W].masked_fill(~hull.candidate_mask[b, :W], -1.0)
        choice = weights.argmax(-1).tolist() if W else []
        argmax = list(base)
        for w, word in enumerate(hull.words[b]):
            argmax[word.position] = word.candidates[choice[w]]

        def moved(position: int, new: str) -> tuple[str, ...]:
            return tuple(argmax[:position] + [new] + argmax[position + 1 :])

        texts = SearchTexts(tuple(argmax), [], [])
        if not self.candidates:
            return texts
        if W:
            K = weights.shape[-1]
            others = weights.clone()
            others[torch.arange(W), choice] = -1.0  # every valid candidate but the argmax
            top = torch.topk(others.flatten(), min(self.candidates, int((others >= 0).sum()))).indices.tolist()
            texts.hull_moves.extend(moved(hull.words[b][i // K].position, hull.words[b][i // K].candidates[i % K]) for i in top)
        # Substitutes of another subword length have no weight: rank by how far the search moved the word
        # (1 - weight of the original), words outside the hull last, then by position and the set's order.
        away = {word.position: 1.0 - float(weights[w, 0]) for w, word in enumerate(hull.words[b])}
        inside = {word.position: set(word.candidates) for word in hull.words[b]}
        # (a word the groups moved off the original may also move back to it: j = -1)
        outside = [(-away.get(i, -1.0), i, j, sub) for i, word in enumerate(words[:visible])
                   for j, sub in enumerate(self.hulls.substitutions[word] if base[i] == word else (word, *self.hulls.substitutions[word]),
                                           start=0 if base[i] == word else -1)
                   if sub not in inside.get(i, ()) and sub != argmax[i]]
        texts.outside_moves.extend(moved(i, sub) for _, i, _, sub in sorted(outside)[: self.candidates])
        return texts

    def neighbourhood(self, example: Example, visible: Callable[[], int] | None = None) -> list[tuple[str, ...]] | None:
        """Every substituted text of the attacked segment (full substitution set, words the model sees),
        or None when there are more than ``enumerate_max``. The original text is not included.
        ``visible``: gives the number of words the model sees, when already known (else it is computed)."""
        words = example.segments[self.segments[0]]
        substitutions = self.hulls.substitutions

        def options(visible: int) -> list[tuple[str, ...]] | None:
            table, size = [], 1
            for position, word in enumerate(words):
                choices = (word, *substitutions[word]) if position < visible else (word,)
                size *= len(choices)
                if size - 1 > self.enumerate_max:
                    return None
                table.append(choices)
            return table

        table = options(len(words))
        if table is None:  # words past the max_length window cannot change the prediction
            table = options(visible() if visible else self.model.visible_words(example.segments)[self.segments[0]])
        if table is None:
            return None
        return [t for t in itertools.product(*table) if t != words]

    def _score(self, requests: list[tuple[_State, list[tuple[str, ...]]]]) -> None:
        """Score new texts of many examples in batched forward passes; keep each example's best flip."""
        segment = self.segments[0]
        todo: list[tuple[_State, tuple[str, ...]]] = []
        for state, texts in requests:
            for words in texts:
                if words != state.words and words not in state.seen:
                    state.seen.add(words)
                    todo.append((state, words))
        if not todo:
            return
        batch = []
        for state, words in todo:
            segments = list(state.example.segments)
            segments[segment] = words
            batch.append(tuple(segments))
        probabilities = self.model.predict_proba(batch, batch_size=self.forward_batch_size)
        for (state, words), probs in zip(todo, probabilities):
            state.queries += 1
            label, prediction = state.example.label, int(probs.argmax())
            if prediction != label:
                flip = _Flip(sum(a != b for a, b in zip(words, state.words)), float(probs[label]), words, prediction, probs)
                if flip.better_than(state.flip):
                    state.flip = flip


def robust_accuracy(results: Sequence[AttackResult]) -> dict[str, float]:
    """n, vanilla accuracy, robust accuracy (correct and the attack failed) and attack success rate."""
    return outcome_rates([r.outcome for r in results])
