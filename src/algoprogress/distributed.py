"""This process's place in a torchrun job, and the collective operations training needs."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def main_process(self) -> bool:
        """The process that writes checkpoints and the curve."""
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> Distributed:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size == 1:
            return cls()
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return cls(dist.get_rank(), world_size, int(os.environ.get("LOCAL_RANK", "0")))

    def sum(self, values, device) -> list[float]:
        return self._all_reduce(values, device, "SUM")

    def minimum(self, values, device) -> list[float]:
        return self._all_reduce(values, device, "MIN")

    def _all_reduce(self, values, device, op: str) -> list[float]:
        """``values`` reduced over the processes by ``op`` (a torch.distributed.ReduceOp name)."""
        if not self.active:
            return list(values)
        import torch
        import torch.distributed as dist

        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=getattr(dist.ReduceOp, op))
        return tensor.tolist()

    def any(self, flags, device) -> list[bool]:
        return [total > 0 for total in self.sum([float(bool(f)) for f in flags], device)]

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()
