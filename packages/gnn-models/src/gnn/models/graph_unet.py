r"""Graph U-Nets (Gao & Ji, 2019): :class:`GraphUNet`."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from gnn.core import validation as v
from gnn.core.nn.mlp import resolve_activation
from gnn.core.utils import add_self_loops, coalesce, remove_self_loops

__all__ = ["GraphUNet"]


def _repeat(value: float | list[float], length: int) -> list[float]:
    """``value`` as a list of ``length`` entries (a short list is padded with its last entry)."""
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            raise ValueError("'pool_ratios' must not be an empty list")
        values = list(value)[:length]
        return values + [values[-1]] * (length - len(values))
    return [value] * length


class GraphUNet(torch.nn.Module):
    r"""The Graph U-Net: ``depth`` TopK pooling steps down, then back up with skip connections.

    Down path: :math:`\mathbf{h}_0 = \sigma(\mathrm{GCN}_0(\mathbf{x}, A))`; at level
    :math:`l = 1..d` the graph is augmented to :math:`A_l^{+} = (A_{l-1} + I)^2`
    without self loops (2-hop connectivity, weights multiplied along paths),
    :class:`~gnn.pool.TopKPooling` keeps ``pool_ratios[l-1]`` of its nodes, and
    :math:`\mathbf{h}_l = \sigma(\mathrm{GCN}_l(\cdot))`. Up path, for
    :math:`l = d-1 .. 0`: the coarse features are put back at the kept nodes' rows
    (zeros elsewhere), added to (``sum_res``) or concatenated with the skip
    features :math:`\mathbf{h}_l`, and convolved on level :math:`l`'s graph; all but
    the last up convolution are followed by :math:`\sigma`. Every convolution is a
    :class:`~gnn.conv.GCNConv` with ``improved=True``.

    Args:
        in_channels: input feature size.
        hidden_channels: feature size inside the U-Net.
        out_channels: output feature size.
        depth: number of pooling levels (at least 1).
        pool_ratios: TopK ratio per level (one number for all).
        sum_res: add the skip features (else concatenate them).
        act: activation name, module or callable.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]``, ``batch`` ``[N]``,
        ``edge_weight`` ``[E]`` -> ``[N, out_channels]``.

    Example:
        >>> model = GraphUNet(8, 16, 4, depth=2)
        >>> model(torch.randn(6, 8), torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])).shape
        torch.Size([6, 4])
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        depth: int,
        pool_ratios: float | list[float] = 0.5,
        sum_res: bool = True,
        act: str | Callable = "relu",
    ) -> None:
        super().__init__()
        from gnn.conv import GCNConv
        from gnn.pool import TopKPooling

        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"'depth' must be a positive int, got {depth!r}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.depth = depth
        self.pool_ratios = _repeat(pool_ratios, depth)
        self.act = resolve_activation(act)
        self.sum_res = sum_res

        channels = hidden_channels
        self.down_convs = torch.nn.ModuleList([GCNConv(in_channels, channels, improved=True)])
        self.pools = torch.nn.ModuleList()
        for ratio in self.pool_ratios:
            self.pools.append(TopKPooling(channels, ratio))
            self.down_convs.append(GCNConv(channels, channels, improved=True))
        up_in = channels if sum_res else 2 * channels
        self.up_convs = torch.nn.ModuleList(GCNConv(up_in, channels, improved=True) for _ in range(depth - 1))
        self.up_convs.append(GCNConv(up_in, out_channels, improved=True))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize every convolution and pooling layer."""
        for module in [*self.down_convs, *self.pools, *self.up_convs]:
            module.reset_parameters()

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        batch: Tensor | None = None,
        edge_weight: Tensor | None = None,
    ) -> Tensor:
        """Run the U-Net (see the class docstring)."""
        v.check_tensor("x", x)
        v.check_edge_index(edge_index)
        if batch is None:
            batch = edge_index.new_zeros(x.size(0))
        if edge_weight is None:
            edge_weight = x.new_ones(edge_index.size(1))
        v.check_tensor("edge_weight", edge_weight)
        if edge_weight.dim() != 1 or edge_weight.size(0) != edge_index.size(1):
            raise ValueError(
                f"'edge_weight' must have shape [{edge_index.size(1)}] (one weight per edge), "
                f"got {v.describe(edge_weight)}"
            )

        x = self.act(self.down_convs[0](x, edge_index, edge_weight))
        skips = [(x, edge_index, edge_weight)]
        perms = []
        for level in range(1, self.depth + 1):
            edge_index, edge_weight = self.augment_adj(edge_index, edge_weight, x.size(0))
            x, edge_index, edge_weight, batch, perm, _ = self.pools[level - 1](
                x, edge_index, edge_weight, batch
            )
            x = self.act(self.down_convs[level](x, edge_index, edge_weight))
            if level < self.depth:
                skips.append((x, edge_index, edge_weight))
            perms.append(perm)

        for step in range(self.depth):
            level = self.depth - 1 - step
            res, edge_index, edge_weight = skips[level]
            up = res.new_zeros(res.shape).index_put((perms[level],), x)
            x = res + up if self.sum_res else torch.cat([res, up], dim=-1)
            x = self.up_convs[step](x, edge_index, edge_weight)
            if step < self.depth - 1:
                x = self.act(x)
        return x

    def augment_adj(self, edge_index: Tensor, edge_weight: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
        r"""The 2-hop graph :math:`(A + I)^2` without self loops, as ``(edge_index, edge_weight)``.

        :math:`A` sums duplicate edges and drops given self loops; ``A[i, j]`` is the
        weight of the edge ``i -> j`` (``edge_index[0] = i``). The result lists each
        pair once, sorted by ``(i, j)``.
        """
        edge_index, edge_weight = remove_self_loops(edge_index, edge_weight)
        edge_index, edge_weight = add_self_loops(edge_index, edge_weight, num_nodes=num_nodes)
        edge_index, edge_weight = coalesce(edge_index, edge_weight, num_nodes)
        adj = torch.sparse_coo_tensor(edge_index.long(), edge_weight, (num_nodes, num_nodes)).to_sparse_csr()
        square = (adj @ adj).to_sparse_coo().coalesce()
        return remove_self_loops(square.indices(), square.values())

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.hidden_channels}, {self.out_channels}, "
            f"depth={self.depth}, pool_ratios={self.pool_ratios})"
        )
