"""Helpers for testing layers built on gnn (ours and third-party plugins).

They need no test framework; they raise ``AssertionError`` with a message.

Example:
    >>> from gnn.core import testing
    >>> x, edge_index = testing.random_graph(10, 30, 8, seed=0)
"""

from __future__ import annotations

import copy
import inspect
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from . import ops


def random_graph(
    num_nodes: int,
    num_edges: int,
    num_features: int,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    duplicates: bool = True,
    self_loops: bool = True,
) -> tuple[Tensor, Tensor]:
    """Random node features ``[N, F]`` and ``edge_index`` ``[2, E]``.

    With ``duplicates``/``self_loops`` the first edges are forced to contain
    a repeated edge and a self loop, so that tests exercise both.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num_nodes, num_features, generator=g, dtype=dtype)
    edge_index = torch.randint(0, max(num_nodes, 1), (2, num_edges), generator=g)
    if num_edges >= 3 and num_nodes >= 2:
        if duplicates:
            edge_index[:, 1] = edge_index[:, 0]
        if self_loops:
            edge_index[1, 2] = edge_index[0, 2]
    return x, edge_index


def edge_index_formats(
    edge_index: Tensor, num_nodes: int | tuple[int, int], edge_weight: Tensor | None = None
) -> Iterator[tuple[str, Any]]:
    """Yield ``(name, adj)`` for every sparse input form equivalent to ``edge_index``.

    Each ``adj`` is the transposed adjacency ``adj_t`` (``[N_dst, N_src]``)
    with ``edge_weight`` (or ones) as values; ``edge_weight`` may be ``[E]`` or
    ``[E, D]`` (multi-dimensional edge features become dense dimensions). Duplicate edges stay separate
    entries in every form (the compressed forms are built without merging),
    so that every reduction, ``mean`` included, must agree.
    ``torch_sparse.SparseTensor`` is included when torch-sparse is installed.
    """
    n_src, n_dst = (num_nodes, num_nodes) if isinstance(num_nodes, int) else num_nodes
    value = edge_weight if edge_weight is not None else torch.ones(edge_index.size(1))
    dst, src = edge_index[1], edge_index[0]
    shape = (n_dst, n_src) + tuple(value.shape[1:])
    yield "torch.sparse_coo", torch.sparse_coo_tensor(torch.stack([dst, src]), value, shape)
    perm = torch.argsort(dst * max(n_src, 1) + src, stable=True)
    crow = torch._convert_indices_from_coo_to_csr(dst[perm], n_dst)
    yield "torch.sparse_csr", torch.sparse_csr_tensor(crow, src[perm], value[perm], shape)
    perm = torch.argsort(src * max(n_dst, 1) + dst, stable=True)
    ccol = torch._convert_indices_from_coo_to_csr(src[perm], n_src)
    yield "torch.sparse_csc", torch.sparse_csc_tensor(ccol, dst[perm], value[perm], shape)
    try:
        from torch_sparse import SparseTensor  # type: ignore[import-not-found]
    except ImportError:
        return
    # sorted here, stably, as the CSR form above: SparseTensor's own sort is not stable, so duplicate
    # edges would come out in an arbitrary order (and layers that keep e.g. the last of several self
    # loops would see another graph than the other forms)
    perm = torch.argsort(dst * max(n_src, 1) + src, stable=True)
    yield (
        "SparseTensor",
        SparseTensor(
            row=dst[perm], col=src[perm], value=value[perm], sparse_sizes=(n_dst, n_src), is_sorted=True
        ),
    )


def to_dense(adj: Any) -> Tensor:
    """Dense ``[N_dst, N_src, ...]`` of any sparse form, duplicate entries summed.

    ``torch.sparse`` tensors densify with :meth:`torch.Tensor.to_dense`; a
    ``torch_sparse.SparseTensor``'s own ``to_dense`` *assigns* its entries,
    so of duplicate entries only one would survive: it is summed here instead.
    Multi-dimensional values (``[E, H]`` attention) become trailing dimensions.

    Example:
        >>> adj = torch.sparse_coo_tensor([[0, 0], [1, 1]], [1.0, 2.0], (2, 2))
        >>> to_dense(adj)
        tensor([[0., 3.],
                [0., 0.]])
    """
    if isinstance(adj, Tensor):
        return adj.to_dense()
    row, col, value = adj.coo()
    if value is None:
        value = torch.ones(row.numel())
    dense = value.new_zeros(tuple(adj.sparse_sizes()) + tuple(value.shape[1:]))
    return dense.index_put_((row, col), value, accumulate=True)


def assert_close(
    actual: Any, expected: Any, *, atol: float = 1e-5, rtol: float = 1e-4, msg: str = ""
) -> None:
    """``torch.testing.assert_close`` over tensors or (nested) tuples of tensors."""
    if isinstance(expected, (tuple, list)):
        assert isinstance(actual, (tuple, list)) and len(actual) == len(expected), msg
        for a, e in zip(actual, expected):
            assert_close(a, e, atol=atol, rtol=rtol, msg=msg)
        return
    if expected is None:
        assert actual is None, msg
        return
    torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol, msg=lambda m: f"{msg}\n{m}")


def assert_formats_agree(
    call: Callable[[Any], Any],
    edge_index: Tensor,
    num_nodes: int | tuple[int, int],
    *,
    edge_weight: Tensor | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> None:
    """``call(adj)`` gives the same result for ``edge_index`` and every sparse form.

    ``call`` receives the graph (``edge_index`` or a sparse ``adj_t``); when
    ``edge_weight`` is given, the sparse forms carry it as values and
    ``call`` should ignore its own weight for them (check ``is_sparse``).
    """
    expected = call(edge_index)
    for name, adj in edge_index_formats(edge_index, num_nodes, edge_weight):
        assert_close(call(adj), expected, atol=atol, rtol=rtol, msg=f"input format {name} differs")


def load_pyg_state(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    """Copy a PyG module's ``state_dict`` into ours with ``strict=True``.

    Fails with a readable diff when keys or shapes differ.
    """
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    missing = sorted(set(theirs_sd) - set(ours_sd))
    extra = sorted(set(ours_sd) - set(theirs_sd))
    assert not missing and not extra, f"state_dict keys differ: PyG only {missing}, ours only {extra}"
    for key, value in theirs_sd.items():
        lazy = isinstance(ours_sd[key], torch.nn.parameter.UninitializedParameter) or isinstance(
            value, torch.nn.parameter.UninitializedParameter
        )
        if lazy:
            continue
        assert tuple(ours_sd[key].shape) == tuple(value.shape), (
            f"shape of {key!r} differs: ours {tuple(ours_sd[key].shape)}, PyG {tuple(value.shape)}"
        )
    ours.load_state_dict(theirs_sd, strict=True)


def assert_attention_parity(
    ours: torch.nn.Module, theirs: torch.nn.Module, x: Any, edge_index: Tensor, edge_attr: Tensor | None
) -> None:
    """An attention layer and PyG's equivalent (state loaded strict, same ``repr``) return the same
    output, edge_index and attention weights with ``return_attention_weights=True``."""
    load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    out, (ei, alpha) = ours(x, edge_index, edge_attr, return_attention_weights=True)
    out_p, (ei_p, alpha_p) = theirs(x, edge_index, edge_attr, return_attention_weights=True)
    assert_close(out, out_p)
    assert torch.equal(ei, ei_p)
    assert_close(alpha, alpha_p)


def assert_signatures_match(
    ours: Any, theirs: Any, methods: Sequence[str] = ("__init__", "forward"), defaults: bool = True
) -> None:
    """``ours.<method>`` and ``theirs.<method>`` (classes or modules, e.g. a gnn layer and PyG's)
    take the same parameters in the same order and, with ``defaults``, with the same defaults,
    for every name in ``methods``.

    Example:
        >>> from gnn.core import Linear
        >>> assert_signatures_match(Linear, Linear)
    """
    for method in methods:
        a = inspect.signature(getattr(ours, method)).parameters.values()
        b = inspect.signature(getattr(theirs, method)).parameters.values()
        got = [(p.name, p.default) if defaults else p.name for p in a]
        want = [(p.name, p.default) if defaults else p.name for p in b]
        if got != want:
            raise AssertionError(f"signature of {method} differs:\n ours:   {got}\n theirs: {want}")


def assert_gradients_match_pyg(
    ours: torch.nn.Module, theirs: torch.nn.Module, *inputs: Any, atol: float = 1e-10, rtol: float = 1e-8
) -> None:
    """Same output and, for ``out.square().sum()``, the same gradient of every parameter (by name;
    a parameter PyG leaves without gradient must have none here either). State is loaded strict."""
    load_pyg_state(ours, theirs)
    out, out_p = ours(*inputs), theirs(*inputs)
    assert_close(out, out_p, atol=atol, rtol=rtol)
    out.square().sum().backward()
    out_p.square().sum().backward()
    grads_p = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        if grads_p[name].grad is None:
            assert p.grad is None, name
            continue
        assert_close(p.grad, grads_p[name].grad, atol=atol, rtol=rtol, msg=name)


def assert_compiles_like_eager(module: torch.nn.Module, x: Tensor, *args: Any) -> None:
    """``module(x, *args)`` traces with zero graph breaks, and the compiled module (``aot_eager``)
    gives eager's output and, for ``out.square().sum()``, eager's gradients of ``x`` and the parameters."""
    expected = module(x, *args)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(module)(x, *args)
    assert explanation.graph_break_count == 0, [r.reason for r in explanation.break_reasons]
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    x_c, x_e = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = compiled(x_c, *args)
    assert_close(out, expected)
    out.square().sum().backward()
    grads_c = [p.grad.clone() for p in module.parameters()]
    module.zero_grad()
    module(x_e, *args).square().sum().backward()
    assert_close(x_c.grad, x_e.grad)
    for a, p in zip(grads_c, module.parameters()):
        assert_close(a, p.grad)


def dense_attention(attention: Any, num_nodes: int) -> Tensor:
    """``[N, N, H]`` attention weights (target, source, head) from what an attention layer returns
    with ``return_attention_weights=True``: ``(edge_index, alpha)`` or a sparse adjacency (or a
    tuple holding one); duplicate edges are summed."""
    from .utils import is_sparse

    if isinstance(attention, tuple) and not is_sparse(attention[0]):
        edge_index, alpha = attention
        dense = torch.zeros(num_nodes, num_nodes, alpha.size(1), dtype=alpha.dtype)
        return dense.index_put_((edge_index[1], edge_index[0]), alpha, accumulate=True)
    return to_dense(attention[0] if isinstance(attention, tuple) else attention)


def _attention_run(conv: torch.nn.Module, x: Any, adj: Any, edge_attr: Tensor | None, weight: Tensor) -> list:
    """Output, dense attention and the gradients of every parameter and input of one forward+backward."""
    from .utils import is_sparse

    out, attention = conv(x, adj, edge_attr, return_attention_weights=True)
    sizes = (x.size(0),) if isinstance(x, Tensor) else (x[0].size(0), x[1].size(0))
    dense = dense_attention(attention, max(sizes))
    loss = (out * weight).sum()
    if isinstance(adj, Tensor) and not is_sparse(adj):
        # alpha's own gradient (torch.sparse results have no backward through their construction)
        loss = loss + (dense * torch.arange(dense.numel()).view_as(dense).sin()).sum()
    leaves = list(conv.parameters()) + list(x if isinstance(x, tuple) else (x,))
    return [out, dense.detach()] + list(torch.autograd.grad(loss, leaves, allow_unused=True))


def assert_fused_matches_per_edge(
    monkeypatch: Any,
    conv: torch.nn.Module,
    op: str,
    x: Any,
    inputs: list[tuple[str, Any]],
    edge_attr: Tensor | None,
    weight: Tensor,
) -> None:
    """For every ``(name, graph)`` of ``inputs``, ``conv`` calls the fused op ``gnn.core.ops.<op>``
    exactly once and gives the output, attention weights and gradients of a per-edge twin (a copy
    whose message hook rules the fused op out). ``edge_attr`` goes with the ``"edge_index"`` input
    only; ``weight`` weighs the output in the loss. ``conv``'s own per-edge path is disabled
    (:func:`spy_op`), so a silent fallback fails."""
    per_edge = copy.deepcopy(conv)
    per_edge.register_message_forward_hook(lambda module, inputs, output: None)
    calls = spy_op(monkeypatch, conv, op)
    for name, adj in inputs:
        attr = edge_attr if name == "edge_index" else None
        got = _attention_run(conv, x, adj, attr, weight)
        assert len(calls) == 1, f"{name}: the fused op ran {len(calls)} times"
        calls.clear()
        want = _attention_run(per_edge, x, adj, attr, weight)
        for a, b in zip(got, want):
            if a is None or b is None:
                assert a is None and b is None, name
                continue
            assert_close(a, b, atol=1e-10, rtol=1e-8, msg=name)


def assert_fused_skipped_for_dropout_and_hooks(
    monkeypatch: Any, conv_cls: type, op: str, x: Any, graph: Any
) -> None:
    """A ``conv_cls(..., dropout=0.5)`` layer takes the fused op ``gnn.core.ops.<op>`` only in eval
    mode (attention dropout needs the per-edge weights) and never with a message hook registered."""
    conv = conv_cls(x.size(-1), 4, heads=2, dropout=0.5).to(x.dtype)
    calls: list[int] = []
    real = getattr(ops, op)
    monkeypatch.setattr(ops, op, lambda *a, **k: calls.append(1) or real(*a, **k))
    conv.train()(x, graph)
    assert calls == []
    conv.eval()(x, graph)
    assert calls == [1]
    conv.register_message_forward_hook(lambda module, inputs, output: None)
    conv(x, graph)
    assert calls == [1]


def _cardinal_bspline(x: float, m: int) -> float:
    """The cardinal B-spline :math:`M_m(x)` of degree ``m`` (support ``[0, m + 1)``), Cox-de Boor."""
    if m == 0:
        return 1.0 if 0.0 <= x < 1.0 else 0.0
    return (x * _cardinal_bspline(x, m - 1) + (m + 1 - x) * _cardinal_bspline(x - 1, m - 1)) / m


def bspline_kernel_weights(
    u: Sequence[float], kernel_size: Sequence[int], is_open_spline: Sequence[Any], degree: int
) -> Tensor:
    r"""Loop reference of SplineCNN's B-spline basis: the ``[K]`` weight of every kernel matrix
    (``K = prod(kernel_size)``, dimension 0 varying fastest) at pseudo-coordinates ``u`` in ``[0, 1]``.

    Kernel index :math:`p` weighs :math:`\prod_d B_{p_d}(v_d)` with :math:`v_d = u_d (k_d - m)`
    (open spline) or :math:`u_d k_d` (closed), :math:`B_i(v) = M_m(v - i + m)` summed over the
    periods of a closed spline, :math:`m` = ``degree``. Written from the definition, for tests of
    ``ops.spline_basis`` and ``SplineConv`` (float64, one point at a time).

    Example:
        >>> bspline_kernel_weights([0.5], [3], [True], 1)
        tensor([0., 1., 0.], dtype=torch.float64)
    """
    m = degree
    out = []
    for p in itertools.product(*[range(k) for k in reversed(kernel_size)]):
        p = p[::-1]  # dimension 0 varies fastest
        w = 1.0
        for d, k in enumerate(kernel_size):
            v = u[d] * (k - m * is_open_spline[d])
            shifts = (0,) if is_open_spline[d] else (-2, -1, 0, 1, 2)
            w *= sum(_cardinal_bspline(v - p[d] + m + r * k, m) for r in shifts)
        out.append(w)
    return torch.tensor(out, dtype=torch.float64)


def dense_gcn_adjacency(
    edge_index: Tensor, weight: Tensor | None, n: int, loops: bool = True, normalize: bool = True
) -> Tensor:
    """Dense ``D^-1/2 (A + I) D^-1/2`` (float64), a loop reference for tests.

    ``A[dst, src]`` sums duplicate edges; a node's own loop replaces ``I``
    (``loops``); ``normalize=False`` returns the unnormalized matrix.
    """
    w = torch.ones(edge_index.size(1)) if weight is None else weight
    a = torch.zeros(n, n, dtype=torch.float64)
    diag = {}
    for e in range(edge_index.size(1)):
        s, d = int(edge_index[0, e]), int(edge_index[1, e])
        if loops and s == d:
            diag[s] = float(w[e])
        else:
            a[d, s] += float(w[e])
    for i in range(n) if loops else []:
        a[i, i] = diag.get(i, 1.0)
    if not normalize:
        return a
    deg = a.sum(1)
    inv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    return inv.view(-1, 1) * a * inv.view(1, -1)


def spy_spmm(monkeypatch: Any, conv: torch.nn.Module) -> list[int]:
    """Count spmm calls (``gnn.core.ops.spmm`` and the engine's own, which both end in
    ``gnn.core.ops.reduce.run_spmm``) and make ``conv``'s ``[E, F]`` message path fail.

    ``monkeypatch`` is pytest's fixture (anything with ``setattr(obj, name, value)``
    that is undone later). Returns a list that grows by one per spmm call.
    """
    from .ops import reduce

    calls: list[int] = []
    real = reduce.run_spmm
    monkeypatch.setattr(reduce, "run_spmm", lambda *a, **k: calls.append(1) or real(*a, **k))

    def no_message(*args, **kwargs):
        raise AssertionError("the [E, F] message path ran")

    conv.message = no_message
    return calls


def spy_op(monkeypatch: Any, conv: torch.nn.Module, name: str) -> list[int]:
    """Count calls of ``gnn.core.ops.<name>`` and make ``conv``'s per-edge message path fail.

    Like :func:`spy_spmm`, for the fused attention ops (``"node_score_attention"``,
    ``"dot_attention"``, ``"additive_attention"``).
    """
    calls: list[int] = []
    real = getattr(ops, name)
    monkeypatch.setattr(ops, name, lambda *a, **k: calls.append(1) or real(*a, **k))

    def no_message(*args, **kwargs):
        raise AssertionError("the per-edge message path ran")

    conv.message = no_message
    return calls


# -- packaging checks shared by every distribution's test_install.py ------------------------------
def assert_distribution_version(dist: str, module: str, version: str) -> None:
    """``module.__version__`` and the installed metadata both say ``version``."""
    import importlib
    from importlib import metadata

    assert importlib.import_module(module).__version__ == version
    assert metadata.version(dist) == version


def assert_namespace_intact(dist: str) -> None:
    """``gnn`` stays a PEP 420 namespace and ``dist`` ships no ``gnn/__init__.py``."""
    from importlib import metadata
    from pathlib import Path

    import gnn

    assert getattr(gnn, "__file__", None) is None
    assert gnn.__spec__ is not None and gnn.__spec__.origin in (None, "namespace")
    assert not any((Path(p) / "__init__.py").exists() for p in gnn.__path__)
    files = metadata.files(dist) or []
    assert not [f for f in files if str(f).replace("\\", "/") == "gnn/__init__.py"]


def assert_entry_point_loads(dist: str, name: str, value: str, version: str) -> None:
    """``dist`` advertises exactly ``name = value`` in group ``gnn`` and it loads cleanly."""
    from importlib import metadata

    from . import plugins

    eps = [ep for ep in metadata.entry_points(group="gnn") if ep.dist is not None and ep.dist.name == dist]
    assert [(ep.name, ep.value) for ep in eps] == [(name, value)]
    info = {p.dist: p for p in plugins.plugins()}[dist]
    assert (info.name, info.version, info.status, info.error) == (name, version, "ok", "")


def assert_gnn_dependencies(dist: str, expected: list[str], version: str) -> None:
    """``dist`` requires exactly ``expected`` among gnn's distributions, as compatible ranges."""
    import re
    from importlib import metadata

    requirements = [r for r in metadata.requires(dist) or [] if r.startswith("gnn-")]
    names = sorted(re.match(r"[A-Za-z0-9._-]+", r).group(0) for r in requirements)
    assert names == sorted(expected)
    for requirement in requirements:
        assert "==" not in requirement and ">=0.1" in requirement and "<0.2" in requirement, requirement
    for dependency in expected:  # installed alongside, as pip resolved them
        assert metadata.version(dependency) == version
