r"""Reversible GNN blocks (Li et al., 2021, "Training Graph Neural Networks with 1000 Layers"):
:class:`GroupAddRev`.

A reversible block's input can be computed back from its output, so the block
needs to keep no activations for the backward pass: the forward pass runs
without autograd, and the backward pass first inverts the block (recovering its
input), then recomputes it with autograd to get the gradients.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["GroupAddRev", "InvertibleModule"]

_RESTORED = "_gnn_rev_restored"  # marks a tensor whose data a block's backward put back


def _release(t: Tensor) -> None:
    """Drop ``t``'s data (its shape becomes ``[0]``); autograd's own saved copies keep theirs."""
    t.data = t.data.new_empty(0)


class _Invertible(torch.autograd.Function):
    """Runs ``fn`` without keeping activations; the backward pass inverts it to recover the input."""

    @staticmethod
    def forward(
        ctx: Any, fn: Callable, inverse: Callable, num_bwd_passes: int, num_inputs: int, *tensors: Any
    ) -> tuple[Tensor, ...]:
        inputs = tensors[:num_inputs]
        ctx.fn, ctx.inverse, ctx.num_bwd_passes = fn, inverse, num_bwd_passes
        ctx.params = tensors[num_inputs:]
        ctx.needs_grad = [isinstance(t, Tensor) and t.requires_grad for t in inputs]
        with torch.no_grad():
            outputs = fn(*(t.detach() if isinstance(t, Tensor) else t for t in inputs))
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        outputs = tuple(o.detach() for o in outputs)
        # the input's data can be dropped when it is an intermediate result that is not a view (a
        # leaf is the user's own tensor); the backward pass restores it, for whoever holds the tensor
        x = inputs[0]
        ctx.freed = isinstance(x, Tensor) and x.grad_fn is not None and x._base is None
        ctx.pending = [(inputs, outputs)] * num_bwd_passes
        if ctx.freed:
            ctx.x_shape = x.shape
            _release(x)
        return outputs

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Tensor) -> tuple[Any, ...]:
        if not ctx.pending:
            raise RuntimeError(
                f"the backward pass of a reversible block ran more than num_bwd_passes="
                f"{ctx.num_bwd_passes} times; raise 'num_bwd_passes'"
            )
        inputs, outputs = ctx.pending.pop()
        with torch.no_grad():
            recovered = ctx.inverse(*outputs, *inputs[1:])
            recovered = recovered if isinstance(recovered, tuple) else (recovered,)
            x = inputs[0]
            if ctx.freed and x.numel() == 0 and x.shape != ctx.x_shape:
                x.data = recovered[0].view(ctx.x_shape)
                setattr(x, _RESTORED, True)
            if not ctx.pending:  # last pass: outputs another block restored are not needed any more
                for out in outputs:
                    if getattr(out, _RESTORED, False):
                        _release(out)
        with torch.enable_grad():
            replay = [
                t.detach().requires_grad_(need) if isinstance(t, Tensor) else t
                for t, need in zip((recovered[0], *inputs[1:]), ctx.needs_grad)
            ]
            out = ctx.fn(*replay)
            out = out if isinstance(out, tuple) else (out,)
        wrt = [t for t in replay if isinstance(t, Tensor) and t.requires_grad] + list(ctx.params)
        grads = list(torch.autograd.grad(out, wrt, grad_outputs, allow_unused=True)) if wrt else []
        input_grads = [grads.pop(0) if need else None for need in ctx.needs_grad]
        return (None, None, None, None, *input_grads, *grads)


class InvertibleModule(torch.nn.Module):
    r"""Base of invertible modules: subclasses give ``_forward`` and ``_inverse``.

    Calling the module runs ``_forward`` through a memory-saving autograd function
    (no activations kept, the input is recovered with ``_inverse`` in the backward
    pass); ``inverse(y, ...)`` runs ``_inverse`` likewise. ``disable=True`` runs
    ``_forward`` with plain autograd. ``num_bwd_passes`` is how many backward passes
    the graph may see (``retain_graph=True`` several times).
    """

    def __init__(self, disable: bool = False, num_bwd_passes: int = 1) -> None:
        super().__init__()
        if isinstance(num_bwd_passes, bool) or not isinstance(num_bwd_passes, int) or num_bwd_passes < 1:
            raise ValueError(f"'num_bwd_passes' must be a positive int, got {num_bwd_passes!r}")
        self.disable = disable
        self.num_bwd_passes = num_bwd_passes

    def forward(self, *args: Any) -> Any:
        """``_forward(*args)``."""
        return self._apply_fn(args, self._forward, self._inverse)

    def inverse(self, *args: Any) -> Any:
        """``_inverse(*args)``."""
        return self._apply_fn(args, self._inverse, self._forward)

    def _forward(self, *args: Any) -> Any:
        raise NotImplementedError

    def _inverse(self, *args: Any) -> Any:
        raise NotImplementedError

    def _apply_fn(self, args: tuple[Any, ...], fn: Callable, inverse: Callable) -> Any:
        if self.disable or not torch.is_grad_enabled():
            out = fn(*args)
        else:
            params = tuple(p for p in self.parameters() if p.requires_grad)
            out = _Invertible.apply(fn, inverse, self.num_bwd_passes, len(args), *args, *params)
        if isinstance(out, tuple) and len(out) == 1:
            return out[0]
        return out


class GroupAddRev(InvertibleModule):
    r"""The grouped additive reversible block.

    The channels of :math:`\mathbf{X}` are split into :math:`C` groups
    :math:`\mathbf{X}_1, \ldots, \mathbf{X}_C`; with
    :math:`\mathbf{X}'_0 = \sum_{i=2}^{C} \mathbf{X}_i`,

    .. math::
        \mathbf{X}'_i = \mathbf{X}_i + f_{\theta_i}(\mathbf{X}'_{i-1}, \mathcal{E}), \qquad i = 1..C,

    and the output is :math:`\mathbf{X}'_1 \Vert \ldots \Vert \mathbf{X}'_C`. The
    inverse computes :math:`\mathbf{X}_i = \mathbf{X}'_i - f_{\theta_i}(\mathbf{X}'_{i-1})`
    from :math:`i = C` down to 1 (:math:`\mathbf{X}'_0` from the recovered groups).
    Each :math:`f_{\theta_i}` is a copy of ``conv`` (re-initialized) or one module of
    a given :class:`torch.nn.ModuleList`. Further tensor arguments whose size along
    ``split_dim`` equals the channels are split the same way; others go to every group.

    No activation is stored: the backward pass inverts the block. The input's data is
    released after the forward pass when it is an intermediate result (not a leaf
    tensor of the user) and put back by the backward pass, so it must not be read in
    between (it then has shape ``[0]``).

    Args:
        conv: the group function (copied ``num_groups`` times) or a ModuleList of them.
        split_dim: the channel dimension to split.
        num_groups: number of groups (required when ``conv`` is one module).
        disable: run with plain autograd (no memory saving).
        num_bwd_passes: how many backward passes the graph may see.

    Shapes:
        ``x`` ``[N, C_in]`` (``C_in`` divisible by ``num_groups``), ``edge_index`` ``[2, E]``
        -> ``[N, C_in]``.

    Example:
        >>> from gnn.conv import GCNConv
        >>> block = GroupAddRev(GCNConv(4, 4), num_groups=2)
        >>> block(torch.randn(3, 8), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([3, 8])
    """

    def __init__(
        self,
        conv: torch.nn.Module | torch.nn.ModuleList,
        split_dim: int = -1,
        num_groups: int | None = None,
        disable: bool = False,
        num_bwd_passes: int = 1,
    ) -> None:
        super().__init__(disable, num_bwd_passes)
        self.split_dim = split_dim
        if isinstance(conv, torch.nn.ModuleList):
            self.convs = conv
        else:
            if num_groups is None:
                raise ValueError("'num_groups' must be given when 'conv' is a single module")
            self.convs = torch.nn.ModuleList([conv])
            for _ in range(num_groups - 1):
                clone = copy.deepcopy(conv)
                if hasattr(clone, "reset_parameters"):
                    clone.reset_parameters()
                self.convs.append(clone)
        if len(self.convs) < 2:
            raise ValueError(f"the number of groups must be at least 2, got {len(self.convs)}")

    @property
    def num_groups(self) -> int:
        """The number of channel groups."""
        return len(self.convs)

    def reset_parameters(self) -> None:
        """Re-initialize every group function."""
        for conv in self.convs:
            conv.reset_parameters()

    def _split(self, value: Any, channels: int) -> list[Any]:
        """``value`` split into the groups, or repeated when it is not split along the channels."""
        if not isinstance(value, Tensor) or value.dim() == 0:
            return [value] * self.num_groups
        dim = self.split_dim if self.split_dim >= 0 else value.dim() + self.split_dim
        if not 0 <= dim < value.dim() or value.size(dim) != channels:
            return [value] * self.num_groups
        return list(torch.chunk(value, self.num_groups, dim=dim))

    def _groups(self, x: Tensor, args: tuple[Any, ...]) -> tuple[list[Tensor], list[list[Any]]]:
        channels = x.size(self.split_dim)
        if channels % self.num_groups != 0:
            raise ValueError(
                f"the {channels} channels of 'x' (dim {self.split_dim}) must be divisible by "
                f"num_groups={self.num_groups}"
            )
        xs = self._split(x, channels)
        per_arg = [self._split(arg, channels) for arg in args]
        group_args = [[parts[i] for parts in per_arg] for i in range(self.num_groups)]
        return xs, group_args

    def _forward(self, x: Tensor, edge_index: Any, *args: Any) -> Tensor:
        xs, group_args = self._groups(x, args)
        carry = sum(xs[1:])
        ys = []
        for i, conv in enumerate(self.convs):
            carry = xs[i] + conv(carry, edge_index, *group_args[i])
            ys.append(carry)
        return torch.cat(ys, dim=self.split_dim)

    def _inverse(self, y: Tensor, edge_index: Any, *args: Any) -> Tensor:
        ys, group_args = self._groups(y, args)
        xs: list[Tensor] = [None] * self.num_groups  # type: ignore[list-item]
        for i in range(self.num_groups - 1, -1, -1):
            carry = ys[i - 1] if i > 0 else sum(xs[1:])
            xs[i] = ys[i] - self.convs[i](carry, edge_index, *group_args[i])
        return torch.cat(xs, dim=self.split_dim)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.convs[0]}, num_groups={self.num_groups})"
