"""PyG's legacy ``DataParallel`` (one process, several CUDA devices), kept for compatibility.

For real scale-out use :class:`torch.nn.parallel.DistributedDataParallel` (gloo on CPU,
NCCL on GPU): ``examples/ddp_train.py`` is the recipe, tested with two processes.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from itertools import chain
from typing import Any

import torch

from gnn.core.data import Batch

_NO_CUDA = (
    "DataParallel splits mini-batches over CUDA devices, and no CUDA device is available; "
    "run the module directly on CPU, or scale out with torch.nn.parallel.DistributedDataParallel "
    "(gloo backend on CPU, see examples/ddp_train.py)"
)


def device_split(num_nodes: Sequence[int], num_devices: int) -> list[int]:
    """Boundaries ``[0, ..., len(num_nodes)]`` of consecutive groups of graphs, one group per device,
    balanced by node count: a graph goes to device ``floor(num_devices * m / total)`` where ``m``
    is the midpoint of its node range ``[start, start + n)`` among all ``total`` nodes. Devices that
    would get no graph are dropped."""
    total = sum(num_nodes)
    bounds, start, last = [0], 0, 0
    for i, n in enumerate(num_nodes):
        device = int(num_devices * (2 * start + n) / (2 * total)) if total else 0
        if device != last:
            bounds.append(i)
            last = device
        start += n
    bounds.append(len(num_nodes))
    return sorted(set(bounds))


class DataParallel(torch.nn.DataParallel):
    r"""Run ``module`` on several CUDA devices: a list of graphs is split into one
    :class:`~gnn.core.data.Batch` per device (balanced by node count), the module is
    replicated, and the outputs are gathered on ``output_device``; gradients of every
    replica add up in ``module``.

    Use it with a loader that yields lists of graphs. Much slower than
    :class:`~torch.nn.parallel.DistributedDataParallel`, which is the recommended
    path (see ``examples/ddp_train.py``). Needs CUDA devices: without one it raises a
    ``RuntimeError`` that says so.

    Args:
        module: the module to parallelize (parameters on ``device_ids[0]``).
        device_ids: the CUDA devices (default: all).
        output_device: where outputs are gathered (default ``device_ids[0]``).
        follow_batch: attributes that get a ``<key>_batch`` vector.
        exclude_keys: attributes left out of the batches.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        device_ids: Sequence[int | torch.device] | None = None,
        output_device: int | torch.device | None = None,
        follow_batch: Sequence[str] | None = None,
        exclude_keys: Sequence[str] | None = None,
    ) -> None:
        if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
            raise RuntimeError(_NO_CUDA)
        super().__init__(module, device_ids, output_device)
        if not self.device_ids:
            raise RuntimeError(_NO_CUDA)
        warnings.warn(
            "'DataParallel' is usually much slower than 'DistributedDataParallel' even on a single "
            "machine. Please consider switching to 'DistributedDataParallel' for multi-GPU training.",
            stacklevel=2,
        )
        self.src_device = torch.device(f"cuda:{self.device_ids[0]}")
        self.follow_batch = list(follow_batch or [])
        self.exclude_keys = list(exclude_keys or [])

    def _batch(self, data_list: Sequence[Any], device: torch.device) -> Batch:
        return Batch.from_data_list(list(data_list), self.follow_batch, self.exclude_keys).to(device)

    def forward(self, data_list: Sequence[Any]) -> Any:  # type: ignore[override]
        if len(data_list) == 0:
            logging.warning(
                "DataParallel received an empty data list, which may result in unexpected behavior."
            )
            return None
        if len(self.device_ids) == 1:
            return self.module(self._batch(data_list, self.src_device))
        for t in chain(self.module.parameters(), self.module.buffers()):
            if t.device != self.src_device:
                raise RuntimeError(
                    f"Module must have its parameters and buffers on device '{self.src_device}' but found "
                    f"one of them on device '{t.device}'"
                )
        inputs = self.scatter(data_list, self.device_ids)
        replicas = self.replicate(self.module, self.device_ids[: len(inputs)])
        outputs = self.parallel_apply(replicas, inputs, None)
        return self.gather(outputs, self.output_device)

    def scatter(self, data_list: Sequence[Any], device_ids: Sequence[int]) -> list[Batch]:  # type: ignore[override]
        """One batch per device (see :func:`device_split`)."""
        num_devices = min(len(device_ids), len(data_list))
        bounds = device_split([int(data.num_nodes) for data in data_list], num_devices)
        return [
            self._batch(data_list[a:b], torch.device(f"cuda:{device_ids[i]}"))
            for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))
        ]
