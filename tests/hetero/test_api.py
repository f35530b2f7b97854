"""gnn-hetero's public API: PyG's signatures and reprs, exports at gnn.hetero and gnn.nn, the
registries, initial parameter values, the generated dataset and the README example."""

from __future__ import annotations

import contextlib
import inspect
import io
from pathlib import Path

import pytest
import torch

import gnn.hetero as hetero
from gnn.core import registry
from gnn.hetero.datasets import academic_graph

NAMES = [
    "to_hetero", "to_hetero_with_bases", "Transformer", "HeteroConv", "HGTConv", "HANConv", "HEATConv",
    "HeteroBatchNorm", "HeteroLayerNorm", "HeteroJumpingKnowledge",
]  # fmt: skip
META = (["paper", "author"], [("author", "writes", "paper"), ("paper", "cites", "paper")])


def _params(fn) -> list[tuple[str, object, object]]:
    return [(p.name, p.default, p.kind) for p in inspect.signature(fn).parameters.values()]


def test_the_ten_names_import_from_gnn_hetero_and_gnn_nn():
    import gnn.nn as facade
    from gnn.nn._names import NAMES as FACADE_NAMES

    assert sorted(hetero.__all__) == sorted(NAMES)
    for name in NAMES:
        assert getattr(facade, name) is getattr(hetero, name)
        assert FACADE_NAMES[name] == ("gnn.hetero", "gnn-hetero")


@pytest.mark.parametrize("name", NAMES)
def test_signatures_match_pyg(name):
    pyg = pytest.importorskip("torch_geometric.nn")
    ours = getattr(hetero, name)
    theirs = (
        pytest.importorskip("torch_geometric.nn.fx").Transformer
        if name == "Transformer"
        else getattr(pyg, name)
    )
    if inspect.isclass(ours):
        assert _params(ours.__init__) == _params(theirs.__init__)
        if name != "Transformer":
            assert _params(ours.forward) == _params(theirs.forward)
    else:
        assert _params(ours) == _params(theirs)


REPRS = [
    ("HGTConv", (-1, 16, META), {"heads": 2}),
    ("HANConv", (-1, 16, META), {"heads": 4}),
    ("HEATConv", (8, 4, 2, 3, 5, 6, 7), {"heads": 2}),
    ("HeteroBatchNorm", (16, 3), {}),
    ("HeteroLayerNorm", (16, 3), {}),
    ("HeteroJumpingKnowledge", (["paper", "author"], "lstm", 8, 2), {}),
    ("HeteroJumpingKnowledge", (["paper"], "cat"), {}),
]


@pytest.mark.parametrize("name, args, kwargs", REPRS, ids=[r[0] + str(i) for i, r in enumerate(REPRS)])
def test_repr_and_state_dict_layout_match_pyg(name, args, kwargs):
    pyg = pytest.importorskip("torch_geometric.nn")
    ours, theirs = getattr(hetero, name)(*args, **kwargs), getattr(pyg, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)

    def layout(m):
        return {k: tuple(t.shape) if not isinstance(t, torch.nn.parameter.UninitializedParameter) else None
                for k, t in m.state_dict().items()}  # fmt: skip

    assert layout(ours) == layout(theirs)


def test_registries():
    assert registry.convs.lookup("hgt") is hetero.HGTConv
    assert registry.convs.lookup("HANConv") is hetero.HANConv
    assert registry.convs.lookup("heat") is hetero.HEATConv
    assert registry.convs.lookup("HeteroConv") is hetero.HeteroConv
    assert isinstance(registry.norms.resolve("hetero_batch_norm", 8, 2), hetero.HeteroBatchNorm)
    assert isinstance(registry.norms.resolve("HeteroLayerNorm", 8, 2), hetero.HeteroLayerNorm)


def test_initial_values():
    hgt = hetero.HGTConv(4, 4, META, heads=2)
    assert all(bool((p == 1).all()) for p in list(hgt.skip.values()) + list(hgt.p_rel.values()))
    han = hetero.HANConv(4, 4, META, heads=2)
    for p in list(han.lin_src.values()) + list(han.lin_dst.values()) + [han.q]:
        bound = (6.0 / (p.size(-2) + p.size(-1))) ** 0.5
        assert bool(p.abs().max() <= bound) and bool(p.abs().max() > 0)
    norm = hetero.HeteroBatchNorm(4, 2)
    assert bool((norm.running_var == 1).all()) and bool((norm.weight == 1).all())


def test_academic_graph_is_seeded_and_checked():
    a, b = academic_graph(seed=3), academic_graph(seed=3)
    assert a.metadata() == b.metadata()
    assert torch.equal(a["paper"].x, b["paper"].x)
    assert torch.equal(a["author", "writes", "paper"].edge_index, b["author", "writes", "paper"].edge_index)
    assert not torch.equal(academic_graph(seed=4)["paper"].x, a["paper"].x)
    for (src, _, dst), ei in a.edge_index_dict.items():
        assert int(ei[0].max()) < a[src].num_nodes and int(ei[1].max()) < a[dst].num_nodes
    assert a["paper"].train_mask.sum() == 120 and not bool(
        (a["paper"].train_mask & a["paper"].test_mask).any()
    )
    with pytest.raises(ValueError, match="homophily"):
        academic_graph(homophily=2.0)
    with pytest.raises(TypeError, match="num_papers"):
        academic_graph(num_papers=1.5)


def test_readme_example_trains():
    readme = Path(hetero.__file__).resolve().parents[3] / "README.md"
    if not readme.exists():
        pytest.skip("the package README is not next to an installed wheel")
    text = readme.read_text()
    start = text.index("```python\n", text.index("## Example")) + len("```python\n")
    code = text[start : text.index("```", start)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(readme), "exec"), {"__name__": "readme"})
    accuracy = float(out.getvalue().strip().split()[-1])
    assert accuracy >= 0.8
