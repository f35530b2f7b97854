"""Shared fixtures of the gnn-hetero tests: a small heterogeneous graph and PyG parity helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

NODE_TYPES = ["paper", "author"]
EDGE_TYPES = [
    ("paper", "cites", "paper"),
    ("author", "writes", "paper"),
    ("paper", "rev_writes", "author"),
    ("author", "knows", "author"),
]
METADATA = (NODE_TYPES, EDGE_TYPES)
SIZES = {"paper": 9, "author": 6}
FEATURES = {"paper": 5, "author": 3}


def make_graph(
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    edges: int = 24,
    sizes: dict[str, int] | None = None,
    features: dict[str, int] | None = None,
    edge_types: list[tuple[str, str, str]] | None = None,
    edge_dim: int | None = None,
) -> dict[str, Any]:
    """``x`` (dict of ``[N_t, F_t]``), ``edge_index`` (dict of ``[2, E]``) and, with
    ``edge_dim``, ``edge_attr`` (dict of ``[E, edge_dim]``) of a random graph."""
    g = torch.Generator().manual_seed(seed)
    sizes = sizes or SIZES
    features = features or FEATURES
    x = {t: torch.randn(n, features[t], generator=g, dtype=dtype) for t, n in sizes.items()}
    ei = {}
    for src, rel, dst in edge_types or EDGE_TYPES:
        if sizes[src] == 0 or sizes[dst] == 0:
            ei[(src, rel, dst)] = torch.zeros(2, 0, dtype=torch.long)
            continue
        ei[(src, rel, dst)] = torch.stack(
            [
                torch.randint(0, sizes[src], (edges,), generator=g),
                torch.randint(0, sizes[dst], (edges,), generator=g),
            ]
        )
    out: dict[str, Any] = {"x": x, "edge_index": ei}
    if edge_dim is not None:
        out["edge_attr"] = {e: torch.randn(ei[e].size(1), edge_dim, generator=g, dtype=dtype) for e in ei}
    return out


def perturb(module: torch.nn.Module, seed: int = 1) -> None:
    """Move every parameter off its initial value (ones, zeros, Glorot draws) at the same scale."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(1 + 0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype)).add_(
                0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype)
            )


def assert_dicts_close(ours: dict, theirs: dict, atol: float = 1e-10, rtol: float = 1e-7) -> None:
    assert set(ours) == set(theirs), f"keys differ: ours {sorted(ours)}, PyG {sorted(theirs)}"
    for key in theirs:
        if theirs[key] is None:
            assert ours[key] is None, key
            continue
        torch.testing.assert_close(
            ours[key], theirs[key], atol=atol, rtol=rtol, msg=lambda m, k=key: f"{k}: {m}"
        )


@pytest.fixture
def graph() -> Callable[..., dict[str, Any]]:
    return make_graph


def pyg_parity(
    ours: torch.nn.Module, theirs: torch.nn.Module, *inputs: Any, train: bool = False, **kwargs: Any
) -> tuple[Any, Any]:
    """Run both once (lazy sizes), perturb PyG's parameters, load them into ours (strict),
    switch both to float64 and return both outputs on ``inputs`` (float64 expected)."""
    from gnn.core.testing import load_pyg_state

    with torch.no_grad():
        ours.float()(*_cast(inputs, torch.float32), **_cast(kwargs, torch.float32))
        theirs.float()(*_cast(inputs, torch.float32), **_cast(kwargs, torch.float32))
    perturb(theirs)
    load_pyg_state(ours, theirs)
    ours.double().train(train)
    theirs.double().train(train)
    torch.manual_seed(0)
    a = ours(*inputs, **kwargs)
    torch.manual_seed(0)
    b = theirs(*inputs, **kwargs)
    return a, b


def _cast(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, dict):
        return {k: _cast(v, dtype) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(v, dtype) for v in value)
    return value


@pytest.fixture
def parity() -> Callable[..., tuple[Any, Any]]:
    return pyg_parity


@pytest.fixture
def close() -> Callable[..., None]:
    return assert_dicts_close


@pytest.fixture
def metadata() -> tuple[list[str], list[tuple[str, str, str]]]:
    return (list(NODE_TYPES), list(EDGE_TYPES))
