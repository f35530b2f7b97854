r"""DimeNet (Gasteiger et al., 2020) and DimeNet++ (Gasteiger et al., 2020b): directional
message passing on the edges of a radius graph.

Messages live on directed edges :math:`j \to i` and are updated from the edges
:math:`k \to j` (:math:`k \ne i`) through the radial basis of the distance
:math:`d_{ji}` and the 2-D spherical Fourier-Bessel basis of :math:`(d_{kj}, \alpha_{kji})`:

.. math::
    e_{\mathrm{RBF},n}(d) = u(d/c)\,\sin(n\pi d/c), \qquad
    a_{\mathrm{SBF},ln}(d, \alpha) = u(d/c)\,\sqrt{\tfrac{2}{j_{l+1}(z_{ln})^2}}\,
        j_l(z_{ln} d / c)\, Y_l^0(\alpha)

with the polynomial envelope :math:`u(x) = 1/x + a x^{p-1} + b x^p + c x^{p+1}`
(:class:`Envelope`, smooth to zero at :math:`x = 1`), the spherical Bessel functions
:math:`j_l`, their zeros :math:`z_{ln}` and the :math:`m = 0` real spherical harmonics
:math:`Y_l^0`, all computed in closed form in torch (:mod:`gnn.models._spherical`).
Triplets come from the CSR of the graph (no Python loop); the radius graph from
:func:`gnn.pool.radius_graph`.
"""

from __future__ import annotations

import math
import os
import os.path as osp
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Embedding, Linear

from gnn.core import ops
from gnn.core import validation as v
from gnn.core.cache import memo
from gnn.core.nn.act import no_forward_hooks
from gnn.core.nn.inits import glorot_orthogonal
from gnn.core.nn.mlp import resolve_activation
from gnn.core.ops import ptr_from_sorted_index
from gnn.pool import radius_graph

from ._lean_dense import dense_act
from ._spherical import bessel_coefficients, spherical_bessel_zeros, spherical_harmonics_m0
from .schnet import check_molecules

__all__ = [
    "BesselBasisLayer",
    "DimeNet",
    "DimeNetPlusPlus",
    "EmbeddingBlock",
    "Envelope",
    "InteractionBlock",
    "InteractionPPBlock",
    "OutputBlock",
    "OutputPPBlock",
    "ResidualLayer",
    "SphericalBasisLayer",
    "triplets",
]

#: QM9 target index -> name of the pretrained DimeNet / DimeNet++ checkpoint folder
qm9_target_dict: dict[int, str] = {
    0: "mu",
    1: "alpha",
    2: "homo",
    3: "lumo",
    5: "r2",
    6: "zpve",
    7: "U0",
    8: "U",
    9: "H",
    10: "G",
    11: "Cv",
}


def swish(x: Tensor) -> Tensor:
    r""":math:`x \sigma(x)` (SiLU)."""
    return F.silu(x)


def _resolve_act(act: str | Callable) -> Callable:
    if isinstance(act, str) and act.lower() == "swish":
        return swish  # a plain function, as in PyG (no ``act`` submodule)
    return resolve_activation(act)


# --------------------------------------------------------------------------------------
# bases
# --------------------------------------------------------------------------------------
class Envelope(torch.nn.Module):
    r"""The polynomial envelope divided by :math:`x`, with :math:`p = \text{exponent} + 1`:

    .. math::
        u(x) = \frac{1}{x} - \frac{(p+1)(p+2)}{2} x^{p-1} + p(p+2) x^p - \frac{p(p+1)}{2} x^{p+1}

    for :math:`x < 1`, else 0 (``x * u(x)`` and its first two derivatives vanish at 1).
    """

    def __init__(self, exponent: int) -> None:
        super().__init__()
        self.p = exponent + 1
        self.a = -(self.p + 1) * (self.p + 2) / 2
        self.b = self.p * (self.p + 2) * 1.0
        self.c = -self.p * (self.p + 1) / 2

    def forward(self, x: Tensor) -> Tensor:
        poly = x.pow(self.p - 1) * (self.a + x * (self.b + self.c * x))
        return (x.reciprocal() + poly) * (x < 1.0).to(x.dtype)


class BesselBasisLayer(torch.nn.Module):
    r"""Radial basis :math:`e_n(d) = u(d/c) \sin(f_n d / c)` with trainable frequencies
    :math:`f_n` (initially :math:`n\pi`, ``n = 1..num_radial``).

    Shapes: ``dist`` ``[E]`` -> ``[E, num_radial]``.
    """

    def __init__(self, num_radial: int, cutoff: float = 5.0, envelope_exponent: int = 5) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.envelope = Envelope(envelope_exponent)
        self.freq = torch.nn.Parameter(torch.empty(num_radial))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.freq.copy_(torch.arange(1, self.freq.numel() + 1, dtype=self.freq.dtype) * math.pi)

    def forward(self, dist: Tensor) -> Tensor:
        d = dist.unsqueeze(-1) / self.cutoff
        return self.envelope(d) * torch.sin(self.freq * d)


class SphericalBasisLayer(torch.nn.Module):
    r"""The 2-D spherical Fourier-Bessel basis of a triplet :math:`k \to j \to i`:

    .. math::
        a_{ln}(d_{kj}, \alpha) = u(d_{kj}/c) \frac{\sqrt 2}{|j_{l+1}(z_{ln})|}
            j_l(z_{ln} d_{kj} / c)\, Y_l^0(\alpha)

    for ``l < num_spherical``, ``n < num_radial`` (flattened ``l``-major), in closed form.

    Shapes: ``dist`` ``[E]``, ``angle`` ``[T]`` (radians), ``idx_kj`` ``[T]`` ->
    ``[T, num_spherical * num_radial]``.
    """

    def __init__(self, num_spherical: int, num_radial: int, cutoff: float = 5.0, envelope_exponent: int = 5):
        super().__init__()
        if num_spherical < 1 or num_radial < 1:
            raise ValueError(
                f"'num_spherical' and 'num_radial' must be positive, got {num_spherical}, {num_radial}"
            )
        self.num_spherical = num_spherical
        self.num_radial = num_radial
        self.cutoff = cutoff
        self.envelope = Envelope(envelope_exponent)
        zeros = torch.tensor(spherical_bessel_zeros(num_spherical, num_radial), dtype=torch.float64)
        norm = torch.empty_like(zeros)
        for deg in range(num_spherical):
            a, b = bessel_coefficients(deg + 1)
            for n in range(num_radial):
                x = zeros[deg, n].item()
                j_next = math.sin(x) * sum(c * x**-p for p, c in enumerate(a)) + math.cos(x) * sum(
                    c * x**-p for p, c in enumerate(b)
                )
                norm[deg, n] = math.sqrt(2.0) / abs(j_next)
        # constants of the closed form, not state: kept out of the state_dict (as in PyG)
        self.register_buffer("bessel_zeros", zeros, persistent=False)
        self.register_buffer("bessel_norm", norm, persistent=False)

    def radial(self, dist: Tensor) -> Tensor:
        r"""``[E]`` -> ``[E, num_spherical, num_radial]``: :math:`u(d/c)\, N_{ln} j_l(z_{ln} d/c)`."""
        d = (dist / self.cutoff).unsqueeze(-1)
        zeros = self.bessel_zeros.to(dist.dtype)
        out = []
        for deg in range(self.num_spherical):
            arg = d * zeros[deg]
            u = arg.reciprocal()
            a, b = bessel_coefficients(deg)
            pa = _poly(a, u)
            pb = _poly(b, u)
            out.append(torch.sin(arg) * pa + torch.cos(arg) * pb)
        rbf = torch.stack(out, dim=1) * self.bessel_norm.to(dist.dtype)
        return self.envelope(d).unsqueeze(-1) * rbf

    def basis(self, dist: Tensor, cos_angle: Tensor, idx_kj: Tensor) -> Tensor:
        """The basis from :math:`\\cos\\alpha` (what :class:`DimeNet` calls: no angle, so no
        ill-conditioned derivative of ``atan2`` for collinear triplets)."""
        rbf = self.radial(dist)
        cbf = spherical_harmonics_m0(self.num_spherical, cos_angle)
        out = rbf.index_select(0, idx_kj) * cbf.unsqueeze(-1)
        return out.reshape(-1, self.num_spherical * self.num_radial)

    def forward(self, dist: Tensor, angle: Tensor, idx_kj: Tensor) -> Tensor:
        return self.basis(dist, torch.cos(angle), idx_kj)


def _poly(coeffs: tuple[int, ...], u: Tensor) -> Tensor:
    """``sum_p coeffs[p] * u**p`` (Horner; integer coefficients)."""
    top = len(coeffs) - 1
    while top > 0 and coeffs[top] == 0:
        top -= 1
    out = u.new_full((), float(coeffs[top])).expand_as(u)
    for p in range(top - 1, -1, -1):
        out = out * u
        if coeffs[p]:
            out = out + float(coeffs[p])
    return out


# --------------------------------------------------------------------------------------
# blocks
# --------------------------------------------------------------------------------------
def _dense(lin: Linear, act: Callable, x: Tensor) -> Tensor:
    """``act(lin(x))``, with the memory-lean double backward of :func:`dense_act` when no hook
    could see the difference."""
    modules = (lin, act) if isinstance(act, torch.nn.Module) else (lin,)
    if no_forward_hooks(*modules):
        return dense_act(x, lin, act)
    return act(lin(x))


def _sorted_ptr(index: Tensor, size: int) -> Tensor | None:
    """Offsets of ``index`` when it is sorted (remembered per index tensor), else ``None``."""
    if torch.compiler.is_compiling():
        return None

    def compute() -> Tensor | None:
        if index.numel() > 1 and bool((index[1:] < index[:-1]).any()):
            return None
        return ptr_from_sorted_index(index, size)

    return memo(index, ("dimenet_sorted_ptr", size), compute)


def _sum_into(src: Tensor, index: Tensor, size: int) -> Tensor:
    """``out[index[e]] += src[e]`` into ``size`` rows (a segment sum when ``index`` is sorted)."""
    ptr = _sorted_ptr(index, size)
    if ptr is not None:
        return ops.segment(src, ptr, reduce="sum")
    return ops.scatter(src, index, dim=0, dim_size=size, reduce="sum")


class EmbeddingBlock(torch.nn.Module):
    r"""Initial edge messages: :math:`m_{ji} = \sigma(W [h_{z_i} \| h_{z_j} \| \sigma(W_r e(d_{ji}))] + b)`.

    The concatenation is never built: :math:`W` is split into its three column blocks and
    the atom terms are computed per atom, then gathered.

    Shapes: ``x`` ``[N]`` (atomic numbers), ``rbf`` ``[E, num_radial]``, ``i``, ``j`` ``[E]``
    -> ``[E, hidden_channels]``.
    """

    def __init__(self, num_radial: int, hidden_channels: int, act: Callable) -> None:
        super().__init__()
        self.act = act
        self.emb = Embedding(95, hidden_channels)
        self.lin_rbf = Linear(num_radial, hidden_channels)
        self.lin = Linear(3 * hidden_channels, hidden_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.emb.weight.uniform_(-math.sqrt(3), math.sqrt(3))
        self.lin_rbf.reset_parameters()
        self.lin.reset_parameters()

    def forward(self, x: Tensor, rbf: Tensor, i: Tensor, j: Tensor) -> Tensor:
        h = self.emb(x)
        rbf = _dense(self.lin_rbf, self.act, rbf)
        w_i, w_j, w_r = self.lin.weight.chunk(3, dim=1)
        atoms = h @ torch.cat([w_i, w_j], dim=0).t()  # [N, 2H]
        hid = w_i.size(0)
        out = torch.addmm(self.lin.bias, rbf, w_r.t())
        out = out + atoms[:, :hid].index_select(0, i) + atoms[:, hid:].index_select(0, j)
        return self.act(out)


class ResidualLayer(torch.nn.Module):
    r""":math:`x + \sigma(W_2 \sigma(W_1 x + b_1) + b_2)`."""

    def __init__(self, hidden_channels: int, act: Callable) -> None:
        super().__init__()
        self.act = act
        self.lin1 = Linear(hidden_channels, hidden_channels)
        self.lin2 = Linear(hidden_channels, hidden_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.lin1, self.lin2):
            glorot_orthogonal(lin.weight, scale=2.0)
            lin.bias.data.fill_(0)

    def forward(self, x: Tensor) -> Tensor:
        return x + _dense(self.lin2, self.act, _dense(self.lin1, self.act, x))


def _add_skip_layers(
    block: torch.nn.Module, hidden_channels: int, num_before_skip: int, num_after_skip: int, act: Callable
) -> None:
    """Registers ``layers_before_skip``, ``lin`` and ``layers_after_skip`` (in that order, PyG's
    keys) on an interaction block; :func:`_skip_stack` runs them."""
    block.layers_before_skip = torch.nn.ModuleList(
        [ResidualLayer(hidden_channels, act) for _ in range(num_before_skip)]
    )
    block.lin = Linear(hidden_channels, hidden_channels)
    block.layers_after_skip = torch.nn.ModuleList(
        [ResidualLayer(hidden_channels, act) for _ in range(num_after_skip)]
    )


def _reset_skip_layers(block: torch.nn.Module) -> None:
    for layer in [*block.layers_before_skip, *block.layers_after_skip]:
        layer.reset_parameters()


def _skip_stack(block: torch.nn.Module, x: Tensor, h: Tensor) -> Tensor:
    for layer in block.layers_before_skip:
        h = layer(h)
    h = _dense(block.lin, block.act, h) + x
    for layer in block.layers_after_skip:
        h = layer(h)
    return h


class InteractionBlock(torch.nn.Module):
    r"""DimeNet's interaction: directional messages through a bilinear layer,

    .. math::
        \tilde m_{ji} = \sigma(W_{ji} m_{ji}) + \sum_{k} \sum_{b,l} (W_s a_{kji})_b\,
            [\sigma(W_{kj} m_{kj}) \odot W_r e(d_{ji})]_l\, \mathbf{W}_{:,b,l}

    followed by residual layers, a skip connection to :math:`m_{ji}` and more residual layers.

    Shapes: ``x`` ``[E, H]``, ``rbf`` ``[E, R]``, ``sbf`` ``[T, S R]``, ``idx_kj``/``idx_ji``
    ``[T]`` -> ``[E, H]``.
    """

    def __init__(
        self,
        hidden_channels: int,
        num_bilinear: int,
        num_spherical: int,
        num_radial: int,
        num_before_skip: int,
        num_after_skip: int,
        act: Callable,
    ) -> None:
        super().__init__()
        self.act = act
        self.lin_rbf = Linear(num_radial, hidden_channels, bias=False)
        self.lin_sbf = Linear(num_spherical * num_radial, num_bilinear, bias=False)
        self.lin_kj = Linear(hidden_channels, hidden_channels)
        self.lin_ji = Linear(hidden_channels, hidden_channels)
        self.W = torch.nn.Parameter(torch.empty(hidden_channels, num_bilinear, hidden_channels))
        _add_skip_layers(self, hidden_channels, num_before_skip, num_after_skip, act)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_orthogonal(self.lin_rbf.weight, scale=2.0)
        glorot_orthogonal(self.lin_sbf.weight, scale=2.0)
        for lin in (self.lin_kj, self.lin_ji, self.lin):
            glorot_orthogonal(lin.weight, scale=2.0)
            lin.bias.data.fill_(0)
        with torch.no_grad():
            self.W.normal_(mean=0.0, std=2.0 / self.W.size(0))
        _reset_skip_layers(self)

    def forward(self, x: Tensor, rbf: Tensor, sbf: Tensor, idx_kj: Tensor, idx_ji: Tensor) -> Tensor:
        rbf = self.lin_rbf(rbf)
        sbf = self.lin_sbf(sbf)
        x_ji = _dense(self.lin_ji, self.act, x)
        x_kj = _dense(self.lin_kj, self.act, x) * rbf
        hid, bil = self.W.size(0), self.W.size(1)
        # per edge: y[e, b, i] = sum_l x_kj[e, l] W[i, b, l]; per triplet: sum_b sbf[t, b] y[kj_t, b, :]
        y = (x_kj @ self.W.permute(2, 1, 0).reshape(hid, bil * hid)).view(-1, bil, hid)
        msg = torch.bmm(sbf.unsqueeze(1), y.index_select(0, idx_kj)).squeeze(1)
        x_kj = _sum_into(msg, idx_ji, x.size(0))
        return _skip_stack(self, x, x_ji + x_kj)


class InteractionPPBlock(torch.nn.Module):
    r"""DimeNet++'s interaction: the bilinear layer replaced by down/up projections,

    .. math::
        \tilde m_{ji} = \sigma(W_{ji} m_{ji}) + \sigma\Big(W_{up} \sum_k
            \sigma\big(W_{down}(\sigma(W_{kj} m_{kj}) \odot W_{r2} W_{r1} e(d_{kj}))\big)
            \odot W_{s2} W_{s1} a_{kji}\Big)

    followed by residual layers, a skip connection and more residual layers.

    Shapes as :class:`InteractionBlock`.
    """

    def __init__(
        self,
        hidden_channels: int,
        int_emb_size: int,
        basis_emb_size: int,
        num_spherical: int,
        num_radial: int,
        num_before_skip: int,
        num_after_skip: int,
        act: Callable,
    ) -> None:
        super().__init__()
        self.act = act
        self.lin_rbf1 = Linear(num_radial, basis_emb_size, bias=False)
        self.lin_rbf2 = Linear(basis_emb_size, hidden_channels, bias=False)
        self.lin_sbf1 = Linear(num_spherical * num_radial, basis_emb_size, bias=False)
        self.lin_sbf2 = Linear(basis_emb_size, int_emb_size, bias=False)
        self.lin_kj = Linear(hidden_channels, hidden_channels)
        self.lin_ji = Linear(hidden_channels, hidden_channels)
        self.lin_down = Linear(hidden_channels, int_emb_size, bias=False)
        self.lin_up = Linear(int_emb_size, hidden_channels, bias=False)
        _add_skip_layers(self, hidden_channels, num_before_skip, num_after_skip, act)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.lin_rbf1, self.lin_rbf2, self.lin_sbf1, self.lin_sbf2, self.lin_down, self.lin_up):
            glorot_orthogonal(lin.weight, scale=2.0)
        for lin in (self.lin_kj, self.lin_ji, self.lin):
            glorot_orthogonal(lin.weight, scale=2.0)
            lin.bias.data.fill_(0)
        _reset_skip_layers(self)

    def forward(self, x: Tensor, rbf: Tensor, sbf: Tensor, idx_kj: Tensor, idx_ji: Tensor) -> Tensor:
        return self._interact(x, rbf, self.lin_sbf1(sbf), idx_kj, idx_ji)

    def _interact(self, x: Tensor, rbf: Tensor, sbf: Tensor, idx_kj: Tensor, idx_ji: Tensor) -> Tensor:
        """:meth:`forward` after ``lin_sbf1`` (``sbf``: ``[T, basis_emb_size]``; :class:`DimeNetPlusPlus`
        projects the basis for all its blocks in one matmul and enters here)."""
        x_ji = _dense(self.lin_ji, self.act, x)
        x_kj = _dense(self.lin_kj, self.act, x) * self.lin_rbf2(self.lin_rbf1(rbf))
        x_kj = _dense(self.lin_down, self.act, x_kj)
        # sum over the triplets k -> j -> i of x_kj[kj] * lin_sbf2(sbf): with the triplets sorted by
        # j -> i, one pass that never forms a [T, C] tensor, in any derivative
        ptr = _sorted_ptr(idx_ji, x.size(0))
        if ptr is not None and no_forward_hooks(self.lin_sbf2):
            x_kj = ops.projected_gather_sum(x_kj, sbf, self.lin_sbf2.weight, idx_kj, ptr)
        else:  # without saving [T, C] gathers
            x_kj = ops.gather_mul_scatter(x_kj, self.lin_sbf2(sbf), idx_kj, idx_ji, x.size(0), ptr=ptr)
        x_kj = _dense(self.lin_up, self.act, x_kj)
        return _skip_stack(self, x, x_ji + x_kj)


def _init_output(lin: Linear, output_initializer: str) -> None:
    if output_initializer == "zeros":
        lin.weight.data.fill_(0)
    else:
        glorot_orthogonal(lin.weight, scale=2.0)


def _check_output_initializer(output_initializer: object) -> str:
    if output_initializer not in ("zeros", "glorot_orthogonal"):
        raise ValueError(
            "'output_initializer' must be 'zeros' or 'glorot_orthogonal', got "
            f"{v.describe(output_initializer)}"
        )
    return output_initializer  # type: ignore[return-value]


class _OutputStack(torch.nn.Module):
    """What :class:`OutputBlock` and :class:`OutputPPBlock` share: ``lin_rbf``, the sum over the
    edges into atoms, an optional up-projection ``lin_up`` (DimeNet++), ``lins`` and ``lin``."""

    def __init__(
        self,
        num_radial: int,
        hidden_channels: int,
        out_emb_channels: int | None,
        out_channels: int,
        num_layers: int,
        act: Callable,
        output_initializer: str,
    ) -> None:
        super().__init__()
        self.act = act
        self.output_initializer = _check_output_initializer(output_initializer)
        self.lin_rbf = Linear(num_radial, hidden_channels, bias=False)
        width = hidden_channels
        if out_emb_channels is not None:
            self.lin_up = Linear(hidden_channels, out_emb_channels, bias=False)
            width = out_emb_channels
        self._up = out_emb_channels is not None
        self.lins = torch.nn.ModuleList([Linear(width, width) for _ in range(num_layers)])
        self.lin = Linear(width, out_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_orthogonal(self.lin_rbf.weight, scale=2.0)
        if self._up:
            glorot_orthogonal(self.lin_up.weight, scale=2.0)
        for lin in self.lins:
            glorot_orthogonal(lin.weight, scale=2.0)
            lin.bias.data.fill_(0)
        _init_output(self.lin, self.output_initializer)

    def forward(self, x: Tensor, rbf: Tensor, i: Tensor, num_nodes: int | None = None) -> Tensor:
        x = self.lin_rbf(rbf) * x
        size = num_nodes if num_nodes is not None else (int(i.max()) + 1 if i.numel() else 0)
        x = _sum_into(x, i, size)
        if self._up:
            x = self.lin_up(x)
        for lin in self.lins:
            x = self.act(lin(x))
        return self.lin(x)


class OutputBlock(_OutputStack):
    r"""Per-atom output of DimeNet: :math:`t_i = W \sigma(\dots\sigma(W_1 \sum_{j}
    (W_r e(d_{ji})) \odot m_{ji}))`.

    Shapes: ``x`` ``[E, H]``, ``rbf`` ``[E, R]``, ``i`` ``[E]`` -> ``[num_nodes, out_channels]``.
    """

    def __init__(
        self,
        num_radial: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int,
        act: Callable,
        output_initializer: str = "zeros",
    ) -> None:
        super().__init__(num_radial, hidden_channels, None, out_channels, num_layers, act, output_initializer)


class OutputPPBlock(_OutputStack):
    r"""Per-atom output of DimeNet++: as :class:`OutputBlock` with an up-projection
    ``hidden_channels -> out_emb_channels`` after the sum over edges.

    Shapes: ``x`` ``[E, H]``, ``rbf`` ``[E, R]``, ``i`` ``[E]`` -> ``[num_nodes, out_channels]``.
    """

    def __init__(
        self,
        num_radial: int,
        hidden_channels: int,
        out_emb_channels: int,
        out_channels: int,
        num_layers: int,
        act: Callable,
        output_initializer: str = "zeros",
    ) -> None:
        super().__init__(
            num_radial, hidden_channels, out_emb_channels, out_channels, num_layers, act, output_initializer
        )


# --------------------------------------------------------------------------------------
# triplets
# --------------------------------------------------------------------------------------
def triplets(
    edge_index: Tensor, num_nodes: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    r"""The triplets :math:`k \to j \to i` (:math:`k \ne i`) of a graph of edges ``j -> i``.

    For every edge :math:`e = (j \to i)`, every edge :math:`f = (k \to j)` with
    :math:`k \ne i`; built from the CSR of the graph by target (no Python loop), ordered
    by :math:`e`, then by :math:`k`.

    Returns:
        ``(i, j, idx_i, idx_j, idx_k, idx_kj, idx_ji)``: the targets and sources of the
        edges (``[E]`` each), then per triplet the three atoms and the edge ids of
        :math:`k \to j` and :math:`j \to i` (``[T]`` each).

    Example:
        >>> ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])  # path 0 - 1 - 2
        >>> triplets(ei, 3)[5:]  # (idx_kj, idx_ji): 2 -> 1 -> 0 and 0 -> 1 -> 2
        (tensor([3, 0]), tensor([1, 2]))
    """
    edge_index = v.check_edge_index(edge_index)
    v.check_index_range("edge_index", edge_index, num_nodes)
    row, col = edge_index[0].long(), edge_index[1].long()  # j -> i
    num_edges = row.numel()
    # edges sorted by (target, source): the CSR of incoming edges per node
    perm = torch.argsort(col * max(num_nodes, 1) + row)
    ptr = ptr_from_sorted_index(col.index_select(0, perm), num_nodes)
    deg = ptr[1:] - ptr[:-1]
    count = deg.index_select(0, row)  # edges k -> j for every edge j -> i
    idx_ji = torch.repeat_interleave(torch.arange(num_edges, device=row.device), count)
    first = torch.cumsum(count, 0) - count
    offset = torch.arange(idx_ji.numel(), device=row.device) - first.index_select(0, idx_ji)
    idx_kj = perm.index_select(0, ptr.index_select(0, row).index_select(0, idx_ji) + offset)
    idx_i = col.index_select(0, idx_ji)
    idx_j = row.index_select(0, idx_ji)
    idx_k = row.index_select(0, idx_kj)
    keep = idx_i != idx_k
    idx_i, idx_j, idx_k, idx_kj, idx_ji = (t[keep] for t in (idx_i, idx_j, idx_k, idx_kj, idx_ji))
    return col, row, idx_i, idx_j, idx_k, idx_kj, idx_ji


# --------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------
class DimeNet(torch.nn.Module):
    r"""DimeNet (Gasteiger et al., 2020): directional message passing.

    Edge embeddings :math:`m_{ji}` from :class:`EmbeddingBlock`, ``num_blocks``
    :class:`InteractionBlock` updates over the triplets :math:`k \to j \to i`, and the sum
    of the ``num_blocks + 1`` :class:`OutputBlock` outputs, summed per molecule:
    :math:`t = \sum_i \sum_{b=0}^{B} t_i^{(b)}`.

    Radius graph: :func:`gnn.pool.radius_graph` (``cutoff``, ``max_num_neighbors``);
    angles: :math:`\angle(\mathbf{p}_j - \mathbf{p}_i, \mathbf{p}_k - \mathbf{p}_i)` (as PyG's
    DimeNet), used through their cosine.

    Shapes: ``z`` ``[N]``, ``pos`` ``[N, 3]``, ``batch`` ``[N]`` -> ``[B, out_channels]``
    (``[out_channels]`` without ``batch``).

    Example:
        >>> model = DimeNet(32, 1, num_blocks=2, num_bilinear=4, num_spherical=3, num_radial=4)
        >>> model(torch.tensor([6, 1, 1]), torch.randn(3, 3)).shape
        torch.Size([1])
    """

    url = "https://github.com/klicperajo/dimenet/raw/master/pretrained/dimenet"

    def __init__(
        self,
        hidden_channels: int,
        out_channels: int,
        num_blocks: int,
        num_bilinear: int,
        num_spherical: int,
        num_radial: int,
        cutoff: float = 5.0,
        max_num_neighbors: int = 32,
        envelope_exponent: int = 5,
        num_before_skip: int = 1,
        num_after_skip: int = 2,
        num_output_layers: int = 3,
        act: str | Callable = "swish",
        output_initializer: str = "zeros",
    ) -> None:
        super().__init__()
        act = self._init_common(
            hidden_channels,
            num_spherical,
            num_radial,
            cutoff,
            max_num_neighbors,
            envelope_exponent,
            num_blocks,
            act,
        )
        self.output_blocks = torch.nn.ModuleList(
            [
                OutputBlock(
                    num_radial, hidden_channels, out_channels, num_output_layers, act, output_initializer
                )
                for _ in range(num_blocks + 1)
            ]
        )
        self.interaction_blocks = torch.nn.ModuleList(
            [
                InteractionBlock(
                    hidden_channels,
                    num_bilinear,
                    num_spherical,
                    num_radial,
                    num_before_skip,
                    num_after_skip,
                    act,
                )
                for _ in range(num_blocks)
            ]
        )

    def _init_common(
        self,
        hidden_channels: int,
        num_spherical: int,
        num_radial: int,
        cutoff: float,
        max_num_neighbors: int,
        envelope_exponent: int,
        num_blocks: int,
        act: str | Callable,
    ) -> Callable:
        """What DimeNet and DimeNet++ build alike (``rbf``, ``sbf``, ``emb``, in PyG's order); returns
        the resolved activation for the blocks."""
        if num_spherical < 2:
            raise ValueError(f"'num_spherical' should be greater than 1, got {v.describe(num_spherical)}")
        act = _resolve_act(act)
        self.cutoff = cutoff
        self.max_num_neighbors = max_num_neighbors
        self.num_blocks = num_blocks
        self.rbf = BesselBasisLayer(num_radial, cutoff, envelope_exponent)
        self.sbf = SphericalBasisLayer(num_spherical, num_radial, cutoff, envelope_exponent)
        self.emb = EmbeddingBlock(num_radial, hidden_channels, act)
        return act

    def reset_parameters(self) -> None:
        """Re-initialize every weight."""
        self.rbf.reset_parameters()
        self.emb.reset_parameters()
        for block in [*self.output_blocks, *self.interaction_blocks]:
            block.reset_parameters()

    def _cos_angle(self, pos: Tensor, dist: Tensor, t: tuple[Tensor, ...]) -> Tensor:
        idx_i, idx_j, idx_k, idx_kj, idx_ji = t
        pos_i = pos.index_select(0, idx_i)
        u = pos.index_select(0, idx_j) - pos_i
        w = pos.index_select(0, idx_k) - pos_i
        return (u * w).sum(-1) / (dist.index_select(0, idx_ji) * w.norm(dim=-1))

    def _projected_sbf(self, sbf: Tensor) -> tuple[Tensor, ...] | None:
        """DimeNet++: every block's ``lin_sbf1(sbf)`` from one ``[T, S R] x [S R, blocks * B]``
        matmul (one pass over the ``[T, S R]`` basis and its gradient instead of one per block),
        when no hook could see the blocks or their ``lin_sbf1`` called; else ``None``."""
        blocks = list(self.interaction_blocks)
        if not blocks or not all(type(b) is InteractionPPBlock for b in blocks):
            return None
        if not no_forward_hooks(*blocks, *(b.lin_sbf1 for b in blocks)):
            return None
        weight = torch.cat([b.lin_sbf1.weight for b in blocks], dim=0)
        both = sbf @ weight.t()
        return tuple(part.contiguous() for part in both.split(blocks[0].lin_sbf1.out_features, dim=1))

    def forward(self, z: Tensor, pos: Tensor, batch: Tensor | None = None) -> Tensor:
        r"""Energies (or other targets) per molecule; forces with
        ``-torch.autograd.grad(out.sum(), pos, create_graph=True)[0]``."""
        given = batch is not None
        z, pos, batch = check_molecules(z, pos, batch, 95)
        num_nodes = z.size(0)
        edge_index = radius_graph(pos, r=self.cutoff, batch=batch, max_num_neighbors=self.max_num_neighbors)
        i, j, idx_i, idx_j, idx_k, idx_kj, idx_ji = triplets(edge_index, num_nodes=num_nodes)
        dist = (pos.index_select(0, i) - pos.index_select(0, j)).pow(2).sum(dim=-1).sqrt()
        cos_angle = self._cos_angle(pos, dist, (idx_i, idx_j, idx_k, idx_kj, idx_ji))

        rbf = self.rbf(dist)
        sbf = self.sbf.basis(dist, cos_angle, idx_kj)
        projected = self._projected_sbf(sbf)
        x = self.emb(z, rbf, i, j)
        P = self.output_blocks[0](x, rbf, i, num_nodes=num_nodes)
        for k, (interaction, output) in enumerate(zip(self.interaction_blocks, self.output_blocks[1:])):
            if projected is not None:
                x = interaction._interact(x, rbf, projected[k], idx_kj, idx_ji)
            else:
                x = interaction(x, rbf, sbf, idx_kj, idx_ji)
            P = P + output(x, rbf, i, num_nodes=num_nodes)
        if not given:
            return P.sum(dim=0)
        size = int(batch.max()) + 1 if batch.numel() else 0
        return _sum_into(P, batch, size)

    @classmethod
    def from_qm9_pretrained(cls, root: str, dataset: Any, target: int) -> tuple[DimeNet, Any, Any, Any]:
        r"""The model of the DimeNet authors trained on QM9 ``target`` and PyG's
        ``(train, val, test)`` split of ``dataset`` (110 000 / 10 000 / rest of a random
        permutation with NumPy seed 42).

        Nothing is downloaded: the TensorFlow checkpoint of
        ``<url>/qm9_<name>/`` must already be in ``root/pretrained_dimenet[_pp]/<name>/``
        (``checkpoint``, ``ckpt.data-00000-of-00001``, ``ckpt.index``); reading it needs
        ``tensorflow``.
        """
        if not isinstance(target, int) or isinstance(target, bool) or target not in qm9_target_dict:
            raise ValueError(f"'target' must be a QM9 target in 0..11 other than 4, got {v.describe(target)}")
        plus = issubclass(cls, DimeNetPlusPlus)
        name = qm9_target_dict[target]
        folder = osp.join(
            osp.expanduser(os.fspath(root)), "pretrained_dimenet_pp" if plus else "pretrained_dimenet", name
        )
        needed = [osp.join(folder, f) for f in ("checkpoint", "ckpt.data-00000-of-00001", "ckpt.index")]
        missing = [p for p in needed if not osp.exists(p)]
        if missing:
            raise FileNotFoundError(
                f"{cls.__name__}.from_qm9_pretrained needs the file(s) {missing} (gnn never downloads); "
                f"copy the checkpoint of {cls.url}/{name} into {folder!r} first"
            )
        try:
            import tensorflow as tf
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"{cls.__name__}.from_qm9_pretrained reads a TensorFlow checkpoint: install 'tensorflow'"
            ) from err
        reader = tf.train.load_checkpoint(osp.join(folder, "ckpt"))
        model = _model_from_checkpoint(cls, lambda key: torch.from_numpy(reader.get_tensor(key)))

        import numpy as np

        random_state = np.random.RandomState(seed=42)
        perm = torch.from_numpy(random_state.permutation(np.arange(130831)))
        return model, dataset[perm[:110000]], dataset[perm[110000:120000]], dataset[perm[120000:]]


class DimeNetPlusPlus(DimeNet):
    r"""DimeNet++ (Gasteiger et al., 2020b): DimeNet with the bilinear layer replaced by
    down/up projections (:class:`InteractionPPBlock`, :class:`OutputPPBlock`).

    Angles: :math:`\angle(\mathbf{p}_i - \mathbf{p}_j, \mathbf{p}_j - \mathbf{p}_k)` (as PyG's
    DimeNet++), used through their cosine.

    Example:
        >>> model = DimeNetPlusPlus(32, 1, 2, int_emb_size=16, basis_emb_size=4, out_emb_channels=32,
        ...                         num_spherical=3, num_radial=4)
        >>> model(torch.tensor([6, 1, 1]), torch.randn(3, 3)).shape
        torch.Size([1])
    """

    url = "https://raw.githubusercontent.com/gasteigerjo/dimenet/master/pretrained/dimenet_pp"

    def __init__(
        self,
        hidden_channels: int,
        out_channels: int,
        num_blocks: int,
        int_emb_size: int,
        basis_emb_size: int,
        out_emb_channels: int,
        num_spherical: int,
        num_radial: int,
        cutoff: float = 5.0,
        max_num_neighbors: int = 32,
        envelope_exponent: int = 5,
        num_before_skip: int = 1,
        num_after_skip: int = 2,
        num_output_layers: int = 3,
        act: str | Callable = "swish",
        output_initializer: str = "zeros",
    ) -> None:
        torch.nn.Module.__init__(self)
        act = self._init_common(
            hidden_channels,
            num_spherical,
            num_radial,
            cutoff,
            max_num_neighbors,
            envelope_exponent,
            num_blocks,
            act,
        )
        self.output_blocks = torch.nn.ModuleList(
            [
                OutputPPBlock(
                    num_radial,
                    hidden_channels,
                    out_emb_channels,
                    out_channels,
                    num_output_layers,
                    act,
                    output_initializer,
                )
                for _ in range(num_blocks + 1)
            ]
        )
        self.interaction_blocks = torch.nn.ModuleList(
            [
                InteractionPPBlock(
                    hidden_channels,
                    int_emb_size,
                    basis_emb_size,
                    num_spherical,
                    num_radial,
                    num_before_skip,
                    num_after_skip,
                    act,
                )
                for _ in range(num_blocks)
            ]
        )

    def _cos_angle(self, pos: Tensor, dist: Tensor, t: tuple[Tensor, ...]) -> Tensor:
        idx_i, idx_j, idx_k, idx_kj, idx_ji = t
        pos_j = pos.index_select(0, idx_j)
        u = pos.index_select(0, idx_i) - pos_j
        w = pos_j - pos.index_select(0, idx_k)
        return (u * w).sum(-1) / (dist.index_select(0, idx_ji) * dist.index_select(0, idx_kj))


#: hyper-parameters of the QM9 models of the DimeNet authors
_QM9_HPARAMS = {
    "DimeNet": dict(
        hidden_channels=128, out_channels=1, num_blocks=6, num_bilinear=8, num_spherical=7, num_radial=6
    ),
    "DimeNetPlusPlus": dict(
        hidden_channels=128,
        out_channels=1,
        num_blocks=4,
        int_emb_size=64,
        basis_emb_size=8,
        out_emb_channels=256,
        num_spherical=7,
        num_radial=6,
    ),
}


def _model_from_checkpoint(cls: type, get: Callable[[str], Tensor]) -> DimeNet:
    """Build ``cls`` with the QM9 hyper-parameters of the DimeNet authors and copy the variables
    of their TensorFlow (Keras) checkpoint into it; ``get(path)`` returns the variable stored
    under ``path + "/.ATTRIBUTES/VARIABLE_VALUE"``. Dense kernels are ``[in, out]`` (transposed
    into ``Linear.weight``); the bilinear tensor has the layout of :class:`InteractionBlock`'s
    ``W``.

    The variable paths follow the layer names of the authors' implementation (``rbf_layer``,
    ``emb_block``, ``output_blocks/<i>``, ``int_blocks/<i>``, ...); they were checked here only
    against a checkpoint written with the same names, not against the published files.
    """
    plus = issubclass(cls, DimeNetPlusPlus)
    model = cls(**_QM9_HPARAMS["DimeNetPlusPlus" if plus else "DimeNet"])

    def copy(param: Tensor, path: str, transpose: bool = False) -> None:
        value = get(f"{path}/.ATTRIBUTES/VARIABLE_VALUE")
        value = value.t() if transpose else value
        if tuple(value.shape) != tuple(param.shape):
            raise ValueError(
                f"checkpoint variable {path!r} has shape {tuple(value.shape)}, expected {tuple(param.shape)}"
            )
        with torch.no_grad():
            param.copy_(value)

    def dense(lin: Linear, path: str) -> None:
        copy(lin.weight, f"{path}/kernel", transpose=True)
        if lin.bias is not None:
            copy(lin.bias, f"{path}/bias")

    def residuals(layers: torch.nn.ModuleList, path: str) -> None:
        for k, layer in enumerate(layers):
            dense(layer.lin1, f"{path}/{k}/dense_1")
            dense(layer.lin2, f"{path}/{k}/dense_2")

    copy(model.rbf.freq, "rbf_layer/frequencies")
    copy(model.emb.emb.weight, "emb_block/embeddings")
    dense(model.emb.lin_rbf, "emb_block/dense_rbf")
    dense(model.emb.lin, "emb_block/dense")
    for i, block in enumerate(model.output_blocks):
        dense(block.lin_rbf, f"output_blocks/{i}/dense_rbf")
        if plus:
            dense(block.lin_up, f"output_blocks/{i}/up_projection")
        for k, lin in enumerate(block.lins):
            dense(lin, f"output_blocks/{i}/dense_layers/{k}")
        dense(block.lin, f"output_blocks/{i}/dense_final")
    for i, block in enumerate(model.interaction_blocks):
        path = f"int_blocks/{i}"
        if plus:
            dense(block.lin_rbf1, f"{path}/dense_rbf1")
            dense(block.lin_rbf2, f"{path}/dense_rbf2")
            dense(block.lin_sbf1, f"{path}/dense_sbf1")
            dense(block.lin_sbf2, f"{path}/dense_sbf2")
            dense(block.lin_down, f"{path}/down_projection")
            dense(block.lin_up, f"{path}/up_projection")
        else:
            dense(block.lin_rbf, f"{path}/dense_rbf")
            dense(block.lin_sbf, f"{path}/dense_sbf")
            copy(block.W, f"{path}/bilinear")
        dense(block.lin_kj, f"{path}/dense_kj")
        dense(block.lin_ji, f"{path}/dense_ji")
        residuals(block.layers_before_skip, f"{path}/layers_before_skip")
        dense(block.lin, f"{path}/final_before_skip")
        residuals(block.layers_after_skip, f"{path}/layers_after_skip")
    return model
