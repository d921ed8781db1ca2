"""This process's place in a (possibly single-process) training run: rank, device, seeds.

``torchrun`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; :func:`setup_distributed` joins its
process group (gloo on CPU, nccl on GPU). Every other training module takes the resulting
:class:`Dist` rather than reading the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist

from modeling.cli import UsageError


@dataclass
class Dist:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over ranks (in place); a no-op in one process."""
        if self.world > 1:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def pick_device(arg: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> this rank's GPU if there is one, else CPU; never hard-coded."""
    if arg == "cpu":
        return torch.device("cpu")
    if arg == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (use auto or cpu)")
    if arg in ("cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup_distributed(device_arg: str) -> Dist:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1 (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_arg, local_rank)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, local_world)))
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank, device)


def leave_distributed(d: Dist) -> None:
    """Leave the process group :func:`setup_distributed` joined (a no-op in one process)."""
    if d.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def step_seed(seed: int, step: int, rank: int) -> int:
    """Dropout seed of one step on one rank: resume-safe because it depends on nothing else."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0] >> 1)


def set_deterministic(device: torch.device) -> None:
    torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
