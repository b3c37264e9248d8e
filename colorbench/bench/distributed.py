"""Data parallelism for the benchmark under ``torchrun`` (torch.distributed).

``torchrun --nproc_per_node=N -m colorbench.cli bench ...`` starts N processes
with ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set. Each rank evaluates
``Dataset.shard(rank, world)``; per-image rows are gathered on every rank with
``all_gather_object`` and rank 0 computes values and intervals from their union,
in dataset order, so the result equals the single-process one. The backend is
gloo on CPU and nccl when CUDA is available. Without those variables everything
here is a no-op (world of one).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, List

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world`` (1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def env_world() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init() -> DistContext:
    """Join the process group torchrun describes (if any) and return the context.

    Idempotent: if a group is already initialised it is reused and left alone by
    :func:`shutdown`.
    """
    world = env_world()
    if world <= 1:
        return DistContext()
    import torch
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, False)
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    log.info("rank %d/%d joined the %s process group", rank, world, backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, True)


def all_gather(ctx: DistContext, obj: Any) -> List[Any]:
    """Every rank's ``obj``, indexed by rank (``[obj]`` when not distributed)."""
    if not ctx.active:
        return [obj]
    import torch.distributed as dist

    out: List[Any] = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        import torch.distributed as dist

        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    """Leave the process group if :func:`init` created it."""
    if ctx.active and ctx.initialized_here:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


__all__ = ["DistContext", "init", "all_gather", "barrier", "shutdown", "env_world"]
