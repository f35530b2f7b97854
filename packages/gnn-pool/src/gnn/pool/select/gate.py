r"""The gate of the top-:math:`k` pools: :math:`\mathbf{X}' = m\,(\mathbf{X} \odot \mathbf{y})_{\mathrm{perm}}`.

One autograd function with a fused backward: the gradient of :math:`\mathbf{X}` is written
straight into one ``[N, F]`` buffer (the kept rows; zeros elsewhere) and that of the score
is computed from one gathered copy of the kept rows, instead of autograd's chain of
gather, multiply and scatter (each a fresh ``[K, F]`` or ``[N, F]`` tensor).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["gate"]


class _Gate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, score: Tensor, perm: Tensor, multiplier: float) -> Tensor:  # type: ignore[override]
        factor = score.index_select(0, perm).to(x.dtype)
        if multiplier != 1:
            factor = factor * multiplier
        ctx.save_for_backward(x, perm, factor)
        ctx.multiplier = multiplier
        ctx.score_dtype = score.dtype
        ctx.num_nodes = score.numel()
        return x.index_select(0, perm).mul_(factor.view(-1, 1))

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, perm, factor = ctx.saved_tensors
        grad_x = grad_score = None
        if ctx.needs_input_grad[1]:
            rows = x.index_select(0, perm).mul_(grad)
            value = rows.sum(-1)
            if ctx.multiplier != 1:
                value = value * ctx.multiplier
            grad_score = torch.zeros(ctx.num_nodes, dtype=ctx.score_dtype, device=x.device)
            grad_score.index_copy_(0, perm, value.to(ctx.score_dtype))
        if ctx.needs_input_grad[0]:
            grad_x = torch.zeros_like(x)
            grad_x.index_copy_(0, perm, grad * factor.view(-1, 1))
        return grad_x, grad_score, None, None


def gate(x: Tensor, score: Tensor, perm: Tensor, multiplier: float = 1.0) -> Tensor:
    r"""``multiplier * x[perm] * score[perm].view(-1, 1)`` (``perm`` must not repeat a node).

    Args:
        x: ``[N, F]`` features; score: ``[N]`` scores; perm: ``[K]`` distinct kept nodes.

    Returns:
        ``[K, F]``; differentiable in ``x`` and ``score``.

    Example:
        >>> gate(torch.ones(3, 2), torch.tensor([0.5, 2.0, 3.0]), torch.tensor([2, 0]))
        tensor([[3.0000, 3.0000],
                [0.5000, 0.5000]])
    """
    return _Gate.apply(x, score, perm, float(multiplier))


class _ProjectGate(torch.autograd.Function):
    """``m * x[perm] * y[perm]`` with ``y = f(x @ u)``; both of ``x``'s gradient terms in one buffer.

    ``raw`` is a detached copy of ``x @ u`` that requires grad, and ``score = f(raw)`` its small
    ``[N]`` graph (any scorer: an activation, a softmax per graph); the backward differentiates
    ``f`` through that graph and chains to ``x`` and ``u`` itself:
    ``grad_x = outer(grad_raw, u)`` plus the gate's rows, added in place.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, x: Tensor, u: Tensor, graph: tuple[Tensor, Tensor], perm: Tensor, multiplier: float
    ) -> tuple[Tensor, Tensor]:
        # ``graph`` = (raw, score) travels as a plain tuple: the engine must not walk into it
        raw, score = graph
        kept = score.detach().index_select(0, perm)
        factor = kept.to(x.dtype) * multiplier if multiplier != 1 else kept.to(x.dtype)
        ctx.save_for_backward(x, u, perm, factor)
        ctx.graph = (raw, score)
        ctx.multiplier = multiplier
        ctx.mark_non_differentiable(perm)
        return x.index_select(0, perm).mul_(factor.view(-1, 1)), kept

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor, grad_kept: Tensor):  # type: ignore[override]
        x, u, perm, factor = ctx.saved_tensors
        raw, score = ctx.graph
        rows = x.index_select(0, perm).mul_(grad_out)
        grad_score_kept = rows.sum(-1)
        if ctx.multiplier != 1:
            grad_score_kept = grad_score_kept * ctx.multiplier
        grad_score_kept = grad_score_kept.to(score.dtype) + grad_kept.to(score.dtype)
        grad_score = torch.zeros_like(score).index_copy_(0, perm, grad_score_kept)
        with torch.enable_grad():
            # kept for another backward through the same output (retain_graph); it is [N] small
            (grad_raw,) = torch.autograd.grad(score, raw, grad_score, allow_unused=True, retain_graph=True)
        if grad_raw is None:
            grad_raw = torch.zeros_like(raw)
        grad_raw = grad_raw.to(x.dtype)
        grad_x = grad_u = None
        if ctx.needs_input_grad[0]:
            u_x = u.to(x.dtype)
            grad_x = torch.outer(grad_raw, u_x)
            # the kept rows hold both terms: gate + projection, written over (distinct rows)
            rows.copy_(grad_out).mul_(factor.view(-1, 1)).addr_(grad_raw.index_select(0, perm), u_x)
            grad_x.index_copy_(0, perm, rows)
        if ctx.needs_input_grad[1]:
            grad_u = (x.t() @ grad_raw).to(u.dtype)
        return grad_x, grad_u, None, None, None


def project_gate(
    x: Tensor,
    u: Tensor,
    scorer: Callable[[Tensor], Tensor],
    selector: Callable[[Tensor], Tensor],
    multiplier: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Score, select and gate in one: ``y = scorer(x @ u)``, ``perm = selector(y)``,
    ``out = multiplier * x[perm] * y[perm]``.

    Differentiable in ``x`` and ``u`` (first derivatives only: the fused backward is not itself
    differentiable; without grad, or while compiling, the plain autograd form runs); ``x``'s
    gradient is assembled in one
    ``[N, F]`` buffer (the projection's outer product, plus the kept rows in place) instead of
    two added together.

    Args:
        x: ``[N, F]`` features; u: ``[F]`` projection.
        scorer: ``[N] -> [N]`` differentiable map of the projections (an activation, a softmax).
        selector: ``[N] -> [K]`` the kept nodes (distinct), from the detached scores.

    Returns:
        ``(out [K, F], perm [K], score [K])`` with ``score = y[perm]``.
    """
    plain = not torch.is_grad_enabled() or not (x.requires_grad or u.requires_grad)
    if plain or torch.compiler.is_compiling():  # the compiler traces the plain form (no nested graph)
        score = scorer(x @ u)
        perm = selector(score)
        return gate(x, score, perm, multiplier), perm, score[perm]
    with torch.no_grad():
        raw = x @ u
    raw.requires_grad_(True)
    score = scorer(raw)
    perm = selector(score.detach())
    out, kept = _ProjectGate.apply(x, u, (raw, score), perm, float(multiplier))
    return out, perm, kept
