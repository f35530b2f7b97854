"""LCMAggregation against a per-group binary-tree loop."""

from __future__ import annotations

import pytest
import torch

from gnn.aggr import LCMAggregation

INDEX = torch.tensor([0, 0, 0, 0, 0, 2, 3, 3, 3])  # sorted; sizes 5, 0, 1, 3 (+ 1 empty past the end)
DIM_SIZE = 5


def tree_loop(aggr: LCMAggregation, x: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Pad every group with zero vectors to the largest size, then reduce each
    group on its own: consecutive pairs a, b -> (GRU(a, b) + GRU(b, a)) / 2, an
    unpaired last element moves up unchanged."""
    h = torch.relu(aggr.lin(x)) if aggr.project else x
    size = max(int((index == g).sum()) for g in range(dim_size))
    out = torch.zeros(dim_size, aggr.out_channels, dtype=x.dtype)
    for g in range(dim_size):
        items = [h[i] for i in range(index.numel()) if int(index[i]) == g]
        items += [torch.zeros(aggr.out_channels, dtype=x.dtype)] * (size - len(items))
        while len(items) > 1:
            nxt = []
            for k in range(0, len(items) - 1, 2):
                a, b = items[k].view(1, -1), items[k + 1].view(1, -1)
                nxt.append(((aggr.gru_cell(a, b) + aggr.gru_cell(b, a)) / 2).view(-1))
            if len(items) % 2:
                nxt.append(items[-1])
            items = nxt
        out[g] = items[0]
    return out


def data(dtype=torch.float64, channels=3):
    g = torch.Generator().manual_seed(6)
    return torch.randn(INDEX.numel(), channels, generator=g, dtype=dtype)


def test_against_tree_loop_index_and_ptr():
    torch.manual_seed(0)
    aggr = LCMAggregation(3, 4).double()
    x = data()
    expected = tree_loop(aggr, x, INDEX, DIM_SIZE)
    torch.testing.assert_close(aggr(x, INDEX, dim_size=DIM_SIZE), expected)
    ptr = torch.tensor([0, 5, 5, 6, 9, 9])
    torch.testing.assert_close(aggr(x, ptr=ptr), expected)
    assert repr(aggr) == "LCMAggregation(3, 4, project=True)"
    # a single group of one element is just its projection
    torch.testing.assert_close(aggr(x[:1]), torch.relu(aggr.lin(x[:1])))


def test_without_projection_and_max_num_elements():
    torch.manual_seed(1)
    aggr = LCMAggregation(3, 3, project=False).double()
    assert list(aggr.state_dict()) == [
        "gru_cell.weight_ih", "gru_cell.weight_hh", "gru_cell.bias_ih", "gru_cell.bias_hh",
    ]  # fmt: skip
    x = data()
    torch.testing.assert_close(aggr(x, INDEX, dim_size=DIM_SIZE), tree_loop(aggr, x, INDEX, DIM_SIZE))
    # keep at most 2 elements of each group
    keep = torch.tensor([0, 1, 5, 6, 7])
    out = aggr(x, INDEX, dim_size=DIM_SIZE, max_num_elements=2)
    torch.testing.assert_close(out, tree_loop(aggr, x[keep], INDEX[keep], DIM_SIZE))
    # no elements at all: zeros
    empty = aggr(torch.zeros(0, 3, dtype=torch.float64), torch.zeros(0, dtype=torch.long), dim_size=2)
    assert torch.equal(empty, torch.zeros(2, 3, dtype=torch.float64))


def test_gradcheck_float64():
    torch.manual_seed(2)
    aggr = LCMAggregation(2, 2).double()
    x = data(channels=2)[:6].requires_grad_()
    index = INDEX[:6]
    params = dict(aggr.named_parameters())
    names = list(params)

    def fn(x_, *values):
        return torch.func.functional_call(aggr, dict(zip(names, values)), (x_, index))

    torch.autograd.gradcheck(fn, (x, *[p.detach().clone().requires_grad_() for p in params.values()]))


def test_bad_input():
    with pytest.raises(ValueError, match="project=True"):
        LCMAggregation(3, 4, project=False)
    aggr = LCMAggregation(3, 4)
    with pytest.raises(ValueError, match="'index' sorted"):
        aggr(data(torch.float32), INDEX.flip(0))
    with pytest.raises(ValueError, match="2-D 'x'"):
        aggr(data(torch.float32).unsqueeze(0), INDEX, dim=1)
    with pytest.raises(ValueError, match="'x' must have 4 channels"):
        LCMAggregation(4, 4, project=False)(data(torch.float32), INDEX)


def test_matches_pyg():
    pyg_aggr = pytest.importorskip("torch_geometric.nn.aggr")
    x = data(torch.float32)
    for args, kwargs in [((3, 4), {}), ((3, 3), {"project": False})]:
        theirs = pyg_aggr.LCMAggregation(*args, **kwargs)
        ours = LCMAggregation(*args, **kwargs)
        ours.load_state_dict(theirs.state_dict(), strict=True)
        assert repr(ours) == repr(theirs)
        torch.testing.assert_close(ours(x, INDEX, dim_size=DIM_SIZE), theirs(x, INDEX, dim_size=DIM_SIZE))
