"""Every selection pool on the inputs PyG users pass: half and double precision, int32 indices,
non-contiguous features, isolated nodes (gnn.pool alone; no PyG needed)."""

from __future__ import annotations

import pytest
import torch

from gnn.conv import PANConv
from gnn.core import testing
from gnn.pool import ASAPooling, ClusterPooling, EdgePooling, MemPooling, PANPooling, SAGPooling, TopKPooling


def run(name: str, x, edge_index, batch):
    torch.manual_seed(0)
    f = x.size(-1)
    if name == "TopK":
        return TopKPooling(f).to(x.dtype)(x, edge_index, batch=batch)
    if name == "SAG":
        return SAGPooling(f).to(x.dtype)(x, edge_index, batch=batch)
    if name == "Edge":
        out = EdgePooling(f).to(x.dtype)(x, edge_index, batch)
        return out[:3] + tuple(out[3])
    if name == "Cluster":
        out = ClusterPooling(f, "sigmoid").to(x.dtype)(x, edge_index, batch)
        return out[:3] + tuple(out[3])
    if name == "ASAP":
        return ASAPooling(f).to(x.dtype)(x, edge_index, batch=batch)
    if name == "PAN":
        h, m = PANConv(f, f, 1).to(x.dtype)(x, edge_index)
        return PANPooling(f).to(x.dtype)(h, m, batch)
    return MemPooling(f, 3, 2, 2).to(x.dtype)(x, batch)


POOLS = ["TopK", "SAG", "Edge", "Cluster", "ASAP", "PAN", "Mem"]


def inputs(dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 8, generator=g, dtype=torch.float64)[:, ::2]  # non-contiguous, 4 features
    batch = torch.tensor([0] * 5 + [1] * 6 + [2] * 5)
    edge_index = torch.randint(0, 16, (2, 40), generator=g)
    edge_index = edge_index[:, batch[edge_index[0]] == batch[edge_index[1]]]
    edge_index = edge_index[:, (edge_index != 15).all(0)]  # node 15 isolated
    return x.to(dtype), edge_index, batch


@pytest.mark.parametrize("name", POOLS)
def test_int32_indices_and_non_contiguous_features(name):
    x, edge_index, batch = inputs()
    expected = run(name, x.contiguous(), edge_index, batch)
    out = run(name, x, edge_index.int(), batch.int())
    # (the unpool information hands the given edge_index and batch back as they came)
    out = tuple(o.long() if o is not None and not o.is_floating_point() else o for o in out)
    testing.assert_close(out, expected)


@pytest.mark.parametrize("name", POOLS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_reduced_precision(name, dtype):
    x, edge_index, batch = inputs()
    out = run(name, x.to(dtype), edge_index, batch)
    assert out[0].dtype == dtype and torch.isfinite(out[0].float()).all()
    if dtype == torch.float32 or name in ("Mem",):
        expected = run(name, x, edge_index, batch)
        tol = 1e-4 if dtype == torch.float32 else 5e-2
        testing.assert_close(out[0].double(), expected[0], atol=tol, rtol=tol)
