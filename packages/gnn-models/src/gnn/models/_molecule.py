"""Input checks and pieces shared by the 3-D molecular models of gnn-models (not public API;
:class:`ShiftedSoftplus` is public through :mod:`gnn.models.schnet` and :mod:`gnn.models.gnnff`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import validation as v

from ._utils import check_index_vector

__all__ = ["ShiftedSoftplus", "check_molecules", "check_positive", "unit_edges"]


class ShiftedSoftplus(torch.nn.Module):
    r""":math:`\mathrm{ssp}(x) = \ln(1 + e^x) - \ln 2` (zero at the origin), elementwise."""

    def __init__(self) -> None:
        super().__init__()
        self.shift = torch.log(torch.tensor(2.0)).item()

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x) - self.shift

    @staticmethod
    def _derivative(x: Tensor) -> Tensor:
        r""":math:`\mathrm{ssp}'(x) = \sigma(x)` (for the lean functions of :mod:`gnn.models._lean_dense`)."""
        return torch.sigmoid(x)

    @staticmethod
    def _second_derivative(x: Tensor) -> Tensor:
        r""":math:`\mathrm{ssp}''(x) = \sigma(x)(1 - \sigma(x))`."""
        s = torch.sigmoid(x)
        return s * (1.0 - s)


def check_molecules(
    z: object, pos: object, batch: object, max_z: int | None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """``z`` ``[N]`` atomic numbers (in ``[0, max_z)``), ``pos`` ``[N, 3]`` floating positions and
    ``batch`` ``[N]`` molecule of every atom (or ``None``), checked against each other."""
    pos_t = v.check_tensor("pos", pos)
    if not pos_t.is_floating_point():
        raise TypeError(f"'pos' must be a floating point tensor of shape [N, 3], got {v.describe(pos_t)}")
    if pos_t.dim() != 2 or pos_t.size(1) != 3:
        raise ValueError(f"'pos' must have shape [N, 3], got {v.describe(pos_t)}")
    n = pos_t.size(0)
    z_t = check_index_vector("z", z, size=n)
    if max_z is not None:
        v.check_index_range("z", z_t, max_z, "atom types ('max_z')")
    if batch is None:
        return z_t, pos_t, None
    batch_t = check_index_vector("batch", batch, size=n)
    if batch_t.device != pos_t.device:
        raise ValueError(f"'batch' is on {batch_t.device} but 'pos' is on {pos_t.device}")
    return z_t, pos_t, batch_t


def check_positive(name: str, value: object) -> float:
    """``value`` checked as a positive real number (e.g. a cutoff radius)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"'{name}' must be a positive number, got {v.describe(value)}")
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"'{name}' must be a positive finite number, got {value!r}")
    return float(value)


def unit_edges(pos: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""``(vec, dist, unit)`` of every edge :math:`j \to i` (``edge_index[0] = j``):
    :math:`\mathbf{v} = \mathbf{p}_j - \mathbf{p}_i`, :math:`d = \lVert\mathbf{v}\rVert` and
    :math:`\mathbf{v} / d`; self loops get :math:`d = 0` and a zero unit vector, with finite
    first and second derivatives (the square root never sees a zero)."""
    src, dst = edge_index[0], edge_index[1]
    vec = pos.index_select(0, src) - pos.index_select(0, dst)
    loop = src == dst
    sq = (vec * vec).sum(dim=-1)
    safe = torch.sqrt(torch.where(loop, torch.ones_like(sq), sq))
    dist = torch.where(loop, torch.zeros_like(sq), safe)
    unit = vec / safe.unsqueeze(-1)
    unit = torch.where(loop.unsqueeze(-1), torch.zeros_like(unit), unit)
    return vec, dist, unit
