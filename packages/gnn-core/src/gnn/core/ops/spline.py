r"""B-spline kernels of SplineCNN (Fey et al., 2018): the basis of every edge's
pseudo-coordinates and the weighting of its features by the kernel they select.

A continuous kernel over pseudo-coordinates :math:`\mathbf{u} \in [0, 1]^D` is a
weighted sum of tensor products of 1-D B-spline basis functions of degree
:math:`m` on uniform knots, :math:`k_d` per dimension:

.. math::
    g(\mathbf{u}) = \sum_{\mathbf{p}} \mathbf{W}_{\mathbf{p}}
    \prod_{d=1}^{D} N^m_{d, p_d}(u_d).

Only :math:`(m + 1)^D` products are non-zero at a point (local support):
:func:`spline_basis` returns them and the flat indices of their weight matrices, and
:func:`spline_weighting` multiplies each edge's features by the weighted sum of those
matrices. Dimension ``d`` is scaled to ``v = u_d (k_d - m)`` for an open spline and
``v = u_d k_d`` for a closed (periodic) one; the pieces sit at knot intervals
``floor(v) + s`` (``s = 0..m``), taken modulo ``k_d``.

Both ops validate their inputs (when validation is on), then run on the best backend
(:mod:`gnn.core.ops.backends`); the pure-torch references are in
:mod:`gnn.core.ops.reference_spline`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .. import validation as v
from ._dispatch import context, run

__all__ = ["spline_basis", "spline_weighting"]


def _per_dim(name: str, value: Any, dims: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """An int/bool, a sequence or a tensor as a ``[dims]`` tensor of ``dtype``."""
    if isinstance(value, Tensor):
        t = value.detach().flatten()
        if t.is_floating_point() or t.is_complex():
            raise TypeError(f"'{name}' must hold integers or booleans, got {v.describe(value)}")
    elif isinstance(value, (bool, int)):
        t = torch.tensor([int(value)])
    elif isinstance(value, Sequence) and all(isinstance(e, (bool, int)) for e in value):
        t = torch.tensor([int(e) for e in value], dtype=torch.int64)
    else:
        raise TypeError(f"'{name}' must be an int, a sequence of ints or a tensor, got {v.describe(value)}")
    if t.numel() == 1 and dims != 1:
        t = t.expand(dims)
    if t.numel() != dims:
        raise ValueError(f"'{name}' must have {dims} entries (one per pseudo-coordinate), got {t.numel()}")
    return t.to(device=device, dtype=dtype).contiguous()


def spline_basis(
    pseudo: Tensor,
    kernel_size: Tensor | Sequence[int] | int,
    is_open_spline: Tensor | Sequence[bool] | bool,
    degree: int = 1,
) -> tuple[Tensor, Tensor]:
    r"""The non-zero B-spline basis products of every edge and the kernel indices they weigh.

    For edge :math:`e` and combination :math:`s = \sum_d s_d (m + 1)^d` (``s_d`` in ``0..m``):

    .. math::
        \text{basis}[e, s] = \prod_{d} N_{s_d}\big(v_{e,d} - \lfloor v_{e,d} \rfloor\big),\qquad
        \text{weight\_index}[e, s] = \sum_d \big((\lfloor v_{e,d} \rfloor + s_d) \bmod k_d\big)
        \prod_{d' < d} k_{d'}

    with :math:`v_{e,d} = u_{e,d}(k_d - m)` (open) or :math:`u_{e,d} k_d` (closed) and
    :math:`N_0 .. N_m` the uniform B-spline pieces of degree :math:`m`
    (:func:`gnn.core.ops.reference_spline.uniform_bspline`). ``basis`` is differentiable
    in ``pseudo``; ``weight_index`` is not.

    Args:
        pseudo: ``[E, D]`` (or ``[E]``) pseudo-coordinates, meant to lie in ``[0, 1]``.
        kernel_size: ``[D]`` number of kernel weights per dimension (an int serves every
            dimension); an open spline needs ``kernel_size > degree``.
        is_open_spline: ``[D]`` open (``True``) or closed (``False``) per dimension.
        degree: B-spline degree ``m``: 1, 2 or 3.

    Returns:
        ``(basis [E, S], weight_index [E, S] int64)`` with ``S = (degree + 1)^D``; every
        index lies in ``[0, prod(kernel_size))``.

    Example:
        >>> basis, index = spline_basis(torch.tensor([[0.3]]), [5], [True], 1)
        >>> basis, index  # 0.3 * (5 - 1) = 1.2: pieces 0.8 at knot 1, 0.2 at knot 2
        (tensor([[0.8000, 0.2000]]), tensor([[1, 2]]))
    """
    v.check_tensor("pseudo", pseudo)
    if not pseudo.is_floating_point():
        raise TypeError(f"'pseudo' must be a floating-point tensor, got {v.describe(pseudo)}")
    if pseudo.dim() == 1:
        pseudo = pseudo.view(-1, 1)
    if pseudo.dim() != 2 or pseudo.size(1) == 0:
        raise ValueError(f"'pseudo' must have shape [E, D] with D >= 1 (or [E]), got {v.describe(pseudo)}")
    if isinstance(degree, bool) or not isinstance(degree, int) or degree not in (1, 2, 3):
        raise ValueError(f"'degree' must be 1, 2 or 3, got {degree!r}")
    dims = pseudo.size(1)
    device = pseudo.device
    kernel_size = _per_dim("kernel_size", kernel_size, dims, torch.int64, device)
    is_open_spline = _per_dim("is_open_spline", is_open_spline, dims, torch.uint8, device)
    if v.validation_enabled() and not torch.compiler.is_compiling():
        sizes, opened = kernel_size.tolist(), is_open_spline.tolist()
        if min(sizes) < 1:
            raise ValueError(f"'kernel_size' must be positive, got {sizes}")
        for d, (k, is_open) in enumerate(zip(sizes, opened)):
            if is_open and k <= degree:
                raise ValueError(
                    f"'kernel_size' must exceed the degree ({degree}) for an open B-spline, "
                    f"got {k} in dimension {d}"
                )
        if pseudo.numel() and not bool(torch.isfinite(pseudo).all()):
            raise ValueError("'pseudo' holds NaN or infinite coordinates")
    ctx = context(pseudo, None, work=pseudo.size(0) * (degree + 1) ** dims)
    return run("spline_basis", ctx, pseudo, kernel_size, is_open_spline, degree)


def spline_weighting(x: Tensor, weight: Tensor, basis: Tensor, weight_index: Tensor) -> Tensor:
    r"""Each edge's features times its B-spline kernel:
    :math:`\text{out}[e] = \sum_s \text{basis}[e, s]\, x[e] \, W[\text{weight\_index}[e, s]]`.

    Differentiable in ``x``, ``weight`` and ``basis``. A compiled backend forms no
    ``[E, F_in, F_out]`` (nor ``[E, K, F_out]``) tensor.

    Args:
        x: ``[E, F_in]`` features of each edge's source node (``x_j``).
        weight: ``[K, F_in, F_out]`` kernel matrices.
        basis: ``[E, S]`` basis products (:func:`spline_basis`).
        weight_index: ``[E, S]`` integer indices into ``weight``, in ``[0, K)``.

    Returns:
        ``[E, F_out]``.

    Example:
        >>> basis, index = spline_basis(torch.rand(6, 2), [3, 3], [True, True], 1)
        >>> spline_weighting(torch.randn(6, 4), torch.randn(9, 4, 8), basis, index).shape
        torch.Size([6, 8])
    """
    v.check_tensor("x", x)
    v.check_tensor("weight", weight)
    v.check_tensor("basis", basis)
    v.check_tensor("weight_index", weight_index)
    if x.dim() != 2 or not x.is_floating_point():
        raise ValueError(f"'x' must be a floating tensor of shape [E, F_in], got {v.describe(x)}")
    if weight.dim() != 3 or weight.size(1) != x.size(1):
        raise ValueError(f"'weight' must have shape [K, {x.size(1)}, F_out], got {v.describe(weight)}")
    if weight.dtype != x.dtype:
        raise TypeError(f"'weight' must have the dtype of 'x' ({x.dtype}), got {weight.dtype}")
    if basis.dim() != 2 or basis.size(0) != x.size(0) or not basis.is_floating_point():
        raise ValueError(
            f"'basis' must be a floating tensor of shape [{x.size(0)}, S], got {v.describe(basis)}"
        )
    v.check_index_dtype("weight_index", weight_index)
    if weight_index.shape != basis.shape:
        raise ValueError(
            f"'weight_index' must have the shape of 'basis' {list(basis.shape)}, got {v.describe(weight_index)}"
        )
    if weight.size(0) == 0 and weight_index.numel():
        raise ValueError("'weight' holds no kernel matrix (K = 0) but 'weight_index' refers to some")
    v.check_index_range("weight_index", weight_index, weight.size(0), "kernel matrices")
    ctx = context(x, None, weight, basis, work=basis.numel() * weight.size(1) * weight.size(2))
    return run("spline_weighting", ctx, x, weight, basis.to(x.dtype), weight_index)
