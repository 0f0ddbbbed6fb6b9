"""Several processes (``accelerate launch``, torchrun): sharded batches, averaged gradients, gathered negatives.

Every process runs the same loop on its shard of each batch, with gradients averaged over all of them,
so their weights stay identical; only the main process evaluates, selects and writes.
"""

from __future__ import annotations

import os

import torch


def distributed_processes():
    """Accelerate's view of the processes when launched as several (``accelerate launch``, torchrun), else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())  # CPU processes talk over gloo


def average_gradients(optimizer: torch.optim.Optimizer) -> None:
    """All-reduce every gradient to its mean over the processes (what DistributedDataParallel does, without a wrapper).

    The gradients travel as one flat buffer: one collective per step, not one per parameter tensor.
    """
    from accelerate.utils import reduce

    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return
    flat = reduce(torch.cat([g.reshape(-1) for g in grads]), reduction="mean")
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def gather_from_processes(features: torch.Tensor, ids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Every process's rows, this process's first; gradients flow back to each process's own rows.

    ``torch.distributed.nn.functional.all_gather`` sums the gradients of a row over the processes in
    backward; with the gradients then averaged over processes, the update is the one-process one.
    Needs the same number of rows on every process (class-balanced shards have it).
    """
    import torch.distributed as dist
    from torch.distributed.nn.functional import all_gather

    rank = dist.get_rank()
    parts = list(all_gather(features))
    ordered = [parts[rank]] + [p for i, p in enumerate(parts) if i != rank]
    gathered_ids = None
    if ids is not None:
        id_parts = [torch.empty_like(ids) for _ in parts]
        dist.all_gather(id_parts, ids.contiguous())
        gathered_ids = torch.cat([id_parts[rank]] + [p for i, p in enumerate(id_parts) if i != rank])
    return torch.cat(ordered), gathered_ids


def mean_over_processes(values: dict[str, float]) -> dict[str, float]:
    from accelerate.utils import reduce

    keys = sorted(values)
    means = reduce(torch.tensor([float(values[k]) for k in keys], dtype=torch.float64), reduction="mean")
    return dict(zip(keys, means.tolist()))
