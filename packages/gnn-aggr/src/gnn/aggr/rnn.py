r"""Recurrent aggregations: each group's elements, in index order, are read as a sequence.

Groups are padded with zeros to the longest group (or cut at
``max_num_elements``) and run through a batch-first recurrent network; the
result of a group is the output at the last padded step:

.. math::
    \mathbf{o}_g = \mathrm{RNN}(\mathbf{x}_{g,1}, \dots, \mathbf{x}_{g,n_g}, \mathbf{0}, \dots,
    \mathbf{0})_{N_{\max}}

These aggregations are not permutation invariant and need ``index`` sorted
in ascending order (an unsorted ``index`` raises ``ValueError``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import Aggregation

__all__ = ["GRUAggregation", "LSTMAggregation"]


def _check_max_num_elements(max_num_elements: int | None) -> None:
    if max_num_elements is not None and (
        not isinstance(max_num_elements, int) or isinstance(max_num_elements, bool) or max_num_elements <= 0
    ):
        raise ValueError(f"'max_num_elements' must be a positive int or None, got {max_num_elements!r}")


class _RNNAggregation(Aggregation):
    _rnn_cls: type[torch.nn.RNNBase] = torch.nn.LSTM
    _attr = "lstm"

    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"'{name}' must be a positive int, got {value!r}")
        if "batch_first" in kwargs:
            raise ValueError(f"{type(self).__name__} always runs batch-first; do not pass 'batch_first'")
        self.in_channels = in_channels
        self.out_channels = out_channels
        setattr(self, self._attr, self._rnn_cls(in_channels, out_channels, batch_first=True, **kwargs))

    @property
    def _rnn(self) -> torch.nn.RNNBase:
        return getattr(self, self._attr)

    def reset_parameters(self) -> None:
        self._rnn.reset_parameters()

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
        max_num_elements: int | None = None,
    ) -> Tensor:
        """``x: [E, in_channels]`` -> ``[dim_size, out_channels]`` (times 2 if bidirectional)."""
        _check_max_num_elements(max_num_elements)
        dense, _ = self.to_dense_batch(x, index, ptr, dim_size, dim, max_num_elements=max_num_elements)
        rnn = self._rnn
        if dense.size(0) == 0 or dense.size(1) == 0:  # no groups or no elements: zero state
            directions = 2 if rnn.bidirectional else 1
            size = rnn.proj_size if getattr(rnn, "proj_size", 0) > 0 else rnn.hidden_size
            return x.new_zeros(dense.size(0), directions * size)
        return rnn(dense)[0][:, -1]

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"


class LSTMAggregation(_RNNAggregation):
    r"""LSTM aggregation ("Inductive Representation Learning on Large Graphs").

    Each group's elements, in ``index`` order and zero-padded to the longest
    group, go through a batch-first :class:`torch.nn.LSTM`; the group's
    result is the output of the last step. Needs sorted ``index``; not
    permutation invariant.

    Args:
        in_channels: size of each element.
        out_channels: size of each output.
        **kwargs: further arguments of :class:`torch.nn.LSTM` (``num_layers``,
            ``bidirectional``, ...).

    Shapes: ``x: [E, in_channels]``, ``index: [E]`` (sorted) ->
    ``[dim_size, out_channels]``.

    Example:
        >>> aggr = LSTMAggregation(16, 32)
        >>> aggr(torch.randn(6, 16), torch.tensor([0, 0, 1, 1, 1, 2])).shape
        torch.Size([3, 32])
    """

    _rnn_cls = torch.nn.LSTM
    _attr = "lstm"


class GRUAggregation(_RNNAggregation):
    r"""GRU aggregation ("Graph Neural Networks with Adaptive Readouts").

    Like :class:`LSTMAggregation` with a batch-first :class:`torch.nn.GRU`:
    the group's result is the GRU output at the last (zero-padded) step.
    Needs sorted ``index``; not permutation invariant.

    Args:
        in_channels: size of each element.
        out_channels: size of each output.
        **kwargs: further arguments of :class:`torch.nn.GRU`.

    Shapes: ``x: [E, in_channels]``, ``index: [E]`` (sorted) ->
    ``[dim_size, out_channels]``.

    Example:
        >>> aggr = GRUAggregation(16, 32)
        >>> aggr(torch.randn(6, 16), torch.tensor([0, 0, 1, 1, 1, 2])).shape
        torch.Size([3, 32])
    """

    _rnn_cls = torch.nn.GRU
    _attr = "gru"
