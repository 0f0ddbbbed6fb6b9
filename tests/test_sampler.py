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
