"""Running one training function under ``torchrun --nproc_per_node=N``.

torchrun starts N processes and sets RANK, LOCAL_RANK and WORLD_SIZE in each. Every process
builds the same model from the same seed, sees a different shard of every batch order, and
DistributedDataParallel averages the gradients, so all ranks hold identical weights after every
optimizer step. Only rank 0 writes files. Per process the batch is ``batch_size``; the effective
batch of one optimizer step is batch_size x world_size x grad_accum.
"""
from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass

import torch


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun describes (NCCL on CUDA, gloo on the CPU); no-op when
    WORLD_SIZE is unset or 1. On CUDA each process takes the GPU of its LOCAL_RANK."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    initialized_here = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        initialized_here = True
    return DistInfo(rank, world, local, initialized_here), device


def wrap_model(model, info: DistInfo, device):
    """DistributedDataParallel around ``model`` when running distributed; the model itself otherwise."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def no_sync(net, skip: bool):
    """Skip the gradient all-reduce on micro-batches before the last of a gradient accumulation."""
    return net.no_sync() if skip and hasattr(net, "no_sync") else nullcontext()


def shard(indices: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This rank's share of a batch order that every rank drew identically (DistributedSampler's rule)."""
    return indices[info.rank::info.world_size] if info.enabled else indices


def barrier(info: DistInfo) -> None:
    if info.enabled:
        torch.distributed.barrier()


def all_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of ``values`` over ranks (every rank gets the same numbers, so all stop together
    when one of them sees a non-finite loss)."""
    if info.enabled:
        values = values.clone()
        torch.distributed.all_reduce(values)
        values /= info.world_size
    return values


def cleanup(info: DistInfo) -> None:
    if info.initialized_here and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
