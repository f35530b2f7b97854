r"""Typed matmul of gathered rows: :func:`gather_matmul` (FastRGCNConv's per-edge transform).

.. math::
    \mathbf{o}_e = \mathbf{x}_{\mathrm{index}[e]}\, \mathbf{W}_{\mathrm{types}[e]}

for every output row :math:`e`, with one weight matrix :math:`\mathbf{W}_t` per type. The
naive form gathers a ``[E, F_in, F_out]`` tensor of per-row matrices (``other[types]``) and
multiplies batch-wise; :func:`gather_matmul` never forms it: it either multiplies every row
by every type once and gathers the products (when ``N * T <= E``), or sorts the gathered
rows by type and runs one matmul per type (see :mod:`gnn.core.ops.reference_relational`).

Backends: a compiled backend implements ``gather_matmul(inputs [N, F_in], types [E] int64,
other [T, F_in, F_out], index [E] int64 or None) -> [E, F_out]`` with autograd to ``inputs``
and ``other``.
"""

from __future__ import annotations

from torch import Tensor

from .. import validation as v
from ._dispatch import context, run

__all__ = ["gather_matmul"]


def gather_matmul(inputs: Tensor, types: Tensor, other: Tensor, index: Tensor | None = None) -> Tensor:
    """Per-row typed matmul: ``out[e] = inputs[index[e]] @ other[types[e]]``.

    Args:
        inputs: ``[N, F_in]`` rows (node features).
        types: ``[E]`` integer type of each output row, in ``[0, T)``.
        other: ``[T, F_in, F_out]`` one weight matrix per type, same dtype as ``inputs``.
        index: optional ``[E]`` integer row of ``inputs`` that each output row reads, in
            ``[0, N)``; without it, output row ``e`` reads ``inputs[e]`` (``E = N``).

    Returns:
        ``[E, F_out]``; differentiable with respect to ``inputs`` and ``other``.

    Example:
        >>> x, w = torch.randn(4, 3), torch.randn(2, 3, 5)
        >>> out = gather_matmul(x, torch.tensor([1, 0, 1]), w, index=torch.tensor([3, 3, 0]))
        >>> torch.allclose(out[0], x[3] @ w[1])
        True
    """
    v.check_tensor("inputs", inputs)
    v.check_tensor("types", types)
    v.check_tensor("other", other)
    if inputs.dim() != 2 or not inputs.is_floating_point():
        raise ValueError(
            f"'inputs' must be a floating-point tensor of shape [N, F_in], got {v.describe(inputs)}"
        )
    if other.dtype != inputs.dtype:
        raise TypeError(f"'other' must have the dtype of 'inputs' ({inputs.dtype}), got {other.dtype}")
    if other.dim() != 3 or other.size(1) != inputs.size(1):
        raise ValueError(f"'other' must have shape [T, {inputs.size(1)}, F_out], got {v.describe(other)}")
    v.check_index_dtype("types", types)
    if types.dim() != 1:
        raise ValueError(f"'types' must be 1-D, got {v.describe(types)}")
    if index is None:
        if types.numel() != inputs.size(0):
            raise ValueError(
                f"'types' must have one entry per row of 'inputs' ({inputs.size(0)}) when no 'index' "
                f"is given, got {v.describe(types)}"
            )
    else:
        v.check_tensor("index", index)
        v.check_index_dtype("index", index)
        v.check_per_entry("index", index, types.numel(), "entry of 'types'")
        v.check_index_range("index", index, inputs.size(0), "rows of 'inputs'")
    v.check_index_range("types", types, other.size(0), "types (matrices of 'other')")
    ctx = context(inputs, None, other, work=types.numel() * inputs.size(1))
    return run("gather_matmul", ctx, inputs, types, other, index)
