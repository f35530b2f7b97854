r"""Temporal Graph Networks (Rossi et al., 2020): the node memory :class:`TGNMemory`, its
message functions (:class:`IdentityMessage`), message aggregators (:class:`LastAggregator`,
:class:`MeanAggregator`), the time encoding :class:`TimeEncoder` and the most-recent-neighbour
sampler :class:`LastNeighborLoader` (PyG 2.8's ``torch_geometric.nn.models.tgn``).

A training loop over a stream of events ``(src, dst, t, msg)`` in time order::

    memory = TGNMemory(num_nodes, msg_dim, memory_dim, time_dim,
                       message_module=IdentityMessage(msg_dim, memory_dim, time_dim),
                       aggregator_module=LastAggregator())
    neighbor_loader = LastNeighborLoader(num_nodes, size=10)
    assoc = torch.empty(num_nodes, dtype=torch.long)

    memory.train()
    memory.reset_state()            # start of an epoch
    neighbor_loader.reset_state()
    for src, dst, t, msg in batches:
        n_id, edge_index, e_id = neighbor_loader(torch.cat([src, dst]).unique())
        assoc[n_id] = torch.arange(n_id.size(0))
        z, last_update = memory(n_id)                   # memory with the pending messages applied
        ...                                             # embed z with a GNN, score (src, dst)
        loss.backward(); optimizer.step()
        memory.update_state(src, dst, t, msg)           # apply the pending, store the new messages
        neighbor_loader.insert(src, dst)
        memory.detach()                                 # truncate backpropagation through time
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import GRUCell

from gnn.core import ops
from gnn.core import validation as v

from ._utils import _member, check_index_vector, check_int

__all__ = [
    "IdentityMessage",
    "LastAggregator",
    "LastNeighborLoader",
    "MeanAggregator",
    "TGNMemory",
    "TimeEncoder",
]


# --------------------------------------------------------------------------------------
# message functions, aggregators, time encoding
# --------------------------------------------------------------------------------------
class IdentityMessage(torch.nn.Module):
    r"""The message :math:`\mathbf{m} = [\mathbf{s}_{\mathrm{src}} \,\Vert\, \mathbf{s}_{\mathrm{dst}}
    \,\Vert\, \mathbf{e} \,\Vert\, \phi(\Delta t)]` of the memories of both end points, the raw
    event message and the time encoding.

    ``out_channels = raw_msg_dim + 2 * memory_dim + time_dim``.
    """

    def __init__(self, raw_msg_dim: int, memory_dim: int, time_dim: int) -> None:
        super().__init__()
        self.out_channels = raw_msg_dim + 2 * memory_dim + time_dim

    def forward(self, z_src: Tensor, z_dst: Tensor, raw_msg: Tensor, t_enc: Tensor) -> Tensor:
        """``[E, out_channels]``."""
        return torch.cat([z_src, z_dst, raw_msg, t_enc], dim=-1)


class LastAggregator(torch.nn.Module):
    r"""Keep, per node, the message with the latest timestamp (of several equally late ones,
    the last in order); nodes without messages get zeros."""

    def forward(self, msg: Tensor, index: Tensor, t: Tensor, dim_size: int) -> Tensor:
        """``[dim_size, F]`` from ``msg`` ``[E, F]``, ``index`` ``[E]`` and ``t`` ``[E]``."""
        latest = ops.scatter(t, index, 0, dim_size, reduce="max")
        pos = torch.arange(1, index.numel() + 1, device=index.device)
        pos = torch.where(t == latest[index], pos, torch.zeros_like(pos))
        chosen = ops.scatter(pos, index, 0, dim_size, reduce="max")  # 1-based, 0: no message
        picked = msg[(chosen - 1).clamp(min=0)] if msg.size(0) > 0 else msg.new_zeros(dim_size, msg.size(-1))
        return torch.where((chosen > 0).view(-1, 1), picked, picked.new_zeros(()))


class MeanAggregator(torch.nn.Module):
    r"""The mean of the messages of every node (zeros without messages)."""

    def forward(self, msg: Tensor, index: Tensor, t: Tensor, dim_size: int) -> Tensor:
        """``[dim_size, F]`` from ``msg`` ``[E, F]`` and ``index`` ``[E]`` (``t`` unused)."""
        return ops.scatter(msg, index, 0, dim_size, reduce="mean")


class TimeEncoder(torch.nn.Module):
    r"""The time encoding :math:`\phi(t) = \cos(\mathbf{w} t + \mathbf{b})` (``[E]`` -> ``[E, C]``)."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.lin = torch.nn.Linear(1, out_channels)

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def forward(self, t: Tensor) -> Tensor:
        return self.lin(t.view(-1, 1)).cos()


# --------------------------------------------------------------------------------------
# the memory
# --------------------------------------------------------------------------------------
_STORE_FIELDS = ("src", "dst", "t", "msg")


class TGNMemory(torch.nn.Module):
    r"""The Temporal Graph Network memory of "Temporal Graph Networks for Deep Learning on
    Dynamic Graphs".

    Every node :math:`i` keeps a memory :math:`\mathbf{s}_i` and the time :math:`t^-_i` it was
    last updated. An event :math:`(i, j, t, \mathbf{e})` produces one message for each end
    point,

    .. math::
        \mathbf{m}_{i} = \mathrm{msg}_s(\mathbf{s}_i, \mathbf{s}_j, \mathbf{e}, \phi(t - t^-_i)),
        \qquad
        \mathbf{m}_{j} = \mathrm{msg}_d(\mathbf{s}_j, \mathbf{s}_i, \mathbf{e}, \phi(t - t^-_j)),

    which are stored until the node's memory is next updated; then its pending messages are
    aggregated (``aggregator_module``) and fed to a GRU:

    .. math::
        \mathbf{s}_i \leftarrow \mathrm{GRU}\big(\mathrm{agg}(\{\mathbf{m}_i\}), \mathbf{s}_i\big),
        \qquad t^-_i \leftarrow \max t \text{ of those messages (0 without messages)}.

    The messages are computed from the memories *at update time*. A node keeps the messages of
    the last :meth:`update_state` call in which it took part (per role: as source, as
    destination). In training, :meth:`update_state` first applies the pending messages of the
    batch's nodes and then stores the batch's messages (so the loss of the next batch can
    backpropagate into the message and GRU parameters through :meth:`forward`); in evaluation it
    stores them and applies them at once. Leaving training mode applies every pending message.

    Unlike PyG, the pending messages are kept as flat tensors (not a dict per node): the store
    update and the message computation have no Python loop over nodes.

    Args:
        num_nodes: number of nodes with a memory.
        raw_msg_dim: size of the raw event messages :math:`\mathbf{e}`.
        memory_dim: memory size.
        time_dim: size of the time encoding :math:`\phi`.
        message_module: the source-role message function (e.g. :class:`IdentityMessage`); a
            deep copy serves the destination role. Must expose ``out_channels``.
        aggregator_module: e.g. :class:`LastAggregator` or :class:`MeanAggregator`, called as
            ``aggr(msg, index, t, dim_size)``.

    Shapes:
        :meth:`forward`: ``n_id`` ``[B]`` -> ``(memory [B, memory_dim], last_update [B])``;
        :meth:`update_state`: ``src``, ``dst``, ``t`` ``[E]``, ``raw_msg`` ``[E, raw_msg_dim]``.

    Example:
        >>> memory = TGNMemory(100, 16, 32, 8, IdentityMessage(16, 32, 8), LastAggregator())
        >>> src, dst = torch.tensor([0, 1]), torch.tensor([2, 3])
        >>> memory.update_state(src, dst, torch.tensor([5, 6]), torch.randn(2, 16))
        >>> z, last_update = memory(torch.tensor([0, 2]))
        >>> z.shape
        torch.Size([2, 32])
    """

    def __init__(
        self,
        num_nodes: int,
        raw_msg_dim: int,
        memory_dim: int,
        time_dim: int,
        message_module: Callable,
        aggregator_module: Callable,
    ) -> None:
        super().__init__()
        check_int("num_nodes", num_nodes, 0)
        out_channels = getattr(message_module, "out_channels", None)
        if not isinstance(out_channels, int):
            raise TypeError(
                "'message_module' must expose its output size as an int 'out_channels' "
                f"(e.g. IdentityMessage), got {v.describe(message_module)}"
            )
        self.num_nodes = num_nodes
        self.raw_msg_dim = raw_msg_dim
        self.memory_dim = memory_dim
        self.time_dim = time_dim

        self.msg_s_module = message_module
        self.msg_d_module = copy.deepcopy(message_module)
        self.aggr_module = aggregator_module
        self.time_enc = TimeEncoder(time_dim)
        self.gru = GRUCell(out_channels, memory_dim)

        self.register_buffer("memory", torch.empty(num_nodes, memory_dim))
        self.register_buffer("last_update", torch.empty(num_nodes, dtype=torch.long))
        self.register_buffer("_assoc", torch.zeros(num_nodes, dtype=torch.long))
        # pending messages, flat: (owner, other end point, time, raw message) per entry;
        # buffers so that they follow .to(device/dtype), but not part of the state_dict
        for role in ("s", "d"):
            for field in _STORE_FIELDS:
                self.register_buffer(f"_msg_{role}_{field}", torch.empty(0), persistent=False)
        self.reset_parameters()

    @property
    def device(self) -> torch.device:
        return self.time_enc.lin.weight.device

    def reset_parameters(self) -> None:
        """Reset the time encoding, the message and aggregator modules, the GRU and the state."""
        self.time_enc.reset_parameters()
        for module in (self.msg_s_module, self.msg_d_module, self.aggr_module):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        self.gru.reset_parameters()
        self.reset_state()

    def reset_state(self) -> None:
        """Zero memories and update times; drop every pending message."""
        with torch.no_grad():
            self.memory.zero_()
            self.last_update.zero_()
        self._reset_message_store()

    def detach(self) -> None:
        """Cut the memory from the autograd graph (call once per batch in training)."""
        self.memory.detach_()

    # -- the message stores -----------------------------------------------------------------
    def _reset_message_store(self) -> None:
        index = torch.empty(0, dtype=torch.long, device=self.memory.device)
        msg = self.memory.new_empty((0, self.raw_msg_dim))
        for role in ("s", "d"):
            self._set_store(role, index, index, index, msg)

    def _store(self, role: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return tuple(getattr(self, f"_msg_{role}_{f}") for f in _STORE_FIELDS)  # type: ignore[return-value]

    def _set_store(self, role: str, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor) -> None:
        for field, value in zip(_STORE_FIELDS, (src, dst, t, msg)):
            setattr(self, f"_msg_{role}_{field}", value)

    @property
    def msg_s_store(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The pending source-role messages as flat ``(src, dst, t, raw_msg)`` (owner: ``src``)."""
        return self._store("s")

    @property
    def msg_d_store(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The pending destination-role messages as flat ``(dst, src, t, raw_msg)`` (owner first)."""
        return self._store("d")

    def _update_msg_store(self, role: str, owner: Tensor, other: Tensor, t: Tensor, raw_msg: Tensor) -> None:
        """Every node among ``owner`` now has exactly this batch's messages pending (in ``role``)."""
        src, dst, old_t, msg = self._store(role)
        keep = ~_member(src, torch.unique(owner))
        if src.numel() == 0:  # first store: take the dtypes of the events
            old_t = old_t.to(t.dtype)
        self._set_store(
            role,
            torch.cat([src[keep], owner.long()]),
            torch.cat([dst[keep], other.long()]),
            torch.cat([old_t[keep], t.to(old_t.dtype)]),
            torch.cat([msg[keep], raw_msg.to(msg.dtype)]),
        )

    def _pending(self, role: str, uniq: Tensor, module: Callable) -> tuple[Tensor, Tensor, Tensor]:
        """The messages pending for the nodes ``uniq`` (sorted, distinct), grouped by node in
        the order of ``uniq``: ``(msg, t, position of the owner in uniq)``."""
        src, dst, t, raw_msg = self._store(role)
        if uniq.numel() == 0:
            pos = torch.zeros_like(src)
            sel = torch.zeros_like(src, dtype=torch.bool)
        else:
            pos = torch.searchsorted(uniq, src).clamp(max=uniq.numel() - 1)
            sel = uniq[pos] == src
        chosen = sel.nonzero().view(-1)
        order = chosen[torch.argsort(pos[chosen], stable=True)]  # grouped by node, batch order within
        src, dst, t, raw_msg, pos = src[order], dst[order], t[order], raw_msg[order], pos[order]
        t_rel = t - self.last_update[src]
        t_enc = self.time_enc(t_rel.to(raw_msg.dtype))
        msg = module(self.memory[src], self.memory[dst], raw_msg, t_enc)
        return msg, t, pos

    def _get_updated_memory(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        """The memories and update times of ``n_id`` with their pending messages applied
        (nothing is written but the node association buffer)."""
        uniq, inverse = torch.unique(n_id, sorted=True, return_inverse=True)
        self._assoc[uniq] = torch.arange(uniq.numel(), device=uniq.device)
        msg_s, t_s, pos_s = self._pending("s", uniq, self.msg_s_module)
        msg_d, t_d, pos_d = self._pending("d", uniq, self.msg_d_module)
        pos = torch.cat([pos_s, pos_d])
        t = torch.cat([t_s, t_d])
        aggr = self.aggr_module(torch.cat([msg_s, msg_d]), pos, t, uniq.numel())
        memory = self.gru(aggr, self.memory[uniq])
        last_update = ops.scatter(t, pos, 0, uniq.numel(), reduce="max")
        return memory[inverse], last_update[inverse]

    def _update_memory(self, n_id: Tensor) -> None:
        memory, last_update = self._get_updated_memory(n_id)
        self.memory[n_id] = memory
        self.last_update[n_id] = last_update.to(self.last_update.dtype)

    # -- public API -------------------------------------------------------------------------
    def forward(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        """``(memory [B, memory_dim], last_update [B])`` of the nodes ``n_id``; in training with
        their pending messages applied (differentiable), in evaluation as stored."""
        n_id = check_index_vector("n_id", n_id, self.num_nodes if v.validation_enabled() else None)
        if self.training:
            return self._get_updated_memory(n_id)
        return self.memory[n_id], self.last_update[n_id]

    def update_state(self, src: Tensor, dst: Tensor, t: Tensor, raw_msg: Tensor) -> None:
        """Take in the events ``(src[e], dst[e], t[e], raw_msg[e])`` (see the class docstring)."""
        upper = self.num_nodes if v.validation_enabled() else None
        src = check_index_vector("src", src, upper)
        dst = check_index_vector("dst", dst, upper, size=src.numel())
        t = v.check_tensor("t", t)
        if t.dim() != 1 or t.numel() != src.numel() or t.dtype == torch.bool or t.is_complex():
            raise ValueError(f"'t' must be [E] = [{src.numel()}] event times, got {v.describe(t)}")
        raw_msg = v.check_tensor("raw_msg", raw_msg)
        if raw_msg.dim() != 2 or tuple(raw_msg.shape) != (src.numel(), self.raw_msg_dim):
            raise ValueError(
                f"'raw_msg' must be [E, raw_msg_dim] = [{src.numel()}, {self.raw_msg_dim}], "
                f"got {v.describe(raw_msg)}"
            )
        n_id = torch.unique(torch.cat([src, dst]).long())
        if self.training:
            self._update_memory(n_id)
            self._update_msg_store("s", src, dst, t, raw_msg)
            self._update_msg_store("d", dst, src, t, raw_msg)
        else:
            self._update_msg_store("s", src, dst, t, raw_msg)
            self._update_msg_store("d", dst, src, t, raw_msg)
            self._update_memory(n_id)

    def train(self, mode: bool = True) -> TGNMemory:
        """Switch mode; leaving training applies every pending message to the memory first."""
        if self.training and not mode:
            self._update_memory(torch.arange(self.num_nodes, device=self.memory.device))
            self._reset_message_store()
        return super().train(mode)


# --------------------------------------------------------------------------------------
# the neighbour sampler
# --------------------------------------------------------------------------------------
class LastNeighborLoader:
    r"""Keeps, for every node, its ``size`` most recent interactions of an ever-growing,
    undirected temporal graph and returns the one-hop neighbourhood of a node set.

    :meth:`insert` adds the events ``(src, dst)`` (edge ids count up from 0 in insertion
    order); :meth:`__call__` returns ``(n_id, edge_index, e_id)``: the queried nodes together
    with their stored neighbours (``n_id``, sorted and distinct), the edges neighbour ->
    node relabelled into positions of ``n_id`` (``[2, K]``) and their edge ids ``[K]``
    (per queried node, most recent first).

    Args:
        num_nodes: number of nodes.
        size: number of neighbours kept per node.
        device: where the tables live.
    """

    def __init__(self, num_nodes: int, size: int, device: torch.device | str | None = None) -> None:
        check_int("num_nodes", num_nodes, 0)
        check_int("size", size, 1)
        self.size = size
        self.neighbors = torch.empty((num_nodes, size), dtype=torch.long, device=device)
        self.e_id = torch.empty((num_nodes, size), dtype=torch.long, device=device)
        self._assoc = torch.empty(num_nodes, dtype=torch.long, device=device)
        self.reset_state()

    def __call__(self, n_id: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n_id = check_index_vector("n_id", n_id, self.e_id.size(0) if v.validation_enabled() else None)
        n_id = n_id.long()
        neighbors = self.neighbors[n_id]
        nodes = n_id.view(-1, 1).expand(-1, self.size)
        e_id = self.e_id[n_id]
        valid = e_id >= 0
        neighbors, nodes, e_id = neighbors[valid], nodes[valid], e_id[valid]
        n_id = torch.unique(torch.cat([n_id, neighbors]))
        self._assoc[n_id] = torch.arange(n_id.numel(), device=n_id.device)
        return n_id, torch.stack([self._assoc[neighbors], self._assoc[nodes]]), e_id

    def insert(self, src: Tensor, dst: Tensor) -> None:
        """Add the interactions ``(src[e], dst[e])`` (both directions); each node keeps its
        ``size`` most recent ones."""
        upper = self.e_id.size(0) if v.validation_enabled() else None
        src = check_index_vector("src", src, upper).long()
        dst = check_index_vector("dst", dst, upper, size=src.numel()).long()
        num = src.numel()
        if num == 0:
            return
        neighbors = torch.cat([src, dst])
        nodes = torch.cat([dst, src])
        e_id = torch.arange(self.cur_e_id, self.cur_e_id + num, device=src.device).repeat(2)
        self.cur_e_id += num

        # the new interactions of every touched node, most recent first, at most `size` of them
        uniq, group, counts = torch.unique(nodes, return_inverse=True, return_counts=True)
        order = torch.argsort(group * (2 * num) + (2 * num - 1 - torch.arange(2 * num, device=src.device)))
        group, neighbors, e_id = group[order], neighbors[order], e_id[order]
        start = torch.cumsum(counts, 0) - counts
        rank = torch.arange(2 * num, device=src.device) - start[group]
        fits = rank < self.size
        slot = group[fits] * self.size + rank[fits]
        new_e_id = e_id.new_full((uniq.numel() * self.size,), -1)
        new_e_id[slot] = e_id[fits]
        new_nbr = neighbors.new_zeros(uniq.numel() * self.size)
        new_nbr[slot] = neighbors[fits]

        # merge with the stored ones and keep the `size` most recent
        all_e_id = torch.cat([self.e_id[uniq], new_e_id.view(-1, self.size)], dim=-1)
        all_nbr = torch.cat([self.neighbors[uniq], new_nbr.view(-1, self.size)], dim=-1)
        top_e_id, perm = all_e_id.topk(self.size, dim=-1)
        self.e_id[uniq] = top_e_id
        self.neighbors[uniq] = torch.gather(all_nbr, 1, perm)

    def reset_state(self) -> None:
        """Forget every interaction."""
        self.cur_e_id = 0
        self.e_id.fill_(-1)
