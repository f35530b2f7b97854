"""GPSE and GPSENodeEncoder: PyG parity after a strict state_dict load (pre-training head outputs
and gradients, every stage type), the virtual-node removal against a loop reference, a local-only
from_pretrained, the processing and loss helpers, bad inputs, signatures and repr."""

from __future__ import annotations

import inspect

import pytest
import torch

from gnn.core import testing
from gnn.core.data import Batch, Data
from gnn.models import GPSE, GPSENodeEncoder
from gnn.models import gpse as ours_gpse

SMALL = dict(
    dim_in=4, dim_inner=8, layers_mp=3, num_node_targets=3, num_graph_targets=2, multi_head_dim_inner=5
)
N = 12


def pyg_gpse():
    return pytest.importorskip("torch_geometric.nn.models.gpse")


def inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 4, generator=g)
    edge_index = torch.randint(0, N, (2, 36), generator=g)
    batch = torch.tensor([0] * 5 + [1] * 7)
    return dict(
        x=x, edge_index=edge_index, batch=batch, y=torch.randn(N, 3, generator=g), y_graph=torch.randn(2, 2)
    )


def same_signature(ours, theirs) -> None:
    a = [(p.name, p.default, p.kind) for p in inspect.signature(ours).parameters.values()]
    b = [(p.name, p.default, p.kind) for p in inspect.signature(theirs).parameters.values()]
    assert a == b


OPTIONS = [
    {},
    {"stage_type": "skipconcat", "head_bn": True, "graph_pooling": "mean"},
    {"stage_type": "plain", "has_l2norm": False, "act": "elu", "final_l2norm": False},
    {"layers_pre_mp": 2, "has_bn": False, "graph_pooling": "max", "virtual_node": False},
]


@pytest.mark.parametrize("options", OPTIONS)
def test_gpse_matches_pyg(options):
    pg = pyg_gpse()
    from torch_geometric.data import Data as PyGData

    torch.manual_seed(0)
    theirs, ours = pg.GPSE(**SMALL, **options), GPSE(**SMALL, **options)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.eval(), theirs.eval()
    data = inputs(1)
    pred, true = ours(Data(**data))
    pred_p, true_p = theirs(PyGData(**data))
    testing.assert_close(pred, pred_p, atol=1e-6, rtol=1e-5)
    assert torch.equal(true, true_p)


def test_gpse_gradients_match_pyg_and_input_untouched():
    pg = pyg_gpse()
    from torch_geometric.data import Data as PyGData

    torch.manual_seed(1)
    theirs, ours = pg.GPSE(**SMALL, dropout=0.0), GPSE(**SMALL, dropout=0.0)
    testing.load_pyg_state(ours, theirs)
    data = inputs(2)
    graph = Data(**data)
    x_before = graph.x.clone()
    pred, _ = ours(graph)
    pred_p, _ = theirs(PyGData(**data))
    testing.assert_close(pred, pred_p, atol=1e-6, rtol=1e-5)
    pred.square().sum().backward()
    pred_p.square().sum().backward()
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        testing.assert_close(p.grad, theirs_params[name].grad, atol=1e-5, rtol=1e-4, msg=name)
    assert torch.equal(graph.x, x_before) and not hasattr(graph, "node_feature")


def test_virtual_node_removal_loop_reference():
    batch = torch.tensor(
        [2, 0, 0, 2, 1, 0, 2, 2]
    )  # unsorted; the last node of each graph is its virtual node
    expected = []
    for g in range(int(batch.max()) + 1):
        members = [i for i in range(batch.numel()) if int(batch[i]) == g]
        expected += members[:-1]
    assert ours_gpse._drop_last_node_per_graph(batch).tolist() == expected
    assert ours_gpse._drop_last_node_per_graph(torch.empty(0, dtype=torch.long)).numel() == 0


def test_process_batch_idx_and_loss_match_pyg():
    pg = pyg_gpse()
    batch = torch.tensor([0] * 5 + [1] * 7)
    true = torch.randn(12, 5)
    assert torch.equal(ours_gpse.process_batch_idx(batch, true), pg.process_batch_idx(batch, true))
    assert ours_gpse.process_batch_idx(None, true) is None
    pred, target = torch.randn(10, 5), torch.randn(10, 5)
    target[:5, 1] = 0.0  # an all-zero column of a graph is left out
    idx = batch[:10].clone()
    idx[5:] = 1
    loss, out = ours_gpse.gpse_loss(pred, target, idx)
    loss_p, _ = pg.gpse_loss(pred, target, idx)
    testing.assert_close(loss, loss_p)
    assert out is pred
    with pytest.raises(ValueError, match="batch_idx"):
        ours_gpse.gpse_loss(pred, target)


def test_cosim_groups_unsorted_rows_by_graph():
    pred, true = torch.randn(6, 2), torch.randn(6, 2)
    idx = torch.tensor([0, 0, 1, 1, -1, -1])  # graph rows (-1) after the node rows, as the head stacks them
    loss = ours_gpse.cosim_col_sep(pred, true, idx)
    groups = [[4, 5], [0, 1], [2, 3]]  # -1 -> graph 0, 0 -> 1, 1 -> 2
    sims = [torch.nn.functional.cosine_similarity(pred[g], true[g], dim=0) for g in groups]
    testing.assert_close(loss, 1 - torch.cat(sims).mean())


def test_from_pretrained_needs_the_local_file(tmp_path):
    pyg_gpse()
    with pytest.raises(FileNotFoundError, match="gpse_model_zinc_1.0.pt"):
        GPSE.from_pretrained("zinc", root=str(tmp_path))
    with pytest.raises(ValueError, match="'name'"):
        GPSE.from_pretrained("qm9", root=str(tmp_path))
    assert not any(tmp_path.iterdir())  # nothing created, nothing downloaded


def test_from_pretrained_loads_a_local_checkpoint(tmp_path):
    torch.manual_seed(2)
    source = GPSE().eval()  # the published checkpoints use the defaults
    state = {f"model.{key}": value for key, value in source.state_dict().items()}
    torch.save({"model_state": state}, tmp_path / "gpse_model_molpcba_1.0.pt")
    model = GPSE.from_pretrained("molpcba", root=str(tmp_path))
    assert not model.training and isinstance(model.post_mp, ours_gpse.IdentityHead)
    graph = Data(x=torch.randn(6, 20), edge_index=torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]]))
    out, y = model(graph)
    assert out.shape == (6, 512) and y is None
    h = source.pre_mp(Data(x=graph.x, edge_index=graph.edge_index))
    testing.assert_close(out, source.mp(h).x)
    torch.save({"weights": state}, tmp_path / "gpse_model_geom_1.0.pt")
    with pytest.raises(ValueError, match="model_state"):
        GPSE.from_pretrained("geom", root=str(tmp_path))


def test_gpse_process_batch_zeroes_virtual_nodes():
    torch.manual_seed(3)
    model = GPSE(**SMALL).eval()
    model.post_mp = ours_gpse.IdentityHead()
    graphs = [
        Data(edge_index=torch.tensor([[0, 1], [1, 2]]), num_nodes=3),
        Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2),
    ]
    batch = Batch.from_data_list(graphs)
    out, ptr = ours_gpse.gpse_process_batch(model, batch, "NormalSE")
    assert out.shape == (5, 8) and torch.equal(ptr, torch.tensor([0, 3, 5]))
    assert torch.equal(batch.x[2], torch.zeros(4)) and torch.equal(batch.x[4], torch.zeros(4))
    single = Data(edge_index=torch.tensor([[0, 1], [1, 2]]), num_nodes=3)
    out = ours_gpse.gpse_process(model, single, "BernoulliSE")
    assert out.shape == (3, 8) and set(single.x.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="rand_type"):
        ours_gpse.gpse_process(model, single, "GammaSE")
    with pytest.raises(NotImplementedError, match="NeighborLoader"):
        ours_gpse.gpse_process(model, single, "UniformSE", neighbor_loader=True, layers_mp=3)


def test_gpse_bad_inputs_and_empty_graph():
    model = GPSE(**SMALL).eval()
    with pytest.raises(TypeError, match="batch.x"):
        model(Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2))
    with pytest.raises(TypeError, match="batch.edge_index"):
        model(Data(x=torch.randn(2, 4)))
    linear = GPSE(**{**SMALL, "layer_type": "linear"}).eval()  # no message passing: no graph needed
    linear.post_mp = ours_gpse.IdentityHead()
    assert linear(Data(x=torch.randn(3, 4)))[0].shape == (3, 8)
    with pytest.raises(ValueError, match="batch.edge_index"):
        model(Data(x=torch.randn(2, 4), edge_index=torch.tensor([0, 1])))
    with pytest.raises(ValueError, match="batch.y"):
        model(Data(x=torch.randn(2, 4), edge_index=torch.tensor([[0], [1]])))
    with pytest.raises(ValueError, match="'layer_type'"):
        GPSE(**{**SMALL, "layer_type": "gatconv"})
    with pytest.raises(ValueError, match="'graph_pooling'"):
        GPSE(**SMALL, graph_pooling="sum")
    model.post_mp = ours_gpse.IdentityHead()
    out, _ = model(Data(x=torch.randn(0, 4), edge_index=torch.empty(2, 0, dtype=torch.long)))
    assert out.shape == (0, 8)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"expand_x": True, "dim_in": 3},
        {"model_type": "linear", "norm_type": None},
        {"n_layers": 1},
        {"n_layers": 3},
    ],
)
def test_node_encoder_matches_pyg(options):
    pyg = pytest.importorskip("torch_geometric.nn")
    torch.manual_seed(4)
    theirs, ours = pyg.GPSENodeEncoder(16, 4, 6, **options), GPSENodeEncoder(16, 4, 6, **options)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x = torch.randn(7, options.get("dim_in", 10))
    pe = torch.randn(7, 4)
    ours.eval(), theirs.eval()
    testing.assert_close(ours(x, pe), theirs(x, pe))
    ours.train(), theirs.train()
    torch.manual_seed(5)
    out = ours(x, pe)
    torch.manual_seed(5)
    testing.assert_close(out, theirs(x, pe))


def test_node_encoder_formula_and_bad_inputs():
    torch.manual_seed(6)
    enc = GPSENodeEncoder(10, 4, 6, model_type="linear", norm_type=None).eval()
    x, pe = torch.randn(5, 4), torch.randn(5, 4)
    testing.assert_close(enc(x, pe), torch.cat([x, pe @ enc.pe_encoder.weight.t() + enc.pe_encoder.bias], 1))
    with pytest.raises(ValueError, match="dim_pe_out"):
        GPSENodeEncoder(6, 4, 6)
    with pytest.raises(ValueError, match="'model_type'"):
        GPSENodeEncoder(16, 4, 6, model_type="gru")
    with pytest.raises(ValueError, match="'dim_in'"):
        GPSENodeEncoder(16, 4, 6, expand_x=True)
    with pytest.raises(ValueError, match="pos_enc"):
        enc(x, pe[:3])


def test_signatures():
    pg = pyg_gpse()
    same_signature(GPSE.__init__, pg.GPSE.__init__)
    same_signature(GPSE.forward, pg.GPSE.forward)
    same_signature(GPSE.from_pretrained, pg.GPSE.from_pretrained)
    same_signature(GPSENodeEncoder.__init__, pg.GPSENodeEncoder.__init__)
    same_signature(GPSENodeEncoder.forward, pg.GPSENodeEncoder.forward)
    names = (
        "gpse_process",
        "gpse_process_batch",
        "precompute_GPSE",
        "gpse_loss",
        "cosim_col_sep",
        "process_batch_idx",
    )
    for name in names:
        same_signature(getattr(ours_gpse, name), getattr(pg, name))
    assert GPSE.url_dict == pg.GPSE.url_dict


def test_precompute_gpse_with_virtual_nodes():
    torch.manual_seed(7)
    model = GPSE(**SMALL).eval()
    model.post_mp = ours_gpse.IdentityHead()
    edges = torch.tensor([[0, 1, 2], [1, 2, 0]])
    graphs = [
        Data(edge_index=edges, num_nodes=4),
        Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=2),
    ]
    torch.manual_seed(8)
    result = ours_gpse.precompute_GPSE(model, graphs, batch_size=2)
    assert result[0] is graphs[0]
    assert graphs[0].pestat_GPSE.shape == (4, 8) and graphs[1].pestat_GPSE.shape == (2, 8)
    # the same random features by hand: graph 0 with its virtual node (index 4) then graph 1 (index 2)
    torch.manual_seed(8)
    x = torch.randn(8, 4)
    x[4] = 0.0
    x[7] = 0.0
    edge_index = torch.cat(
        [
            ours_gpse._with_virtual_node(edges, 4),
            ours_gpse._with_virtual_node(torch.empty(2, 0, dtype=torch.long), 2) + 5,
        ],
        1,
    )
    out, _ = model(Data(x=x, edge_index=edge_index))
    testing.assert_close(graphs[0].pestat_GPSE, out[:4])
    testing.assert_close(graphs[1].pestat_GPSE, out[5:7])


def test_virtual_node_edges_match_pyg_transform():
    transforms = pytest.importorskip("torch_geometric.transforms")
    from torch_geometric.data import Data as PyGData

    edges = torch.tensor([[0, 1, 2], [1, 2, 0]])
    theirs = transforms.VirtualNode()(PyGData(edge_index=edges, num_nodes=3)).edge_index
    ours = ours_gpse._with_virtual_node(edges, 3)
    assert sorted(map(tuple, ours.t().tolist())) == sorted(map(tuple, theirs.t().tolist()))
