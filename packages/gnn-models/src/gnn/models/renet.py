r"""RE-Net (Jin et al., 2020): :class:`RENet`, a recurrent event encoder for temporal knowledge
graphs, with the event-history transform :meth:`RENet.pre_transform` and the ranking metrics
:meth:`RENet.test`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import GRU, Parameter
from torch.nn import Linear as TorchLinear

from gnn.core import ops
from gnn.core import validation as v

from ._utils import check_index_vector, check_int

__all__ = ["RENet"]


class _EventHistory:
    r"""The history transform of :meth:`RENet.pre_transform`.

    It consumes the events of a temporal knowledge graph in stream order (non-decreasing
    times). Every new timestamp (a time above all times seen so far) opens a new history step;
    an event :math:`(s, r, o, t)` at step :math:`k` gets as history

    * ``h_sub``: the objects :math:`o'` of the earlier events :math:`(s, r, o', \cdot)` of the
      same subject and relation in steps :math:`k - L, \dots, k - 1`,
    * ``h_obj``: the subjects :math:`s'` of the earlier events :math:`(s', r, o, \cdot)`,

    ordered by step, then by arrival, with ``h_sub_t`` / ``h_obj_t`` the step relative to the
    window, :math:`\text{step} - (k - L) \in [0, L)` (:math:`L` = ``seq_len``). Events of the
    current step are not part of each other's history.

    A data object holding one event (``sub``, ``rel``, ``obj``, ``t`` as Python ints or 0-d
    tensors) gets ``h_sub``, ``h_sub_t``, ``h_obj``, ``h_obj_t`` as PyG's transform gives them.
    A data object holding many events (1-D tensors, in stream order) is processed at once, as
    if event by event, and also gets ``h_sub_batch`` / ``h_obj_batch`` (the event of every
    history entry), the form :meth:`RENet.forward` reads. The state is a flat log of the
    events of the last ``seq_len`` steps, searched with sorted keys (no Python loop over
    events or nodes).
    """

    def __init__(self, seq_len: int) -> None:
        self.seq_len = check_int("seq_len", seq_len, 1)
        self.t_last: Any = 0
        self.num_steps = 0
        empty = torch.empty(0, dtype=torch.long)
        self.log_sub, self.log_rel, self.log_obj, self.log_step = empty, empty, empty, empty

    def __repr__(self) -> str:
        return f"RENet.pre_transform(seq_len={self.seq_len})"

    @staticmethod
    def _events(data: Any, name: str) -> Tensor:
        value = getattr(data, name, None)
        if value is None:
            raise ValueError(f"the data object must hold the event attribute '{name}', got none")
        if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
            raise TypeError(f"'{name}' must be an int or a tensor of events, got {v.describe(value)}")
        return torch.as_tensor(value)

    def __call__(self, data: Any) -> Any:
        sub, rel, obj, t = (self._events(data, name) for name in ("sub", "rel", "obj", "t"))
        single = sub.dim() == 0
        for name, value in (("sub", sub), ("rel", rel), ("obj", obj), ("t", t)):
            if value.dim() != sub.dim() or value.dim() > 1 or value.numel() != sub.numel():
                raise ValueError(
                    f"'{name}' must match 'sub' ({v.describe(sub)}): one value per event, got {v.describe(value)}"
                )
            if name != "t":
                check_index_vector(name, value.view(-1))
        sub, rel, obj, t = (x.reshape(-1) for x in (sub, rel, obj, t))
        sub, rel, obj = sub.long(), rel.long(), obj.long()
        device = sub.device
        log = (self.log_sub, self.log_rel, self.log_obj, self.log_step)
        log = tuple(x.to(device) for x in log)

        # history step of every event: a time above every earlier one opens a new step
        if t.numel() > 0:
            before = torch.cat([torch.as_tensor([self.t_last], dtype=t.dtype, device=device), t[:-1]])
            running = torch.cummax(before, 0).values
            step = self.num_steps + torch.cumsum((t > running).long(), 0)
            self.num_steps = int(step[-1])
            self.t_last = max(self.t_last, t.max().item())
        else:
            step = torch.empty(0, dtype=torch.long, device=device)

        all_sub, all_rel, all_obj, all_step = (
            torch.cat([old, new]) for old, new in zip(log, (sub, rel, obj, step))
        )
        h_sub, h_sub_t, h_sub_batch = self._window(all_sub, all_rel, all_obj, all_step, sub, rel, step)
        h_obj, h_obj_t, h_obj_batch = self._window(all_obj, all_rel, all_sub, all_step, obj, rel, step)

        keep = all_step >= self.num_steps - self.seq_len  # what later events can still see
        self.log_sub, self.log_rel, self.log_obj, self.log_step = (
            x[keep] for x in (all_sub, all_rel, all_obj, all_step)
        )
        data.h_sub, data.h_sub_t = h_sub, h_sub_t
        data.h_obj, data.h_obj_t = h_obj, h_obj_t
        if not single:
            data.h_sub_batch, data.h_obj_batch = h_sub_batch, h_obj_batch
        return data

    def _window(
        self,
        owner: Tensor,
        rel: Tensor,
        other: Tensor,
        step: Tensor,
        q_node: Tensor,
        q_rel: Tensor,
        q_step: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """History ``(nodes, relative steps, query of each entry)`` of the queries ``(q_node,
        q_rel)`` at steps ``q_step`` among the log entries ``(owner, rel, other, step)``."""
        device = owner.device
        num_rels = int(torch.cat([rel, q_rel]).max()) + 1 if rel.numel() + q_rel.numel() > 0 else 1
        span = int(torch.cat([step, q_step]).max()) + 1 if step.numel() + q_step.numel() > 0 else 1
        # entries sorted by (owner, relation, step, arrival): a stable sort of the stream order
        key = (owner * num_rels + rel) * span + step
        key, order = torch.sort(key, stable=True)
        q_key = (q_node * num_rels + q_rel) * span
        lo = torch.searchsorted(key, q_key + (q_step - self.seq_len).clamp(min=0))
        hi = torch.searchsorted(key, q_key + q_step)
        counts = hi - lo
        query = torch.repeat_interleave(torch.arange(q_node.numel(), device=device), counts)
        offset = torch.cumsum(counts, 0) - counts
        entry = order[lo[query] + torch.arange(query.numel(), device=device) - offset[query]]
        return other[entry], step[entry] - (q_step[query] - self.seq_len), query


class RENet(torch.nn.Module):
    r"""The Recurrent Event Network of "Recurrent Event Network for Reasoning over Temporal
    Knowledge Graphs".

    For a query :math:`(s, r, ?)` the history of the subject is summarized step by step,

    .. math::
        \mathbf{h}^{(\tau)}(s, r) = \mathrm{GRU}\Big(\big[\mathbf{e}_s \,\Vert\,
        g(\mathcal{O}^{(\tau)}_r(s)) \,\Vert\, \mathbf{e}_r\big],\; \mathbf{h}^{(\tau-1)}(s, r)\Big),
        \qquad \tau = 1, \dots, L,

    with :math:`g` the mean of the embeddings of the objects :math:`\mathcal{O}^{(\tau)}_r(s)`
    the subject met under relation :math:`r` in history step :math:`\tau` (zero when none),
    and the object is predicted by

    .. math::
        p(o \mid s, r) = \operatorname{softmax}\big(\mathbf{W}_{\mathrm{sub}}
        [\mathbf{e}_s \,\Vert\, \mathbf{h}^{(L)}(s, r) \,\Vert\, \mathbf{e}_r]\big)_o;

    symmetrically for :math:`(?, r, o)` with the object's history. Dropout comes before the
    projections.

    Args:
        num_nodes: number of entities.
        num_rels: number of relations.
        hidden_channels: embedding and GRU size.
        seq_len: number of history steps :math:`L`.
        num_layers: GRU layers.
        dropout: dropout before the final projections.
        bias: learn biases in the GRUs and projections.

    Shapes:
        :meth:`forward` reads ``data.sub``, ``data.rel``, ``data.obj`` ``[B]`` and the histories
        ``data.h_sub``, ``data.h_sub_t``, ``data.h_sub_batch`` (and ``h_obj*``) ``[K]`` and returns
        ``(log_prob_obj, log_prob_sub)``, both ``[B, num_nodes]`` log-probabilities.

    Example:
        >>> model = RENet(num_nodes=10, num_rels=3, hidden_channels=16, seq_len=4)
        >>> transform = RENet.pre_transform(seq_len=4)   # history windows from an event stream
        >>> data = transform(Data(sub=torch.tensor([0, 1]), rel=torch.tensor([2, 2]),
        ...                       obj=torch.tensor([1, 0]), t=torch.tensor([0, 1])))
        >>> log_prob_obj, log_prob_sub = model(data)
    """

    def __init__(
        self,
        num_nodes: int,
        num_rels: int,
        hidden_channels: int,
        seq_len: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        check_int("num_nodes", num_nodes, 1)
        check_int("num_rels", num_rels, 1)
        check_int("seq_len", seq_len, 1)
        self.num_nodes = num_nodes
        self.num_rels = num_rels
        self.hidden_channels = hidden_channels
        self.seq_len = seq_len
        self.num_layers = num_layers
        self.dropout = dropout
        self.bias = bias

        self.ent = Parameter(torch.empty(num_nodes, hidden_channels))
        self.rel = Parameter(torch.empty(num_rels, hidden_channels))
        self.sub_gru = GRU(3 * hidden_channels, hidden_channels, num_layers, batch_first=True, bias=bias)
        self.obj_gru = GRU(3 * hidden_channels, hidden_channels, num_layers, batch_first=True, bias=bias)
        self.sub_lin = TorchLinear(3 * hidden_channels, num_nodes, bias=bias)
        self.obj_lin = TorchLinear(3 * hidden_channels, num_nodes, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform embeddings (gain :math:`\\sqrt{2}`), default GRU and linear inits."""
        torch.nn.init.xavier_uniform_(self.ent, gain=math.sqrt(2.0))
        torch.nn.init.xavier_uniform_(self.rel, gain=math.sqrt(2.0))
        for module in (self.sub_gru, self.obj_gru, self.sub_lin, self.obj_lin):
            module.reset_parameters()

    @staticmethod
    def pre_transform(seq_len: int) -> Callable:
        """A stateful transform that adds the event histories (``h_sub``, ``h_sub_t``,
        ``h_obj``, ``h_obj_t``) to the events of a stream (see :class:`_EventHistory`); apply
        it to the events in time order, e.g. as an event dataset's ``pre_transform``."""
        return _EventHistory(seq_len)

    #: the name the gnn issue uses for :meth:`pre_transform` (PyG's name); the same function
    pre_process = pre_transform

    def _history(self, data: Any, role: str, batch_size: int) -> Tensor:
        """``[B, seq_len, hidden]`` mean embedding of each history step of ``role`` (sub/obj)."""
        names = (f"h_{role}", f"h_{role}_t", f"h_{role}_batch")
        values = []
        for name in names:
            value = getattr(data, name, None)
            if value is None:
                raise ValueError(
                    f"'data' must hold the history '{name}' (apply RENet.pre_transform and batch the "
                    f"events with follow_batch=['h_sub', 'h_obj']), got none"
                )
            values.append(check_index_vector(name, value))
        node, step, batch = values
        if not (node.numel() == step.numel() == batch.numel()):
            raise ValueError(
                f"'{names[0]}', '{names[1]}' and '{names[2]}' must have one entry each per history "
                f"event, got {node.numel()}, {step.numel()} and {batch.numel()}"
            )
        if v.validation_enabled():
            v.check_index_range(names[0], node, self.num_nodes)
            v.check_index_range(names[1], step, self.seq_len, "history steps")
            v.check_index_range(names[2], batch, batch_size, "events")
        slot = step.long() + batch.long() * self.seq_len
        mean = ops.scatter(self.ent[node], slot, 0, batch_size * self.seq_len, reduce="mean")
        return mean.view(batch_size, self.seq_len, self.hidden_channels)

    def forward(self, data: Any) -> tuple[Tensor, Tensor]:
        """``(log_prob_obj, log_prob_sub)``: ``[B, num_nodes]`` log-probabilities of the
        object of every ``(sub, rel, ?)`` and of the subject of every ``(?, rel, obj)``."""
        sub = check_index_vector("sub", getattr(data, "sub", None))
        rel = check_index_vector("rel", getattr(data, "rel", None), size=sub.numel())
        obj = check_index_vector("obj", getattr(data, "obj", None), size=sub.numel())
        if v.validation_enabled():
            v.check_index_range("sub", sub, self.num_nodes)
            v.check_index_range("rel", rel, self.num_rels, "relations")
            v.check_index_range("obj", obj, self.num_nodes)
        batch_size = sub.size(0)
        h_sub = self._history(data, "sub", batch_size)
        h_obj = self._history(data, "obj", batch_size)

        e_sub, e_rel, e_obj = self.ent[sub], self.rel[rel], self.ent[obj]
        steps = (-1, self.seq_len, -1)
        seq_sub = torch.cat([e_sub.unsqueeze(1).expand(*steps), h_sub, e_rel.unsqueeze(1).expand(*steps)], -1)
        seq_obj = torch.cat([e_obj.unsqueeze(1).expand(*steps), h_obj, e_rel.unsqueeze(1).expand(*steps)], -1)
        if batch_size > 0:
            h_sub = self.sub_gru(seq_sub)[1][-1]
            h_obj = self.obj_gru(seq_obj)[1][-1]
        else:  # cuDNN/CPU GRUs reject an empty batch
            h_sub = h_obj = e_sub.new_zeros(0, self.hidden_channels)

        h_sub = F.dropout(torch.cat([e_sub, h_sub, e_rel], -1), p=self.dropout, training=self.training)
        h_obj = F.dropout(torch.cat([e_obj, h_obj, e_rel], -1), p=self.dropout, training=self.training)
        log_prob_obj = F.log_softmax(self.sub_lin(h_sub), dim=1)
        log_prob_sub = F.log_softmax(self.obj_lin(h_obj), dim=1)
        return log_prob_obj, log_prob_sub

    def test(self, logits: Tensor, y: Tensor) -> Tensor:
        r"""``tensor([MRR, Hits@1, Hits@3, Hits@10])`` of the scores ``logits`` ``[B, C]`` for the
        true classes ``y`` ``[B]``: the rank of ``y`` is one plus the number of classes
        scored strictly higher, :math:`\mathrm{MRR} = \mathrm{mean}(1 / \mathrm{rank})`,
        :math:`\mathrm{Hits@}k = \mathrm{mean}(\mathrm{rank} \le k)`."""
        logits = v.check_tensor("logits", logits)
        if logits.dim() != 2 or logits.size(0) == 0:
            raise ValueError(f"'logits' must be [B, C] scores with B > 0, got {v.describe(logits)}")
        y = check_index_vector("y", y, size=logits.size(0))
        if v.validation_enabled():
            v.check_index_range("y", y, logits.size(1), "classes")
        logits = logits.detach()
        true = logits.gather(1, y.long().view(-1, 1))
        rank = (logits > true).sum(dim=1) + 1
        mrr = rank.double().reciprocal().mean()
        hits = [(rank <= k).double().mean() for k in (1, 3, 10)]
        return torch.stack([mrr, *hits]).float().cpu()
