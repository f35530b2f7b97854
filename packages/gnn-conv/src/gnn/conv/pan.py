"""PANConv: the path integral based convolution (Ma et al., 2020)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core import Linear, MessagePassing, ops
from gnn.core import validation as v
from gnn.core.utils import is_sparse
from gnn.core.utils.sparse import from_sparse

from ._utils import check_in_channels


def _sparse_result(row: Tensor, col: Tensor, value: Tensor, n: int) -> Any:
    """``M`` as PyG returns it (a ``SparseTensor``) when torch-sparse is installed, else torch COO."""
    try:
        from torch_sparse import SparseTensor  # type: ignore[import-not-found]
    except ImportError:
        indices = torch.stack([row, col]).long()
        return torch.sparse_coo_tensor(indices, value, (n, n), is_coalesced=True)
    return SparseTensor(row=row.long(), col=col.long(), value=value, sparse_sizes=(n, n), is_sorted=True)


class PANConv(MessagePassing):
    r"""The path integral based convolutional operator.

    .. math::
        \mathbf{X}^{\prime} = \mathbf{M} \mathbf{X} \mathbf{W} + \mathbf{b},
        \qquad \mathbf{M} = \mathbf{Z}^{-1/2} \sum_{n=0}^{L} e^{-\frac{E(n)}{T}}
        \mathbf{A}^{n} \mathbf{Z}^{-1/2}

    The path weights :math:`e^{-E(n)/T}` are learned: with ``weight``
    :math:`(w_0, \dots, w_L)` (initialized to ``0.5``), the ``n``-hop term is
    scaled by :math:`\prod_{k=0}^{n} w_k`. :math:`\mathbf{A}` counts the edges
    ``j -> i`` (duplicates add up; values of a sparse input are ignored) and
    :math:`\mathbf{Z}` is the diagonal matrix of the number of non-zero
    entries in each row of the sum.

    Args:
        in_channels: input feature size (``-1``: lazy).
        out_channels: output feature size.
        filter_size: the maximal path length :math:`L`.
        **kwargs: passed to :class:`~gnn.core.MessagePassing` (``aggr="add"`` by default).

    Returns:
        ``(out, M)``: ``out`` ``[N, out_channels]`` and the ``[N, N]``
        propagation matrix ``M`` (a ``torch_sparse.SparseTensor`` when
        torch-sparse is installed, as in PyG, else a coalesced
        ``torch.sparse_coo_tensor``), as consumed by ``PANPooling``.

    Shapes:
        ``x`` ``[N, F_in]``, ``edge_index`` ``[2, E]`` or sparse ``adj_t``.

    Example:
        >>> conv = PANConv(16, 32, filter_size=2)
        >>> out, M = conv(torch.randn(10, 16), torch.randint(0, 10, (2, 30)))
        >>> out.shape, M.shape
        (torch.Size([10, 32]), torch.Size([10, 10]))
    """

    fused_message = "edge_weight * x_j"

    def __init__(self, in_channels: int, out_channels: int, filter_size: int, **kwargs: Any) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        if not isinstance(filter_size, int) or filter_size < 0:
            raise ValueError(f"'filter_size' must be a non-negative int, got {filter_size!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.filter_size = filter_size
        self.lin = Linear(in_channels, out_channels)
        self.weight = Parameter(torch.empty(filter_size + 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin.reset_parameters()
        with torch.no_grad():
            self.weight.fill_(0.5)

    def forward(self, x: Tensor, edge_index: Any) -> tuple[Tensor, Any]:
        """Propagate over the path-integral matrix ``M``; returns ``(out, M)``."""
        check_in_channels(x, self.in_channels)
        if x.dim() != 2:
            raise ValueError(f"'x' must have shape [N, F], got {v.describe(x)}")
        n = x.size(0)
        dst, src, adj_value = self._pattern(edge_index, n)
        row, col, value = self.panentropy(dst, src, n, adj_value, dtype=x.dtype)
        deg = torch.bincount(row, minlength=n).to(x.dtype)
        deg_inv_sqrt = deg.pow(-0.5).masked_fill(deg == 0, 0.0)
        value = deg_inv_sqrt[row] * value * deg_inv_sqrt[col]
        out = self.propagate(torch.stack([col, row]), x=x, edge_weight=value, size=(n, n))
        return self.lin(out), _sparse_result(row, col, value, n)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.view(-1, 1) * x_j

    def _pattern(self, edge_index: Any, n: int) -> tuple[Tensor, Tensor, Tensor | None]:
        r"""``(dst, src, value)`` of every entry of ``adj_t``.

        As in PyG, the values of a torch.sparse input weight :math:`\mathbf{A}`,
        while a ``SparseTensor``'s values and ``edge_index`` count each edge once.
        """
        if is_sparse(edge_index):
            sp = from_sparse(edge_index)
            if sp.csr.num_rows != n or sp.csr.num_cols != n:
                raise ValueError(
                    f"'edge_index' must be a square [{n}, {n}] adjacency for {n} nodes, got "
                    f"[{sp.csr.num_rows}, {sp.csr.num_cols}]"
                )
            value = sp.value if isinstance(edge_index, Tensor) else None
            if value is not None and value.dim() != 1:
                raise ValueError(f"'edge_index' values must be scalars, got {v.describe(value)}")
            return sp.csr.row().long(), sp.csr.col.long(), value
        v.check_edge_index(edge_index)
        v.check_edge_index_nodes(edge_index, n)
        return edge_index[1].long(), edge_index[0].long(), None

    def panentropy(
        self,
        dst: Tensor,
        src: Tensor,
        num_nodes: int,
        adj_value: Tensor | None = None,
        dtype: torch.dtype | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        r"""The weighted path sum :math:`\sum_n (\prod_{k \le n} w_k) \mathbf{A}^n` as sorted COO.

        ``A[dst, src]`` sums ``adj_value`` (ones by default) over duplicate
        entries. Returns ``(row, col, value)`` sorted by ``(row, col)``
        without duplicates; ``value`` is differentiable with respect to
        ``weight`` (not to ``adj_value``).
        """
        n = num_nodes
        device = dst.device
        dtype = dtype or self.weight.dtype
        # path counts A^k (constant: no gradient); float64 keeps large counts exact
        with torch.no_grad():
            diag = torch.arange(n, device=device)
            rows, cols, counts = [diag], [diag], [torch.ones(n, dtype=torch.float64, device=device)]
            if self.filter_size > 0:
                adj = torch.sparse_coo_tensor(
                    torch.stack([dst, src]),
                    torch.ones(dst.numel(), dtype=torch.float64, device=device)
                    if adj_value is None
                    else adj_value.detach().to(torch.float64),
                    (n, n),
                ).coalesce()
                power = adj
                for k in range(1, self.filter_size + 1):
                    if k > 1:
                        power = torch.sparse.mm(power, adj).coalesce()
                    idx = power.indices()
                    rows.append(idx[0])
                    cols.append(idx[1])
                    counts.append(power.values())
            hop = torch.cat([torch.full_like(r, k) for k, r in enumerate(rows)])
            key = torch.cat(rows) * n + torch.cat(cols)
            uniq, inverse = torch.unique(key, sorted=True, return_inverse=True)
            count = torch.cat(counts).to(dtype)
        scale = torch.cumprod(self.weight, dim=0).to(dtype)  # prod_{k <= n} w_k
        value = ops.scatter(count * scale[hop], inverse, 0, uniq.numel(), "sum")
        return uniq // n, uniq % n, value

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, filter_size={self.filter_size})"
        )
