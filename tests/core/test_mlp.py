"""gnn.core.nn.mlp.MLP against a hand-written forward pass and against PyG's MLP."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gnn.core.nn.mlp import MLP


def _randomize(module: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in module.state_dict(keep_vars=True).items():
            if value.is_floating_point():
                noise = torch.randn(value.shape, generator=g, dtype=value.dtype)
                value.copy_(noise.abs() + 0.5 if "running_var" in name else noise)


def _batch_norm_ref(x, norm, training):
    bn = norm.module
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
    else:
        mean, var = bn.running_mean, bn.running_var
    return (x - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias


def _graph_layer_norm_ref(x, norm, batch):
    out = torch.empty_like(x)
    if batch is None:
        c = x - x.mean()
        out = c / (c.pow(2).mean().sqrt() + norm.eps)
    else:
        for g in batch.unique():
            rows = x[batch == g]
            c = rows - rows.mean()
            out[batch == g] = c / torch.sqrt(c.pow(2).mean() + norm.eps)
    return out * norm.weight + norm.bias


def _manual(mlp, x, norm_fn, act, act_first=False):
    """Straight-line forward of an MLP in eval or train mode without dropout."""
    layers = len(mlp.lins)
    for i, lin in enumerate(mlp.lins):
        x = x @ lin.weight.t() + (lin.bias if lin.bias is not None else 0.0)
        if i == layers - 1 and mlp.plain_last:
            break
        if act_first:
            x = act(x)
        x = norm_fn(x, mlp.norms[i])
        if not act_first:
            x = act(x)
    return x


X = torch.randn(7, 4, generator=torch.Generator().manual_seed(1))
BATCH = torch.tensor([0, 0, 0, 2, 2, 2, 2])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_mlp_matches_manual(training):
    mlp = MLP([4, 5, 6, 3])
    _randomize(mlp)
    mlp.train(training)
    out = mlp(X)
    expected = _manual(mlp, X, lambda h, n: _batch_norm_ref(h, n, training), F.relu)
    torch.testing.assert_close(out, expected)
    assert [k for k in mlp.state_dict() if k.startswith("norms.0")] == [
        "norms.0.module.weight",
        "norms.0.module.bias",
        "norms.0.module.running_mean",
        "norms.0.module.running_var",
        "norms.0.module.num_batches_tracked",
    ]


@pytest.mark.parametrize("batch", [None, BATCH])
def test_graph_layer_norm_mlp_matches_manual(batch):
    mlp = MLP([4, 5, 3], norm="layer_norm", act="elu", plain_last=False)
    _randomize(mlp)
    out = mlp(X, batch, 3)
    expected = _manual(mlp, X, lambda h, n: _graph_layer_norm_ref(h, n, batch), F.elu)
    torch.testing.assert_close(out, expected)
    assert list(mlp.state_dict()) == [
        "lins.0.weight",
        "lins.0.bias",
        "lins.1.weight",
        "lins.1.bias",
        "norms.0.weight",
        "norms.0.bias",
        "norms.1.weight",
        "norms.1.bias",
    ]


def test_node_layer_norm_act_first_no_bias():
    mlp = MLP(
        [4, 6, 3],
        norm="layer_norm",
        norm_kwargs={"mode": "node"},
        act="leaky_relu",
        act_kwargs={"negative_slope": 0.3},
        act_first=True,
        bias=[False, True],
    )
    _randomize(mlp)
    assert mlp.lins[0].bias is None and mlp.lins[1].bias is not None

    def node_norm(h, n):
        c = h - h.mean(-1, keepdim=True)
        return c / torch.sqrt(c.pow(2).mean(-1, keepdim=True) + n.eps) * n.weight + n.bias

    expected = _manual(mlp, X, node_norm, lambda h: F.leaky_relu(h, 0.3), act_first=True)
    torch.testing.assert_close(mlp(X, BATCH), expected)


def test_no_norm_return_emb_and_channels_spec():
    mlp = MLP(in_channels=4, hidden_channels=5, out_channels=2, num_layers=3, norm=None, act="tanh")
    assert mlp.channel_list == [4, 5, 5, 2]
    assert (mlp.in_channels, mlp.out_channels, mlp.num_layers) == (4, 2, 3)
    assert repr(mlp) == "MLP(4, 5, 5, 2)"
    out, emb = mlp(X, return_emb=True)
    h = X
    for lin in mlp.lins[:-1]:
        h = torch.tanh(lin(h))
    torch.testing.assert_close(emb, h)
    torch.testing.assert_close(out, mlp.lins[-1](h))
    single = MLP([4, 3])
    out, emb = single(X, return_emb=True)
    assert emb is None
    torch.testing.assert_close(out, single.lins[0](X))


def test_dropout_lists_and_training():
    assert MLP([4, 5, 3], dropout=0.3).dropout == [0.3, 0.0]
    assert MLP([4, 5, 3], dropout=0.3, plain_last=False).dropout == [0.3, 0.3]
    mlp = MLP([4, 5, 3], dropout=[1.0, 0.0], norm=None)
    mlp.train()
    # the hidden layer is dropped completely: the output is the last bias
    torch.testing.assert_close(mlp(X), mlp.lins[1].bias.expand(7, 3))
    mlp.eval()
    torch.testing.assert_close(mlp(X), mlp.lins[1](F.relu(mlp.lins[0](X))))
    mlp = MLP([4, 5, 3], dropout=[0.0, 1.0], norm=None).train()  # dropout after a plain last layer too
    torch.testing.assert_close(mlp(X), torch.zeros(7, 3))


def test_lazy_in_channels_and_shared_norm_module():
    mlp = MLP([-1, 5, 3], norm=None)
    out = mlp(X)
    assert mlp.lins[0].weight.shape == (5, 4)
    torch.testing.assert_close(out, mlp.lins[1](F.relu(mlp.lins[0](X))))
    shared = torch.nn.LayerNorm(5)
    mlp = MLP([4, 5, 5, 3], norm=shared)
    assert mlp.norms[0] is shared and mlp.norms[1] is shared
    assert not mlp.supports_norm_batch


def test_activations_resolve():
    assert isinstance(MLP([4, 3, 2], act="gelu").act, torch.nn.GELU)
    assert isinstance(MLP([4, 3, 2], act="LeakyReLU").act, torch.nn.LeakyReLU)
    assert isinstance(MLP([4, 3, 2], act="sigmoid").act, torch.nn.Sigmoid)
    assert MLP([4, 3, 2], act="elu", act_kwargs={"alpha": 0.5}).act.alpha == 0.5
    assert MLP([4, 3, 2], act=None).act is None
    assert MLP([4, 3, 2], act=torch.tanh).act is torch.tanh


def test_single_element_batch_norm():
    mlp = MLP([4, 5, 3], norm_kwargs={"allow_single_element": True})
    _randomize(mlp)
    mlp.train()
    x = X[:1]
    expected = _manual(mlp, x, lambda h, n: _batch_norm_ref(h, n, False), F.relu)
    torch.testing.assert_close(mlp(x), expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_layers"):
        MLP(4)
    with pytest.raises(ValueError, match="hidden_channels"):
        MLP(in_channels=4, out_channels=3, num_layers=2)
    with pytest.raises(ValueError, match="out_channels"):
        MLP(in_channels=4, hidden_channels=3, num_layers=2)
    with pytest.raises(ValueError, match="channel_list"):
        MLP([4])
    with pytest.raises(ValueError, match="dropout"):
        MLP([4, 5, 3], dropout=[0.1])
    with pytest.raises(ValueError, match="dropout"):
        MLP([4, 5, 3], dropout=1.5)
    with pytest.raises(ValueError, match="bias"):
        MLP([4, 5, 3], bias=[True])
    with pytest.raises(ValueError, match="act"):
        MLP([4, 5, 3], act="no_such_activation")
    with pytest.raises(ValueError, match="norm"):
        MLP([4, 5, 3], norm="no_such_norm")
    with pytest.raises(TypeError, match="unexpected"):
        MLP([4, 5, 3], not_an_argument=1)


def test_deprecated_arguments():
    with pytest.warns(DeprecationWarning, match="batch_norm"):
        mlp = MLP([4, 5, 3], batch_norm=False)
    assert isinstance(mlp.norms[0], torch.nn.Identity)
    with pytest.warns(DeprecationWarning, match="relu_first"):
        assert MLP([4, 5, 3], relu_first=True).act_first


def test_graph_layer_norm_gradcheck():
    norm = MLP([3, 4, 2], norm="layer_norm").norms[0].double()
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    batch = torch.tensor([0, 0, 1, 1, 1])
    assert torch.autograd.gradcheck(lambda t: norm(t, batch, 2), (x,))


PYG_CONFIGS = [
    {"channel_list": [4, 5, 6, 3]},
    {"channel_list": [4, 5, 3], "norm": "layer_norm"},
    {"channel_list": [4, 5, 3], "norm": "layer_norm", "norm_kwargs": {"mode": "node"}},
    {"channel_list": [4, 5, 3], "norm": None, "act": "elu"},
    {"channel_list": [4, 5, 6, 3], "act_first": True, "plain_last": False, "act": "leaky_relu"},
    {"in_channels": 4, "hidden_channels": 6, "out_channels": 2, "num_layers": 3, "bias": False},
    {"channel_list": [4, 5, 3], "bias": [True, False], "act": "gelu", "dropout": [0.2, 0.1]},
]


@pytest.mark.parametrize("config", PYG_CONFIGS)
@pytest.mark.parametrize("training", [False, True])
def test_matches_pyg(config, training):
    pyg = pytest.importorskip("torch_geometric")
    theirs = pyg.nn.MLP(**config)
    _randomize(theirs)
    ours = MLP(**config)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    assert ours.dropout == theirs.dropout and ours.channel_list == theirs.channel_list
    assert ours.supports_norm_batch == theirs.supports_norm_batch
    ours.train(training)
    theirs.train(training)
    for batch in (None, BATCH):
        torch.manual_seed(3)
        expected, expected_emb = theirs(X, batch, 3, return_emb=True)
        torch.manual_seed(3)
        out, emb = ours(X, batch, 3, return_emb=True)
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(emb, expected_emb)
    if any(k.endswith("running_mean") for k in theirs.state_dict()):
        for key, value in theirs.state_dict().items():
            torch.testing.assert_close(ours.state_dict()[key], value)
    assert [repr(n) for n in ours.norms] == [repr(n) for n in theirs.norms]
