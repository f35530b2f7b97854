r"""SchNet (Schütt et al., 2017): continuous-filter convolutions on interatomic distances.

:class:`SchNet` embeds atomic numbers, then applies ``num_interactions`` residual
interaction blocks

.. math::
    \mathbf{h}_i \leftarrow \mathbf{h}_i + \mathbf{W}_3\,\mathrm{ssp}\Big(\mathbf{W}_2
    \sum_{j \in \mathcal{N}(i)} (\mathbf{W}_1 \mathbf{h}_j) \odot
    \mathrm{MLP}(\mathbf{e}(d_{ij}))\, C(d_{ij})\Big)

with the Gaussian expansion :math:`\mathbf{e}(d)_k = \exp(-\tfrac{1}{2}(d - \mu_k)^2 / \Delta^2)`
(:class:`GaussianSmearing`), the cosine cutoff :math:`C(d) = \tfrac{1}{2}(\cos(\pi d / r_c) + 1)`
and the shifted softplus :math:`\mathrm{ssp}(x) = \ln(1 + e^x) - \ln 2`
(:class:`ShiftedSoftplus`); an atom-wise MLP and a readout give one value per molecule.

The interaction graph is :func:`gnn.pool.radius_graph` (no torch-cluster).
"""

from __future__ import annotations

import math
import os
import os.path as osp
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.nn import Embedding, Linear, ModuleList, Sequential

from gnn.core import plans
from gnn.core import validation as v
from gnn.core.aggr.basic import SumAggregation
from gnn.core.message_passing import MessagePassing
from gnn.core.nn.act import no_forward_hooks
from gnn.core.registry import aggregations
from gnn.pool import radius_graph

from ._lean_dense import dense_act_dense
from ._molecule import ShiftedSoftplus  # public here too, as in PyG

__all__ = [
    "CFConv",
    "GaussianSmearing",
    "InteractionBlock",
    "RadiusInteractionGraph",
    "SchNet",
    "ShiftedSoftplus",
    "qm9_target_dict",
]

#: QM9 target index -> target name (PyG's naming).
qm9_target_dict: dict[int, str] = {
    0: "dipole_moment",
    1: "isotropic_polarizability",
    2: "homo",
    3: "lumo",
    4: "gap",
    5: "electronic_spatial_extent",
    6: "zpve",
    7: "energy_U0",
    8: "energy_U",
    9: "enthalpy_H",
    10: "free_energy",
    11: "heat_capacity",
}


class GaussianSmearing(torch.nn.Module):
    r"""Expands distances on ``num_gaussians`` Gaussians with centres
    :math:`\mu_k` evenly spaced on ``[start, stop]``:
    :math:`e_k(d) = \exp(-\tfrac{1}{2}(d - \mu_k)^2 / (\mu_1 - \mu_0)^2)`.

    Shapes: ``dist`` ``[E]`` (any shape, flattened) -> ``[E, num_gaussians]``.

    Example:
        >>> GaussianSmearing(0.0, 5.0, 50)(torch.tensor([1.0, 2.5])).shape
        torch.Size([2, 50])
    """

    def __init__(self, start: float = 0.0, stop: float = 5.0, num_gaussians: int = 50) -> None:
        super().__init__()
        offset = torch.linspace(start, stop, num_gaussians)
        self.coeff = -0.5 / (offset[1] - offset[0]).item() ** 2
        self.register_buffer("offset", offset)

    def forward(self, dist: Tensor) -> Tensor:
        if dist.dtype == torch.float64:
            diff = dist.reshape(-1, 1) - self.offset.view(1, -1)
            return torch.exp(self.coeff * diff.square())
        # float32 and below: tails under e^-50 (~2e-22, far under float32's resolution of the
        # largest entry) are exact zeros. Tails of e^-88..e^-103 would be subnormal floats, and they
        # (and their products in the backward passes) make the matmuls that follow many times
        # slower on CPUs. The function saves only ``dist`` and its output for its derivatives.
        return _Smearing.apply(dist.reshape(-1), self.offset, self.coeff)


class _Smearing(torch.autograd.Function):
    """``exp(coeff (d - mu)^2)`` with exact zeros where the exponent is below -50."""

    @staticmethod
    def forward(ctx, dist, offset, coeff):  # type: ignore[override]
        arg = (dist.view(-1, 1) - offset.view(1, -1)).square_().mul_(coeff)
        tail = arg < -50.0
        out = arg.clamp_(min=-50.0).exp_().masked_fill_(tail, 0.0)
        ctx.save_for_backward(dist, offset, out)
        ctx.coeff = coeff
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        dist, offset, out = ctx.saved_tensors
        # d out / d dist = 2 coeff (d - mu) out (differentiable: the double backward runs through it)
        diff = dist.view(-1, 1) - offset.view(1, -1)
        return (grad * out * diff).sum(1) * (2.0 * ctx.coeff), None, None


def _cosine_cutoff(dist: Tensor, cutoff: float) -> Tensor:
    return 0.5 * (torch.cos(dist * (math.pi / cutoff)) + 1.0)


class CFConv(MessagePassing):
    r"""SchNet's continuous-filter convolution:
    :math:`\mathbf{x}'_i = \mathbf{W}_2 \sum_j (\mathbf{W}_1 \mathbf{x}_j) \odot
    \mathrm{nn}(\mathbf{e}_{ji})\, C(d_{ji}) + \mathbf{b}`.

    Shapes: ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]``, ``edge_weight`` (distances)
    ``[E]``, ``edge_attr`` ``[E, num_gaussians]`` -> ``[N, out_channels]``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, num_filters: int, nn: Sequential, cutoff: float
    ) -> None:
        super().__init__(aggr="add")
        self.lin1 = Linear(in_channels, num_filters, bias=False)
        self.lin2 = Linear(num_filters, out_channels)
        self.nn = nn
        self.cutoff = cutoff
        self.reset_parameters()

    def reset_parameters(self) -> None:
        torch.nn.init.xavier_uniform_(self.lin1.weight)
        torch.nn.init.xavier_uniform_(self.lin2.weight)
        self.lin2.bias.data.fill_(0)

    #: the message ``x_j * W`` with ``W`` ``[E, F]``: a fused gather-multiply-sum whose backward
    #: passes keep no ``[E, F]`` tensor (:func:`gnn.core.ops.gather_mul_scatter`) when nothing watches
    fused_message = plans.ChannelWeightedSum(weight="W")

    def _filter(self, edge_attr: Tensor) -> Tensor:
        nn = self.nn
        plain = (
            isinstance(nn, Sequential)
            and len(nn) == 3
            and isinstance(nn[0], Linear)
            and type(nn[1]) is ShiftedSoftplus
            and isinstance(nn[2], Linear)
            and no_forward_hooks(nn, nn[0], nn[1], nn[2])
        )
        if not plain:
            return nn(edge_attr)
        # SchNet's own filter network as one block with a memory-lean double backward
        return dense_act_dense(edge_attr, nn[0], nn[1], nn[2])

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor, edge_attr: Tensor) -> Tensor:
        v.check_tensor("edge_weight", edge_weight)
        v.check_tensor("edge_attr", edge_attr)
        if edge_weight.numel() != edge_attr.size(0):
            raise ValueError(
                f"'edge_weight' must hold one distance per edge ({edge_attr.size(0)} rows of 'edge_attr'), "
                f"got {v.describe(edge_weight)}"
            )
        # W = nn(e) * C(d): the product is left to propagate, which multiplies it out for the general
        # path (and every hook) and hands the fused op both factors (no [E, F] product kept)
        W = plans.EdgeScaled(self._filter(edge_attr), _cosine_cutoff(edge_weight, self.cutoff).reshape(-1))
        x = self.propagate(edge_index, x=self.lin1(x), W=W)
        return self.lin2(x)

    def message(self, x_j: Tensor, W: Tensor) -> Tensor:
        return x_j * W


class InteractionBlock(torch.nn.Module):
    r"""One SchNet interaction: ``lin(ssp(CFConv(x)))`` with the filter network
    ``Linear(num_gaussians, num_filters) -> ssp -> Linear(num_filters, num_filters)``
    (the same module as ``mlp`` and ``conv.nn``).

    Shapes: ``x`` ``[N, hidden_channels]`` -> ``[N, hidden_channels]``.
    """

    def __init__(self, hidden_channels: int, num_gaussians: int, num_filters: int, cutoff: float) -> None:
        super().__init__()
        self.mlp = Sequential(
            Linear(num_gaussians, num_filters), ShiftedSoftplus(), Linear(num_filters, num_filters)
        )
        self.conv = CFConv(hidden_channels, hidden_channels, num_filters, self.mlp, cutoff)
        self.act = ShiftedSoftplus()
        self.lin = Linear(hidden_channels, hidden_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in (self.mlp[0], self.mlp[2], self.lin):
            torch.nn.init.xavier_uniform_(layer.weight)
            layer.bias.data.fill_(0)
        self.conv.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor, edge_attr: Tensor) -> Tensor:
        return self.lin(self.act(self.conv(x, edge_index, edge_weight, edge_attr)))


class RadiusInteractionGraph(torch.nn.Module):
    r"""The interaction graph of SchNet: every pair of atoms of a molecule closer than
    ``cutoff`` (:func:`gnn.pool.radius_graph`, at most ``max_num_neighbors`` per atom, those
    of smallest index) and the distances :math:`\|\mathbf{p}_j - \mathbf{p}_i\|`.

    Returns ``(edge_index [2, E], edge_weight [E])``.
    """

    def __init__(self, cutoff: float = 10.0, max_num_neighbors: int = 32) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.max_num_neighbors = max_num_neighbors

    def forward(self, pos: Tensor, batch: Tensor) -> tuple[Tensor, Tensor]:
        edge_index = radius_graph(pos, r=self.cutoff, batch=batch, max_num_neighbors=self.max_num_neighbors)
        row, col = edge_index[0], edge_index[1]
        edge_weight = (pos[row] - pos[col]).norm(dim=-1)
        return edge_index, edge_weight


def check_molecules(z: object, pos: object, batch: object, num_types: int) -> tuple[Tensor, Tensor, Tensor]:
    """Validate ``z [N]`` (integers in ``[0, num_types)``), ``pos [N, 3]`` (floating) and
    ``batch [N]`` (sorted integers, default all 0); returns them with a long ``batch``."""
    z = v.check_tensor("z", z)
    pos = v.check_tensor("pos", pos)
    if z.dim() != 1 or z.is_floating_point() or z.is_complex() or z.dtype == torch.bool:
        raise TypeError(f"'z' must be a 1-D integer tensor of atomic numbers [N], got {v.describe(z)}")
    if pos.dim() != 2 or pos.size(1) != 3 or not pos.is_floating_point():
        raise ValueError(f"'pos' must be a floating [N, 3] tensor of positions, got {v.describe(pos)}")
    if pos.size(0) != z.size(0):
        raise ValueError(f"'pos' has {pos.size(0)} rows but 'z' has {z.size(0)} atoms")
    if batch is None:
        batch = torch.zeros(z.size(0), dtype=torch.long, device=z.device)
    else:
        batch = v.check_tensor("batch", batch)
        v.check_index_dtype("batch", batch)
        if batch.dim() != 1 or batch.numel() != z.size(0):
            raise ValueError(
                f"'batch' must be a 1-D tensor with one entry per atom ({z.size(0)}), got {v.describe(batch)}"
            )
    if v.validation_enabled() and z.numel():
        lo, hi = int(z.min()), int(z.max())
        if lo < 0 or hi >= num_types:
            raise v.IndexRangeError(
                f"'z' must hold atomic numbers in [0, {num_types}), got values in [{lo}, {hi}]"
            )
        if batch.numel() > 1 and bool((batch[1:] < batch[:-1]).any()):
            raise ValueError("'batch' must be sorted (atoms of a molecule consecutive)")
        if int(batch.min()) < 0:
            raise v.IndexRangeError("'batch' contains a negative molecule index")
    return z, pos, batch


class SchNet(torch.nn.Module):
    r"""SchNet (Schütt et al., 2017): continuous-filter convolutional network for molecules.

    .. math::
        \mathbf{x}^{(l+1)}_i = \mathbf{x}^{(l)}_i + \mathrm{Int}^{(l)}(\mathbf{x}^{(l)})_i,
        \qquad E = \bigoplus_i \mathbf{W}_2\,\mathrm{ssp}(\mathbf{W}_1 \mathbf{x}^{(L)}_i)

    with the interaction blocks of :class:`InteractionBlock` on the radius graph
    (``cutoff``, ``max_num_neighbors``, or ``interaction_graph(pos, batch) ->
    (edge_index, edge_weight)``), optional standardization (``h * std + mean``),
    per-element reference energies ``atomref`` added before the readout, or, with
    ``dipole=True``, the dipole moment norm :math:`\|\sum_i q_i (\mathbf{p}_i -
    \mathbf{c})\|` about the centre of mass (atomic masses from ``ase``).

    Args:
        hidden_channels, num_filters, num_interactions, num_gaussians: sizes.
        cutoff: interaction radius (Å).
        interaction_graph: callable ``(pos, batch) -> (edge_index, edge_weight)``
            (default :class:`RadiusInteractionGraph`).
        max_num_neighbors: most neighbours per atom of the default graph.
        readout: ``"add"``, ``"mean"``, ... (an aggregation name).
        dipole: predict the dipole moment norm.
        mean, std: standardization of the atom-wise outputs.
        atomref: ``[100, 1]`` reference values per element.

    Shapes: ``z`` ``[N]``, ``pos`` ``[N, 3]``, ``batch`` ``[N]`` -> ``[B, 1]``.

    Example:
        >>> model = SchNet(hidden_channels=32, num_filters=32, num_interactions=2, cutoff=5.0)
        >>> z, pos = torch.tensor([6, 1, 1]), torch.randn(3, 3)
        >>> model(z, pos).shape
        torch.Size([1, 1])
    """

    url = "http://www.quantum-machine.org/datasets/trained_schnet_models.zip"

    def __init__(
        self,
        hidden_channels: int = 128,
        num_filters: int = 128,
        num_interactions: int = 6,
        num_gaussians: int = 50,
        cutoff: float = 10.0,
        interaction_graph: Callable | None = None,
        max_num_neighbors: int = 32,
        readout: str = "add",
        dipole: bool = False,
        mean: float | None = None,
        std: float | None = None,
        atomref: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.num_filters = num_filters
        self.num_interactions = num_interactions
        self.num_gaussians = num_gaussians
        self.cutoff = cutoff
        self.dipole = dipole
        self.sum_aggr = SumAggregation()
        self.readout = aggregations.resolve("sum" if dipole else readout)
        self.mean = mean
        self.std = std
        self.scale = None

        if dipole:
            try:
                import ase.data
            except ImportError as err:  # pragma: no cover - depends on the environment
                raise ImportError(
                    "SchNet(dipole=True) takes atomic masses from 'ase'; install it with "
                    "'pip install gnn-models[ase]'"
                ) from err
            atomic_mass = torch.from_numpy(ase.data.atomic_masses)
            self.register_buffer("atomic_mass", atomic_mass)

        self.embedding = Embedding(100, hidden_channels, padding_idx=0)
        if interaction_graph is not None:
            self.interaction_graph = interaction_graph
        else:
            self.interaction_graph = RadiusInteractionGraph(cutoff, max_num_neighbors)
        self.distance_expansion = GaussianSmearing(0.0, cutoff, num_gaussians)
        self.interactions = ModuleList(
            [
                InteractionBlock(hidden_channels, num_gaussians, num_filters, cutoff)
                for _ in range(num_interactions)
            ]
        )
        self.lin1 = Linear(hidden_channels, hidden_channels // 2)
        self.act = ShiftedSoftplus()
        self.lin2 = Linear(hidden_channels // 2, 1)

        self.register_buffer("initial_atomref", atomref)
        self.atomref = None
        if atomref is not None:
            self.atomref = Embedding(100, 1)
            self.atomref.weight.data.copy_(atomref)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize every weight (``atomref`` back to ``initial_atomref``)."""
        self.embedding.reset_parameters()
        for interaction in self.interactions:
            interaction.reset_parameters()
        torch.nn.init.xavier_uniform_(self.lin1.weight)
        self.lin1.bias.data.fill_(0)
        torch.nn.init.xavier_uniform_(self.lin2.weight)
        self.lin2.bias.data.fill_(0)
        if self.atomref is not None:
            self.atomref.weight.data.copy_(self.initial_atomref)

    def forward(self, z: Tensor, pos: Tensor, batch: Tensor | None = None) -> Tensor:
        r"""Per-molecule outputs ``[B, 1]`` (``B = batch.max() + 1``; ``[1, 1]`` without
        ``batch``). Forces: ``-torch.autograd.grad(out.sum(), pos, create_graph=True)[0]``."""
        z, pos, batch = check_molecules(z, pos, batch, 100)
        h = self.embedding(z)
        edge_index, edge_weight = self.interaction_graph(pos, batch)
        edge_attr = self.distance_expansion(edge_weight)
        for interaction in self.interactions:
            h = h + interaction(h, edge_index, edge_weight, edge_attr)
        h = self.lin2(self.act(self.lin1(h)))

        if self.dipole:
            mass = self.atomic_mass[z].view(-1, 1).to(pos.dtype)
            num = int(batch.max()) + 1 if batch.numel() else 0
            total = self.sum_aggr(mass, batch, dim=0, dim_size=num)
            centre = self.sum_aggr(mass * pos, batch, dim=0, dim_size=num) / total
            h = h * (pos - centre.index_select(0, batch))
        if not self.dipole and self.mean is not None and self.std is not None:
            h = h * self.std + self.mean
        if not self.dipole and self.atomref is not None:
            h = h + self.atomref(z)

        out = self.readout(h, batch, dim=0)
        if self.dipole:
            out = torch.norm(out, dim=-1, keepdim=True)
        if self.scale is not None:
            out = self.scale * out
        return out

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(hidden_channels={self.hidden_channels}, "
            f"num_filters={self.num_filters}, num_interactions={self.num_interactions}, "
            f"num_gaussians={self.num_gaussians}, cutoff={self.cutoff})"
        )

    @staticmethod
    def from_qm9_pretrained(root: str, dataset: Any, target: int) -> tuple[SchNet, Any, Any, Any]:
        r"""The SchNet of the SchNetPack authors trained on QM9 ``target`` and the
        ``(train, val, test)`` split of ``dataset`` it was trained on.

        Nothing is downloaded: the archive ``trained_schnet_models.zip`` of :attr:`url`
        must already be extracted under ``root`` (``root/trained_schnet_models/qm9_<name>/``
        holding ``split.npz`` and ``best_model``); reading ``best_model`` needs
        ``schnetpack`` (the file is a pickled SchNetPack model).
        """
        if not isinstance(target, int) or isinstance(target, bool) or not 0 <= target <= 11 or target == 4:
            raise ValueError(f"'target' must be a QM9 target in 0..11 other than 4, got {v.describe(target)}")
        folder = osp.join(
            osp.expanduser(os.fspath(root)), "trained_schnet_models", f"qm9_{qm9_target_dict[target]}"
        )
        split_path, model_path = osp.join(folder, "split.npz"), osp.join(folder, "best_model")
        missing = [p for p in (split_path, model_path) if not osp.exists(p)]
        if missing:
            raise FileNotFoundError(
                f"SchNet.from_qm9_pretrained needs the file(s) {missing} (gnn never downloads); extract "
                f"{SchNet.url} into {osp.join(os.fspath(root), 'trained_schnet_models')!r} first"
            )
        import numpy as np

        split = np.load(split_path)
        train_idx, val_idx, test_idx = (
            torch.from_numpy(split[key]).long() for key in ("train_idx", "val_idx", "test_idx")
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                state = torch.load(model_path, map_location="cpu", weights_only=False)
            except ModuleNotFoundError as err:
                raise ImportError(
                    f"reading {model_path!r} (a pickled SchNetPack model) needs 'schnetpack' installed"
                ) from err
        model = _schnet_from_schnetpack(state, target)
        return model, dataset[train_idx], dataset[val_idx], dataset[test_idx]


def _schnet_from_schnetpack(state: Any, target: int) -> SchNet:
    """Copy the weights of a SchNetPack (0.3) QM9 model into a :class:`SchNet`."""
    rep = state.representation
    out = state.output_modules[0]
    first = rep.interactions[0]
    hidden = rep.embedding.weight.size(1)
    num_filters = first.cfconv.in2f.weight.size(0)
    num_gaussians = first.filter_network[0].weight.size(1)
    cutoff = float(first.cutoff_network.cutoff)
    model = SchNet(
        hidden_channels=hidden,
        num_filters=num_filters,
        num_interactions=len(rep.interactions),
        num_gaussians=num_gaussians,
        cutoff=cutoff,
        atomref=None if out.atomref is None else out.atomref.weight.detach().clone(),
    )
    with torch.no_grad():
        model.embedding.weight.copy_(rep.embedding.weight)
        for theirs, ours in zip(rep.interactions, model.interactions):
            ours.mlp[0].weight.copy_(theirs.filter_network[0].weight)
            ours.mlp[0].bias.copy_(theirs.filter_network[0].bias)
            ours.mlp[2].weight.copy_(theirs.filter_network[1].weight)
            ours.mlp[2].bias.copy_(theirs.filter_network[1].bias)
            ours.lin.weight.copy_(theirs.dense.weight)
            ours.lin.bias.copy_(theirs.dense.bias)
            ours.conv.lin1.weight.copy_(theirs.cfconv.in2f.weight)
            ours.conv.lin2.weight.copy_(theirs.cfconv.f2out.weight)
            ours.conv.lin2.bias.copy_(theirs.cfconv.f2out.bias)
        mlp = out.out_net[1].out_net
        model.lin1.weight.copy_(mlp[0].weight)
        model.lin1.bias.copy_(mlp[0].bias)
        model.lin2.weight.copy_(mlp[1].weight)
        model.lin2.bias.copy_(mlp[1].bias)
    model.readout = aggregations.resolve("mean" if out.atom_pool.average else "add")
    model.dipole = type(out).__name__ == "DipoleMoment"
    model.mean = float(out.standardize.mean)
    model.std = float(out.standardize.stddev)
    return model
