"""Batch order for training, with all of its state explicit and checkpointable.

The order of epoch ``e`` is a pure function of ``(seed, e)``, so the sampler's
whole state is ``(epoch, batches already served in it)``: resuming a run needs
nothing but :meth:`state_dict`.

Class-balanced mode (RIFT's recipe): every batch holds ``batch_size / C``
examples of each class, so every class has in-batch negatives. An epoch is
``ceil(N / batch_size)`` batches, the same number of steps as plain shuffled
training; each class is drawn from its own shuffled cycle, and a class that
runs out within the epoch is reshuffled and cycled again (a minority class is
therefore seen more than once per epoch, a majority class possibly less).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

from ..config import ConfigError


class BatchSampler:
    """Batches of example indices; with ``num_processes > 1``, this process's share of each batch.

    Sharding (several processes, e.g. under ``accelerate launch``): every process computes the
    same global batch and keeps its share, so the shards of all processes together are exactly
    the one-process batch. Balanced batches are laid out class by class; each process takes
    ``[index::num_processes]`` of every class block, so every process's batch is balanced too
    (needs ``batch_size / C`` divisible by the number of processes). Unbalanced batches are
    split ``[index::num_processes]`` (needs ``batch_size`` divisible by it).

    The last batch of an unbalanced epoch is short when ``batch_size`` does not divide N. With
    several processes it is completed with the fewest examples that make it split evenly (fewer
    than ``num_processes``), taken from the start of the epoch's own shuffled order: the loop
    averages gradients as a mean over processes, which is the batch's mean only when every shard
    has the same size, and an empty shard (33 examples, batch 32, 2 processes) has no mean at all.
    Completing rather than dropping the short batch keeps every example seen once per epoch (a
    handful twice), and the step count the same as with one process; drawing the extra examples
    from the epoch's order keeps them a pure function of ``(seed, epoch)``, so resuming stays exact.
    One-process batches are unchanged. Balanced batches are always full, so never need it.
    """

    def __init__(self, labels: Sequence[int], batch_size: int, num_classes: int, balanced: bool = False, seed: int = 0,
                 process_index: int = 0, num_processes: int = 1, label_names: Sequence[str] | None = None):
        """``label_names``: the classes' names, for the error that names a missing class (else its id).

        Raises ConfigError (a ValueError) when balanced batches cannot be built: a class without examples, or a
        batch size that is not a multiple of the classes.
        """
        if not 0 <= process_index < num_processes:
            raise ValueError(f"process {process_index} of {num_processes}: expected 0 <= index < number of processes")
        self.process_index, self.num_processes = process_index, num_processes
        if batch_size < 1:
            raise ValueError(f"train.batch_size must be >= 1, got {batch_size}")
        if not labels:
            raise ValueError("cannot sample batches from an empty training set")
        self.labels = list(labels)
        self.batch_size = batch_size
        self.num_classes = num_classes
        self.balanced = balanced
        self.seed = seed
        self.epoch = 0
        self.position = 0  # batches of the current epoch already served
        if balanced:
            if batch_size % num_classes:
                raise ConfigError(f"train.batch_size={batch_size}: class-balanced batches need a multiple of the {num_classes} classes")
            self.by_class = [[i for i, y in enumerate(self.labels) if y == c] for c in range(num_classes)]
            empty = [c for c, items in enumerate(self.by_class) if not items]
            if empty:
                named = [label_names[c] for c in empty] if label_names else empty
                raise ConfigError(f"train.balanced_batches: true needs every class in the train split, which has no example of class(es) {named}")
            if (batch_size // num_classes) % num_processes:
                raise ValueError(f"train.batch_size={batch_size}: {batch_size // num_classes} examples per class do not split "
                                 f"evenly over {num_processes} processes (every process's batch must stay class-balanced)")
        elif batch_size % num_processes:
            raise ValueError(f"train.batch_size={batch_size} does not split evenly over {num_processes} processes")

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(f"{self.seed}:{epoch}")
        if not self.balanced:
            order = list(range(len(self.labels)))
            rng.shuffle(order)
            batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
            fill = -len(batches[-1]) % self.num_processes  # 0 with one process
            batches[-1] = batches[-1] + [order[j % len(order)] for j in range(fill)]  # equal shards: see the class docstring
            return batches
        per_class = self.batch_size // self.num_classes
        streams = [_cycle(items, rng) for items in self.by_class]
        return [[next(stream) for stream in streams for _ in range(per_class)] for _ in range(len(self))]

    def __iter__(self) -> Iterator[list[int]]:
        """The rest of the current epoch; the epoch counter advances when it is exhausted."""
        batches = self.epoch_batches(self.epoch)
        while self.position < len(batches):
            batch = batches[self.position]
            self.position += 1
            yield self.shard(batch)
        self.epoch += 1
        self.position = 0

    def shard(self, batch: list[int]) -> list[int]:
        """This process's share of a global batch (the batch itself with one process); the global batches of
        :meth:`epoch_batches` split into equal shards (an arbitrary batch whose size does not split evenly does not)."""
        if self.num_processes == 1:
            return batch
        if not self.balanced:
            return batch[self.process_index::self.num_processes]
        per_class = self.batch_size // self.num_classes
        blocks = [batch[c * per_class:(c + 1) * per_class] for c in range(self.num_classes)]
        return [i for block in blocks for i in block[self.process_index::self.num_processes]]

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        if state["seed"] != self.seed:
            raise ValueError(f"sampler state was saved with seed {state['seed']}, this sampler has seed {self.seed}")
        self.epoch, self.position = state["epoch"], state["position"]


def _cycle(items: list[int], rng: random.Random) -> Iterator[int]:
    while True:
        order = list(items)
        rng.shuffle(order)
        yield from order
