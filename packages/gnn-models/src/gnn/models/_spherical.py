r"""Closed-form spherical Bessel functions, their zeros and the :math:`m = 0` real spherical
harmonics, in torch (the bases of DimeNet; no symbolic algebra at run time).

Spherical Bessel functions of the first kind follow from
:math:`j_0(x) = \sin x / x`, :math:`j_1(x) = \sin x / x^2 - \cos x / x` and the three-term
recurrence :math:`j_{l+1}(x) = \frac{2l + 1}{x} j_l(x) - j_{l-1}(x)`, so that every
:math:`j_l(x) = \sin(x)\, A_l(1/x) + \cos(x)\, B_l(1/x)` with integer polynomials
:math:`A_l, B_l` (computed once, exactly, in Python integers).

The :math:`m = 0` real spherical harmonics are
:math:`Y_l^0(\theta) = \sqrt{(2l + 1) / (4\pi)}\, P_l(\cos\theta)` with the Legendre
polynomials from :math:`(l + 1) P_{l+1}(t) = (2l + 1)\, t P_l(t) - l P_{l-1}(t)`.
"""

from __future__ import annotations

import math
from functools import cache

import torch
from torch import Tensor

__all__ = [
    "bessel_coefficients",
    "legendre_coefficients",
    "spherical_bessel",
    "spherical_bessel_zeros",
    "spherical_harmonics_m0",
]


@cache
def bessel_coefficients(order: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Integer coefficients ``(A, B)`` (index = power of ``1/x``) with
    ``j_order(x) = sin(x) * A(1/x) + cos(x) * B(1/x)``."""
    prev = ((0,), (0,))  # j_{-1} is never used: order 0 and 1 are the seeds
    cur = ((0, 1), (0,))  # j_0 = sin(x) / x
    if order == 0:
        return cur
    prev, cur = cur, ((0, 0, 1), (0, -1))  # j_1 = sin / x^2 - cos / x
    for deg in range(1, order):
        nxt = []
        for a_cur, a_prev in zip(cur, prev):
            # (2l + 1) * u * cur - prev
            shifted = [0] + [(2 * deg + 1) * c for c in a_cur]
            size = max(len(shifted), len(a_prev))
            poly = [
                (shifted[p] if p < len(shifted) else 0) - (a_prev[p] if p < len(a_prev) else 0)
                for p in range(size)
            ]
            nxt.append(tuple(poly))
        prev, cur = cur, (nxt[0], nxt[1])
    return cur


def _bessel_float(order: int, x: float) -> float:
    a, b = bessel_coefficients(order)
    u = 1.0 / x
    pa = sum(c * u**p for p, c in enumerate(a))
    pb = sum(c * u**p for p, c in enumerate(b))
    return math.sin(x) * pa + math.cos(x) * pb


@cache
def spherical_bessel_zeros(num_orders: int, num_roots: int) -> tuple[tuple[float, ...], ...]:
    r"""The first ``num_roots`` positive zeros :math:`z_{l,n}` of :math:`j_l` for
    ``l < num_orders`` (float64, bisection on the interlacing brackets: the zeros of
    :math:`j_{l+1}` lie between consecutive zeros of :math:`j_l`; those of :math:`j_0` are
    :math:`n\pi`)."""
    total = num_roots + num_orders
    zeros = [[math.pi * (n + 1) for n in range(total)]]
    for deg in range(1, num_orders):
        prev = zeros[-1]
        found = []
        for n in range(len(prev) - 1):
            lo, hi = prev[n], prev[n + 1]
            f_lo = _bessel_float(deg, lo)
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                f_mid = _bessel_float(deg, mid)
                if (f_mid > 0) == (f_lo > 0):
                    lo, f_lo = mid, f_mid
                else:
                    hi = mid
                if hi - lo <= 1e-15 * hi:
                    break
            found.append(0.5 * (lo + hi))
        zeros.append(found)
    return tuple(tuple(row[:num_roots]) for row in zeros)


def _horner(coeffs: Tensor, u: Tensor) -> Tensor:
    """``sum_p coeffs[..., p] * u**p`` for coefficients ``[..., P]`` broadcast against ``u``."""
    out = coeffs[..., -1].expand_as(u)
    for p in range(coeffs.size(-1) - 2, -1, -1):
        out = out * u + coeffs[..., p]
    return out


def spherical_bessel(order: int, x: Tensor) -> Tensor:
    r""":math:`j_l(x)` elementwise (``x != 0``), in the closed form of the module docstring."""
    a, b = bessel_coefficients(order)
    u = x.reciprocal()
    pa = _horner(torch.tensor(a, dtype=x.dtype, device=x.device), u)
    pb = _horner(torch.tensor(b, dtype=x.dtype, device=x.device), u)
    return torch.sin(x) * pa + torch.cos(x) * pb


@cache
def legendre_coefficients(degree: int) -> tuple[float, ...]:
    """Coefficients (index = power of ``t``) of the Legendre polynomial ``P_degree(t)``."""
    prev: list[float] = [1.0]
    if degree == 0:
        return tuple(prev)
    cur: list[float] = [0.0, 1.0]
    for deg in range(1, degree):
        nxt = [0.0] * (deg + 2)
        for p, c in enumerate(cur):
            nxt[p + 1] += (2 * deg + 1) * c / (deg + 1)
        for p, c in enumerate(prev):
            nxt[p] -= deg * c / (deg + 1)
        prev, cur = cur, nxt
    return tuple(cur)


def spherical_harmonics_m0(num_degrees: int, cos_angle: Tensor) -> Tensor:
    r""":math:`Y_l^0` for ``l < num_degrees`` as a function of :math:`\cos\theta`:
    ``[...]`` -> ``[..., num_degrees]``."""
    out = []
    p_prev = torch.ones_like(cos_angle)
    p_cur = cos_angle
    for deg in range(num_degrees):
        if deg == 0:
            p = p_prev
        elif deg == 1:
            p = p_cur
        else:  # l P_l = (2l - 1) t P_{l-1} - (l - 1) P_{l-2}
            p = ((2 * deg - 1) * cos_angle * p_cur - (deg - 1) * p_prev) / deg
            p_prev, p_cur = p_cur, p
        out.append(math.sqrt((2 * deg + 1) / (4 * math.pi)) * p)
    return torch.stack(out, dim=-1)
