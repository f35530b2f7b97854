"""HeteroJumpingKnowledge against its formula and PyG (cat, max, lstm)."""

from __future__ import annotations

import pytest
import torch

from gnn.hetero import HeteroJumpingKnowledge


def _xs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "paper": [torch.randn(5, 4, generator=g, dtype=torch.float64) for _ in range(3)],
        "author": [torch.randn(2, 4, generator=g, dtype=torch.float64) for _ in range(3)],
    }


def test_cat_and_max_formulas():
    xs = _xs()
    out = HeteroJumpingKnowledge(["paper", "author"], "cat")(xs)
    torch.testing.assert_close(out["paper"], torch.cat(xs["paper"], dim=-1))
    out = HeteroJumpingKnowledge(["paper", "author"], "max")(xs)
    torch.testing.assert_close(out["author"], torch.stack(xs["author"]).amax(0))


def test_lstm_formula():
    jk = HeteroJumpingKnowledge(["paper", "author"], "lstm", channels=4, num_layers=3).double()
    xs = _xs()
    out = jk(xs)
    inner = jk.jk_dict["paper"]
    stacked = torch.stack(xs["paper"], dim=1)
    scores = inner.att(inner.lstm(stacked)[0]).squeeze(-1)
    expected = (stacked * torch.softmax(scores, dim=-1).unsqueeze(-1)).sum(1)
    torch.testing.assert_close(out["paper"], expected)
    assert inner.lstm.hidden_size == 6 and inner.lstm.bidirectional


@pytest.mark.parametrize("mode", ["cat", "max", "lstm"])
def test_matches_pyg(mode):
    pyg = pytest.importorskip("torch_geometric.nn")
    ours = HeteroJumpingKnowledge(["paper", "author"], mode, 4, 3).double()
    theirs = pyg.HeteroJumpingKnowledge(["paper", "author"], mode, 4, 3).double()
    assert repr(ours) == repr(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    xs = _xs(1)
    a, b = ours(xs), theirs(xs)
    for key in b:
        torch.testing.assert_close(a[key], b[key])
    # ties in "max" send the gradient to one layer, as PyG's
    ties = {k: [torch.zeros(2, 4, dtype=torch.float64, requires_grad=True) for _ in range(2)] for k in b}
    ours(ties)["paper"].sum().backward()
    mine = [t.grad for t in ties["paper"]]
    ties2 = {k: [torch.zeros(2, 4, dtype=torch.float64, requires_grad=True) for _ in range(2)] for k in b}
    theirs(ties2)["paper"].sum().backward()
    for g1, t2 in zip(mine, ties2["paper"]):
        torch.testing.assert_close(g1, t2.grad)


def test_errors():
    with pytest.raises(ValueError, match="mode"):
        HeteroJumpingKnowledge(["paper"], "mean")
    with pytest.raises(ValueError, match="channels"):
        HeteroJumpingKnowledge(["paper"], "lstm")
    jk = HeteroJumpingKnowledge(["paper", "author"], "cat")
    with pytest.raises(ValueError, match="'author'"):
        jk({"paper": [torch.randn(2, 2)]})
    with pytest.raises(TypeError, match="xs_dict"):
        jk([torch.randn(2, 2)])
