"""The ops layer: the only place where graph reductions are computed.

Every function validates its inputs (when validation is on, see
:func:`gnn.core.set_validation`), then runs on the best backend that
supports the call (:mod:`gnn.core.ops.backends`): a compiled kernel when one
is installed, else the pure-torch reference (:mod:`gnn.core.ops.reference`,
:mod:`gnn.core.ops.reference_geometry`).

* reductions (:mod:`~gnn.core.ops.reduce`): :func:`scatter`, :func:`segment`,
  :func:`spmm`, :func:`softmax`, :func:`segment_matmul`;
* one-pass multi-reductions (:mod:`~gnn.core.ops.multi`): :func:`multi_reduce`,
  :func:`multi_spmm` (any subset of sum, mean, min, max, var, std and softmax-weighted sums);
* typed matmul of gathered rows (:mod:`~gnn.core.ops.relational`): :func:`gather_matmul`;
* weighted gather-sum with a memory-lean double backward (:mod:`~gnn.core.ops.gather_scatter`):
  :func:`gather_mul_scatter`;
* SiLU's derivatives for hand-written double backwards (:mod:`~gnn.core.ops.activation`):
  :func:`silu_second_order` (and :func:`will_use_grad` / :func:`grads_wanted`: whether the running
  backward pass will use a tensor's gradient, for hand-written backwards that can skip one);
* gather-multiply-sum with a projected weight (:mod:`~gnn.core.ops.projected`):
  :func:`projected_gather_sum` (DimeNet++'s triplets);
* fused attention (:mod:`~gnn.core.ops.attention`): :func:`node_score_attention`,
  :func:`additive_attention`, :func:`dot_attention`;
* geometry (:mod:`~gnn.core.ops.geometry`): :func:`knn`, :func:`radius`,
  :func:`nearest`, :func:`fps`, :func:`graclus`, :func:`grid_cluster`;
* random walks (:mod:`~gnn.core.ops.walk`): :func:`random_walk` (uniform or
  node2vec-biased).
* B-spline kernels (:mod:`~gnn.core.ops.spline`): :func:`spline_basis`,
  :func:`spline_weighting` (SplineConv).

Shapes use ``E`` for the number of elements/edges, ``N`` for the number of
groups/nodes and ``F`` for trailing feature dimensions.
"""

from __future__ import annotations

from ._dispatch import REDUCTIONS
from ._engine import grads_wanted, will_use_grad
from .activation import silu_second_order
from .attention import additive_attention, dot_attention, node_score_attention
from .backends import available, backend
from .csr import CSR, KernelGraph, from_coo, ptr_from_sorted_index, ptr_to_index
from .gather_scatter import gather_mul_scatter
from .geometry import fps, graclus, grid_cluster, knn, nearest, radius
from .multi import MULTI_REDUCTIONS, Reduction, multi_reduce, multi_spmm, sorted_groups
from .projected import projected_gather_sum
from .reduce import scatter, segment, segment_matmul, softmax, spmm
from .relational import gather_matmul
from .spline import spline_basis, spline_weighting
from .walk import random_walk

__all__ = [
    "CSR",
    "KernelGraph",
    "MULTI_REDUCTIONS",
    "REDUCTIONS",
    "Reduction",
    "additive_attention",
    "available",
    "backend",
    "dot_attention",
    "fps",
    "from_coo",
    "gather_matmul",
    "gather_mul_scatter",
    "graclus",
    "grads_wanted",
    "grid_cluster",
    "knn",
    "multi_reduce",
    "multi_spmm",
    "nearest",
    "node_score_attention",
    "projected_gather_sum",
    "ptr_from_sorted_index",
    "ptr_to_index",
    "radius",
    "random_walk",
    "scatter",
    "silu_second_order",
    "segment",
    "segment_matmul",
    "softmax",
    "sorted_groups",
    "spline_basis",
    "spline_weighting",
    "will_use_grad",
    "spmm",
]
