r"""Derivatives of activations for hand-written double backwards: :func:`silu_second_order`.

Force training differentiates a network twice; a memory-lean dense layer (see gnn-models'
molecular models) writes its second backward by hand and needs, per element of the
pre-activation :math:`z`, :math:`\mathrm{silu}'(z)` and :math:`\mathrm{silu}''(z)` applied to
two incoming gradients. Torch ops evaluate the sigmoid three times and make about ten passes
over the ``[E, H]`` tensors; a compiled backend makes one.
"""

from __future__ import annotations

from torch import Tensor

from .. import validation as v
from ._dispatch import context, run

__all__ = ["silu_second_order"]


def silu_second_order(z: Tensor, g: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""``(g silu'(z), u silu'(z), u g silu''(z))``, elementwise.

    With :math:`s = \sigma(z)`: :math:`\mathrm{silu}'(z) = s(1 + z(1 - s))` and
    :math:`\mathrm{silu}''(z) = s(1 - s)(2 + z(1 - 2s))`. ``g`` is the gradient a SiLU layer's
    first backward received and ``u`` the gradient of that backward's result ``g silu'(z)``:
    the three results are that result, and the gradients of ``g`` and of ``z``.

    Args:
        z, g, u: tensors of one shape and floating dtype.

    Returns:
        Three tensors of that shape. Not differentiable (an op for ``backward`` code that
        builds no graph).

    Example:
        >>> z, g, u = torch.randn(3), torch.randn(3), torch.randn(3)
        >>> g_z, _, _ = silu_second_order(z, g, u)
        >>> torch.allclose(g_z, torch.ops.aten.silu_backward(g, z))
        True
    """
    for name, t in (("z", z), ("g", g), ("u", u)):
        v.check_tensor(name, t)
        if not t.is_floating_point():
            raise TypeError(f"'{name}' must be a floating-point tensor, got {v.describe(t)}")
    if g.shape != z.shape or u.shape != z.shape:
        raise ValueError(
            f"'g' and 'u' must have the shape of 'z' {tuple(z.shape)}, got {v.describe(g)}, {v.describe(u)}"
        )
    if g.dtype != z.dtype or u.dtype != z.dtype:
        raise TypeError(f"'g' and 'u' must have the dtype of 'z' ({z.dtype}), got {g.dtype}, {u.dtype}")
    ctx = context(z, None, work=z.numel())
    ctx["requires_grad"] = False  # never differentiated through
    outs = run("silu_second_order", ctx, z.contiguous(), g.contiguous(), u.contiguous())
    return tuple(o.view(z.shape) for o in outs)  # type: ignore[return-value]
