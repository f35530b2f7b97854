r"""ViSNet: equivariant vector-scalar interactive message passing (Wang et al., 2024,
"Enhancing Geometric Representations for Molecules with Equivariant Vector-Scalar Interactive
Message Passing").

Every atom :math:`i` carries a scalar :math:`\mathbf{h}_i \in \mathbb{R}^F` and a vector
feature :math:`\vec{\mathbf{v}}_i \in \mathbb{R}^{S \times F}`, whose :math:`S = (l_{max}+1)^2 - 1`
rows transform like the real spherical harmonics of degree 1 (and 2); every edge
:math:`j \to i` of the radius graph (self loops included) carries a scalar
:math:`\mathbf{f}_{ij}` and the harmonics :math:`\mathbf{d}_{ij} = Y(\hat{\mathbf{r}}_{ij})`
of its direction. One block (:class:`ViS_MP`) updates them as

.. math::
    \alpha_{ij} &= \mathrm{SiLU}\big(\textstyle\sum_c q_i k_j\, \mathrm{SiLU}(W_{dk} \mathbf{f}_{ij})\big)
        \,\phi(r_{ij}) \quad \text{(per head)} \\
    \mathbf{m}_{ij} &= \alpha_{ij}\, \mathbf{v}_j \odot \mathrm{SiLU}(W_{dv} \mathbf{f}_{ij}),
    \qquad [\mathbf{s}^1, \mathbf{s}^2] = \mathrm{SiLU}(W_s \mathbf{m}_{ij}) \\
    \mathbf{m}_i &= \textstyle\sum_j \mathbf{m}_{ij}, \qquad
    \vec{\mathbf{m}}_i = \textstyle\sum_j \vec{\mathbf{v}}_j \odot \mathbf{s}^1
        + \mathbf{d}_{ij} \otimes \mathbf{s}^2 \\
    [\mathbf{o}^1, \mathbf{o}^2, \mathbf{o}^3] &= W_o \mathbf{m}_i, \quad
    \Delta\mathbf{h}_i = \langle U_1\vec{\mathbf{v}}_i, U_2\vec{\mathbf{v}}_i\rangle \odot \mathbf{o}^2
        + \mathbf{o}^3, \quad
    \Delta\vec{\mathbf{v}}_i = U_3\vec{\mathbf{v}}_i \odot \mathbf{o}^1 + \vec{\mathbf{m}}_i \\
    \Delta\mathbf{f}_{ij} &= \mathrm{SiLU}(W_f \mathbf{f}_{ij}) \odot
        \langle \mathrm{Rej}_{\mathbf{d}_{ij}}(W_t \vec{\mathbf{v}}_i),
        \mathrm{Rej}_{-\mathbf{d}_{ij}}(W_s \vec{\mathbf{v}}_j)\rangle

after a LayerNorm of :math:`\mathbf{h}` and a vector norm of :math:`\vec{\mathbf{v}}`
(:math:`\phi` the cosine cutoff, :math:`\mathrm{Rej}_{\mathbf{d}}(\vec{\mathbf{w}}) =
\vec{\mathbf{w}} - \langle \vec{\mathbf{w}}, \mathbf{d}\rangle \mathbf{d}`); the last block
leaves the edges alone. The ``vertex=True`` variant (:class:`ViS_MP_Vertex`) adds a second,
receiver-only rejection term to :math:`\Delta\mathbf{f}_{ij}`. A gated equivariant head reads
one scalar per atom; the molecule's energy is its (atom-reference shifted) sum.

The classes keep PyG 2.8's names, signatures, ``repr`` and ``state_dict`` keys, so PyG
checkpoints load with ``strict=True``. The radius graph comes from
:func:`gnn.pool.radius_graph`; messages run through :class:`gnn.core.MessagePassing`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import Embedding, LayerNorm, Linear, Parameter, SiLU

from gnn.core import MessagePassing, ops
from gnn.pool import radius_graph

from ._molecule import check_molecules, check_positive, unit_edges
from ._utils import check_int

__all__ = [
    "Atomref",
    "CosineCutoff",
    "Distance",
    "EdgeEmbedding",
    "EquivariantScalar",
    "ExpNormalSmearing",
    "GatedEquivariantBlock",
    "NeighborEmbedding",
    "Sphere",
    "VecLayerNorm",
    "ViSNet",
    "ViSNetBlock",
    "ViS_MP",
    "ViS_MP_Vertex",
]

_VECNORM_TYPES = (None, "none", "max_min", "rms")
_REDUCE_OPS = ("sum", "add", "mean", "min", "max", "mul")


def _xavier_linear(lin: Linear) -> None:
    torch.nn.init.xavier_uniform_(lin.weight)
    if lin.bias is not None:
        torch.nn.init.zeros_(lin.bias)


# -- geometry ---------------------------------------------------------------------------
class CosineCutoff(torch.nn.Module):
    r"""The cosine cutoff :math:`\phi(d) = \tfrac12\big(\cos(\pi d / c) + 1\big)` for
    :math:`d < c`, else 0. Shapes: ``[*]`` -> ``[*]``.

    Example:
        >>> CosineCutoff(5.0)(torch.tensor([0.0, 2.5, 6.0]))
        tensor([1.0000, 0.5000, 0.0000])
    """

    def __init__(self, cutoff: float) -> None:
        super().__init__()
        self.cutoff = cutoff

    def forward(self, distances: Tensor) -> Tensor:
        inside = (distances < self.cutoff).to(distances.dtype)
        return 0.5 * (torch.cos(distances * (math.pi / self.cutoff)) + 1.0) * inside


class Distance(torch.nn.Module):
    r"""The radius graph of the atoms with its edge vectors and lengths.

    Edges :math:`j \to i` (``edge_index[0] = j``) join atoms of one molecule closer than
    ``cutoff`` (at most ``max_num_neighbors`` per atom, a self loop per atom with
    ``add_self_loops``), built by :func:`gnn.pool.radius_graph`.

    Returns:
        ``(edge_index [2, E], edge_weight [E], edge_vec [E, 3])`` with
        ``edge_vec = pos[j] - pos[i]`` and ``edge_weight`` its length (0 on self loops).
    """

    def __init__(self, cutoff: float, max_num_neighbors: int = 32, add_self_loops: bool = True) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.max_num_neighbors = max_num_neighbors
        self.add_self_loops = add_self_loops

    def forward(self, pos: Tensor, batch: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        edge_index = radius_graph(
            pos,
            r=self.cutoff,
            batch=batch,
            loop=self.add_self_loops,
            max_num_neighbors=self.max_num_neighbors,
        )
        edge_vec, edge_weight, _ = unit_edges(pos, edge_index)
        return edge_index, edge_weight, edge_vec


class Sphere(torch.nn.Module):
    r"""Real spherical harmonics of degree 1 (and 2 for ``lmax=2``) of edge vectors, in the
    component normalisation that PyG's ViSNet uses:

    .. math::
        Y_1 = (x, y, z), \quad
        Y_2 = \big(\sqrt3\, xz,\ \sqrt3\, xy,\ y^2 - \tfrac12(x^2 + z^2),\ \sqrt3\, yz,\
              \tfrac{\sqrt3}{2}(z^2 - x^2)\big).

    Shapes: ``[E, 3]`` -> ``[E, 3]`` (``lmax=1``) or ``[E, 8]`` (``lmax=2``).
    """

    def __init__(self, lmax: int = 2) -> None:
        super().__init__()
        self.lmax = lmax

    def forward(self, edge_vec: Tensor) -> Tensor:
        x, y, z = edge_vec[..., 0], edge_vec[..., 1], edge_vec[..., 2]
        if self.lmax == 1:
            return torch.stack([x, y, z], dim=-1)
        r3 = math.sqrt(3.0)
        xx, zz = x * x, z * z
        deg2 = [r3 * x * z, r3 * x * y, y * y - 0.5 * (xx + zz), r3 * y * z, 0.5 * r3 * (zz - xx)]
        return torch.stack([x, y, z, *deg2], dim=-1)


class ExpNormalSmearing(torch.nn.Module):
    r"""PhysNet's exponential-normal radial basis:
    :math:`e_k(d) = \phi(d) \exp\big(-\beta_k (e^{-\alpha d} - \mu_k)^2\big)`, :math:`\alpha = 5 / c`,
    the :math:`\mu_k` evenly spaced in :math:`[e^{-c}, 1]` and
    :math:`\beta_k = \big(2 (1 - e^{-c}) / K\big)^{-2}` (learnable with ``trainable``).

    Shapes: ``[E]`` -> ``[E, num_rbf]``.
    """

    def __init__(self, cutoff: float = 5.0, num_rbf: int = 128, trainable: bool = True) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.num_rbf = num_rbf
        self.trainable = trainable
        self.cutoff_fn = CosineCutoff(cutoff)
        self.alpha = 5.0 / cutoff
        means, betas = self._initial_params()
        if trainable:
            self.register_parameter("means", Parameter(means))
            self.register_parameter("betas", Parameter(betas))
        else:
            self.register_buffer("means", means)
            self.register_buffer("betas", betas)

    def _initial_params(self) -> tuple[Tensor, Tensor]:
        start = math.exp(-self.cutoff)
        means = torch.linspace(start, 1.0, self.num_rbf)
        betas = torch.full((self.num_rbf,), (2.0 / self.num_rbf * (1.0 - start)) ** -2)
        return means, betas

    def reset_parameters(self) -> None:
        means, betas = self._initial_params()
        with torch.no_grad():
            self.means.copy_(means)
            self.betas.copy_(betas)

    def forward(self, dist: Tensor) -> Tensor:
        dist = dist.unsqueeze(-1)
        basis = torch.exp(-self.betas * (torch.exp(-self.alpha * dist) - self.means) ** 2)
        return self.cutoff_fn(dist) * basis


class VecLayerNorm(torch.nn.Module):
    r"""Normalisation of vector features ``[N, S, F]`` (``S`` = 3 or 8; for 8 the degree-1 and
    degree-2 parts are normalised separately), then a per-channel scale ``weight``.

    ``norm_type="max_min"``: with :math:`n_{c} = \lVert\vec{\mathbf{v}}_{c}\rVert` per channel,
    :math:`\vec{\mathbf{v}}_c \mapsto \mathrm{ReLU}\big((n_c - \min n) / (\max n - \min n)\big)\,
    \vec{\mathbf{v}}_c / n_c` (a zero range counts as 1). ``None``/``"none"`` and, as in PyG 2.8.1
    (where it normalises nothing), ``"rms"`` apply only the scale.
    """

    def __init__(self, hidden_channels: int, trainable: bool, norm_type: str | None = "max_min") -> None:
        super().__init__()
        if norm_type not in _VECNORM_TYPES:
            raise ValueError(f"'norm_type' must be one of {_VECNORM_TYPES}, got {norm_type!r}")
        self.hidden_channels = hidden_channels
        self.norm_type = norm_type
        self.eps = 1e-12
        weight = torch.ones(hidden_channels)
        if trainable:
            self.register_parameter("weight", Parameter(weight))
        else:
            self.register_buffer("weight", weight)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.fill_(1.0)

    def _max_min(self, vec: Tensor) -> Tensor:
        norm = torch.linalg.vector_norm(vec, dim=1, keepdim=True).clamp(min=self.eps)  # [N, 1, F]
        low = norm.amin(dim=-1, keepdim=True)
        span = norm.amax(dim=-1, keepdim=True) - low
        span = torch.where(span == 0, torch.ones_like(span), span)
        return torch.relu((norm - low) / span) * (vec / norm)

    def forward(self, vec: Tensor) -> Tensor:
        if vec.dim() != 3 or vec.size(1) not in (3, 8):
            raise ValueError(
                f"'vec' must have shape [N, 3, F] or [N, 8, F] (degree 1, or degrees 1 and 2), got "
                f"a tensor of shape {list(vec.shape)}"
            )
        if self.norm_type == "max_min":
            if vec.size(1) == 3:
                vec = self._max_min(vec)
            else:
                deg1, deg2 = vec.split([3, 5], dim=1)
                vec = torch.cat([self._max_min(deg1), self._max_min(deg2)], dim=1)
        return vec * self.weight


# -- embeddings -------------------------------------------------------------------------
class NeighborEmbedding(MessagePassing):
    r"""The atom embedding mixed with its neighbours':
    :math:`\mathbf{h}_i' = W_c\big[\mathbf{h}_i \,\|\, \sum_{j \ne i}
    \mathbf{e}_{z_j} \odot W_d \mathbf{f}_{ij}\, \phi(r_{ij})\big]`.

    Self loops carry no message. Shapes: ``z [N]``, ``x [N, F]``, ``edge_index [2, E]``,
    ``edge_weight [E]``, ``edge_attr [E, K]`` -> ``[N, F]``.
    """

    def __init__(self, hidden_channels: int, num_rbf: int, cutoff: float, max_z: int = 100) -> None:
        super().__init__(aggr="add")
        self.embedding = Embedding(max_z, hidden_channels)
        self.distance_proj = Linear(num_rbf, hidden_channels)
        self.combine = Linear(hidden_channels * 2, hidden_channels)
        self.cutoff = CosineCutoff(cutoff)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.embedding.reset_parameters()
        _xavier_linear(self.distance_proj)
        _xavier_linear(self.combine)

    def forward(
        self, z: Tensor, x: Tensor, edge_index: Tensor, edge_weight: Tensor, edge_attr: Tensor
    ) -> Tensor:
        not_loop = edge_index[0] != edge_index[1]
        if self.exact_edges:  # hooks and explanations see PyG's edges (loops removed)
            edge_index, edge_weight, edge_attr = (
                edge_index[:, not_loop],
                edge_weight[not_loop],
                edge_attr[not_loop],
            )
            weight = self.distance_proj(edge_attr) * self.cutoff(edge_weight).unsqueeze(-1)
        else:  # the same sum without a dynamic shape: loops weighted 0
            keep = (self.cutoff(edge_weight) * not_loop.to(edge_weight.dtype)).unsqueeze(-1)
            weight = self.distance_proj(edge_attr) * keep
        neighbors = self.propagate(edge_index, x=self.embedding(z), W=weight, size=None)
        return self.combine(torch.cat([x, neighbors], dim=1))

    def message(self, x_j: Tensor, W: Tensor) -> Tensor:
        return x_j * W

    def aggregate(
        self, inputs: Tensor, index: Tensor, ptr: Tensor | None = None, dim_size: int | None = None
    ) -> Tensor:
        # ops.scatter, not the sum aggregation's segment path: training on forces differentiates
        # this sum twice, and gnn-kernels' one-pass segment reduction has no double backward
        return ops.scatter(inputs, index, 0, dim_size, "sum")


class EdgeEmbedding(torch.nn.Module):
    r"""Initial edge features :math:`\mathbf{f}_{ij} = (\mathbf{h}_i + \mathbf{h}_j) \odot W \mathbf{e}(r_{ij})`.

    Shapes: ``edge_index [2, E]``, ``edge_attr [E, K]``, ``x [N, F]`` -> ``[E, F]``.
    """

    def __init__(self, num_rbf: int, hidden_channels: int) -> None:
        super().__init__()
        self.edge_proj = Linear(num_rbf, hidden_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _xavier_linear(self.edge_proj)

    def forward(self, edge_index: Tensor, edge_attr: Tensor, x: Tensor) -> Tensor:
        pair = x.index_select(0, edge_index[0]) + x.index_select(0, edge_index[1])
        return pair * self.edge_proj(edge_attr)


# -- interaction blocks -----------------------------------------------------------------
def _rejection_dot(a: Tensor, b: Tensor, d: Tensor) -> Tensor:
    r""":math:`\langle \mathrm{Rej}_{\mathbf{d}}(\vec{\mathbf{a}}), \mathrm{Rej}_{-\mathbf{d}}(\vec{\mathbf{b}})\rangle`
    per channel, :math:`\mathrm{Rej}_{\mathbf{d}}(\vec{\mathbf{w}}) = \vec{\mathbf{w}} -
    \langle\vec{\mathbf{w}}, \mathbf{d}\rangle\mathbf{d}`, expanded as
    :math:`\langle\vec{\mathbf{a}}, \vec{\mathbf{b}}\rangle - \langle\vec{\mathbf{a}}, \mathbf{d}\rangle
    \langle\vec{\mathbf{b}}, \mathbf{d}\rangle (2 - \lVert\mathbf{d}\rVert^2)` (no ``[E, S, F]``
    rejections kept for the backward passes). ``a, b [E, S, F]``, ``d [E, S]`` -> ``[E, F]``."""
    dd = d.unsqueeze(2)
    ad, bd, ab = (a * dd).sum(dim=1), (b * dd).sum(dim=1), (a * b).sum(dim=1)
    return ab - ad * bd * (2.0 - (d * d).sum(dim=1, keepdim=True))


class ViS_MP(MessagePassing):
    r"""One ViSNet interaction block (see the module docstring for the equations).

    Args:
        num_heads: attention heads (``hidden_channels`` must be divisible by it).
        hidden_channels: feature size :math:`F`.
        cutoff: radius of the cosine cutoff of the attention.
        vecnorm_type: :class:`VecLayerNorm` type of the input vectors.
        trainable_vecnorm: learn the vector-norm scale.
        last_layer: the last block updates no edge features.

    Shapes: ``x [N, F]``, ``vec [N, S, F]``, ``edge_index [2, E]``, ``r_ij [E]``,
    ``f_ij [E, F]``, ``d_ij [E, S]`` -> ``(dx [N, F], dvec [N, S, F], df_ij [E, F] or None)``.
    """

    def __init__(
        self,
        num_heads: int,
        hidden_channels: int,
        cutoff: float,
        vecnorm_type: str | None,
        trainable_vecnorm: bool,
        last_layer: bool = False,
    ) -> None:
        super().__init__(aggr="add", node_dim=0)
        if hidden_channels % num_heads != 0:
            raise ValueError(
                f"The number of hidden channels (got {hidden_channels}) must be evenly divisible by "
                f"the number of attention heads (got {num_heads})"
            )
        self.num_heads = num_heads
        self.hidden_channels = hidden_channels
        self.head_dim = hidden_channels // num_heads
        self.last_layer = last_layer
        self.layernorm = LayerNorm(hidden_channels)
        self.vec_layernorm = VecLayerNorm(
            hidden_channels, trainable=trainable_vecnorm, norm_type=vecnorm_type
        )
        self.act = SiLU()
        self.attn_activation = SiLU()
        self.cutoff = CosineCutoff(cutoff)
        h = hidden_channels
        self.vec_proj = Linear(h, h * 3, bias=False)
        self.q_proj = Linear(h, h)
        self.k_proj = Linear(h, h)
        self.v_proj = Linear(h, h)
        self.dk_proj = Linear(h, h)
        self.dv_proj = Linear(h, h)
        self.s_proj = Linear(h, h * 2)
        if not last_layer:
            self._edge_layers()
        self.o_proj = Linear(h, h * 3)
        self.reset_parameters()

    def _edge_layers(self) -> None:
        h = self.hidden_channels
        self.f_proj = Linear(h, h)
        self.w_src_proj = Linear(h, h, bias=False)
        self.w_trg_proj = Linear(h, h, bias=False)

    def reset_parameters(self) -> None:
        self.layernorm.reset_parameters()
        self.vec_layernorm.reset_parameters()
        for module in self.children():
            if isinstance(module, Linear):
                _xavier_linear(module)

    def forward(
        self, x: Tensor, vec: Tensor, edge_index: Tensor, r_ij: Tensor, f_ij: Tensor, d_ij: Tensor
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        x = self.layernorm(x)
        vec = self.vec_layernorm(vec)
        heads = (-1, self.num_heads, self.head_dim)
        q = self.q_proj(x).view(heads)
        k = self.k_proj(x).view(heads)
        v = self.v_proj(x).view(heads)
        dk = self.act(self.dk_proj(f_ij)).view(heads)
        dv = self.act(self.dv_proj(f_ij)).view(heads)
        vec1, vec2, vec3 = self.vec_proj(vec).split(self.hidden_channels, dim=-1)
        vec_dot = (vec1 * vec2).sum(dim=1)
        m, vec_m = self.propagate(
            edge_index, q=q, k=k, v=v, dk=dk, dv=dv, vec=vec, r_ij=r_ij, d_ij=d_ij, size=None
        )
        o1, o2, o3 = self.o_proj(m).split(self.hidden_channels, dim=1)
        dx = vec_dot * o2 + o3
        dvec = vec3 * o1.unsqueeze(1) + vec_m
        if self.last_layer:
            return dx, dvec, None
        return dx, dvec, self._edge_delta(edge_index, vec, d_ij, f_ij)

    def _edge_delta(self, edge_index: Tensor, vec: Tensor, d_ij: Tensor, f_ij: Tensor) -> Tensor:
        # the projections are linear without bias: applied per atom, then gathered per edge
        return self.edge_updater(
            edge_index, w_trg=self.w_trg_proj(vec), w_src=self.w_src_proj(vec), d_ij=d_ij, f_ij=f_ij
        )

    def message(
        self,
        q_i: Tensor,
        k_j: Tensor,
        v_j: Tensor,
        vec_j: Tensor,
        dk: Tensor,
        dv: Tensor,
        r_ij: Tensor,
        d_ij: Tensor,
    ) -> tuple[Tensor, Tensor]:
        attn = self.attn_activation((q_i * k_j * dk).sum(dim=-1)) * self.cutoff(r_ij).unsqueeze(1)
        m = (v_j * dv * attn.unsqueeze(2)).reshape(-1, self.hidden_channels)
        s1, s2 = self.act(self.s_proj(m)).split(self.hidden_channels, dim=1)
        vec_m = vec_j * s1.unsqueeze(1) + s2.unsqueeze(1) * d_ij.unsqueeze(2)
        return m, vec_m

    def aggregate(
        self,
        features: tuple[Tensor, Tensor],
        index: Tensor,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        m, vec_m = features
        return (
            ops.scatter(m, index, 0, dim_size, "sum"),
            ops.scatter(vec_m, index, 0, dim_size, "sum"),
        )

    def edge_update(self, w_trg_i: Tensor, w_src_j: Tensor, d_ij: Tensor, f_ij: Tensor) -> Tensor:
        return self.act(self.f_proj(f_ij)) * _rejection_dot(w_trg_i, w_src_j, d_ij)


class ViS_MP_Vertex(ViS_MP):
    r""":class:`ViS_MP` with the vertex-geometry term of ViSNet: the edge update also weighs
    :math:`\langle \mathrm{Rej}_{\mathbf{d}_{ij}}(T_t\vec{\mathbf{v}}_i),
    \mathrm{Rej}_{-\mathbf{d}_{ij}}(T_s\vec{\mathbf{v}}_i)\rangle` (both from the receiver,
    as in PyG 2.8.1) with a second half of :math:`\mathrm{SiLU}(W_f \mathbf{f}_{ij})`."""

    def _edge_layers(self) -> None:
        h = self.hidden_channels
        self.f_proj = Linear(h, h * 2)
        self.w_src_proj = Linear(h, h, bias=False)
        self.w_trg_proj = Linear(h, h, bias=False)
        self.t_src_proj = Linear(h, h, bias=False)
        self.t_trg_proj = Linear(h, h, bias=False)

    def _edge_delta(self, edge_index: Tensor, vec: Tensor, d_ij: Tensor, f_ij: Tensor) -> Tensor:
        return self.edge_updater(
            edge_index,
            w_trg=self.w_trg_proj(vec),
            w_src=self.w_src_proj(vec),
            t_trg=self.t_trg_proj(vec),
            t_src=self.t_src_proj(vec),
            d_ij=d_ij,
            f_ij=f_ij,
        )

    def edge_update(  # type: ignore[override]
        self, w_trg_i: Tensor, w_src_j: Tensor, t_trg_i: Tensor, t_src_i: Tensor, d_ij: Tensor, f_ij: Tensor
    ) -> Tensor:
        w_dot = _rejection_dot(w_trg_i, w_src_j, d_ij)
        t_dot = _rejection_dot(t_trg_i, t_src_i, d_ij)
        f1, f2 = self.act(self.f_proj(f_ij)).split(self.hidden_channels, dim=-1)
        return f1 * w_dot + f2 * t_dot


class ViSNetBlock(torch.nn.Module):
    r"""ViSNet's representation: embeddings, the radius graph and ``num_layers`` interaction
    blocks; returns the normalised scalar and vector features of every atom.

    Shapes: ``z [N]``, ``pos [N, 3]``, ``batch [N]`` -> ``(x [N, F], vec [N, S, F])``,
    :math:`S = (l_{max} + 1)^2 - 1`.
    """

    def __init__(
        self,
        lmax: int = 1,
        vecnorm_type: str | None = None,
        trainable_vecnorm: bool = False,
        num_heads: int = 8,
        num_layers: int = 6,
        hidden_channels: int = 128,
        num_rbf: int = 32,
        trainable_rbf: bool = False,
        max_z: int = 100,
        cutoff: float = 5.0,
        max_num_neighbors: int = 32,
        vertex: bool = False,
    ) -> None:
        super().__init__()
        if lmax not in (1, 2) or isinstance(lmax, bool):
            raise ValueError(f"'lmax' needs to be 1 or 2 (got {lmax})")
        if vecnorm_type not in _VECNORM_TYPES:
            raise ValueError(f"'vecnorm_type' must be one of {_VECNORM_TYPES}, got {vecnorm_type!r}")
        check_int("num_heads", num_heads, 1)
        check_int("num_layers", num_layers, 1)
        check_int("hidden_channels", hidden_channels, 1)
        check_int("num_rbf", num_rbf, 1)
        check_int("max_z", max_z, 1)
        check_int("max_num_neighbors", max_num_neighbors, 0)
        cutoff = check_positive("cutoff", cutoff)
        if hidden_channels % num_heads != 0:
            raise ValueError(
                f"The number of hidden channels (got {hidden_channels}) must be evenly divisible by "
                f"the number of attention heads (got {num_heads})"
            )
        self.lmax = lmax
        self.vecnorm_type = vecnorm_type
        self.trainable_vecnorm = trainable_vecnorm
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.hidden_channels = hidden_channels
        self.num_rbf = num_rbf
        self.trainable_rbf = trainable_rbf
        self.max_z = max_z
        self.cutoff = cutoff
        self.max_num_neighbors = max_num_neighbors

        self.embedding = Embedding(max_z, hidden_channels)
        self.distance = Distance(cutoff, max_num_neighbors=max_num_neighbors)
        self.sphere = Sphere(lmax=lmax)
        self.distance_expansion = ExpNormalSmearing(cutoff, num_rbf, trainable_rbf)
        self.neighbor_embedding = NeighborEmbedding(hidden_channels, num_rbf, cutoff, max_z)
        self.edge_embedding = EdgeEmbedding(num_rbf, hidden_channels)
        block = ViS_MP_Vertex if vertex else ViS_MP
        self.vis_mp_layers = torch.nn.ModuleList(
            block(
                num_heads,
                hidden_channels,
                cutoff,
                vecnorm_type,
                trainable_vecnorm,
                last_layer=i == num_layers - 1,
            )
            for i in range(num_layers)
        )
        self.out_norm = LayerNorm(hidden_channels)
        self.vec_out_norm = VecLayerNorm(hidden_channels, trainable=trainable_vecnorm, norm_type=vecnorm_type)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.embedding.reset_parameters()
        self.distance_expansion.reset_parameters()
        self.neighbor_embedding.reset_parameters()
        self.edge_embedding.reset_parameters()
        for layer in self.vis_mp_layers:
            layer.reset_parameters()
        self.out_norm.reset_parameters()
        self.vec_out_norm.reset_parameters()

    def forward(self, z: Tensor, pos: Tensor, batch: Tensor) -> tuple[Tensor, Tensor]:
        z, pos, batch = check_molecules(z, pos, batch, self.max_z)
        x = self.embedding(z)
        edge_index, edge_weight, edge_vec = self.distance(pos, batch)
        edge_attr = self.distance_expansion(edge_weight)
        # unit directions (zero on self loops), then their harmonics
        safe = torch.where(edge_weight == 0, torch.ones_like(edge_weight), edge_weight)
        d_ij = self.sphere(edge_vec / safe.unsqueeze(-1))
        x = self.neighbor_embedding(z, x, edge_index, edge_weight, edge_attr)
        vec = x.new_zeros(x.size(0), (self.lmax + 1) ** 2 - 1, x.size(1))
        edge_attr = self.edge_embedding(edge_index, edge_attr, x)
        for layer in self.vis_mp_layers:
            dx, dvec, dedge = layer(x, vec, edge_index, edge_weight, edge_attr, d_ij)
            x, vec = x + dx, vec + dvec
            if dedge is not None:
                edge_attr = edge_attr + dedge
        return self.out_norm(x), self.vec_out_norm(vec)


# -- output -----------------------------------------------------------------------------
class GatedEquivariantBlock(torch.nn.Module):
    r"""Gated equivariant update (Schütt et al., PaiNN):
    :math:`[\mathbf{x}', \mathbf{g}] = \mathrm{MLP}\big([\mathbf{x} \,\|\, \lVert U_1\vec{\mathbf{v}}\rVert]\big)`,
    :math:`\vec{\mathbf{v}}' = \mathbf{g} \odot U_2\vec{\mathbf{v}}` (SiLU on :math:`\mathbf{x}'`
    with ``scalar_activation``).

    Shapes: ``x [N, F]``, ``v [N, S, F]`` -> ``(x [N, out], v [N, S, out])``.
    """

    def __init__(
        self,
        hidden_channels: int,
        out_channels: int,
        intermediate_channels: int | None = None,
        scalar_activation: bool = False,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        if intermediate_channels is None:
            intermediate_channels = hidden_channels
        self.vec1_proj = Linear(hidden_channels, hidden_channels, bias=False)
        self.vec2_proj = Linear(hidden_channels, out_channels, bias=False)
        self.update_net = torch.nn.Sequential(
            Linear(hidden_channels * 2, intermediate_channels),
            SiLU(),
            Linear(intermediate_channels, out_channels * 2),
        )
        self.act = SiLU() if scalar_activation else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        torch.nn.init.xavier_uniform_(self.vec1_proj.weight)
        torch.nn.init.xavier_uniform_(self.vec2_proj.weight)
        _xavier_linear(self.update_net[0])
        _xavier_linear(self.update_net[2])

    def forward(self, x: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        vec1 = torch.linalg.vector_norm(self.vec1_proj(v), dim=-2)
        vec2 = self.vec2_proj(v)
        x, gate = self.update_net(torch.cat([x, vec1], dim=-1)).split(self.out_channels, dim=-1)
        v = gate.unsqueeze(1) * vec2
        if self.act is not None:
            x = self.act(x)
        return x, v


class EquivariantScalar(torch.nn.Module):
    r"""ViSNet's output head: two gated equivariant blocks (``F -> F/2 -> 1``) giving one
    scalar per atom. Used through :meth:`pre_reduce` (as in PyG, ``forward`` is not defined)."""

    def __init__(self, hidden_channels: int) -> None:
        super().__init__()
        self.output_network = torch.nn.ModuleList(
            [
                GatedEquivariantBlock(hidden_channels, hidden_channels // 2, scalar_activation=True),
                GatedEquivariantBlock(hidden_channels // 2, 1, scalar_activation=False),
            ]
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.output_network:
            layer.reset_parameters()

    def pre_reduce(self, x: Tensor, v: Tensor) -> Tensor:
        """``x [N, F]``, ``v [N, S, F]`` -> ``[N, 1]`` (``v`` stays in the graph with weight 0)."""
        for layer in self.output_network:
            x, v = layer(x, v)
        return x + v.sum() * 0


class Atomref(torch.nn.Module):
    r"""Per-element reference energies added to the atoms' outputs: :math:`y_i + a_{z_i}`.

    ``atomref`` (``[max_z]`` or ``[max_z, 1]``, default zeros) initialises a learnable
    embedding and is kept as the buffer ``initial_atomref``.
    """

    def __init__(self, atomref: Tensor | None = None, max_z: int = 100) -> None:
        super().__init__()
        if atomref is None:
            atomref = torch.zeros(max_z, 1)
        else:
            atomref = torch.as_tensor(atomref)
        if atomref.dim() == 1:
            atomref = atomref.view(-1, 1)
        if atomref.dim() != 2 or atomref.size(1) != 1:
            raise ValueError(
                f"'atomref' must have shape [max_z] or [max_z, 1], got shape {list(atomref.shape)}"
            )
        self.register_buffer("initial_atomref", atomref)
        self.atomref = Embedding(atomref.size(0), 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.atomref.weight.copy_(self.initial_atomref)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        return x + self.atomref(z)


class ViSNet(torch.nn.Module):
    r"""ViSNet (Wang et al., 2024): the molecule's energy from atomic numbers and positions,
    and with ``derivative=True`` the forces :math:`-\partial E / \partial \mathbf{p}`.

    .. math::
        E_g = \mu + \bigoplus_{i \in g} \big(\sigma\, y_i + a_{z_i}\big)

    with :math:`y_i` the output head (:class:`EquivariantScalar`) on the atoms' features from
    :class:`ViSNetBlock`, :math:`\bigoplus` the ``reduce_op`` (sum by default), :math:`a` the
    learnable atom references (:class:`Atomref`), :math:`\mu`/:math:`\sigma` the ``mean``/``std``.

    Args:
        lmax: highest spherical-harmonic degree of the vector features (1 or 2).
        vecnorm_type: vector normalisation (``None``, ``"max_min"``; ``"rms"`` as in PyG 2.8.1).
        trainable_vecnorm: learn the vector-norm scale.
        num_heads: attention heads.
        num_layers: interaction blocks.
        hidden_channels: feature size.
        num_rbf: radial basis functions.
        trainable_rbf: learn the radial basis.
        max_z: number of atom types (atomic numbers ``< max_z``).
        cutoff: radius of the interaction graph (Å).
        max_num_neighbors: most neighbours per atom in the radius graph.
        vertex: use :class:`ViS_MP_Vertex` blocks.
        atomref: per-element reference energies ``[max_z]`` (default zeros).
        reduce_op: how atoms' outputs combine (``"sum"``, ``"mean"``, ...).
        mean: shift of the energy.
        std: scale of the atoms' outputs.
        derivative: also return the forces.

    Shapes: ``z [N]`` integer, ``pos [N, 3]``, ``batch [N]`` sorted (``None``: one molecule) ->
    ``(energy [B, 1], forces [N, 3] or None)``.

    Example:
        >>> model = ViSNet(num_layers=2, hidden_channels=32, num_heads=4, derivative=True)
        >>> z, pos = torch.tensor([6, 1, 1, 1, 1]), torch.randn(5, 3)
        >>> energy, forces = model(z, pos, torch.zeros(5, dtype=torch.long))
        >>> energy.shape, forces.shape
        (torch.Size([1, 1]), torch.Size([5, 3]))
    """

    def __init__(
        self,
        lmax: int = 1,
        vecnorm_type: str | None = None,
        trainable_vecnorm: bool = False,
        num_heads: int = 8,
        num_layers: int = 6,
        hidden_channels: int = 128,
        num_rbf: int = 32,
        trainable_rbf: bool = False,
        max_z: int = 100,
        cutoff: float = 5.0,
        max_num_neighbors: int = 32,
        vertex: bool = False,
        atomref: Tensor | None = None,
        reduce_op: str = "sum",
        mean: float = 0.0,
        std: float = 1.0,
        derivative: bool = False,
    ) -> None:
        super().__init__()
        if reduce_op not in _REDUCE_OPS:
            raise ValueError(f"'reduce_op' must be one of {_REDUCE_OPS}, got {reduce_op!r}")
        self.representation_model = ViSNetBlock(
            lmax=lmax,
            vecnorm_type=vecnorm_type,
            trainable_vecnorm=trainable_vecnorm,
            num_heads=num_heads,
            num_layers=num_layers,
            hidden_channels=hidden_channels,
            num_rbf=num_rbf,
            trainable_rbf=trainable_rbf,
            max_z=max_z,
            cutoff=cutoff,
            max_num_neighbors=max_num_neighbors,
            vertex=vertex,
        )
        self.output_model = EquivariantScalar(hidden_channels=hidden_channels)
        self.prior_model = Atomref(atomref=atomref, max_z=max_z)
        self.reduce_op = reduce_op
        self.derivative = derivative
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset the representation, the output head and the atom references."""
        self.representation_model.reset_parameters()
        self.output_model.reset_parameters()
        if self.prior_model is not None:
            self.prior_model.reset_parameters()

    def forward(self, z: Tensor, pos: Tensor, batch: Tensor) -> tuple[Tensor, Tensor | None]:
        """Energies ``[B, 1]`` and, with ``derivative``, forces ``[N, 3]`` (else ``None``)."""
        z, pos, batch = check_molecules(z, pos, batch, self.representation_model.max_z)
        if not self.derivative:
            return self._energy(z, pos, batch), None
        with torch.enable_grad():
            if not pos.requires_grad:
                pos.requires_grad_(True)
            y = self._energy(z, pos, batch)
            (dy,) = torch.autograd.grad(
                [y],
                [pos],
                grad_outputs=[torch.ones_like(y)],
                create_graph=True,
                retain_graph=True,
                allow_unused=True,
            )
        if dy is None:  # nothing depends on the positions (e.g. no atoms)
            dy = torch.zeros_like(pos)
        return y, -dy

    def _energy(self, z: Tensor, pos: Tensor, batch: Tensor | None) -> Tensor:
        x, v = self.representation_model(z, pos, batch)
        x = self.output_model.pre_reduce(x, v) * self.std
        if self.prior_model is not None:
            x = self.prior_model(x, z)
        index = batch if batch is not None else torch.zeros_like(z, dtype=torch.long)
        dim_size = None if batch is not None else min(z.numel(), 1)
        return ops.scatter(x, index, 0, dim_size, self.reduce_op) + self.mean
