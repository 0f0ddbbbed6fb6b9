"""The Genetic attack (Alzantot et al. 2018, in the form of Jia et al. 2019).

- A member is a text plus the positions it may still change. Every position
  changes at most once along a lineage (Alzantot et al.; TextAttack's
  RepeatModification), always to a substitute of the ORIGINAL word.
- Perturb(x): draw an open position with probability proportional to its
  number of substitutes, score every allowed substitute there, and keep the
  fittest if it is fitter than x (the position is then closed). If none is,
  draw another open position; a member with no improving position stays as
  it is. This is Alzantot et al.'s "replace only if it helps", with
  TextAttack's retry of the other positions.
- Generation 0: ``population`` perturbations of the clean text.
- Each generation: if the fittest member succeeds, stop. Otherwise keep it
  (elitism), draw ``population - 1`` parent pairs with probabilities
  softmax(fitness / temperature), where fitness is the ADVERSARIAL fitness
  (higher = closer to a flip, goal.py), so stronger members are favoured
  (TextAttack 0.3.11 draws with exp(-score / T) on a score where higher is
  better for the attacker, i.e. the wrong way round). A child takes each word,
  and whether that position is still open, from either parent with
  probability 1/2, then is perturbed.
- Batching: the perturbation of all children runs in rounds; a round asks the
  model, in ONE call, for every candidate of every child still looking (and
  for each new child's own text, whose fitness the comparison needs). Any
  successful text ends the search at once.

Fitness and success follow METHOD.md (goal.py). All randomness comes from the
per-example generator, in a fixed order, so results do not depend on batch
composition.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

from ..data.examples import Example
from .base import BlackBoxAttack, SearchSteps
from .constraints import Candidates
from .transformation import replace_word

Words = tuple[str, ...]


@dataclass(frozen=True)
class Member:
    words: Words
    open: frozenset[int]  # positions this lineage has not changed yet
    fitness: float | None = None  # None: not scored yet (a fresh crossover child)


class Success(Exception):
    """Raised inside a perturbation round when a scored text flips the prediction."""

    def __init__(self, words: Words):
        self.words = words


class Genetic(BlackBoxAttack):
    name = "genetic"

    def __init__(self, *args, population: int = 60, generations: int = 40, temperature: float = 0.3, **kwargs):
        super().__init__(*args, **kwargs)
        if population < 2 or generations < 1 or temperature <= 0:
            raise ValueError(f"genetic attack: need population >= 2, generations >= 1, temperature > 0 (got {population}, {generations}, {temperature})")
        self.population = population
        self.generations = generations
        self.temperature = temperature

    def search(self, example: Example, words: Words, candidates: Candidates, clean: torch.Tensor, rng: random.Random) -> SearchSteps:
        if not candidates:
            return None
        try:
            start = Member(words, frozenset(candidates), float(self.goal.fitness(clean[None], example.label)[0]))
            members = yield from self.perturb_all(example, words, candidates, [start] * self.population, rng)
            for _ in range(self.generations):
                top = max(range(len(members)), key=lambda k: members[k].fitness)
                weights = parent_weights([m.fitness for m in members], self.temperature)
                parents = rng.choices(range(len(members)), weights=weights, k=2 * (self.population - 1))
                children = [self.crossover(words, members[a], members[b], rng) for a, b in zip(parents[0::2], parents[1::2])]
                members = [members[top]] + (yield from self.perturb_all(example, words, candidates, children, rng))
        except Success as success:
            return success.words
        return None

    def crossover(self, original: Words, a: Member, b: Member, rng: random.Random) -> Member:
        """Each position (word and openness) from either parent; a child outside the constraints is parent a."""
        take_b = [rng.random() >= 0.5 for _ in original]
        words = tuple(y if pick else x for x, y, pick in zip(a.words, b.words, take_b))
        if words == a.words or not self.allowed(original, words):
            return a
        open_positions = frozenset(i for i, pick in enumerate(take_b) if i in (b.open if pick else a.open))
        return Member(words, open_positions)

    def perturb_all(self, example: Example, original: Words, candidates: Candidates, members: list[Member], rng: random.Random):
        """Perturb every member (see the module docstring); one model call per round for all of them."""
        label = example.label
        members = list(members)
        untried = [set(m.open) for m in members]
        looking = list(range(len(members)))
        while looking:
            texts: list[Words] = []
            plans = []  # (member index, position or None, index of its own text or None, index of its first proposal, proposals)
            for k in looking:
                member = members[k]
                own = None
                if member.fitness is None:
                    own = len(texts)
                    texts.append(member.words)
                position, proposals = self.draw_position(original, candidates, member.words, untried[k], rng)
                plans.append((k, position, own, len(texts), proposals))
                texts.extend(proposals)
            if not texts:
                break
            probs = yield [self.transformation.with_words(example, t) for t in texts]
            fitness = self.goal.fitness(probs, label).tolist()
            success = self.goal.succeeded(probs, label)
            if bool(success.any()):
                best = max((j for j in range(len(texts)) if success[j]), key=fitness.__getitem__)
                raise Success(texts[best])
            still_looking = []
            for k, position, own, first, proposals in plans:
                member = members[k]
                if own is not None:
                    member = members[k] = Member(member.words, member.open, fitness[own])
                if position is None:
                    continue  # no open position left: the member stays as it is
                j = max(range(first, first + len(proposals)), key=fitness.__getitem__)
                if fitness[j] > member.fitness:
                    members[k] = Member(texts[j], member.open - {position}, fitness[j])
                else:
                    still_looking.append(k)
            looking = still_looking
        return members

    def draw_position(self, original: Words, candidates: Candidates, words: Words, untried: set[int], rng: random.Random) -> tuple[int | None, list[Words]]:
        """An untried open position drawn in proportion to its number of substitutes, and its allowed texts.

        Positions whose substitutes all break a constraint are dropped; (None, []) when none is left.
        """
        while untried:
            pool = sorted(untried)
            position = rng.choices(pool, weights=[len(candidates[i]) for i in pool])[0]
            untried.discard(position)
            texts = [t for w in candidates[position] if w != words[position] and self.allowed(original, t := replace_word(words, position, w))]
            if texts:
                return position, texts
        return None, []


def parent_weights(fitness: list[float], temperature: float) -> list[float]:
    """Selection probabilities softmax(fitness / T): increasing in adversarial fitness."""
    values = [f / temperature for f in fitness]
    peak = max(values)
    exps = [math.exp(v - peak) for v in values]
    total = sum(exps)
    return [e / total for e in exps]
