r"""Gather-multiply-scatter for DimeNet's triplets (package-private): a thin front of
:func:`gnn.core.ops.gather_mul_scatter`, which holds the memory-lean autograd.

.. math::
    \mathrm{out}_e = \sum_{t:\, \mathrm{sidx}_t = e} a_{\mathrm{gidx}_t} \odot s_t

with ``a`` ``[Na, C]`` (per edge), ``s`` ``[T, C]`` (per triplet), ``out`` ``[size, C]``: the forward
keeps ``a`` and ``s`` only, and the first and second backward keep no ``[T, C]`` gathers.
"""

from __future__ import annotations

from torch import Tensor

from gnn.core import ops

__all__ = ["gather_mul_scatter"]


def gather_mul_scatter(
    a: Tensor, s: Tensor, gidx: Tensor, sidx: Tensor, sptr: Tensor | None, size: int
) -> Tensor:
    r"""``out[e] = sum_{t: sidx_t = e} a[gidx_t] * s[t]`` (``sptr``: offsets of a sorted ``sidx``,
    or ``None``); see the module docstring. Shapes: ``a [Na, C]``, ``s [T, C]``, ``gidx``,
    ``sidx`` ``[T]`` -> ``[size, C]``."""
    return ops.gather_mul_scatter(a, s, gidx, sidx, size, ptr=sptr)
