"""Pure-torch reference of :func:`gnn.core.ops.gather_matmul` (the per-row typed matmul).

Assumes validated inputs (see :mod:`gnn.core.ops.relational`). Two routes compute the same
numbers; :func:`use_table` picks the cheaper one from the sizes alone, and compiled
backends follow the same rule:

* **table** (an ``index`` is given and ``N * T <= E``): every row times every type once,
  ``table = inputs @ [other_0 | ... | other_{T-1}]`` (``[N, T * F_out]``), then one gather
  of row ``index[e] * T + types[e]`` per output row;
* **grouped**: the rows are gathered (``inputs[index]``), ordered by type (a stable sort),
  multiplied type by type with one matmul per type, and put back in their order.

Neither route forms the ``[E, F_in, F_out]`` tensor of per-row weight matrices.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["gather_matmul", "use_table"]


def use_table(num_rows: int, num_types: int, num_out: int, indexed: bool) -> bool:
    """Whether the table route is the cheaper one: it multiplies ``num_rows * num_types`` rows,
    the grouped route ``num_out`` (and gathers them first), so the table wins when
    ``num_rows * num_types <= num_out``; without an ``index`` every row is used once and the
    grouped route is always the cheaper."""
    return indexed and num_rows * num_types <= num_out


def _table_route(inputs: Tensor, types: Tensor, other: Tensor, index: Tensor) -> Tensor:
    num_types, f_in, f_out = other.shape
    wide = other.transpose(0, 1).reshape(f_in, num_types * f_out)
    table = (inputs @ wide).view(inputs.size(0) * num_types, f_out)
    return table.index_select(0, index * num_types + types)


def gather_matmul(inputs: Tensor, types: Tensor, other: Tensor, index: Tensor | None) -> Tensor:
    """``out[e] = inputs[index[e]] @ other[types[e]]`` (``inputs[e]`` without ``index``)."""
    num_types, _, f_out = other.shape
    types = types.long()
    index = None if index is None else index.long()
    num_out = types.numel()
    if torch.compiler.is_compiling():
        # the grouped route's segment sizes are data: under tracing, the table route (over
        # every row when there is no index) keeps every shape static
        if index is None:
            index = torch.arange(num_out, device=types.device)
        return _table_route(inputs, types, other, index)
    if use_table(inputs.size(0), num_types, num_out, index is not None):
        assert index is not None
        return _table_route(inputs, types, other, index)
    rows = inputs if index is None else inputs.index_select(0, index)
    order = torch.argsort(types, stable=True)
    sizes = torch.bincount(types, minlength=num_types).tolist() if num_out else [0] * num_types
    blocks = rows.index_select(0, order).split(sizes, dim=0)
    products = [block @ other[t] for t, block in enumerate(blocks) if block.size(0)]
    if not products:
        return inputs.new_zeros(num_out, f_out)
    grouped = torch.cat(products, dim=0)
    return grouped.new_empty(num_out, f_out).index_copy(0, order, grouped)
