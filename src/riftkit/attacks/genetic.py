"""The Genetic attack (Alzantot et al. 2018, in the form of Jia et al. 2019).

- Perturb(x): pick a random position (one still holding its original word
  when there is one, with probability proportional to its number of
  substitutes, as Alzantot et al.), try every allowed substitute of the
  original word there, keep the fittest text.
- Generation 0: ``population`` perturbations of the clean text.
- Each generation: if the fittest member succeeds, stop. Otherwise keep it
  (elitism), draw ``population - 1`` parent pairs with probabilities
  softmax(fitness / temperature), where fitness is the ADVERSARIAL fitness
  (higher = closer to a flip, goal.py), so stronger members are favoured;
  (TextAttack 0.3.11 draws with exp(-score / T) on a score where higher is
  better for the attacker, i.e. the wrong way round.) A child takes each word
  from either parent with probability 1/2, then is perturbed.
- Every text of a generation (all perturbation candidates of all children)
  is scored in one batched call.

Fitness and success follow METHOD.md (goal.py). All randomness comes from the
per-example generator, so results do not depend on batch composition.
"""

from __future__ import annotations

import math
import random

import torch

from ..data.examples import Example
from .base import BlackBoxAttack, SearchSteps
from .constraints import Candidates


class Genetic(BlackBoxAttack):
    name = "genetic"

    def __init__(self, *args, population: int = 60, generations: int = 40, temperature: float = 0.3, **kwargs):
        super().__init__(*args, **kwargs)
        if population < 2 or generations < 1 or temperature <= 0:
            raise ValueError(f"genetic attack: need population >= 2, generations >= 1, temperature > 0 (got {population}, {generations}, {temperature})")
        self.population = population
        self.generations = generations
        self.temperature = temperature

    def search(self, example: Example, words: tuple[str, ...], candidates: Candidates, clean: torch.Tensor, rng: random.Random) -> SearchSteps:
        if not candidates:
            return None
        label = example.label
        positions = sorted(candidates)

        def options(member: tuple[str, ...]) -> list[tuple[str, ...]]:
            """All allowed texts from changing one random position of ``member``.

            As in Alzantot et al.: positions still holding their original word first, drawn with
            probability proportional to their number of substitutes.
            """
            unmodified = [i for i in positions if member[i] == words[i]]
            pool = unmodified or list(positions)
            while pool:
                i = rng.choices(pool, weights=[len(candidates[j]) for j in pool])[0]
                texts = [t for w in candidates[i] if w != member[i] and self.allowed(words, t := member[:i] + (w,) + member[i + 1 :])]
                if texts:
                    return texts
                pool.remove(i)
                if not pool and unmodified and len(unmodified) < len(positions):
                    pool, unmodified = [j for j in positions if j not in unmodified], []
            return [member]  # nothing can change: the member stays as it is

        def perturb_all(members: list[tuple[str, ...]]):
            """Perturb every member; one model call for all of them. Returns (texts, fitness, probs)."""
            choices = [options(m) for m in members]
            flat = [self.transformation.with_words(example, t) for texts in choices for t in texts]
            probs = yield flat
            fitness = self.goal.fitness(probs, label)
            chosen, scores, rows, start = [], [], [], 0
            for texts in choices:
                k = start + int(fitness[start : start + len(texts)].argmax())
                chosen.append(texts[k - start])
                scores.append(float(fitness[k]))
                rows.append(probs[k])
                start += len(texts)
            return chosen, scores, torch.stack(rows)

        members, fitness, probs = yield from perturb_all([words] * self.population)
        for _ in range(self.generations):
            top = max(range(len(members)), key=fitness.__getitem__)
            if bool(self.goal.succeeded(probs[top : top + 1], label)[0]):
                return members[top]
            weights = parent_weights(fitness, self.temperature)
            parents = rng.choices(range(len(members)), weights=weights, k=2 * (self.population - 1))
            children = []
            for a, b in zip(parents[0::2], parents[1::2]):
                child = tuple(x if rng.random() < 0.5 else y for x, y in zip(members[a], members[b]))
                children.append(child if self.allowed(words, child) else members[a])
            children, child_fitness, child_probs = yield from perturb_all(children)
            members = [members[top]] + children
            fitness = [fitness[top]] + child_fitness
            probs = torch.cat([probs[top : top + 1], child_probs])
        # The last generation's children are already scored: check them too (no extra query).
        top = max(range(len(members)), key=fitness.__getitem__)
        return members[top] if bool(self.goal.succeeded(probs[top : top + 1], label)[0]) else None


def parent_weights(fitness: list[float], temperature: float) -> list[float]:
    """Selection probabilities softmax(fitness / T): increasing in adversarial fitness."""
    values = [f / temperature for f in fitness]
    peak = max(values)
    exps = [math.exp(v - peak) for v in values]
    total = sum(exps)
    return [e / total for e in exps]
