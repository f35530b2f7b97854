"""Fake (meta) implementations of ``gnn_kernels::gather_mul_sum`` and
``gnn_kernels::gather_mul_project`` (csrc/cpu/projected_gather.cpp), the two primitives of
gnn-core's ``projected_gather_sum``. They have no autograd formula of their own: gnn-core calls
them inside its memory-lean autograd functions, which compose every derivative from them."""

from __future__ import annotations

import torch


@torch.library.register_fake("gnn_kernels::gather_mul_sum")
def _(a, index, s, weight, ptr, order):
    return a.new_empty(ptr.shape[0] - 1, a.shape[1])


@torch.library.register_fake("gnn_kernels::gather_mul_project")
def _(g, g_index, a, a_index, weight, s, need_first=True):
    rows = a.shape[1] if s is not None else 0
    first = g_index.shape[0] if need_first else 0
    return a.new_empty(first, weight.shape[1]), a.new_empty(rows, weight.shape[1])


@torch.library.register_fake("gnn_kernels::silu_second_order")
def _(z, g, u, overwrite_u):
    return z.new_empty(z.numel()), (u if overwrite_u else z.new_empty(z.numel())), z.new_empty(z.numel())
