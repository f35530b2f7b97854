from collections import OrderedDict

import pytest
import torch
from torch.nn import Dropout, ReLU

from gnn.core import Linear, MessagePassing, Sequential
from gnn.core.ops import scatter
from gnn.core.utils import degree


class TinyGCN(MessagePassing):
    """x' = D^-1/2 (A + I) D^-1/2 x W + b, written for these tests."""

    fused_message = "edge_weight * x_j"

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(aggr="add")
        self.lin = torch.nn.Linear(in_channels, out_channels, bias=False)
        self.bias = torch.nn.Parameter(torch.randn(out_channels) * 0.1)

    def forward(self, x, edge_index):
        n = x.size(0)
        loops = torch.arange(n)
        edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
        deg = degree(edge_index[1], n)
        weight = deg[edge_index[0]].rsqrt() * deg[edge_index[1]].rsqrt()
        return self.propagate(edge_index, x=self.lin(x), edge_weight=weight) + self.bias

    def message(self, x_j, edge_weight):
        return edge_weight.view(-1, 1) * x_j


def dense_gcn(conv: TinyGCN, x, edge_index):
    n = x.size(0)
    adj = torch.eye(n)
    for src, dst in edge_index.t().tolist():
        adj[dst, src] += 1
    d = adj.sum(1).rsqrt()
    return (d.view(-1, 1) * adj * d.view(1, -1)) @ conv.lin(x) + conv.bias


def graph():
    torch.manual_seed(0)
    x = torch.randn(6, 3)
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 4, 5, 5], [1, 0, 2, 1, 4, 3, 4, 3]])
    batch = torch.tensor([0, 0, 0, 1, 1, 1])
    return x, edge_index, batch


def test_first_reference_example():
    x, edge_index, _ = graph()
    conv1, conv2, lin = TinyGCN(3, 8), TinyGCN(8, 8), torch.nn.Linear(8, 2)
    model = Sequential(
        "x, edge_index",
        [
            (conv1, "x, edge_index -> x"),
            ReLU(inplace=True),
            (conv2, "x, edge_index -> x"),
            ReLU(inplace=True),
            lin,
        ],
    )
    expected = lin(dense_gcn(conv2, dense_gcn(conv1, x, edge_index).relu(), edge_index).relu())
    assert torch.allclose(model(x, edge_index), expected, atol=1e-5)
    assert torch.allclose(model(x=x, edge_index=edge_index), expected, atol=1e-5)
    assert list(model.state_dict()) == [
        "module_0.bias",
        "module_0.lin.weight",
        "module_2.bias",
        "module_2.lin.weight",
        "module_4.weight",
        "module_4.bias",
    ]
    assert len(model) == 5 and model[0] is conv1 and model[-1] is lin and list(model)[2] is conv2


def test_second_reference_example_jumping_knowledge_and_pool():
    x, edge_index, batch = graph()
    conv1, conv2, lin = TinyGCN(3, 4), TinyGCN(4, 4), Linear(8, 2)
    jk = (lambda x1, x2: [x1, x2], "x1, x2 -> xs")
    model = Sequential(
        "x, edge_index, batch",
        [
            (Dropout(p=0.5), "x -> x"),
            (conv1, "x, edge_index -> x1"),
            ReLU(inplace=True),
            (conv2, "x1, edge_index -> x2"),
            ReLU(inplace=True),
            jk,
            (lambda xs: torch.cat(xs, dim=-1), "xs -> x"),
            (lambda x, batch: scatter(x, batch, dim=0, reduce="mean"), "x, batch -> x"),
            lin,
        ],
    )

    def manual(h):
        x1 = dense_gcn(conv1, h, edge_index).relu()
        x2 = dense_gcn(conv2, x1, edge_index).relu()
        cat = torch.cat([x1, x2], dim=-1)
        pooled = torch.stack([cat[batch == g].mean(0) for g in range(2)])
        return lin(pooled)

    model.eval()
    assert torch.allclose(model(x, edge_index, batch), manual(x), atol=1e-5)

    model.train()  # dropout in training mode draws the same mask as a manual call
    torch.manual_seed(7)
    out = model(x, edge_index, batch)
    torch.manual_seed(7)
    expected = manual(torch.nn.functional.dropout(x, p=0.5, training=True))
    assert torch.allclose(out, expected, atol=1e-5)

    # lambdas are not children; numbering follows the list
    assert [name for name, _ in model.named_children()] == [
        "module_0",
        "module_1",
        "module_2",
        "module_3",
        "module_4",
        "module_8",
    ]
    lines = repr(model).splitlines()
    assert lines[0] == "Sequential(" and lines[-1] == ")"
    assert lines[2] == f"  (1) - {conv1!r}: x, edge_index -> x1"
    assert lines[3] == "  (2) - ReLU(inplace=True): x1 -> x1"
    assert lines[6] == f"  (5) - {jk[0]!r}: x1, x2 -> xs"


def test_multiple_outputs_and_headerless_follow_up():
    model = Sequential(
        "x",
        [
            (lambda x: (x + 1, x * 2), "x -> a, b"),
            (lambda a, b: (a * b, a - b), "a, b -> c, d"),
            lambda c, d: (c.sum(), d.sum()),  # reads and writes "c, d"
        ],
    )
    x = torch.tensor([1.0, 2.0])
    c, d = model(x)
    assert torch.equal(c, ((x + 1) * (x * 2)).sum()) and torch.equal(d, ((x + 1) - (x * 2)).sum())
    assert repr(model).splitlines()[3].endswith(": c, d -> c, d")


def test_single_input_headerless_first_module_and_optional_argument():
    lin1, lin2 = torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)
    model = Sequential("x", [lin1, ReLU(), lin2])
    x = torch.randn(5, 3)
    assert torch.allclose(model(x), lin2(lin1(x).relu()))

    opt = Sequential(
        "x, batch: Optional[Tensor] = None",
        [(lambda x, batch: x if batch is None else x + batch, "x, batch -> x")],
    )
    assert torch.equal(opt(x), x)
    assert torch.equal(opt(x, torch.ones(1)), x + 1)


def test_ordered_dict_and_reset_parameters():
    modules = OrderedDict(
        [
            ("lin1", (torch.nn.Linear(3, 4), "x -> h")),
            ("act", ReLU()),
            ("block", (torch.nn.Sequential(torch.nn.Linear(4, 4)), "h -> h")),
            ("lin2", Linear(4, 2)),
        ]
    )
    model = Sequential("x", modules)
    assert list(model.state_dict()) == [
        "lin1.weight",
        "lin1.bias",
        "block.0.weight",
        "block.0.bias",
        "lin2.weight",
        "lin2.bias",
    ]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.reset_parameters()
    after = model.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))


def test_bad_headers_and_arguments():
    lin = torch.nn.Linear(2, 2)
    for header in ("x -> x -> y", "x", "x -> ", " -> x", "(x) -> x", "x -> 1y"):
        with pytest.raises(ValueError, match="header"):
            Sequential("x", [(lin, header)])
    with pytest.raises(ValueError, match="'q'"):
        Sequential("x", [(lin, "x -> x"), (lin, "q -> x")])
    with pytest.raises(ValueError, match="header"):
        Sequential("x, edge_index", [lin])
    with pytest.raises(ValueError, match="input_args"):
        Sequential("x, edge_index -> x", [(lin, "x -> x")])
    with pytest.raises(ValueError, match="input_args"):
        Sequential("x, batch=3", [(lin, "x -> x")])
    with pytest.raises(TypeError, match="input_args"):
        Sequential(["x"], [(lin, "x -> x")])
    with pytest.raises(TypeError, match="callable"):
        Sequential("x", [(lin, "x -> x"), 5])
    with pytest.raises(ValueError, match="modules"):
        Sequential("x", [])
    with pytest.raises(ValueError, match="modules"):
        Sequential("x", [(lin, "x -> x", "extra")])

    model = Sequential("x, y", [(lambda x, y: x, "x, y -> a, b")])
    with pytest.raises(TypeError, match="'y'"):
        model(torch.ones(1))
    with pytest.raises(TypeError, match="'z'"):
        model(torch.ones(1), z=torch.ones(1))
    with pytest.raises(ValueError, match="a, b"):
        model(torch.ones(1), torch.ones(1))


def test_state_dict_and_outputs_match_pyg():
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index, _ = graph()

    def build(cls, conv):
        return cls(
            "x, edge_index",
            [
                (conv, "x, edge_index -> x"),
                ReLU(),
                (lambda x: x * 2, "x -> x"),
                (torch.nn.Sequential(torch.nn.Linear(8, 8), ReLU()), "x -> x"),
                torch.nn.Linear(8, 2),
            ],
        )

    conv = pyg.nn.GCNConv(3, 8)
    theirs = build(pyg.nn.Sequential, conv)
    ours = build(Sequential, conv)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert torch.allclose(ours(x, edge_index), theirs(x, edge_index), atol=1e-6)
    # repr differs only in the addresses of the two lambdas
    assert [line.split(" at 0x")[0] for line in repr(ours).splitlines()] == [
        line.split(" at 0x")[0] for line in repr(theirs).splitlines()
    ]

    named = OrderedDict([("lin", (torch.nn.Linear(3, 4), "x -> x")), ("act", ReLU())])
    assert list(Sequential("x", named).state_dict()) == list(pyg.nn.Sequential("x", named).state_dict())
