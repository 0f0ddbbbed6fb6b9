"""What an attack is, what it returns, and the driver that runs black-box searches in lockstep.

An attack is any object with ``attack(examples, on_result=None) -> list[AttackResult]``:
it attacks a batch of examples at once, returns one result per example in
input order, and calls ``on_result`` for each result as soon as it is final
(in any order), so that the runner can write it before the next one is done.
White-box attacks (ASCC) implement that method directly.

Black-box searches (PWWS, Genetic) are written as generators, one per
example, that read top to bottom: they ``yield`` the list of texts they need
scored and receive the probabilities back. :class:`BlackBoxAttack` keeps up to
``in_flight`` of them running, gathers what they all ask for in one step into
one call of the query layer, and hands the answers back. A search therefore
batches its own step (all candidates of a PWWS step, all children of a
Genetic generation) and, for free, shares the model call with the other
examples in flight.
"""

from __future__ import annotations

import random
import zlib
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

import torch

from ..data.examples import Example, Segments
# outcomes and their rates live in evaluation/outcomes.py (one home); the searches use them from here
from ..evaluation.outcomes import FAILED, OUTCOMES, QUERY_BUDGET, SKIPPED, SUCCEEDED, outcome_rates  # noqa: F401
from .constraints import Candidates, MaxChangeRate
from .goal import UntargetedClassification
from .queries import QueryLayer, Victim
from .transformation import Substitution, WordSwap, substitutions_between


class ExactRequest(list):
    """Texts to score with the exact (fp32) model when the searches query an approximate forward path.

    ``purpose`` keeps the two uses apart in the exact query layer's per-example counts:
    ``"recheck"`` (the original and the reported adversarial text: not search queries) and
    ``"search"`` (a search rerun on the exact model after a recheck refuted its flip).
    """

    def __init__(self, texts, purpose: str):
        super().__init__(texts)
        self.purpose = purpose


# A search step: the texts to score; the reply: their probabilities [len(texts), C].
SearchSteps = Generator[list[Segments], torch.Tensor, "tuple[str, ...] | None"]


@dataclass
class AttackResult:
    uid: str
    label: int
    original: Segments
    adversarial: Segments  # the original itself unless the attack succeeded
    segment: int  # which segment the attack could change
    outcome: str  # skipped (misclassified before the attack) | succeeded | failed
    queries: int  # distinct texts the attack asked the model about (white-box: forward passes)
    original_prediction: int
    adversarial_prediction: int
    substitutions: list[Substitution] = field(default_factory=list)
    # Words of the attacked segment inside the model's max_length window (None: all of them).
    attackable_words: int | None = None
    stop_reason: str | None = None  # why a failed search stopped early: "query_budget"
    # The model's class probabilities for ``original`` and for ``adversarial`` (the original's own unless the
    # attack succeeded), from the scores the search already had; None when the attack did not give them.
    original_probs: list[float] | None = None
    adversarial_probs: list[float] | None = None
    # Approximate forward paths only (attack.backend bf16): texts the exact model scored to check the outcome
    # (not counted in ``queries``), and what the check found: "confirmed" (the search's outcome stands), "rerun"
    # (the exact model refuted a flip; the search ran again on the exact model, and its queries count) or
    # "exact search" (the two disagreed on the original, so the search ran on the exact model from the start).
    rechecks: int | None = None
    recheck: str | None = None

    @property
    def window(self) -> int:
        """Attackable words: the perturbed share is measured over these."""
        words = len(self.original[self.segment])
        return words if self.attackable_words is None else min(self.attackable_words, words)

    @property
    def changed_share(self) -> float:
        return len(self.substitutions) / self.window if self.window else 0.0

    def to_record(self, segment_names: Sequence[str]) -> dict:
        """The JSONL line: attacked text as strings; for pairs the unchanged context segments as well."""
        record = {
            "uid": self.uid,
            "label": self.label,
            "outcome": self.outcome,
            "original": " ".join(self.original[self.segment]),
            "adversarial": " ".join(self.adversarial[self.segment]),
            "substitutions": [s.to_list() for s in self.substitutions],
            "queries": self.queries,
            "changed_share": round(self.changed_share, 6),
            "words": len(self.original[self.segment]),
            "attackable_words": self.window,
            "original_prediction": self.original_prediction,
            "adversarial_prediction": self.adversarial_prediction,
        }
        # Optional in the log (older logs lack them): rounded class probabilities of both texts.
        if self.original_probs is not None:
            record["original_probs"] = [round(p, 4) for p in self.original_probs]
        if self.adversarial_probs is not None:
            record["adversarial_probs"] = [round(p, 4) for p in self.adversarial_probs]
        if self.stop_reason:
            record["stop_reason"] = self.stop_reason
        if self.recheck is not None:
            record["recheck"] = self.recheck
            record["rechecks"] = self.rechecks
        context = {name: " ".join(seg) for i, (name, seg) in enumerate(zip(segment_names, self.original)) if i != self.segment}
        if context:
            record["context"] = context
        return record


def build_result(example: Example, segment: int, adversarial_words: tuple[str, ...] | None, outcome: str, queries: int, original_prediction: int,
                 adversarial_prediction: int, attackable_words: int | None = None, stop_reason: str | None = None,
                 original_probs: torch.Tensor | Sequence[float] | None = None,
                 adversarial_probs: torch.Tensor | Sequence[float] | None = None) -> AttackResult:
    """An :class:`AttackResult` whose substitutions are read off the two texts (so they cannot disagree).

    ``original_probs`` / ``adversarial_probs``: the model's class probabilities for the original and the
    adversarial text; unless the attack succeeded the adversarial text is the original, and so are its probabilities.
    """
    original_words = example.segments[segment]
    if outcome != SUCCEEDED or adversarial_words is None:
        adversarial_words = original_words
        adversarial_probs = original_probs
    segments = list(example.segments)
    segments[segment] = tuple(adversarial_words)
    return AttackResult(
        uid=example.uid,
        label=example.label,
        original=example.segments,
        adversarial=tuple(segments),
        segment=segment,
        outcome=outcome,
        queries=queries,
        original_prediction=original_prediction,
        adversarial_prediction=adversarial_prediction,
        substitutions=substitutions_between(original_words, tuple(adversarial_words)),
        attackable_words=attackable_words,
        stop_reason=stop_reason,
        original_probs=_probability_list(original_probs),
        adversarial_probs=_probability_list(adversarial_probs),
    )


def _probability_list(probs: torch.Tensor | Sequence[float] | None) -> list[float] | None:
    if probs is None:
        return None
    return [float(p) for p in (probs.tolist() if isinstance(probs, torch.Tensor) else probs)]


def example_seed(seed: int, uid: str) -> int:
    """A per-example seed that does not depend on which other examples share the batch (resume-safe)."""
    return zlib.crc32(f"{seed}\x00{uid}".encode())


class BlackBoxAttack:
    """Shared machinery of the query-based searches; subclasses write :meth:`search`."""

    name = "black-box"

    def __init__(
        self,
        victim: Victim,
        transformation: WordSwap,
        goal: UntargetedClassification | None = None,
        candidate_filters: Sequence = (),
        max_change_rate: float | None = None,
        seed: int = 0,
        in_flight: int = 32,
        batch_size: int = 32,
        cache_size: int = 100_000,
        query_budget: int | None = None,
        attack_truncated_words: bool = False,
        exact_victim: Victim | None = None,
    ):
        """``victim``: what the searches query. ``exact_victim``: given when ``victim`` is an approximate
        forward path (bf16); the exact model then decides every reported outcome (see :meth:`_attack_one`)."""
        if in_flight < 1:
            raise ValueError(f"in_flight must be >= 1, got {in_flight}")
        if query_budget is not None and query_budget < 1:
            raise ValueError(f"query_budget must be >= 1 (the clean text is one query), got {query_budget}")
        self.transformation = transformation
        self.goal = goal or UntargetedClassification()
        self.candidate_filters = list(candidate_filters)
        self.max_change = MaxChangeRate(max_change_rate) if max_change_rate is not None else None
        self.seed = seed
        self.in_flight = in_flight
        self.query_budget = query_budget
        self.attack_truncated_words = attack_truncated_words
        self.queries = QueryLayer(victim, batch_size=batch_size, cache_size=cache_size)
        self.exact_queries = QueryLayer(exact_victim, batch_size=batch_size, cache_size=cache_size) if exact_victim is not None else None

    # -- to be written by each search --------------------------------------------------------
    def search(self, example: Example, words: tuple[str, ...], candidates: Candidates, clean: torch.Tensor, rng: random.Random) -> SearchSteps:
        """Yield batches of texts, return the adversarial words on success, None on failure."""
        raise NotImplementedError

    # -- helpers for searches --------------------------------------------------------------------
    def allowed(self, original: tuple[str, ...], words: tuple[str, ...]) -> bool:
        return self.max_change is None or self.max_change.allows(original, words)

    def attackable_words(self, example: Example) -> int:
        """Leading words of the attacked segment inside the victim's max_length window.

        A word past the window cannot change the prediction, so substituting it
        only spends queries. Victims that do not truncate (no ``visible_words``) see every word.
        """
        words = self.transformation.attacked_words(example)
        visible = getattr(self.queries.victim, "visible_words", None)
        if self.attack_truncated_words or visible is None:
            return len(words)
        return visible(example.segments)[self.transformation.segment]

    def candidates(self, example: Example, window: int | None = None) -> Candidates:
        """Position -> allowed substitutes, for positions inside the first ``window`` words (None: all)."""
        words = self.transformation.attacked_words(example)
        table = self.transformation.candidates(example)
        if window is not None:
            table = {i: subs for i, subs in table.items() if i < window}
        for constraint in self.candidate_filters:
            table = constraint.filter(words, table)
        return table

    # -- one example, start to end ---------------------------------------------------------------
    def _attack_one(self, example: Example, owner: object) -> Generator[list[Segments], torch.Tensor, AttackResult]:
        """Clean prediction, search, confirmed flip: one example's whole attack, as a generator of requests.

        On an approximate forward path (``exact_queries`` set) the exact model decides every reported
        outcome: it scores the original (skipped or attacked) and any flip the search reports; a flip
        it refutes sends the search again on the exact model (same per-example seed, what is left of
        the query budget), and an original whose approximate prediction disagrees is searched on the
        exact model from the start. A failed search is not rechecked (that would take a second
        search); benchmarks/backend_outcomes.py measures the robust accuracy of both paths.
        """
        segment = self.transformation.segment
        checking = self.exact_queries is not None
        clean = (yield [example.segments])[0]
        clean_exact = (yield ExactRequest([example.segments], "recheck"))[0] if checking else clean
        original_prediction = int(clean_exact.argmax())
        window = self.attackable_words(example)
        if original_prediction != example.label:
            return self._finish(example, owner, None, SKIPPED, original_prediction, window, clean_exact, None, None,
                                "confirmed" if checking else None)
        on_exact = checking and int(clean.argmax()) != original_prediction
        adversarial, probs, stop = yield from self._search(example, owner, window, clean_exact if on_exact else clean, on_exact)
        recheck = "exact search" if on_exact else "confirmed" if checking else None
        if checking and adversarial is not None and not on_exact:
            probs = (yield ExactRequest([self.transformation.with_words(example, adversarial)], "recheck"))[0]
            if not bool(self.goal.succeeded(probs[None], example.label)[0]):
                recheck = "rerun"
                adversarial, probs, stop = yield from self._search(example, owner, window, clean_exact, True)
        outcome = SUCCEEDED if adversarial is not None else FAILED
        return self._finish(example, owner, adversarial, outcome, original_prediction, window, clean_exact, probs, stop, recheck)

    def _finish(self, example: Example, owner: object, adversarial, outcome: str, original_prediction: int, window: int,
                clean: torch.Tensor, probs: torch.Tensor | None, stop_reason: str | None, recheck: str | None) -> AttackResult:
        """The result, with the example's query counts released (search queries, and exact rechecks apart)."""
        queries, rechecks = self.queries.release(owner), None
        if self.exact_queries is not None:
            queries += self.exact_queries.release((owner, "search"))
            rechecks = self.exact_queries.release((owner, "recheck"))
        final_prediction = int(probs.argmax()) if adversarial is not None else original_prediction
        result = build_result(example, self.transformation.segment, adversarial, outcome, queries, original_prediction, final_prediction,
                              window, stop_reason=stop_reason, original_probs=clean, adversarial_probs=probs)
        result.rechecks, result.recheck = rechecks, recheck
        return result

    def _search(self, example: Example, owner: object, window: int, clean: torch.Tensor, exact: bool):
        """Run the search to its end: (adversarial words or None, their probabilities or None, stop reason or None).

        ``exact``: ask the exact model (an approximate path's rerun); its queries count against the
        same query budget as the approximate search's.
        """
        layer, key = (self.exact_queries, (owner, "search")) if exact else (self.queries, owner)
        spent = self.queries.queries(owner) if exact else 0

        def ask(texts: list[Segments]) -> list[Segments]:
            return ExactRequest(texts, "search") if exact else texts

        words = self.transformation.attacked_words(example)
        rng = random.Random(example_seed(self.seed, example.uid))
        search = self.search(example, words, self.candidates(example, window), clean, rng)
        # ``yield from search``, except that a request over the query budget is cut to what the budget
        # still allows, answered, and ends the search (TextAttack's query budget does the same).
        reply = None
        while True:
            try:
                request = next(search) if reply is None else search.send(reply)
            except StopIteration as stop:
                adversarial = stop.value
                break
            allowed = self._within_budget(layer, key, request, spent)
            if len(allowed) < len(request):
                search.close()
                return (yield from self._budget_spent(example, allowed, ask))
            reply = yield ask(request)
        if adversarial is None:
            return None, None, None
        # Confirm the flip from the query layer (cached: costs no model call); its probabilities go in the record.
        probs = (yield ask([self.transformation.with_words(example, adversarial)]))[0]
        if not bool(self.goal.succeeded(probs[None], example.label)[0]):
            return None, None, None
        return adversarial, probs, None

    def _within_budget(self, layer: QueryLayer, key: object, request: list[Segments], spent: int = 0) -> list[Segments]:
        """The longest prefix of ``request`` whose texts new to ``key`` fit in the remaining query budget.

        ``spent``: queries already spent elsewhere (the approximate search, when ``layer`` is the exact one)."""
        if self.query_budget is None:
            return request
        room = self.query_budget - spent - layer.queries(key)
        seen = layer.seen(key)
        fresh: set[Segments] = set()
        for k, text in enumerate(request):
            if text not in seen and text not in fresh:
                if len(fresh) >= room:
                    return request[:k]
                fresh.add(text)
        return request

    def _budget_spent(self, example: Example, texts: list[Segments], ask: Callable[[list[Segments]], list[Segments]]):
        """Score the texts the budget still allows: (words, probabilities, None) for the best flip among them,
        else (None, None, "query_budget")."""
        if texts:
            probs = yield ask(texts)
            flipped = self.goal.succeeded(probs, example.label)
            if bool(flipped.any()):
                fitness = self.goal.fitness(probs, example.label)
                best = max((k for k in range(len(texts)) if flipped[k]), key=lambda k: float(fitness[k]))
                return texts[best][self.transformation.segment], probs[best], None
        return None, None, QUERY_BUDGET

    # -- many examples in lockstep ---------------------------------------------------------------
    def attack(self, examples: Sequence[Example], on_result: Callable[[AttackResult], None] | None = None) -> list[AttackResult]:
        results: list[AttackResult | None] = [None] * len(examples)
        waiting = deque(range(len(examples)))
        running: dict[int, tuple[Generator, list[Segments]]] = {}
        call = object()  # owners of this call's examples never meet those of another call

        def owner(index: int) -> tuple:
            return (id(call), index)

        def finish(index: int, result: AttackResult) -> None:
            results[index] = result
            if on_result is not None:
                on_result(result)

        def advance(index: int, step: Generator, reply: torch.Tensor | None) -> None:
            try:
                request = next(step) if reply is None else step.send(reply)
                while not request:  # a search may ask for nothing; answer at once
                    request = step.send(torch.empty(0))
                running[index] = (step, request)
            except StopIteration as stop:
                running.pop(index, None)
                finish(index, stop.value)

        while waiting or running:
            while waiting and len(running) < self.in_flight:
                index = waiting.popleft()
                advance(index, self._attack_one(examples[index], owner(index)), None)
            if not running:
                continue
            # one model call for the searches' texts, one for the exact model's (approximate paths only)
            order = list(running)
            plain = [i for i in order if not isinstance(running[i][1], ExactRequest)]
            exact = [i for i in order if isinstance(running[i][1], ExactRequest)]
            answers: dict[int, torch.Tensor] = {}
            if plain:
                answers.update(zip(plain, self.queries.probabilities([(owner(i), running[i][1]) for i in plain])))
            if exact:
                answers.update(zip(exact, self.exact_queries.probabilities([((owner(i), running[i][1].purpose), running[i][1]) for i in exact])))
            for index in order:
                advance(index, running[index][0], answers[index])
        return results  # type: ignore[return-value]
