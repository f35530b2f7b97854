r"""The engine of the graph-wise normalization layers: per-graph statistics and per-graph affine maps.

Every graph-wise norm of :mod:`gnn.conv.norm` (``GraphNorm``, ``InstanceNorm``,
``LayerNorm(mode="graph")``, ``PairNorm``, ``MeanSubtractionNorm``) is

.. math::
    y_n = (x_n - \mu_{b_n}) \odot R_{b_n} + Q_{b_n}, \qquad (R, Q) = f(S, M, |G|, \theta)

with, per graph :math:`g` and channel :math:`c`, the sum
:math:`S_{gc} = \sum_{n \in g} x_{nc}`, the mean :math:`\mu = S / |g|`, the centred sum of
squares :math:`M_{gc} = \sum_{n \in g} (x_{nc} - \mu_{gc})^2`, the node counts :math:`|G|`
and the layer's parameters :math:`\theta`. A layer supplies only ``f``, a few ``[B, C]``
operations. Centring before scaling keeps the precision of ``(x - mean) * R`` (a one-node
graph gives exactly ``Q``, whatever its mean).

:func:`graph_affine` evaluates this with :class:`_GraphAffine`, an autograd function
whose passes over the ``[N, C]`` data are few and fused:

* forward: :math:`S` (one read of ``x``), :math:`M` (one read), ``y`` (one read, one write);
* backward: :math:`\sum_g g \odot (x - \mu)` and :math:`\sum_g g` (one read of each), then
  ``dx`` (one read of each, one write):

.. math::
    \frac{\partial L}{\partial x_n} = g_n \odot R_{b_n} + \frac{\partial L}{\partial S_{b_n}}
    + 2 (x_n - \mu_{b_n}) \odot \frac{\partial L}{\partial M_{b_n}}

(:math:`\partial M / \partial x_n = 2 (x_n - \mu)` because the centred deviations of a graph
sum to zero), where :math:`\partial L / \partial S`, :math:`\partial L / \partial M` and the
parameters' gradients come from back-propagating :math:`\partial L / \partial R = \sum_g g
\odot (x - \mu)`, :math:`\partial L / \partial Q = \sum_g g` and
:math:`\partial L / \partial \mu = -R \odot \sum_g g` through ``f``'s small graph.

The statistics are segment sums (:func:`gnn.core.ops.segment` over ``ptr``) when ``batch``
is sorted, as in every PyG mini-batch, and scatter sums (:func:`gnn.core.ops.scatter`)
otherwise. On the CPU every pass walks the rows in blocks of a few MiB (:data:`BLOCK_ELEMENTS`;
an unsorted ``batch`` only when it has few graphs): the per-graph rows gathered for a block
(one ``index_select`` of the concatenated ``[B, kC]`` tables) and the deviations stay in
cache, and no ``[N, C]`` temporary is allocated, only the output. Under ``torch.compile`` the same formulas run as
plain differentiable tensor code (:func:`graph_affine_reference`), which the compiler fuses
itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from gnn.core import ops
from gnn.core import validation as v
from gnn.core.cache import memo
from gnn.core.utils.groups import ptr_from_sorted_index

__all__ = ["Graphs", "graph_affine", "graph_affine_reference", "graphs_of"]

#: elements (rows x channels) of one block of the CPU passes with several threads: 4 MiB of
#: float32 (two cores' L2 caches). Every elementwise op of a block is one parallel region
#: whose threads meet at a barrier, so on a busy machine (threads descheduled at barriers)
#: fewer, larger blocks suffer less; on an idle one 2-4 MiB blocks are fastest.
BLOCK_ELEMENTS = 1 << 20
#: the same with one thread (no barriers): blocks of the size of a core's L2 cache are fastest
SERIAL_BLOCK_ELEMENTS = 1 << 19


def _block_elements() -> int:
    return BLOCK_ELEMENTS if torch.get_num_threads() > 1 else SERIAL_BLOCK_ELEMENTS


StatsFn = Callable[..., tuple[Tensor | None, Tensor | None]]


def _stats_dtype(dtype: torch.dtype) -> torch.dtype:
    """Statistics of half-precision inputs are accumulated in float32."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


@dataclass(eq=False)
class Graphs:
    """How the rows of ``x`` split into graphs.

    Attributes:
        batch: ``[N]`` graph of each row, or ``None`` (all rows form one graph).
        size: the number of graphs ``B``.
        num_nodes: ``N``.
        ptr: ``[B + 1]`` offsets when ``batch`` is sorted (or ``None`` batch), else ``None``.
        counts: ``[B, 1]`` rows per graph (statistics dtype).
    """

    batch: Tensor | None
    size: int
    num_nodes: int
    ptr: Tensor | None
    counts: Tensor
    _blocks: dict = field(default_factory=dict, repr=False)

    # -- gathering per-graph rows ------------------------------------------------------------
    def take(self, table: Tensor, start: int = 0, end: int | None = None) -> Tensor:
        """``table[b_n]`` for the rows ``start:end`` (a broadcast row for a single graph)."""
        if self.batch is None:
            return table
        index = self.batch if start == 0 and end is None else self.batch[start:end]
        return table.index_select(0, index)

    # -- blocks -----------------------------------------------------------------------------
    def blocks(self, channels: int, device: torch.device) -> list[tuple[int, int, int, int, Tensor | None]]:
        """The row blocks of a pass: ``(start, end, g0, g1, ptr)`` with the block's graphs
        ``g0..g1`` and its segment offsets ``ptr`` (``None``: scatter by ``batch``).

        On the CPU, rows are walked in blocks of :data:`BLOCK_ELEMENTS` elements
        (:data:`SERIAL_BLOCK_ELEMENTS` with one thread), which keeps
        the temporaries in cache: with a sorted ``batch`` each block reduces its own range
        of graphs by segments; with an unsorted one each block scatters into all ``B``
        graphs, as long as ``B x C`` is small next to a block. Otherwise (another device,
        few rows, many graphs of an unsorted batch) one block covers all rows.
        """
        n, b = self.num_nodes, self.size
        elements = _block_elements()
        rows = max(1, elements // max(channels, 1))
        single = [(0, n, 0, b - 1, self.ptr)]
        if device.type != "cpu" or n <= rows:
            return single
        if self.ptr is None and b * channels > elements // 4:
            return single
        key = (rows, device)
        hit = self._blocks.get(key)
        if hit is not None:
            return hit
        starts = list(range(0, n, rows))
        ends = starts[1:] + [n]
        if self.ptr is None:  # unsorted: every block scatters into all graphs
            out = [(s, e, 0, b - 1, None) for s, e in zip(starts, ends)]
        else:
            if self.batch is None:
                firsts = lasts = [0] * len(starts)
            else:
                firsts = self.batch[starts].tolist()
                lasts = self.batch[[e - 1 for e in ends]].tolist()
            out = []
            for s, e, g0, g1 in zip(starts, ends, firsts, lasts):
                local = (self.ptr[g0 : g1 + 2].clamp(s, e) - s).long()
                out.append((s, e, g0, g1, local))
        self._blocks[key] = out
        return out

    def reduce(self, src: Tensor, ptr: Tensor | None, g0: int, g1: int, start: int, end: int) -> Tensor:
        """Per-graph sums of a block's rows ``src`` (rows ``start:end``): ``[g1 - g0 + 1, C]``."""
        if ptr is not None:
            return ops.segment(src, ptr, 0, "sum")
        index = self.batch if start == 0 and end == self.num_nodes else self.batch[start:end]
        return ops.scatter(src, index, 0, self.size, "sum")


def graphs_of(
    x: Tensor,
    batch: Tensor | None,
    batch_size: int | None,
    *,
    batch_name: str = "batch",
    size_name: str = "batch_size",
) -> Graphs:
    """Validate ``batch`` against ``x`` and describe the graphs.

    ``batch=None`` makes all rows one graph (``batch_size`` is then ignored, as in PyG);
    otherwise ``B`` is ``batch_size`` or ``batch.max() + 1``. A sorted ``batch`` (checked
    once per batch tensor, cached) gives ``ptr``; under ``torch.compile`` the layout is
    never inspected.
    """
    n = x.size(0)
    stats = _stats_dtype(x.dtype)
    if batch is None:
        if torch.compiler.is_compiling():  # no Python number of rows in the traced graph
            return Graphs(None, 1, n, None, torch.ones_like(x[:, :1], dtype=stats).sum(0, keepdim=True))
        ptr = torch.tensor([0, n], device=x.device)
        return Graphs(None, 1, n, ptr, torch.full((1, 1), n, dtype=stats, device=x.device))
    v.check_tensor(batch_name, batch)
    if batch.is_floating_point() or batch.is_complex() or batch.dtype == torch.bool:
        raise TypeError(f"'{batch_name}' must be an integer tensor of shape [{n}], got {v.describe(batch)}")
    v.check_index_dtype(batch_name, batch)
    if batch.dim() != 1 or batch.numel() != n:
        raise ValueError(
            f"'{batch_name}' must have shape [{n}] (one graph per row of 'x'), got {v.describe(batch)}"
        )
    if batch_size is None:
        size = int(batch.max()) + 1 if n else 0
    else:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
            raise ValueError(
                f"'{size_name}' must be a non-negative int or None, got {v.describe(batch_size)}"
            )
        size = batch_size
    v.check_index_range(batch_name, batch, size, f"graphs ('{size_name}')")
    batch = batch if batch.dtype == torch.int64 else batch.long()
    layout = None if torch.compiler.is_compiling() else _sorted_layout(batch, size)
    if layout is not None:
        ptr = layout["ptr"]
        counts = (ptr[1:] - ptr[:-1]).to(stats).unsqueeze(-1)
        return Graphs(batch, size, n, ptr, counts, layout["blocks"])
    ones = torch.ones(n, 1, dtype=stats, device=x.device)
    return Graphs(batch, size, n, None, ops.scatter(ones, batch, 0, size, "sum"))


def _sorted_layout(batch: Tensor, size: int) -> dict | None:
    """``{"ptr": ptr, "blocks": {}}`` for a sorted ``batch`` (the blocks are filled in by
    :meth:`Graphs.blocks`), ``None`` for an unsorted one; cached per batch tensor."""

    def compute() -> dict | bool:
        if batch.numel() > 1 and not bool((batch[1:] >= batch[:-1]).all()):
            return False
        return {"ptr": ptr_from_sorted_index(batch, size), "blocks": {}}

    # the batch vector's ptr (when sorted) or False, kept in the per-graph cache
    hit = memo(batch, ("norm_layout", size), compute)
    return None if hit is False else hit


# -- passes over the rows ------------------------------------------------------------------------
def _sums(graphs: Graphs, x: Tensor) -> Tensor:
    """``[B, C]`` per-graph sums of ``x`` (statistics dtype)."""
    dtype = _stats_dtype(x.dtype)
    if dtype == x.dtype and x.is_contiguous():  # one reduction reads x once, no temporary
        if graphs.ptr is not None:
            return ops.segment(x, graphs.ptr, 0, "sum")
        return ops.scatter(x, graphs.batch, 0, graphs.size, "sum")
    out = x.new_zeros((graphs.size, x.size(1)), dtype=dtype)
    for s, e, g0, g1, ptr in graphs.blocks(x.size(1), x.device):
        out[g0 : g1 + 1] += graphs.reduce(x[s:e].to(dtype), ptr, g0, g1, s, e)
    return out  # (a strided or expanded x, e.g. the gradient of a sum, is copied block by block)


def _centred_squares(graphs: Graphs, x: Tensor, mean: Tensor) -> Tensor:
    """``[B, C]`` per-graph sums of ``(x - mean[b])^2``."""
    out = mean.new_zeros((graphs.size, x.size(1)))
    for s, e, g0, g1, ptr in graphs.blocks(x.size(1), x.device):
        dev = _deviation(graphs, x, mean, s, e)
        out[g0 : g1 + 1] += graphs.reduce(dev.square_(), ptr, g0, g1, s, e)
    return out


def _deviation(graphs: Graphs, x: Tensor, mean: Tensor, start: int, end: int) -> Tensor:
    """A fresh ``x[start:end] - mean[b]`` (statistics dtype), with one temporary."""
    dev = graphs.take(mean, start, end)
    if graphs.batch is not None and x.dtype == mean.dtype:  # a fresh gather: subtract in place
        return torch.sub(x[start:end], dev, out=dev)
    return x[start:end].to(mean.dtype) - dev


def _affine(graphs: Graphs, x: Tensor, mean: Tensor, scale: Tensor | None, shift: Tensor | None) -> Tensor:
    """``(x - mean[b]) * scale[b] + shift[b]`` written block by block into one fresh output
    (``None``: factor 1, offset 0)."""
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    direct = mean.dtype == x.dtype
    c = x.size(1)
    table = torch.cat([t for t in (mean, scale, shift) if t is not None], dim=1)
    for s, e, _, _, _ in graphs.blocks(c, x.device):
        rows = graphs.take(table, s, e)
        res = torch.sub(x[s:e], rows[:, :c], out=out[s:e]) if direct else x[s:e] - rows[:, :c]
        if scale is not None and shift is not None:
            torch.addcmul(rows[:, 2 * c :], res, rows[:, c : 2 * c], out=res)
        elif scale is not None:
            res.mul_(rows[:, c:])
        elif shift is not None:
            res.add_(rows[:, c:])
        if not direct:
            out[s:e].copy_(res)
    return out


def _grad_sums(
    graphs: Graphs, grad: Tensor, x: Tensor, mean: Tensor, with_scale: bool
) -> tuple[Tensor | None, Tensor]:
    """``(sum_g grad * (x - mean), sum_g grad)`` per graph: one reduction of ``grad`` and one
    pass over the rows."""
    dtype = mean.dtype
    d_shift = _sums(graphs, grad).to(dtype)
    if not with_scale:
        return None, d_shift
    d_scale = x.new_zeros((graphs.size, x.size(1)), dtype=dtype)
    for s, e, g0, g1, ptr in graphs.blocks(x.size(1), x.device):
        dev = _deviation(graphs, x, mean, s, e)
        d_scale[g0 : g1 + 1] += graphs.reduce(dev.mul_(grad[s:e]), ptr, g0, g1, s, e)
    return d_scale, d_shift


def _grad_x(
    graphs: Graphs, grad: Tensor, x: Tensor, mean: Tensor, scale: Tensor | None, u: Tensor, w: Tensor
) -> Tensor:
    """``grad * scale[b] + (x - mean[b]) * u[b] + w[b]`` block by block (``scale=None``: 1)."""
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    direct = mean.dtype == x.dtype
    c = x.size(1)
    table = torch.cat([mean, u, w] if scale is None else [mean, u, w, scale], dim=1)
    for s, e, _, _, _ in graphs.blocks(c, x.device):
        rows = graphs.take(table, s, e)
        res = torch.sub(x[s:e], rows[:, :c], out=out[s:e]) if direct else x[s:e] - rows[:, :c]
        torch.addcmul(rows[:, 2 * c : 3 * c], res, rows[:, c : 2 * c], out=res)
        if scale is None:
            res.add_(grad[s:e])
        else:
            res.addcmul_(grad[s:e], rows[:, 3 * c :])
        if not direct:
            out[s:e].copy_(res)
    return out


class _GraphAffine(torch.autograd.Function):
    """``y = (x - mean[b]) * R[b] + Q[b]`` with ``(R, Q) = f(S, M, counts, *params)``; see the
    module text."""

    @staticmethod
    def forward(ctx, x: Tensor, graphs: Graphs, fn: StatsFn, *params: Tensor) -> Tensor:
        with torch.no_grad():
            sums = _sums(graphs, x)
            squares = _centred_squares(graphs, x, sums / graphs.counts.clamp(min=1))
        full = (graphs.size, x.size(1))
        with torch.enable_grad():
            sums.requires_grad_()
            squares.requires_grad_()
            mean = sums / graphs.counts.clamp(min=1)
            scale, shift = fn(sums, squares, graphs.counts, *params)
            scale = None if scale is None else scale.expand(full)
            shift = None if shift is None else shift.expand(full)
        out = _affine(
            graphs,
            x,
            mean.detach(),
            None if scale is None else scale.detach(),
            None if shift is None else shift.detach(),
        )
        ctx.save_for_backward(x)
        ctx.graphs = graphs
        ctx.stats = (sums, squares, mean, scale, shift, params)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        graphs = ctx.graphs
        sums, squares, mean, scale, shift, params = ctx.stats
        mean_d = mean.detach()
        scale_d = None if scale is None else scale.detach()
        d_scale, d_shift = _grad_sums(graphs, grad, x, mean_d, scale is not None and scale.requires_grad)
        # dL/dmean = -R * sum_g grad (the centring), dL/dR, dL/dQ: back through f
        pairs = [(mean, -d_shift if scale_d is None else -(scale_d * d_shift))]
        if scale is not None and scale.requires_grad:
            pairs.append((scale, d_scale))
        if shift is not None and shift.requires_grad:
            pairs.append((shift, d_shift))
        wanted = [sums, squares] + [p for p in params if isinstance(p, Tensor) and p.requires_grad]
        found = torch.autograd.grad(
            [o for o, _ in pairs], wanted, [g for _, g in pairs], retain_graph=True, allow_unused=True
        )
        d_sums = found[0] if found[0] is not None else torch.zeros_like(sums)
        d_squares = found[1] if found[1] is not None else torch.zeros_like(squares)
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = _grad_x(graphs, grad, x, mean_d, scale_d, 2 * d_squares, d_sums)
        param_grads = iter(found[2:])
        rest = [next(param_grads) if isinstance(p, Tensor) and p.requires_grad else None for p in params]
        return (grad_x, None, None, *rest)


def graph_affine(x: Tensor, graphs: Graphs, fn: StatsFn, *params: Tensor | None) -> Tensor:
    """``(x - mean[b]) * R[b] + Q[b]`` with ``(R, Q) = fn(S, M, counts, *params)``.

    Args:
        x: ``[N, C]`` node features.
        graphs: from :func:`graphs_of`.
        fn: maps the ``[B, C]`` sums ``S``, the ``[B, C]`` centred sums of squares ``M``,
            the ``[B, 1]`` node counts and ``params`` to ``R`` and ``Q`` (``[B, C]`` or
            broadcastable to it; ``None``: factor 1, offset 0); ``mean = S / max(counts, 1)``.
            It must be differentiable tensor code.
        params: tensors ``fn`` receives (their gradients flow back through it).

    Returns:
        ``[N, C]``, in the dtype of ``x``.
    """
    if torch.compiler.is_compiling():
        return graph_affine_reference(x, graphs, fn, *params)
    return _GraphAffine.apply(x, graphs, fn, *params)


def graph_affine_reference(x: Tensor, graphs: Graphs, fn: StatsFn, *params: Tensor | None) -> Tensor:
    """:func:`graph_affine` as plain differentiable tensor code (the compiled path)."""
    dtype = _stats_dtype(x.dtype)
    xs = x.to(dtype)
    if graphs.batch is None:
        sums = xs.sum(0, keepdim=True)
        mean = sums / graphs.counts.clamp(min=1)
        dev = xs - mean
        squares = (dev * dev).sum(0, keepdim=True)
    else:
        sums = ops.scatter(xs, graphs.batch, 0, graphs.size, "sum")
        mean = sums / graphs.counts.clamp(min=1)
        dev = xs - mean.index_select(0, graphs.batch)
        squares = ops.scatter(dev * dev, graphs.batch, 0, graphs.size, "sum")
    scale, shift = fn(sums, squares, graphs.counts, *params)
    full = (graphs.size, x.size(1))
    out = dev if scale is None else dev * graphs.take(scale.expand(full))
    if shift is not None:
        out = out + graphs.take(shift.expand(full))
    return out.to(x.dtype)
