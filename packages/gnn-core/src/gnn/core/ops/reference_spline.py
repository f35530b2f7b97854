r"""Pure-torch references of the B-spline ops (:mod:`gnn.core.ops.spline`).

They are the correctness reference of compiled backends and what runs when no backend
supports a call. Both take validated arguments (see :func:`gnn.core.ops.spline_basis` and
:func:`gnn.core.ops.spline_weighting` for the definitions); their gradients come from
torch's autograd.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["spline_basis", "spline_weighting", "uniform_bspline", "REFERENCES"]

#: ``|floor(v)|`` beyond this is clamped before it becomes an index (far outside the kernel
#: anyway): every backend turns a huge or non-finite coordinate into the same valid index.
INDEX_LIMIT = 1e15


def uniform_bspline(t: Tensor, degree: int) -> Tensor:
    r"""The ``degree + 1`` uniform B-spline pieces that are non-zero at ``t`` ``[...]`` in ``[0, 1)``.

    Piece :math:`s` is the basis function that starts :math:`s` knots to the left of the
    interval holding the coordinate; from the Cox-de Boor recursion on integer knots:

    * degree 1: :math:`(1 - t,\ t)`;
    * degree 2: :math:`(\tfrac12(1 - t)^2,\ \tfrac12(1 + 2t - 2t^2),\ \tfrac12 t^2)`;
    * degree 3: :math:`(\tfrac16(1 - t)^3,\ \tfrac16(3t^3 - 6t^2 + 4),\
      \tfrac16(-3t^3 + 3t^2 + 3t + 1),\ \tfrac16 t^3)`.

    Returns ``[..., degree + 1]`` (the pieces sum to 1).
    """
    u = 1 - t
    if degree == 1:
        pieces = (u, t)
    elif degree == 2:
        pieces = (0.5 * u * u, 0.5 + t * (1 - t), 0.5 * t * t)
    elif degree == 3:
        t2 = t * t
        t3 = t2 * t
        pieces = (u * u * u / 6, (3 * t3 - 6 * t2 + 4) / 6, (-3 * t3 + 3 * t2 + 3 * t + 1) / 6, t3 / 6)
    else:
        raise ValueError(f"'degree' must be 1, 2 or 3, got {degree}")
    return torch.stack(pieces, dim=-1)


def _first_index(floor: Tensor, kernel_size: Tensor) -> Tensor:
    """``floor mod kernel_size`` as an int64 index in ``[0, kernel_size)`` (non-finite: 0)."""
    f = torch.nan_to_num(floor, nan=0.0, posinf=INDEX_LIMIT, neginf=-INDEX_LIMIT)
    f = f.clamp(-INDEX_LIMIT, INDEX_LIMIT).to(torch.int64)
    return torch.remainder(f, kernel_size)


def spline_basis(
    pseudo: Tensor, kernel_size: Tensor, is_open_spline: Tensor, degree: int
) -> tuple[Tensor, Tensor]:
    """B-spline tensor-product basis of every row of ``pseudo`` ``[E, D]`` (see
    :func:`gnn.core.ops.spline_basis`): ``(basis [E, S], weight_index [E, S])``, ``S = (degree + 1)^D``."""
    num_edges, dims = pseudo.shape
    kernel_size = kernel_size.to(device=pseudo.device, dtype=torch.int64)
    is_open = is_open_spline.to(device=pseudo.device, dtype=torch.int64)
    scale = (kernel_size - degree * is_open).to(pseudo.dtype)
    v = pseudo * scale  # [E, D]
    floor = torch.floor(v.detach())
    pieces = uniform_bspline(v - floor, degree)  # [E, D, m + 1], differentiable in pseudo
    shift = torch.arange(degree + 1, device=pseudo.device)
    first = _first_index(floor, kernel_size)  # [E, D]
    index = torch.remainder(first.unsqueeze(-1) + shift, kernel_size.view(1, dims, 1))  # [E, D, m + 1]

    basis = pseudo.new_ones(num_edges, 1)
    weight_index = torch.zeros(num_edges, 1, dtype=torch.int64, device=pseudo.device)
    offset = 1
    width = 1
    for d in range(dims):  # dimension d is digit d of s (dimension 0 varies fastest)
        width *= degree + 1
        basis = (pieces[:, d, :, None] * basis[:, None, :]).reshape(num_edges, width)
        weight_index = (index[:, d, :, None] * offset + weight_index[:, None, :]).reshape(num_edges, width)
        offset = offset * kernel_size[d]
    return basis, weight_index


#: edges per chunk of the reference weighting (bounds its ``[chunk, K, F_out]`` temporaries)
_CHUNK_ELEMENTS = 1 << 22


def spline_weighting(x: Tensor, weight: Tensor, basis: Tensor, weight_index: Tensor) -> Tensor:
    """``out[e] = sum_s basis[e, s] * x[e] @ weight[weight_index[e, s]]`` (see
    :func:`gnn.core.ops.spline_weighting`).

    In chunks of edges, each chunk's rows are multiplied with all ``K`` kernel matrices at once
    (one matrix product ``[C, F_in] @ [F_in, K * F_out]``) and the ``S`` products each edge needs
    are gathered. The backward pass recomputes a chunk's products instead of keeping them, so
    memory stays at one chunk's ``[C, K, F_out]`` whatever the number of edges.
    """
    return _SplineWeighting.apply(x, weight, basis, weight_index)


def _chunks(num_edges: int, k: int, f_out: int) -> list[slice]:
    if torch.compiler.is_compiling():  # one chunk: a loop over the edges would specialize the trace on E
        return [slice(None)]
    chunk = max(1, _CHUNK_ELEMENTS // max(1, k * f_out))
    return [slice(start, start + chunk) for start in range(0, num_edges, chunk)] or [slice(None)]


def _all_kernels(weight: Tensor) -> Tensor:
    """``[F_in, K * F_out]``: the kernel matrices side by side."""
    k, f_in, f_out = weight.shape
    return weight.permute(1, 0, 2).reshape(f_in, k * f_out)


class _SplineWeighting(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, basis: Tensor, weight_index: Tensor) -> Tensor:
        k, _, f_out = weight.shape
        index = weight_index.long()
        kernels = _all_kernels(weight)
        out = x.new_empty(x.size(0), f_out)
        for part in _chunks(x.size(0), k, f_out):
            xs = x[part]
            products = (xs @ kernels).view(xs.size(0), k, f_out)  # [C, K, F_out]
            picked = products.gather(1, index[part].unsqueeze(-1).expand(-1, -1, f_out))  # [C, S, F_out]
            out[part] = (basis[part].unsqueeze(-1) * picked).sum(dim=1)
        ctx.save_for_backward(x, weight, basis, index)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, basis, index = ctx.saved_tensors
        need_x, need_weight, need_basis = ctx.needs_input_grad[:3]
        k, f_in, f_out = weight.shape
        kernels = _all_kernels(weight)
        grad_x = torch.empty_like(x) if need_x else None
        grad_kernels = torch.zeros_like(kernels) if need_weight else None
        grad_basis = torch.empty_like(basis) if need_basis else None
        for part in _chunks(x.size(0), k, f_out):
            g = grad_out[part]
            if need_basis:
                xs = x[part]
                products = (xs @ kernels).view(xs.size(0), k, f_out)
                picked = products.gather(1, index[part].unsqueeze(-1).expand(-1, -1, f_out))
                grad_basis[part] = (picked * g.unsqueeze(1)).sum(dim=-1)
            if need_x or need_weight:
                # d out / d products[e, k] = (sum of basis[e, s] over the s with index k) * g[e]
                coef = basis.new_zeros(g.size(0), k).scatter_add_(1, index[part], basis[part])
                grad_products = (coef.unsqueeze(-1) * g.unsqueeze(1)).view(g.size(0), k * f_out)
                if need_x:
                    grad_x[part] = grad_products @ kernels.t()
                if need_weight:
                    grad_kernels.addmm_(x[part].t(), grad_products)
        grad_weight = None
        if need_weight:
            grad_weight = grad_kernels.view(f_in, k, f_out).permute(1, 0, 2).contiguous()
        return grad_x, grad_weight, grad_basis, None


REFERENCES = {"spline_basis": spline_basis, "spline_weighting": spline_weighting}
