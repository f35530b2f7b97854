"""TGNMemory and its pieces: memory updates against a step-by-step reference written here and
against PyG's TGNMemory on the same event stream (state loaded strict), gradients, the
aggregators, LastNeighborLoader, empty batches, bad input, signatures and repr."""

from __future__ import annotations

import inspect

import pytest
import torch

from gnn.core import testing
from gnn.core import validation as v
from gnn.models import TGNMemory
from gnn.models.tgn import IdentityMessage, LastAggregator, LastNeighborLoader, MeanAggregator, TimeEncoder

pyg = pytest.importorskip("torch_geometric")
from torch_geometric.nn.models import tgn as pyg_tgn  # noqa: E402

N, D, M, T = 12, 3, 5, 4


def assert_same_signature(ours, theirs):
    a, b = inspect.signature(ours), inspect.signature(theirs)
    assert list(a.parameters) == list(b.parameters)
    for name, p in a.parameters.items():
        assert (p.default, p.kind) == (b.parameters[name].default, b.parameters[name].kind), name


def stream(num_batches=8, size=5, seed=0, dtype=torch.float32):
    """Random event batches ``(src, dst, t, msg)`` in time order, with repeated nodes and equal times."""
    g = torch.Generator().manual_seed(seed)
    t0, out = 0, []
    for _ in range(num_batches):
        src = torch.randint(0, N, (size,), generator=g)
        dst = torch.randint(0, N, (size,), generator=g)
        t = t0 + torch.randint(0, 3, (size,), generator=g).sort().values
        t0 = int(t.max())
        out.append((src, dst, t, torch.randn(size, D, generator=g, dtype=dtype)))
    return out


class LoopLast(torch.nn.Module):
    """Per node, the message of the latest time (the last of equally late ones); zeros without one."""

    def forward(self, msg, index, t, dim_size):
        out = msg.new_zeros(dim_size, msg.size(-1))
        for k in range(dim_size):
            ids = (index == k).nonzero().view(-1)
            if ids.numel():
                late = ids[t[ids] == t[ids].max()]
                out[k] = msg[late[-1]]
        return out


class StepByStep:
    """TGN memory by hand: pending messages in per-node lists, nodes updated one by one."""

    def __init__(self, model: TGNMemory, aggr: str):
        self.m, self.aggr = model, aggr
        self.memory = model.memory.detach().clone()
        self.last_update = model.last_update.clone()
        self.pending = {"s": {}, "d": {}}
        self.training = True

    def _updated(self, node):
        m, mem, lu = self.m, self.memory, self.last_update
        msgs, times = [], []
        for role, module in (("s", m.msg_s_module), ("d", m.msg_d_module)):
            for other, t, raw in self.pending[role].get(node, []):
                enc = m.time_enc((t - lu[node]).to(raw.dtype).view(1))
                msgs.append(module(mem[node].view(1, -1), mem[other].view(1, -1), raw.view(1, -1), enc)[0])
                times.append(t)
        if not msgs:
            agg = mem.new_zeros(m.gru.input_size)
            last = torch.zeros((), dtype=torch.long)
        elif self.aggr == "mean":
            agg, last = torch.stack(msgs).mean(0), max(times)
        else:
            last = max(times)
            agg = [mm for mm, tt in zip(msgs, times) if tt == last][-1]
        return m.gru(agg.view(1, -1), mem[node].view(1, -1))[0], last

    def apply(self, nodes):
        new = {node: self._updated(node) for node in nodes}  # all from the memory before the update
        for node, (mem, last) in new.items():
            self.memory[node] = mem.detach()
            self.last_update[node] = last

    def store(self, src, dst, t, msg):
        for role, owner, other in (("s", src, dst), ("d", dst, src)):
            fresh = {}
            for e in range(owner.numel()):
                fresh.setdefault(int(owner[e]), []).append((int(other[e]), t[e], msg[e]))
            self.pending[role].update(fresh)

    def update_state(self, src, dst, t, msg):
        nodes = sorted(set(src.tolist()) | set(dst.tolist()))
        if self.training:
            self.apply(nodes)
            self.store(src, dst, t, msg)
        else:
            self.store(src, dst, t, msg)
            self.apply(nodes)

    def forward(self, n_id):
        if not self.training:
            return self.memory[n_id], self.last_update[n_id]
        got = [self._updated(int(i)) for i in n_id]
        return torch.stack([g[0] for g in got]), torch.stack([torch.as_tensor(g[1]) for g in got])

    def eval(self):
        self.apply(range(N))
        self.pending = {"s": {}, "d": {}}
        self.training = False


def make(aggr: str, dtype=torch.float64):
    module = LastAggregator() if aggr == "last" else MeanAggregator()
    return TGNMemory(N, D, M, T, IdentityMessage(D, M, T), module).to(dtype)


@pytest.mark.parametrize("aggr", ["last", "mean"])
def test_memory_matches_step_by_step_reference(aggr):
    torch.manual_seed(0)
    model = make(aggr)
    with torch.no_grad():  # start from a non-trivial state
        model.memory.normal_()
    ref = StepByStep(model, aggr)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for step, (src, dst, t, msg) in enumerate(stream(dtype=torch.float64)):
            if step == 5:
                model.eval(), ref.eval()
            n_id = torch.randint(0, N, (6,), generator=g).unique()
            got, want = model(n_id), ref.forward(n_id)
            testing.assert_close(got[0], want[0], atol=1e-12, rtol=1e-10)
            assert torch.equal(got[1], want[1].to(got[1].dtype))
            model.update_state(src, dst, t, msg)
            ref.update_state(src, dst, t, msg)
            testing.assert_close(model.memory, ref.memory, atol=1e-12, rtol=1e-10)
            assert torch.equal(model.last_update, ref.last_update)


def pyg_pair(aggr: str, dtype=torch.float64):
    ours = make(aggr, dtype)
    # PyG's LastAggregator without torch-scatter gives empty groups a stray message (see README):
    # its memory is driven here by a loop aggregator with the documented semantics
    theirs_aggr = LoopLast() if aggr == "last" else pyg_tgn.MeanAggregator()
    theirs = pyg_tgn.TGNMemory(N, D, M, T, pyg_tgn.IdentityMessage(D, M, T), theirs_aggr).to(dtype)
    theirs.reset_state()  # PyG's message store keeps the dtype of construction time
    testing.load_pyg_state(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize("aggr", ["last", "mean"])
def test_memory_matches_pyg_on_the_same_stream_with_gradients(aggr):
    torch.manual_seed(0)
    ours, theirs = pyg_pair(aggr)
    events = stream(dtype=torch.float64, seed=2)
    g = torch.Generator().manual_seed(3)
    for step, (src, dst, t, msg) in enumerate(events):
        if step == 6:
            ours.eval(), theirs.eval()
        n_id = torch.randint(0, N, (7,), generator=g).unique()
        a, b = ours(n_id), theirs(n_id)
        testing.assert_close(a[0], b[0], atol=1e-12, rtol=1e-10)
        assert torch.equal(a[1], b[1])
        if ours.training and step > 0:  # the pending messages carry gradients to the parameters
            a[0].square().sum().backward()
            b[0].square().sum().backward()
            named = dict(theirs.named_parameters())
            assert ours.gru.weight_ih.grad is not None and ours.time_enc.lin.weight.grad is not None
            for name, p in ours.named_parameters():
                testing.assert_close(p.grad, named[name].grad, atol=1e-10, rtol=1e-8, msg=name)
            ours.zero_grad(), theirs.zero_grad()
        ours.update_state(src, dst, t, msg)
        theirs.update_state(src, dst, t, msg)
        testing.assert_close(ours.memory, theirs.memory, atol=1e-12, rtol=1e-10)
        assert torch.equal(ours.last_update, theirs.last_update)
        ours.detach(), theirs.detach()
    ours.train(), theirs.train()
    ours.reset_state(), theirs.reset_state()
    assert torch.equal(ours.memory, theirs.memory) and torch.equal(ours.last_update, theirs.last_update)


def test_signatures_repr_and_state_dict():
    assert_same_signature(TGNMemory.__init__, pyg_tgn.TGNMemory.__init__)
    for name in ("forward", "update_state", "reset_state", "detach", "train", "reset_parameters"):
        assert_same_signature(getattr(TGNMemory, name), getattr(pyg_tgn.TGNMemory, name))
    assert_same_signature(IdentityMessage.__init__, pyg_tgn.IdentityMessage.__init__)
    assert_same_signature(IdentityMessage.forward, pyg_tgn.IdentityMessage.forward)
    for ours, theirs in ((LastAggregator, pyg_tgn.LastAggregator), (MeanAggregator, pyg_tgn.MeanAggregator)):
        assert_same_signature(ours.forward, theirs.forward)
    assert_same_signature(TimeEncoder.__init__, pyg_tgn.TimeEncoder.__init__)
    for name in ("__init__", "__call__", "insert", "reset_state"):
        assert_same_signature(getattr(LastNeighborLoader, name), getattr(pyg_tgn.LastNeighborLoader, name))
    ours = TGNMemory(N, D, M, T, IdentityMessage(D, M, T), LastAggregator())
    theirs = pyg_tgn.TGNMemory(N, D, M, T, pyg_tgn.IdentityMessage(D, M, T), pyg_tgn.LastAggregator())
    assert repr(ours) == repr(theirs)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }
    assert IdentityMessage(D, M, T).out_channels == pyg_tgn.IdentityMessage(D, M, T).out_channels


def test_aggregators_against_loops_and_pyg():
    g = torch.Generator().manual_seed(0)
    msg = torch.randn(9, 4, generator=g, dtype=torch.float64)
    index = torch.tensor([0, 2, 2, 0, 3, 2, 0, 3, 3])
    t = torch.tensor([1, 4, 4, 3, 2, 1, 3, 2, 0])  # ties at the latest time of nodes 0, 2 and 3
    want = LoopLast()(msg, index, t, 5)
    got = LastAggregator()(msg, index, t, 5)
    assert torch.equal(got, want)
    assert torch.equal(got[1], torch.zeros(4)) and torch.equal(got[4], torch.zeros(4))
    # every group filled: PyG's aggregator agrees (its fallback misplaces empty groups only)
    full = index.clone()
    full[[0, 8]] = torch.tensor([1, 4])
    assert torch.equal(LastAggregator()(msg, full, t, 5), pyg_tgn.LastAggregator()(msg, full, t, 5))
    mean = MeanAggregator()(msg, index, t, 5)
    testing.assert_close(mean, pyg_tgn.MeanAggregator()(msg, index, t, 5), atol=1e-12, rtol=1e-10)
    testing.assert_close(mean[2], msg[[1, 2, 5]].mean(0), atol=1e-12, rtol=1e-10)
    # gradients reach the chosen messages only
    msg.requires_grad_()
    LastAggregator()(msg, index, t, 5).sum().backward()
    chosen = torch.zeros(9, dtype=torch.bool)
    chosen[[2, 6, 7]] = True
    assert torch.equal(msg.grad.abs().sum(1) > 0, chosen)
    # no messages at all
    empty = LastAggregator()(msg[:0], index[:0], t[:0], 3)
    assert empty.shape == (3, 4) and torch.all(empty == 0)


def test_empty_batches_queries_and_dtype_moves():
    model = make("last", torch.float32)
    model.update_state(*(x[:0] for x in stream(1)[0]))
    z, last = model(torch.empty(0, dtype=torch.long))
    assert z.shape == (0, M) and last.shape == (0,)
    src, dst, t, msg = stream(1)[0]
    model.update_state(src.int(), dst.int(), t, msg)  # int32 indices
    model.update_state(src, dst, t + 5, msg.t().contiguous().t())
    model.double()
    z, _ = model(src.unique())
    assert z.dtype == torch.float64
    model.eval()  # flushes every pending message in float64
    assert model.memory.dtype == torch.float64 and model.msg_s_store[3].dtype == torch.float64


def test_bad_input():
    model = make("mean", torch.float32)
    src, dst, t, msg = stream(1)[0]
    with pytest.raises(v.IndexRangeError, match="'src'"):
        model.update_state(src + N, dst, t, msg)
    with pytest.raises(TypeError, match="'dst'"):
        model.update_state(src, dst.float(), t, msg)
    with pytest.raises(ValueError, match="'dst'"):
        model.update_state(src, dst[:-1], t, msg)
    with pytest.raises(ValueError, match="'t'"):
        model.update_state(src, dst, t[:-1], msg)
    with pytest.raises(ValueError, match="'raw_msg'"):
        model.update_state(src, dst, t, msg[:, :2])
    with pytest.raises(v.IndexRangeError, match="'n_id'"):
        model(torch.tensor([N]))
    with pytest.raises(TypeError, match="message_module"):
        TGNMemory(N, D, M, T, torch.nn.Identity(), MeanAggregator())


# -- LastNeighborLoader -----------------------------------------------------------------
def test_neighbor_loader_matches_pyg_and_keeps_the_most_recent():
    g = torch.Generator().manual_seed(0)
    ours, theirs = LastNeighborLoader(N, 3), pyg_tgn.LastNeighborLoader(N, 3)
    history: list[tuple[int, int, int]] = []  # (node, neighbour, edge id)
    for _ in range(8):
        src, dst = torch.randint(0, N, (2,), generator=g), torch.randint(0, N, (2,), generator=g)
        base = len(history) // 2
        for e in range(2):
            history += [(int(dst[e]), int(src[e]), base + e), (int(src[e]), int(dst[e]), base + e)]
        ours.insert(src, dst)
        theirs.insert(src, dst)  # at most 2 new interactions per node and insert: PyG keeps them all
        n_id = torch.randint(0, N, (5,), generator=g).unique()
        for a, b in zip(ours(n_id), theirs(n_id)):
            assert torch.equal(a, b)
    # the reference: for every node the (up to) 3 largest edge ids it took part in
    for node in range(N):
        mine = sorted((e for nd, _, e in history if nd == node), reverse=True)[:3]
        assert ours.e_id[node][ours.e_id[node] >= 0].tolist() == mine
    # many interactions of one node in one insert: the most recent `size` survive
    ours.reset_state()
    ours.insert(torch.zeros(7, dtype=torch.long), torch.arange(1, 8))
    assert ours.e_id[0].tolist() == [6, 5, 4] and ours.neighbors[0].tolist() == [7, 6, 5]
    n_id, edge_index, e_id = ours(torch.tensor([0]))
    assert n_id.tolist() == [0, 5, 6, 7] and e_id.tolist() == [6, 5, 4]
    assert edge_index.tolist() == [[3, 2, 1], [0, 0, 0]]
    ours.insert(torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long))
    with pytest.raises(v.IndexRangeError, match="'src'"):
        ours.insert(torch.tensor([N]), torch.tensor([0]))
