"""torch.compile: GCNConv, SAGEConv and GINConv trace with zero graph breaks and match eager.

``gcn_norm``'s self-loop handling has no data-dependent shapes, and the
fused ``ops.spmm`` propagation needs no ``[E, F]`` tensor, so the whole
forward (normalization included) is one graph.
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo as dynamo

from gnn.conv import GCNConv, GINConv, SAGEConv
from gnn.core import testing
from gnn.core.utils import gcn_norm

N, E, F_IN, F_OUT = 12, 48, 8, 16


def layers() -> list[tuple[str, torch.nn.Module]]:
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(F_IN, F_OUT), torch.nn.ReLU(), torch.nn.Linear(F_OUT, F_OUT))
    return [
        ("gcn", GCNConv(F_IN, F_OUT)),
        ("gcn-improved", GCNConv(F_IN, F_OUT, improved=True)),
        ("sage-mean", SAGEConv(F_IN, F_OUT)),
        ("sage-max", SAGEConv(F_IN, F_OUT, aggr="max", normalize=True)),
        ("gin", GINConv(mlp, train_eps=True)),
    ]


@pytest.mark.parametrize("name, conv", layers(), ids=[name for name, _ in layers()])
def test_no_graph_breaks_and_compiled_equals_eager(name, conv):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=1)
    weight = torch.rand(E) + 0.1
    args = (x, edge_index, weight) if name.startswith("gcn") else (x, edge_index)
    expected = conv(*args)  # eager (also loads the kernel registry before tracing)
    dynamo.reset()
    explanation = dynamo.explain(conv)(*args)
    assert explanation.graph_break_count == 0, [r.reason for r in explanation.break_reasons]
    assert explanation.graph_count == 1

    compiled = torch.compile(conv, fullgraph=True, backend="aot_eager")
    x_eager = x.clone().requires_grad_()
    x_comp = x.clone().requires_grad_()
    out = compiled(x_comp, *args[1:])
    testing.assert_close(out, expected)
    conv(x_eager, *args[1:]).square().sum().backward()
    out.square().sum().backward()
    testing.assert_close(x_comp.grad, x_eager.grad)


def test_gcn_norm_traces_as_one_graph():
    _, edge_index = testing.random_graph(N, E, 1, seed=3)
    weight = torch.rand(E)
    gcn_norm(edge_index, weight, N)  # warm-up outside tracing

    def norm(ei, w):
        return gcn_norm(ei, w, N, improved=True)

    dynamo.reset()
    explanation = dynamo.explain(norm)(edge_index, weight)
    assert explanation.graph_break_count == 0, [r.reason for r in explanation.break_reasons]
    compiled = torch.compile(norm, fullgraph=True, backend="aot_eager")
    for got, want in zip(compiled(edge_index, weight), norm(edge_index, weight)):
        testing.assert_close(got, want)
