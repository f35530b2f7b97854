import pytest
import torch
from torch.nn import Linear, ReLU

from gnn.core import Linear as LazyLinear
from gnn.core import MessagePassing, summary


def make_tiny_conv(base):
    """A small message-passing layer (x' = sum_j x_j W + b) on top of ``base``."""

    class TinyConv(base):
        def __init__(self, in_channels, out_channels):
            super().__init__(aggr="add")
            self.lin = Linear(in_channels, out_channels, bias=False)
            self.bias = torch.nn.Parameter(torch.zeros(out_channels))

        def forward(self, x, edge_index):
            return self.propagate(edge_index, x=self.lin(x)) + self.bias

    return TinyConv


class Net(torch.nn.Module):
    def __init__(self, conv_cls=None):
        super().__init__()
        self.conv = (conv_cls or make_tiny_conv(MessagePassing))(4, 8)
        self.act = ReLU()
        self.head = torch.nn.Sequential(Linear(8, 8), torch.nn.Sequential(ReLU(), Linear(8, 2)))
        self.unused = Linear(100, 20)

    def forward(self, x, edge_index):
        return self.head(self.act(self.conv(x, edge_index)))


def inputs():
    torch.manual_seed(0)
    return torch.randn(10, 4), torch.randint(10, (2, 15))


EXPECTED = """\
+-----------------------+------------------+--------------+--------+
| Layer                 | Input Shape      | Output Shape | #Param |
|-----------------------+------------------+--------------+--------|
| Net                   | [10, 4], [2, 15] | [10, 2]      | 2,150  |
| ├─(conv)TinyConv      | [10, 4], [2, 15] | [10, 8]      | 40     |
| ├─(act)ReLU           | [10, 8]          | [10, 8]      | --     |
| ├─(head)Sequential    | [10, 8]          | [10, 2]      | 90     |
| │    └─(0)Linear      | [10, 8]          | [10, 8]      | 72     |
| │    └─(1)Sequential  | [10, 8]          | [10, 2]      | 18     |
| │    │    └─(0)ReLU   | [10, 8]          | [10, 8]      | --     |
| │    │    └─(1)Linear | [10, 8]          | [10, 2]      | 18     |
| ├─(unused)Linear      | --               | --           | 2,020  |
+-----------------------+------------------+--------------+--------+"""


def cells(table: str) -> list[list[str]]:
    """The table's cells, whitespace-stripped (column padding may differ between formatters)."""
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in table.splitlines()
        if line[:2] == "| "
    ]


def test_exact_table():
    model = Net()
    model.train()
    assert summary(model, *inputs()) == EXPECTED
    assert model.training and model.head.training  # mode restored
    assert all(not m._forward_hooks for m in model.modules())  # hooks removed


def test_depth_and_leaf_module():
    x, edge_index = inputs()
    model = Net()
    assert [row[0] for row in cells(summary(model, x, edge_index, max_depth=1))] == [
        "Layer",
        "Net",
        "├─(conv)TinyConv",
        "├─(act)ReLU",
        "├─(head)Sequential",
        "├─(unused)Linear",
    ]
    assert len(cells(summary(model, x, edge_index, max_depth=0))) == 2
    rows = cells(summary(model, x, edge_index, leaf_module=None))
    assert rows[2][0] == "├─(conv)TinyConv" and rows[3:5] == [
        ["│    └─(aggr_module)SumAggregation", rows[3][1], rows[3][2], "--"],
        ["│    └─(lin)Linear", "[10, 4]", "[10, 8]", "32"],
    ]
    rows = cells(summary(model, x, edge_index, leaf_module=[torch.nn.Sequential]))
    assert [row[0] for row in rows][-2:] == ["├─(head)Sequential", "├─(unused)Linear"]


def test_shapes_of_odd_inputs_outputs_and_lazy_params():
    class Odd(torch.nn.Module):
        def forward(self, x, *rest):
            return x, [x], None

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.odd = Odd()
            self.shared = ReLU()
            self.alias = self.shared  # one module, two names: successive calls
            self.lazy = LazyLinear(-1, 3)
            self.never = LazyLinear(-1, 3)

        def forward(self, x):
            self.odd(x, None, 3, (x, x), torch.tensor(2.0))
            self.shared(x)
            self.shared(x[:2])
            return self.lazy(x)

    rows = cells(summary(Model(), torch.randn(4, 5)))
    assert rows[1] == ["Model", "[4, 5]", "[4, 3]", "-1"]  # `never` stays lazy
    assert rows[2] == ["├─(odd)Odd", "[4, 5], []", "[4, 5]", "--"]
    assert rows[3] == ["├─(shared)ReLU", "[4, 5]", "[4, 5]", "--"]
    assert rows[4] == ["├─(alias)ReLU", "[2, 5]", "[2, 5]", "--"]
    assert rows[5] == ["├─(lazy)Linear", "[4, 5]", "[4, 3]", "18"]
    assert rows[6] == ["├─(never)Linear", "--", "--", "-1"]


def test_bad_arguments():
    x, edge_index = inputs()
    with pytest.raises(TypeError, match="model"):
        summary(lambda x: x, x)
    with pytest.raises(ValueError, match="max_depth"):
        summary(Net(), x, edge_index, max_depth=-1)
    with pytest.raises(ValueError, match="leaf_module"):
        summary(Net(), x, edge_index, leaf_module="GCNConv")
    with pytest.raises(TypeError, match="leaf_module"):
        summary(Net(), x, edge_index, leaf_module=[Net()])


def test_matches_pyg_for_torch_layers():
    pyg = pytest.importorskip("torch_geometric")
    pytest.importorskip("tabulate")  # PyG's summary formats with it

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = Linear(4, 8)
            self.act = ReLU()
            self.alias = self.act
            self.blocks = torch.nn.ModuleList([Linear(8, 8), torch.nn.Sequential(Linear(8, 8), ReLU())])
            self.idle = Linear(3, 3)

        def forward(self, x, scale=None):
            x = self.act(self.lin(x))
            x = self.act(x[:3])
            for block in self.blocks:
                x = block(x)
            return x, x.sum()

    model, x = Model(), torch.randn(6, 4)
    for kwargs in ({}, {"max_depth": 1}, {"max_depth": 2}, {"leaf_module": torch.nn.Sequential}):
        assert cells(summary(model, x, **kwargs)) == cells(pyg.nn.summary(model, x, **kwargs))
    assert cells(summary(model, x, scale=2.0)) == cells(pyg.nn.summary(model, x, scale=2.0))


def test_matches_pyg_for_message_passing_models():
    pyg = pytest.importorskip("torch_geometric")
    pytest.importorskip("tabulate")
    x, edge_index = inputs()
    ours = Net(make_tiny_conv(MessagePassing))
    theirs = Net(make_tiny_conv(pyg.nn.MessagePassing))
    assert cells(summary(ours, x, edge_index)) == cells(pyg.nn.summary(theirs, x, edge_index))
    assert cells(summary(ours, x, edge_index)) == cells(EXPECTED)
    # PyG's own layers are recognised as message-passing leaves too
    assert cells(summary(theirs, x, edge_index)) == cells(pyg.nn.summary(theirs, x, edge_index))
