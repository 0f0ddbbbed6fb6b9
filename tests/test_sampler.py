from collections import Counter

import pytest

from riftkit.training import BatchSampler


def test_plain_epoch_covers_every_example_once():
    sampler = BatchSampler([0, 1] * 25, batch_size=8, num_classes=2, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 7 and sorted(i for b in batches for i in b) == list(range(50))
    assert sampler.epoch == 1 and list(sampler) != batches  # a new order next epoch


def test_balanced_batches_hold_equal_counts_and_cycle_minority():
    labels = [0] * 90 + [1] * 10 + [2] * 20
    sampler = BatchSampler(labels, batch_size=12, num_classes=3, balanced=True, seed=0)
    batches = list(sampler)
    assert len(batches) == 10  # ceil(120 / 12): the same number of steps as plain training
    for batch in batches:
        assert Counter(labels[i] for i in batch) == {0: 4, 1: 4, 2: 4}
    minority = Counter(i for b in batches for i in b if labels[i] == 1)
    assert set(minority) == set(range(90, 100)) and set(minority.values()) == {4}  # cycled 4 times, evenly


def test_balanced_batches_need_every_class_and_a_multiple():
    with pytest.raises(ValueError, match="multiple"):
        BatchSampler([0, 1, 2], batch_size=4, num_classes=3, balanced=True)
    with pytest.raises(ValueError, match="no example of class"):
        BatchSampler([0, 0, 1], batch_size=3, num_classes=3, balanced=True)


def test_state_dict_resumes_mid_epoch_identically():
    labels = [0, 1] * 30
    full = BatchSampler(labels, batch_size=4, num_classes=2, balanced=True, seed=7)
    reference = list(full) + list(full)
    interrupted = BatchSampler(labels, batch_size=4, num_classes=2, balanced=True, seed=7)
    iterator = iter(interrupted)
    seen = [next(iterator) for _ in range(5)]
    resumed = BatchSampler(labels, batch_size=4, num_classes=2, balanced=True, seed=7)
    resumed.load_state_dict(interrupted.state_dict())
    assert seen + list(resumed) + list(resumed) == reference


@pytest.mark.parametrize("balanced", [True, False])
def test_the_shards_of_all_processes_are_the_one_process_batch(balanced):
    """Several processes: each keeps its share of the same global batch; balanced shards stay balanced."""
    labels = [i % 3 for i in range(90)]
    one = list(BatchSampler(labels, 12, 3, balanced=balanced, seed=4))
    shards = [list(BatchSampler(labels, 12, 3, balanced=balanced, seed=4, process_index=r, num_processes=2)) for r in range(2)]
    for step, batch in enumerate(one):
        parts = [shards[r][step] for r in range(2)]
        assert sorted(parts[0] + parts[1]) == sorted(batch) and not set(parts[0]) & set(parts[1])
        if balanced:
            for part in parts:
                assert sorted(labels[i] for i in part) == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="do not split evenly over 3 processes"):
        BatchSampler(labels, 12, 3, balanced=True, process_index=0, num_processes=3)


def _todays_batches(labels, batch_size, num_classes, balanced, seed, epoch):
    """The one-process rule before the sharding fix, written out literally: one-process batches must not change."""
    import random

    rng = random.Random(f"{seed}:{epoch}")
    if not balanced:
        order = list(range(len(labels)))
        rng.shuffle(order)
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

    def cycle(items):
        while True:
            shuffled = list(items)
            rng.shuffle(shuffled)
            yield from shuffled

    per_class = batch_size // num_classes
    streams = [cycle([i for i, y in enumerate(labels) if y == c]) for c in range(num_classes)]
    steps = -(-len(labels) // batch_size)
    return [[next(stream) for stream in streams for _ in range(per_class)] for _ in range(steps)]


@pytest.mark.parametrize("balanced", [True, False])
@pytest.mark.parametrize("size", [1, 7, 33, 50, 64, 101])
def test_one_process_batches_are_unchanged(balanced, size):
    labels = [i % 2 for i in range(size)] if size > 1 else [0]
    if balanced and size == 1:
        labels = [0, 1]
    for seed in (0, 3, 11):
        sampler = BatchSampler(labels, 8, 2, balanced=balanced, seed=seed)
        for epoch in range(2):
            assert list(sampler) == _todays_batches(labels, 8, 2, balanced, seed, epoch)


@pytest.mark.parametrize("balanced", [True, False])
@pytest.mark.parametrize("processes", [2, 4])
@pytest.mark.parametrize("size", [1, 3, 33, 47, 61, 100])
def test_every_process_gets_an_equal_non_empty_shard_of_every_batch(balanced, processes, size):
    """A last, short batch (N not a multiple of the batch size) still splits into equal, non-empty shards:
    it is completed with the first examples of the epoch's order; the shards together are that batch."""
    batch_size = 32 if size > 3 else 8
    labels = [i % 2 for i in range(size)] if size > 1 else [0]
    if balanced and size == 1:
        labels = [0, 1]
    for seed in (0, 5):
        one = BatchSampler(labels, batch_size, 2, balanced=balanced, seed=seed)
        samplers = [BatchSampler(labels, batch_size, 2, balanced=balanced, seed=seed, process_index=r, num_processes=processes)
                    for r in range(processes)]
        for epoch in range(2):
            expected, order = list(one), [i for b in _todays_batches(labels, batch_size, 2, False, seed, epoch) for i in b]
            shards = [list(s) for s in samplers]
            assert all(len(s) == len(expected) for s in shards)
            for step, batch in enumerate(expected):
                parts = [shards[r][step] for r in range(processes)]
                assert len({len(p) for p in parts}) == 1 and parts[0], f"step {step}: shard sizes {[len(p) for p in parts]}"
                together = sorted(i for p in parts for i in p)
                if balanced or len(batch) % processes == 0:
                    assert together == sorted(batch)  # the one-process batch, split
                else:  # the short last batch, completed (fewest examples that make it split evenly) from the epoch's start
                    fill = -len(batch) % processes
                    assert step == len(expected) - 1
                    assert together == sorted(batch + [order[j % len(order)] for j in range(fill)])
            assert {i for s in shards for b in s for i in b} == (set(range(len(labels))) if not balanced else
                                                                 {i for b in expected for i in b})  # every example seen
