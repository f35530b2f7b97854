"""Degree scalers of Principal Neighbourhood Aggregation (PNA)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gnn.core import ops
from gnn.core.aggr.base import Aggregation, run_one_pass
from gnn.core.utils import group_counts

from ._utils import along

SCALERS = ("identity", "amplification", "attenuation", "linear", "inverse_linear")


class DegreeScalerAggregation(Aggregation):
    r"""Aggregations followed by degree scalers, from `PNA <https://arxiv.org/abs/2004.05718>`_.

    With :math:`h = \bigoplus(\mathcal{X})` (one or several aggregations,
    concatenated), group size :math:`d = \max(|\mathcal{X}|, 1)` and the
    average degrees :math:`\delta_{\mathrm{lin}} = \mathbb{E}[d]`,
    :math:`\delta_{\log} = \mathbb{E}[\log(d + 1)]` of the training graphs
    (from the histogram ``deg``), each scaler gives

    - ``"identity"``: :math:`h`
    - ``"amplification"``: :math:`h \cdot \log(d + 1) / \delta_{\log}`
    - ``"attenuation"``: :math:`h \cdot \delta_{\log} / \log(d + 1)`
    - ``"linear"``: :math:`h \cdot d / \delta_{\mathrm{lin}}`
    - ``"inverse_linear"``: :math:`h \cdot \delta_{\mathrm{lin}} / d`

    and the results of all scalers are concatenated along the last dimension.

    Shapes: ``x`` ``[..., E, ..., F]`` -> ``[..., dim_size, ..., S * F']``
    for ``S`` scalers and aggregation output size ``F'``.

    When the aggregations are one-pass reductions (see
    :func:`gnn.core.ops.multi_reduce`) they are computed in one pass over the
    groups, and the scalers in one multiplication.

    Args:
        aggr: an aggregation (name, class or instance) or a list of them
            (combined with :class:`~gnn.aggr.MultiAggregation`).
        scaler: a scaler name or a list of them.
        deg: ``[D]`` histogram of in-degrees: ``deg[k]`` nodes of degree ``k``.
        train_norm: learn :math:`\delta_{\mathrm{lin}}` and :math:`\delta_{\log}`
            (parameters) instead of fixing them (buffers).
        aggr_kwargs: constructor arguments of the aggregation: a dict for a
            single one, a list of dicts for a list.

    Example:
        >>> aggr = DegreeScalerAggregation("mean", ["identity", "linear"], deg=torch.tensor([0, 2, 2]))
        >>> aggr(torch.randn(5, 4), torch.tensor([0, 0, 1, 1, 1])).shape
        torch.Size([2, 8])
    """

    def __init__(
        self,
        aggr: str | list[str] | Aggregation,
        scaler: str | list[str],
        deg: Tensor,
        train_norm: bool = False,
        aggr_kwargs: list[dict[str, Any]] | None = None,
    ):
        super().__init__()
        from gnn.core.registry import aggregations

        if isinstance(aggr, (list, tuple)):
            from .multi import MultiAggregation

            self.aggr = MultiAggregation(list(aggr), aggr_kwargs)
        else:
            if isinstance(aggr_kwargs, (list, tuple)):
                if len(aggr_kwargs) != 1:
                    raise ValueError(
                        f"'aggr_kwargs' for a single aggregation must be a dict (or a list of one), "
                        f"got {len(aggr_kwargs)} entries"
                    )
                aggr_kwargs = aggr_kwargs[0]
            self.aggr = aggregations.resolve(aggr, **(aggr_kwargs or {}))

        scalers = [scaler] if isinstance(scaler, str) else list(scaler)
        unknown = [s for s in scalers if s not in SCALERS]
        if not scalers or unknown:
            raise ValueError(f"'scaler' must be one or more of {SCALERS}, got {scaler!r}")
        self.scaler = scalers

        if not isinstance(deg, Tensor) or deg.dim() != 1:
            raise ValueError(f"'deg' must be a 1-D degree histogram tensor, got {deg!r:.100}")
        hist = deg.detach().to(torch.float64)
        total = float(hist.sum())
        if total <= 0:
            raise ValueError("'deg' must count at least one node (its sum is 0)")
        bins = torch.arange(hist.numel(), dtype=torch.float64, device=hist.device)
        self.init_avg_deg_lin = float((bins * hist).sum()) / total
        self.init_avg_deg_log = float(((bins + 1).log() * hist).sum()) / total

        if train_norm:
            self.avg_deg_lin = torch.nn.Parameter(torch.empty(1))
            self.avg_deg_log = torch.nn.Parameter(torch.empty(1))
        else:
            self.register_buffer("avg_deg_lin", torch.empty(1))
            self.register_buffer("avg_deg_log", torch.empty(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.avg_deg_lin.fill_(self.init_avg_deg_lin)
            self.avg_deg_log.fill_(self.init_avg_deg_log)
        reset = getattr(self.aggr, "reset_parameters", None)
        if reset is not None:
            reset()

    def one_pass_reductions(self) -> tuple[ops.Reduction, ...] | None:
        if self.forward_overridden(DegreeScalerAggregation):
            return None
        return self.aggr.one_pass_reductions()

    def one_pass_finish(self, out: Tensor, counts: Callable[[], Tensor], dim: int) -> Tensor:
        return self.scale(self.aggr.one_pass_finish(out, counts, dim), counts(), dim)

    def scale(self, out: Tensor, counts: Tensor, dim: int) -> Tensor:
        """Every scaler applied to the aggregated ``out`` (``[..., G, ..., F']``, groups along
        ``dim``) for group sizes ``counts`` (``[G]``), concatenated along the last dim."""
        # amplification and linear scale by the true degree (an empty group gives 0, as in PyG);
        # attenuation and inverse_linear divide by it, clamped to at least 1
        deg = counts.to(out.dtype)
        low = deg.clamp(min=1)
        dim = dim % out.dim()
        if dim == out.dim() - 1:  # the groups lie along the last dim: concatenate scaled copies
            return self._scale_each(out, deg, dim)
        factors: list[Tensor] = []
        for scaler in self.scaler:
            if scaler == "identity":
                factors.append(torch.ones_like(deg))
            elif scaler == "amplification":
                factors.append(torch.log(deg + 1) / self.avg_deg_log)
            elif scaler == "attenuation":
                factors.append(self.avg_deg_log / torch.log(low + 1))
            elif scaler == "linear":
                factors.append(deg / self.avg_deg_lin)
            else:  # inverse_linear
                factors.append(self.avg_deg_lin / low)
        if len(factors) == 1 and self.scaler[0] == "identity":
            return out
        # out[..., g, ..., s * F' + f] = out[..., g, ..., f] * factor_s[g]: one multiplication
        shape = [1] * (out.dim() + 1)
        shape[dim] = deg.numel()
        shape[-2] = len(factors)
        scaled = out.unsqueeze(-2) * torch.stack(factors, dim=-1).view(shape)
        return scaled.flatten(-2)

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        assert dim_size is not None
        reductions = self.aggr.one_pass_reductions()
        if reductions is not None:
            return run_one_pass(self, x, index, ptr, dim_size, dim, reductions)
        out = self.aggr(x, index, ptr=ptr, dim_size=dim_size, dim=dim)
        return self._scale_each(out, group_counts(index, ptr, dim_size, dtype=out.dtype), dim)

    def _scale_each(self, out: Tensor, deg: Tensor, dim: int) -> Tensor:
        """The scalers one by one (any layout of ``out``); ``deg`` the true group sizes."""
        deg = along(deg, out.dim(), dim)
        low = deg.clamp(min=1)
        outs = []
        for scaler in self.scaler:
            if scaler == "identity":
                outs.append(out)
            elif scaler == "amplification":
                outs.append(out * (torch.log(deg + 1) / self.avg_deg_log))
            elif scaler == "attenuation":
                outs.append(out * (self.avg_deg_log / torch.log(low + 1)))
            elif scaler == "linear":
                outs.append(out * (deg / self.avg_deg_lin))
            else:  # inverse_linear
                outs.append(out * (self.avg_deg_lin / low))
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
