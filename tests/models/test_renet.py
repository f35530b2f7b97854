"""RENet: the event-history transform against PyG's and a brute-force reference (per event and
batched), forward and gradients against PyG after a strict state_dict load, the ranking metrics,
empty batches, bad input, signatures and repr."""

from __future__ import annotations

import inspect

import pytest
import torch

from gnn.core import testing
from gnn.core import validation as v
from gnn.core.data import Data
from gnn.models import RENet

pyg = pytest.importorskip("torch_geometric")
from torch_geometric.data import Data as PygData  # noqa: E402
from torch_geometric.loader import DataLoader  # noqa: E402
from torch_geometric.nn.models import RENet as PygRENet  # noqa: E402

N, R, L, H = 9, 3, 3, 6


def events(num=70, seed=0):
    """``[E, 4]`` random ``(sub, rel, obj, t)`` in time order (several events per time, gaps)."""
    g = torch.Generator().manual_seed(seed)
    t = (torch.randint(0, 14, (num,), generator=g) * 2).sort().values
    return torch.stack(
        [torch.randint(0, N, (num,), generator=g), torch.randint(0, R, (num,), generator=g),
         torch.randint(0, N, (num,), generator=g), t], 1,
    )  # fmt: skip


def brute_force_history(ev, seq_len):
    """For every event, its histories by the definition: the distinct times seen so far are the
    steps; the window is the ``seq_len`` steps before the event's own."""
    out = []
    times = sorted(set(ev[:, 3].tolist()))
    for i, (s, r, o, t) in enumerate(ev.tolist()):
        k = times.index(t)
        h = {"sub": [], "sub_t": [], "obj": [], "obj_t": []}
        for step in range(max(k - seq_len, 0), k):
            for s2, r2, o2, t2 in ev[:i].tolist():
                if t2 != times[step] or r2 != r:
                    continue
                if s2 == s:
                    h["sub"].append(o2)
                    h["sub_t"].append(step - (k - seq_len))
                if o2 == o:
                    h["obj"].append(s2)
                    h["obj_t"].append(step - (k - seq_len))
        out.append(h)
    return out


def test_history_transform_matches_pyg_reference_and_batching():
    ev = events()
    ours, theirs = RENet.pre_transform(L), PygRENet.pre_transform(L)
    assert RENet.pre_process is RENet.pre_transform
    ref = brute_force_history(ev, L)
    pyg_list = []
    for i, (s, r, o, t) in enumerate(ev.tolist()):
        a = ours(Data(sub=s, rel=r, obj=o, t=t))
        b = theirs(PygData(sub=s, rel=r, obj=o, t=t))
        pyg_list.append(b)
        for key in ("h_sub", "h_sub_t", "h_obj", "h_obj_t"):
            assert torch.equal(a[key], b[key]) and a[key].dtype == b[key].dtype, (i, key)
            assert a[key].tolist() == ref[i][key[2:]], (i, key)
    # the same stream in uneven chunks of 1-D tensors, as if event by event
    batched = RENet.pre_transform(L)
    collated = next(iter(DataLoader(pyg_list, batch_size=len(pyg_list), follow_batch=["h_sub", "h_obj"])))
    got = {k: [] for k in ("h_sub", "h_sub_t", "h_sub_batch", "h_obj", "h_obj_t", "h_obj_batch")}
    start = 0
    for chunk in ev.split([1, 20, 0, 13, 36]):
        d = batched(Data(sub=chunk[:, 0], rel=chunk[:, 1], obj=chunk[:, 2], t=chunk[:, 3]))
        for key in got:
            got[key].append(d[key] + (start if key.endswith("batch") else 0))
        start += chunk.size(0)
    for key, parts in got.items():
        assert torch.equal(torch.cat(parts), collated[key]), key


def test_history_transform_out_of_order_times_and_bad_input():
    ours, theirs = RENet.pre_transform(2), PygRENet.pre_transform(2)
    for s, r, o, t in [(0, 0, 1, 5), (0, 0, 2, 6), (0, 0, 3, 4), (0, 0, 4, 7), (1, 0, 0, 7), (0, 0, 1, 9)]:
        a, b = ours(Data(sub=s, rel=r, obj=o, t=t)), theirs(PygData(sub=s, rel=r, obj=o, t=t))
        for key in ("h_sub", "h_sub_t", "h_obj", "h_obj_t"):
            assert torch.equal(a[key], b[key]), key
    with pytest.raises(ValueError, match="'rel'"):
        ours(
            Data(
                sub=torch.tensor([0, 1]),
                rel=torch.tensor([0]),
                obj=torch.tensor([1, 1]),
                t=torch.tensor([9, 9]),
            )
        )
    with pytest.raises(ValueError, match="'obj'"):
        ours(Data(sub=0, rel=0, t=10))
    with pytest.raises(ValueError, match="seq_len"):
        RENet.pre_transform(0)


def pyg_batch(ev, seq_len=L):
    transform = PygRENet.pre_transform(seq_len)
    data = [transform(PygData(sub=s, rel=r, obj=o, t=t)) for s, r, o, t in ev.tolist()]
    return next(iter(DataLoader(data, batch_size=len(data), follow_batch=["h_sub", "h_obj"])))


def test_forward_and_gradients_match_pyg():
    torch.manual_seed(0)
    batch = pyg_batch(events(seed=1))
    ours, theirs = RENet(N, R, H, L).double(), PygRENet(N, R, H, L).double()
    testing.load_pyg_state(ours, theirs)
    a, b = ours(batch), theirs(batch)
    testing.assert_close(a, b, atol=1e-12, rtol=1e-10)
    (a[0].exp() * a[1]).sum().backward()
    (b[0].exp() * b[1]).sum().backward()
    named = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        testing.assert_close(p.grad, named[name].grad, atol=1e-10, rtol=1e-8, msg=name)
    # int32 histories and our own Data give the same
    ours_data = Data(**{k: batch[k].int() if k.startswith("h_") else batch[k] for k in batch.keys()})
    testing.assert_close(ours(ours_data), b, atol=1e-12, rtol=1e-10)
    # the object history enters through the object GRU only
    batch.h_obj_t = torch.zeros_like(batch.h_obj_t)
    a2 = ours(batch)
    assert torch.equal(a2[0], a[0]) and not torch.allclose(a2[1], a[1])


def test_signature_repr_and_state_dict():
    for name in ("__init__", "forward", "test", "reset_parameters"):
        a, b = inspect.signature(getattr(RENet, name)), inspect.signature(getattr(PygRENet, name))
        assert [(p.name, p.default, p.kind) for p in a.parameters.values()] == [
            (p.name, p.default, p.kind) for p in b.parameters.values()
        ], name
    assert list(inspect.signature(RENet.pre_transform).parameters) == ["seq_len"]
    ours, theirs = RENet(N, R, H, L, num_layers=2, bias=False), PygRENet(N, R, H, L, num_layers=2, bias=False)
    assert repr(ours) == repr(theirs)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }


def test_metrics_against_pyg_and_a_loop():
    torch.manual_seed(0)
    logits = torch.randn(40, 25)
    y = torch.randint(0, 25, (40,))
    model = RENet(N, R, H, L)
    got = model.test(logits, y)
    testing.assert_close(got, PygRENet(N, R, H, L).test(logits, y), atol=1e-6, rtol=1e-6)
    ranks = [1 + int((logits[i] > logits[i, y[i]]).sum()) for i in range(40)]
    want = [sum(1 / r for r in ranks) / 40] + [sum(r <= k for r in ranks) / 40 for k in (1, 3, 10)]
    testing.assert_close(got, torch.tensor(want), atol=1e-6, rtol=1e-6)
    assert got.dtype == torch.float32 and got.shape == (4,)
    # ties: the true class ranks first among equal scores
    assert model.test(torch.zeros(2, 5), torch.tensor([3, 0])).tolist() == [1.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="'y'"):
        model.test(logits, y[:-1])
    with pytest.raises(v.IndexRangeError, match="'y'"):
        model.test(logits, y + 25)
    with pytest.raises(ValueError, match="'logits'"):
        model.test(logits[:0], y[:0])


def test_empty_batch_no_history_deeper_gru_and_bad_input():
    model = RENet(N, R, H, L, num_layers=2, dropout=0.5).eval()
    empty = torch.empty(0, dtype=torch.long)
    data = Data(sub=empty, rel=empty, obj=empty, h_sub=empty, h_sub_t=empty, h_sub_batch=empty,
                h_obj=empty, h_obj_t=empty, h_obj_batch=empty)  # fmt: skip
    a, b = model(data)
    assert a.shape == (0, N) and b.shape == (0, N)
    # events without any history: the history means are zero; outputs are log-probabilities
    data = RENet.pre_transform(L)(Data(sub=torch.tensor([0, 1]), rel=torch.tensor([1, 2]),
                                       obj=torch.tensor([2, 3]), t=torch.tensor([0, 0])))  # fmt: skip
    assert data.h_sub.numel() == 0 and data.h_sub_batch.numel() == 0
    a, b = model(data)
    testing.assert_close(a.exp().sum(1), torch.ones(2))
    testing.assert_close(b.exp().sum(1), torch.ones(2))
    # two GRU layers: the last layer's final state is used (PyG only supports one layer)
    with torch.no_grad():
        model.sub_gru.weight_hh_l1.add_(1.0)
    assert not torch.allclose(model(data)[0], a)
    model.train()
    assert not torch.allclose(model(data)[0], model(data)[0])  # dropout before the projections
    del data.h_sub_batch
    with pytest.raises(ValueError, match="h_sub_batch"):
        model(data)
    data = pyg_batch(events(num=20))
    data.h_obj_t = data.h_obj_t + L
    with pytest.raises(v.IndexRangeError, match="'h_obj_t'"):
        model(data)
    data = pyg_batch(events(num=20))
    data.rel = data.rel + R
    with pytest.raises(v.IndexRangeError, match="'rel'"):
        model(data)
    with pytest.raises(ValueError, match="num_rels"):
        RENet(N, 0, H, L)


def test_issue16_moltemp_names_export_from_gnn_models_and_gnn_nn():
    import gnn.models
    import gnn.nn
    from gnn.nn._names import NAMES

    for name in ("AttentiveFP", "NeuralFingerprint", "RENet", "TGNMemory"):
        assert name in gnn.models.__all__
        assert NAMES[name] == ("gnn.models", "gnn-models")
        assert getattr(gnn.nn, name) is getattr(gnn.models, name)
