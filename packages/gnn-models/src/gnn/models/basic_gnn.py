r"""Stacks of one message-passing layer: :class:`BasicGNN` and its ready-made forms.

Each of the ``L = num_layers`` layers computes

.. math::
    \mathbf{h}^{(l)} = \mathrm{dropout}\big(\sigma(\mathrm{norm}_l(\mathrm{conv}_l(\mathbf{h}^{(l-1)},
    \mathcal{E})))\big), \qquad \mathbf{h}^{(0)} = \mathbf{x}

(``act_first=True`` applies :math:`\sigma` before the normalization). Without
jumping knowledge the last layer is only its convolution and maps to
``out_channels``; with ``jk`` every layer is followed by norm/act/dropout, the
layers' outputs are combined (``"last"``: the last one, ``"cat"``/``"max"``/
``"lstm"``: :class:`~gnn.models.JumpingKnowledge`) and a final
:class:`torch.nn.Linear` maps them to ``out_channels``.

:class:`GCN`, :class:`GraphSAGE`, :class:`GIN`, :class:`GAT`, :class:`PNA` and
:class:`EdgeCNN` are PyG 2.8's models (same arguments, ``state_dict`` keys and
outputs). :class:`GNN` is the same model over *any* convolution the conv
registry resolves by name, a plugin's included.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor

from gnn.core import validation as v
from gnn.core.nn.act import activate, no_forward_hooks
from gnn.core.nn.mlp import MLP, resolve_activation
from gnn.core.utils.sparse import is_sparse, to_edge_index

from .jumping_knowledge import JumpingKnowledge

__all__ = ["BasicGNN", "GCN", "GraphSAGE", "GIN", "GAT", "PNA", "EdgeCNN", "GNN"]

_JK_MODES = (None, "last", "cat", "max", "lstm")


# --------------------------------------------------------------------------------------
# resolution of the per-layer pieces
# --------------------------------------------------------------------------------------
def resolve_norm(norm: Any, channels: int, norm_kwargs: dict[str, Any] | None) -> torch.nn.Module | None:
    """A normalization layer of ``channels`` features from ``norm``.

    ``None`` -> ``None``; a name (``"batch_norm"``, ``"LayerNorm"``, ``"graph"``,
    a plugin's name) -> :data:`gnn.core.registry.norms`; a module -> itself; a class
    or callable -> ``norm(channels, **norm_kwargs)``.
    """
    kwargs = dict(norm_kwargs or {})
    if norm is None:
        return None
    if isinstance(norm, str):
        from gnn.core.registry import norms

        try:
            entry = norms.lookup(norm)
        except ValueError as error:
            raise ValueError(f"'norm' {norm!r} is not a known normalization: {error}") from None
        return entry(channels, **kwargs)
    if isinstance(norm, torch.nn.Module):
        return norm
    if callable(norm):
        return norm(channels, **kwargs)
    raise TypeError(f"'norm' must be a name, a module, a class or None, got {v.describe(norm)}")


def _fresh_norms() -> tuple[type, ...]:
    """Normalizations whose output is a fresh tensor not saved for their backward."""
    from gnn.conv.norm import BatchNorm

    return (torch.nn.Identity, BatchNorm, torch.nn.BatchNorm1d)


def _takes(module: torch.nn.Module, name: str) -> bool:
    """Whether ``module.forward`` has a parameter called ``name``."""
    try:
        return name in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"'{name}' must be a positive int, got {value!r}")


# --------------------------------------------------------------------------------------
# trimming to the nodes a layer still needs (neighbour-sampled mini-batches)
# --------------------------------------------------------------------------------------
def _trim(
    layer: int,
    nodes_per_hop: list[int],
    edges_per_hop: list[int],
    x: Tensor,
    edge_index: Any,
    value: Tensor | None,
) -> tuple[Tensor, Any, Tensor | None]:
    """Drop the nodes and edges of the last ``layer`` hops (they cannot reach the seeds any more).

    A neighbour sampler lists the nodes and edges hop by hop, so the ones sampled
    at hop ``k`` are a suffix of the lists; before layer ``l`` the last
    ``nodes_per_hop[-l]`` nodes and ``edges_per_hop[-l]`` edges are cut off.
    A sparse adjacency keeps the entries whose target is a node of the first
    ``len - l`` hops and whose source survives.
    """
    if layer <= 0:
        return x, edge_index, value
    num_nodes = x.size(0) - nodes_per_hop[-layer]
    x = x.narrow(0, 0, num_nodes)
    if isinstance(edge_index, Tensor) and not is_sparse(edge_index):
        num_edges = edge_index.size(1) - edges_per_hop[-layer]
        edge_index = edge_index.narrow(1, 0, num_edges)
        if value is not None:
            value = value.narrow(0, 0, num_edges)
        return x, edge_index, value
    if is_sparse(edge_index):
        # receivers: nodes of hops 0 .. len - layer - 1 (the next hop's nodes now only send)
        receivers = num_nodes - nodes_per_hop[-(layer + 1)]
        (index, weight) = to_edge_index(edge_index)
        dst, src = index[1], index[0]
        keep = (dst < receivers) & (src < num_nodes)
        adj = torch.sparse_coo_tensor(
            torch.stack([dst[keep], src[keep]]), weight[keep], (num_nodes, num_nodes)
        ).coalesce()
        return x, adj.to_sparse_csr(), value
    raise TypeError(
        "trimming ('num_sampled_nodes_per_hop') needs an 'edge_index' tensor or a torch.sparse "
        f"adjacency, got {v.describe(edge_index)}"
    )


def _check_hops(name: str, hops: Any, num_layers: int) -> list[int]:
    if not isinstance(hops, (list, tuple)) or not all(isinstance(h, int) for h in hops):
        raise TypeError(f"'{name}' must be a list of ints (one per hop), got {v.describe(hops)}")
    if len(hops) < num_layers:
        raise ValueError(
            f"'{name}' must list at least num_layers={num_layers} hops after the seeds, got {len(hops)}"
        )
    return list(hops)


# --------------------------------------------------------------------------------------
# BasicGNN
# --------------------------------------------------------------------------------------
class BasicGNN(torch.nn.Module):
    r"""A stack of ``num_layers`` message-passing layers (abstract: subclasses give :meth:`init_conv`).

    Layer :math:`l` computes :math:`\mathbf{h}^{(l)} = \mathrm{dropout}(\sigma(\mathrm{norm}_l(
    \mathrm{conv}_l(\mathbf{h}^{(l-1)}))))`; without ``jk`` the last layer is its
    convolution alone. See the module docstring.

    Args:
        in_channels: input feature size (``-1``: lazy; a pair for bipartite layers).
        hidden_channels: feature size of every hidden layer.
        num_layers: number of message-passing layers.
        out_channels: output size (default ``hidden_channels``); without ``jk`` the
            last convolution maps to it, with ``jk`` the final linear map does.
        dropout: dropout probability after each (non-final) layer.
        act: activation name (``"relu"``, ``"elu"``, ``"leaky_relu"``, ...), module
            or callable, or ``None``.
        act_first: apply the activation before the normalization.
        act_kwargs: keyword arguments of the activation class.
        norm: normalization: a name resolved through :data:`gnn.core.registry.norms`
            (``"batch_norm"``, ``"layer_norm"``, ``"graph_norm"``, ``"instance_norm"``,
            ...), a module (copied per layer), a class, or ``None``.
        norm_kwargs: keyword arguments of the normalization.
        jk: jumping knowledge: ``None``, ``"last"``, ``"cat"``, ``"max"`` or ``"lstm"``.
        **kwargs: arguments of every convolution.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` (or a sparse ``adj_t``),
        ``edge_weight`` ``[E]``, ``edge_attr`` ``[E, D]``, ``batch`` ``[N]`` ->
        ``[N, out_channels]``.
    """

    supports_edge_weight: ClassVar[bool] = False
    supports_edge_attr: ClassVar[bool] = False
    #: the layers return a fresh tensor that their backward does not keep (see ``_post``)
    _fresh_output: ClassVar[bool] = False

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        hidden_channels: int,
        num_layers: int,
        out_channels: int | None = None,
        dropout: float = 0.0,
        act: str | Callable | None = "relu",
        act_first: bool = False,
        act_kwargs: dict[str, Any] | None = None,
        norm: str | Callable | None = None,
        norm_kwargs: dict[str, Any] | None = None,
        jk: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        _check_positive("hidden_channels", hidden_channels)
        _check_positive("num_layers", num_layers)
        if out_channels is not None:
            _check_positive("out_channels", out_channels)
        if jk not in _JK_MODES:
            raise ValueError(f"'jk' must be one of {_JK_MODES}, got {jk!r}")
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"'dropout' must be a probability in [0, 1], got {dropout!r}")

        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.dropout = torch.nn.Dropout(p=float(dropout))
        self.act = resolve_activation(act, act_kwargs)
        self.jk_mode = jk
        self.act_first = act_first
        self.norm = norm if isinstance(norm, str) else None
        self.norm_kwargs = norm_kwargs
        self.out_channels = hidden_channels if out_channels is None else out_channels

        # the convolutions: in -> hidden -> ... -> hidden, the last one to out_channels without jk
        bipartite = isinstance(in_channels, (tuple, list))
        hidden_in = (hidden_channels, hidden_channels) if bipartite else hidden_channels
        self.convs = torch.nn.ModuleList()
        channels: Any = in_channels
        for _ in range(num_layers - 1):
            self.convs.append(self.init_conv(channels, hidden_channels, **kwargs))
            channels = hidden_in
        if out_channels is not None and jk is None:
            self._is_conv_to_out = True
            self.convs.append(self.init_conv(channels, out_channels, **kwargs))
        else:
            self.convs.append(self.init_conv(channels, hidden_channels, **kwargs))

        # one normalization per layer (copies of one), the last one only with jk
        template = resolve_norm(norm, hidden_channels, norm_kwargs)
        if template is None:
            template = torch.nn.Identity()
        self.supports_norm_batch = _takes(template, "batch")
        self._fresh_norm = type(template) in _fresh_norms()
        self.norms = torch.nn.ModuleList(copy.deepcopy(template) for _ in range(num_layers - 1))
        self.norms.append(copy.deepcopy(template) if jk is not None else torch.nn.Identity())

        if jk is not None and jk != "last":
            self.jk = JumpingKnowledge(jk, hidden_channels, num_layers)
        if jk is not None:
            width = num_layers * hidden_channels if jk == "cat" else hidden_channels
            self.lin = torch.nn.Linear(width, self.out_channels)

    def init_conv(
        self, in_channels: int | tuple[int, int], out_channels: int, **kwargs: Any
    ) -> torch.nn.Module:
        """The convolution of one layer (implemented by subclasses)."""
        raise NotImplementedError

    def reset_parameters(self) -> None:
        """Re-initialize every convolution, normalization, the JK module and the final linear map."""
        for conv in self.convs:
            conv.reset_parameters()
        for norm in self.norms:
            if hasattr(norm, "reset_parameters"):
                norm.reset_parameters()
        if hasattr(self, "jk"):
            self.jk.reset_parameters()
        if hasattr(self, "lin"):
            self.lin.reset_parameters()

    def _conv(
        self, conv: torch.nn.Module, x: Tensor, edge_index: Any, edge_weight: Any, edge_attr: Any
    ) -> Tensor:
        if self.supports_edge_weight and self.supports_edge_attr:
            return conv(x, edge_index, edge_weight=edge_weight, edge_attr=edge_attr)
        if self.supports_edge_weight:
            return conv(x, edge_index, edge_weight=edge_weight)
        if self.supports_edge_attr:
            return conv(x, edge_index, edge_attr=edge_attr)
        return conv(x, edge_index)

    def _post(self, layer: int, x: Tensor, batch: Tensor | None, batch_size: int | None) -> Tensor:
        """Normalization, activation (in either order) and dropout after a convolution.

        A ReLU overwrites the convolution's output (or a batch norm's) when that is a
        fresh tensor nothing else holds (:func:`gnn.core.nn.act.activate`): the layers
        of the ready-made models, no forward hooks on them.
        """
        act, norm = self.act, self.norms[layer]
        fresh = self._fresh_output and no_forward_hooks(self.convs[layer], norm)
        if act is not None and self.act_first:
            x = activate(act, x, fresh=fresh)
        if not isinstance(norm, torch.nn.Identity):
            x = norm(x, batch, batch_size) if self.supports_norm_batch else norm(x)
        if act is not None and not self.act_first:
            x = activate(act, x, fresh=fresh and self._fresh_norm)
        return self.dropout(x)

    def forward(
        self,
        x: Tensor,
        edge_index: Any,
        edge_weight: Tensor | None = None,
        edge_attr: Tensor | None = None,
        batch: Tensor | None = None,
        batch_size: int | None = None,
        num_sampled_nodes_per_hop: list[int] | None = None,
        num_sampled_edges_per_hop: list[int] | None = None,
    ) -> Tensor:
        """Run the stack (see the class docstring for shapes).

        ``edge_weight``/``edge_attr`` reach the convolutions that take them
        (:attr:`supports_edge_weight`, :attr:`supports_edge_attr`); ``batch`` and
        ``batch_size`` reach graph-wise normalizations. With
        ``num_sampled_nodes_per_hop`` and ``num_sampled_edges_per_hop`` (a
        neighbour-sampled mini-batch, nodes and edges listed hop by hop) each
        layer drops the nodes and edges that can no longer reach the seed nodes.
        """
        trim = num_sampled_nodes_per_hop is not None or num_sampled_edges_per_hop is not None
        if trim:
            if num_sampled_nodes_per_hop is None or num_sampled_edges_per_hop is None:
                missing = "nodes" if num_sampled_nodes_per_hop is None else "edges"
                raise ValueError(f"'num_sampled_{missing}_per_hop' needs to be given for trimming as well")
            if isinstance(edge_weight, Tensor) and isinstance(edge_attr, Tensor):
                raise NotImplementedError(
                    "trimming ('num_sampled_nodes_per_hop') supports 'edge_weight' or 'edge_attr', not both"
                )
            nodes = _check_hops("num_sampled_nodes_per_hop", num_sampled_nodes_per_hop, self.num_layers)
            edges = _check_hops("num_sampled_edges_per_hop", num_sampled_edges_per_hop, self.num_layers)

        xs: list[Tensor] = []
        last = self.num_layers - 1
        for i, conv in enumerate(self.convs):
            if trim:
                value = edge_weight if edge_weight is not None else edge_attr
                x, edge_index, value = _trim(i, nodes, edges, x, edge_index, value)
                if edge_weight is not None:
                    edge_weight = value
                else:
                    edge_attr = value
            x = self._conv(conv, x, edge_index, edge_weight, edge_attr)
            if i < last or self.jk_mode is not None:
                x = self._post(i, x, batch, batch_size)
                if hasattr(self, "jk"):
                    xs.append(x)
        if hasattr(self, "jk"):
            x = self.jk(xs)
        if hasattr(self, "lin"):
            x = self.lin(x)
        return x

    @torch.no_grad()
    def inference_per_layer(self, layer: int, x: Tensor, edge_index: Any, batch_size: int) -> Tensor:
        """Layer ``layer`` of the stack on one mini-batch, keeping the first ``batch_size`` rows.

        The normalization runs without ``batch`` (node-wise). The final linear map
        is applied after the last layer (jk ``None`` or ``"last"`` only).
        """
        x = self.convs[layer](x, edge_index)[:batch_size]
        if layer == self.num_layers - 1 and self.jk_mode is None:
            return x
        if self.act is not None and self.act_first:
            x = self.act(x)
        x = self.norms[layer](x)
        if self.act is not None and not self.act_first:
            x = self.act(x)
        if layer == self.num_layers - 1 and hasattr(self, "lin"):
            x = self.lin(x)
        return x

    @torch.no_grad()
    def inference(
        self,
        loader: Iterable[Any],
        device: str | torch.device | None = None,
        embedding_device: str | torch.device = "cpu",
        progress_bar: bool = False,
        cache: bool = False,
    ) -> Tensor:
        """Layer-wise inference over a whole graph, one full 1-hop neighbourhood batch at a time.

        ``loader`` yields mini-batches with ``n_id`` (global ids of the batch's nodes,
        seeds first), ``batch_size`` (number of seeds) and ``edge_index`` or
        ``adj_t`` (local ids); ``loader.data.x`` holds every node's features, and the
        seeds of all batches, in order, must be ``0 .. N-1`` (PyG's ``NeighborLoader``
        over all nodes with ``num_neighbors=[-1]`` and ``shuffle=False``). Only for
        ``jk`` ``None`` or ``"last"``, in evaluation mode. ``cache=True`` keeps the
        batches of the first layer for the others; ``progress_bar`` prints one line
        per layer.
        """
        if self.jk_mode not in (None, "last"):
            raise ValueError(f"layer-wise inference needs jk=None or jk='last', got jk={self.jk_mode!r}")
        if self.training:
            raise RuntimeError("call model.eval() before layer-wise inference")
        data = getattr(loader, "data", None)
        if data is None or getattr(data, "x", None) is None:
            raise TypeError("'loader' must have a 'data' attribute with node features 'x'")
        x_all = data.x.to(embedding_device)
        batches: Iterable[Any] = loader
        if cache:
            batches = [
                (b.n_id, b.batch_size, b.adj_t if hasattr(b, "adj_t") else b.edge_index) for b in loader
            ]
        for layer in range(self.num_layers):
            outs = []
            for item in batches:
                if cache:
                    n_id, batch_size, graph = item
                else:
                    n_id, batch_size = item.n_id, item.batch_size
                    graph = item.adj_t if hasattr(item, "adj_t") else item.edge_index
                x = x_all[n_id].to(device)
                graph = graph.to(device) if device is not None else graph
                outs.append(self.inference_per_layer(layer, x, graph, batch_size).to(embedding_device))
            x_all = torch.cat(outs, dim=0)
            if progress_bar:
                print(f"Inference: layer {layer + 1}/{self.num_layers} done")
        return x_all

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, num_layers={self.num_layers})"


# --------------------------------------------------------------------------------------
# the models of PyG
# --------------------------------------------------------------------------------------
class GCN(BasicGNN):
    r""":class:`BasicGNN` of :class:`~gnn.conv.GCNConv` layers (Kipf & Welling, 2017).

    Each layer is :math:`\hat{D}^{-1/2}\hat{A}\hat{D}^{-1/2} H \Theta + b`; ``edge_weight``
    reaches every layer. ``**kwargs`` go to :class:`~gnn.conv.GCNConv` (``improved``,
    ``cached``, ``add_self_loops``, ``normalize``, ``bias``).

    Example:
        >>> model = GCN(16, 32, num_layers=2, out_channels=7)
        >>> model(torch.randn(4, 16), torch.tensor([[0, 1, 2], [1, 2, 3]])).shape
        torch.Size([4, 7])
    """

    supports_edge_weight: ClassVar[bool] = True
    supports_edge_attr: ClassVar[bool] = False

    def init_conv(self, in_channels: int, out_channels: int, **kwargs: Any) -> torch.nn.Module:
        from gnn.conv import GCNConv

        return GCNConv(in_channels, out_channels, **kwargs)

    @property
    def _fresh_output(self) -> bool:  # type: ignore[override]
        return all(conv.bias is not None for conv in self.convs)  # (else the output is the propagation's)


class GraphSAGE(BasicGNN):
    r""":class:`BasicGNN` of :class:`~gnn.conv.SAGEConv` layers (Hamilton et al., 2017).

    Each layer is :math:`W_1 h_i + W_2 \cdot \mathrm{mean}_{j \in \mathcal{N}(i)} h_j`.
    ``in_channels`` may be a pair for bipartite graphs; ``**kwargs`` go to
    :class:`~gnn.conv.SAGEConv` (``aggr``, ``normalize``, ``root_weight``, ``project``, ``bias``).

    Example:
        >>> model = GraphSAGE(16, 32, num_layers=2)
        >>> model(torch.randn(4, 16), torch.tensor([[0, 1, 2], [1, 2, 3]])).shape
        torch.Size([4, 32])
    """

    _fresh_output: ClassVar[bool] = True

    def init_conv(
        self, in_channels: int | tuple[int, int], out_channels: int, **kwargs: Any
    ) -> torch.nn.Module:
        from gnn.conv import SAGEConv

        return SAGEConv(in_channels, out_channels, **kwargs)


class GIN(BasicGNN):
    r""":class:`BasicGNN` of :class:`~gnn.conv.GINConv` layers (Xu et al., 2019).

    Each layer is :math:`\mathrm{MLP}((1 + \epsilon) h_i + \sum_{j \in \mathcal{N}(i)} h_j)`
    with a two-layer :class:`~gnn.core.MLP` ``[in, out, out]`` that uses the model's
    activation and (named) normalization. ``**kwargs`` go to :class:`~gnn.conv.GINConv`
    (``eps``, ``train_eps``).

    Example:
        >>> model = GIN(16, 32, num_layers=2)
        >>> model(torch.randn(4, 16), torch.tensor([[0, 1, 2], [1, 2, 3]])).shape
        torch.Size([4, 32])
    """

    _fresh_output: ClassVar[bool] = True

    def init_conv(self, in_channels: int, out_channels: int, **kwargs: Any) -> torch.nn.Module:
        from gnn.conv import GINConv

        mlp = MLP(
            [in_channels, out_channels, out_channels],
            act=self.act,
            act_first=self.act_first,
            norm=self.norm,
            norm_kwargs=self.norm_kwargs,
        )
        return GINConv(mlp, **kwargs)


class GAT(BasicGNN):
    r""":class:`BasicGNN` of :class:`~gnn.conv.GATConv` (or, with ``v2=True``,
    :class:`~gnn.conv.GATv2Conv`) layers (Veličković et al., 2018; Brody et al., 2022).

    ``heads`` attention heads split each hidden layer's ``hidden_channels`` (which
    must be divisible by ``heads``) and are concatenated; a last layer that maps to
    ``out_channels`` averages its heads instead. The model's ``dropout`` is also the
    layers' attention dropout. ``edge_attr`` reaches every layer (``edge_dim``).
    Other ``**kwargs`` go to the convolution.

    Example:
        >>> model = GAT(16, 32, num_layers=2, heads=4, v2=True)
        >>> model(torch.randn(4, 16), torch.tensor([[0, 1, 2], [1, 2, 3]])).shape
        torch.Size([4, 32])
    """

    supports_edge_weight: ClassVar[bool] = False
    supports_edge_attr: ClassVar[bool] = True

    _fresh_output: ClassVar[bool] = True

    def init_conv(
        self, in_channels: int | tuple[int, int], out_channels: int, **kwargs: Any
    ) -> torch.nn.Module:
        from gnn.conv import GATConv, GATv2Conv

        v2 = kwargs.pop("v2", False)
        heads = kwargs.pop("heads", 1)
        concat = kwargs.pop("concat", True)
        if getattr(self, "_is_conv_to_out", False):
            concat = False  # the output layer averages its heads
        if concat and out_channels % heads != 0:
            raise ValueError(
                f"the output channels of a GAT layer ({out_channels}) must be divisible by the "
                f"number of 'heads' ({heads}) when the heads are concatenated"
            )
        if concat:
            out_channels = out_channels // heads
        conv = GATv2Conv if v2 else GATConv
        return conv(in_channels, out_channels, heads=heads, concat=concat, dropout=self.dropout.p, **kwargs)


class PNA(BasicGNN):
    r""":class:`BasicGNN` of :class:`~gnn.conv.PNAConv` layers (Corso et al., 2020).

    ``**kwargs`` go to :class:`~gnn.conv.PNAConv` and must give ``aggregators``,
    ``scalers`` and ``deg`` (the in-degree histogram of the training graphs);
    ``edge_attr`` reaches every layer (``edge_dim``).

    Example:
        >>> deg = torch.tensor([0, 2, 1])
        >>> model = PNA(16, 32, 2, aggregators=["mean", "max"], scalers=["identity"], deg=deg)
        >>> model(torch.randn(4, 16), torch.tensor([[0, 1, 2], [1, 2, 3]])).shape
        torch.Size([4, 32])
    """

    supports_edge_weight: ClassVar[bool] = False
    supports_edge_attr: ClassVar[bool] = True

    def init_conv(self, in_channels: int, out_channels: int, **kwargs: Any) -> torch.nn.Module:
        from gnn.conv import PNAConv

        return PNAConv(in_channels, out_channels, **kwargs)


class EdgeCNN(BasicGNN):
    r""":class:`BasicGNN` of :class:`~gnn.conv.EdgeConv` layers (Wang et al., 2019).

    Each layer is :math:`\max_{j \in \mathcal{N}(i)} \mathrm{MLP}(h_i \,\Vert\, h_j - h_i)`
    with a two-layer :class:`~gnn.core.MLP` ``[2 in, out, out]`` that uses the model's
    activation and (named) normalization. ``**kwargs`` go to
    :class:`~gnn.conv.EdgeConv` (``aggr``).

    Example:
        >>> model = EdgeCNN(3, 32, num_layers=2)
        >>> model(torch.randn(4, 3), torch.tensor([[0, 1, 2], [1, 2, 3]])).shape
        torch.Size([4, 32])
    """

    def init_conv(self, in_channels: int, out_channels: int, **kwargs: Any) -> torch.nn.Module:
        from gnn.conv import EdgeConv

        mlp = MLP(
            [2 * in_channels, out_channels, out_channels],
            act=self.act,
            act_first=self.act_first,
            norm=self.norm,
            norm_kwargs=self.norm_kwargs,
        )
        return EdgeConv(mlp, **kwargs)


# --------------------------------------------------------------------------------------
# beyond PyG: the same model over any convolution
# --------------------------------------------------------------------------------------
def _conv_factory(conv: Any) -> tuple[Callable[..., torch.nn.Module], str]:
    """``(factory, name)`` of a conv given by name, class or factory callable."""
    if isinstance(conv, str):
        from gnn.core.registry import convs

        try:
            cls = convs.lookup(conv)
        except ValueError as error:
            raise ValueError(f"'conv' {conv!r} is not a known convolution: {error}") from None
        return cls, getattr(cls, "__name__", conv)
    if isinstance(conv, torch.nn.Module):
        raise TypeError(
            "'conv' must be a name, a class or a factory (in_channels, out_channels, **kwargs) -> "
            f"module, not a module instance ({type(conv).__name__}): every layer needs its own"
        )
    if callable(conv):
        return conv, getattr(conv, "__name__", type(conv).__name__)
    raise TypeError(f"'conv' must be a name, a class or a factory callable, got {v.describe(conv)}")


class GNN(BasicGNN):
    r""":class:`BasicGNN` over any convolution: ``GNN(conv, in_channels, hidden_channels, num_layers, ...)``.

    Not part of PyG. ``conv`` is

    * a name the conv registry (:data:`gnn.core.registry.convs`) resolves: a
      first-party layer (``"gcn"``, ``"sage"``, ``"GATConv"``, ``"graph"``,
      ``"transformer"``, ...) or one a plugin registered (the example plugin's
      ``"hiddenmean"``); ``"dist:name"`` picks one plugin's when several register it;
    * a class, or any factory ``conv(in_channels, out_channels, **kwargs) -> module``
      (use one for layers built around an ``nn``, such as ``GINConv``).

    Every layer is ``conv(in, out, **kwargs)``; the options (``jk``, ``norm``,
    ``act``, ``dropout``, trimming, ...) are :class:`BasicGNN`'s. Whether the
    layers receive ``edge_weight`` / ``edge_attr`` is read from their ``forward``
    signature (:attr:`supports_edge_weight`, :attr:`supports_edge_attr`).

    Example:
        >>> model = GNN("sage", 16, 32, num_layers=2, out_channels=7, jk="max")
        >>> model(torch.randn(4, 16), torch.tensor([[0, 1, 2], [1, 2, 3]])).shape
        torch.Size([4, 7])
        >>> model
        GNN(SAGEConv, 16, 7, num_layers=2)
    """

    def __init__(
        self,
        conv: str | Callable[..., torch.nn.Module],
        in_channels: int | tuple[int, int],
        hidden_channels: int,
        num_layers: int,
        out_channels: int | None = None,
        dropout: float = 0.0,
        act: str | Callable | None = "relu",
        act_first: bool = False,
        act_kwargs: dict[str, Any] | None = None,
        norm: str | Callable | None = None,
        norm_kwargs: dict[str, Any] | None = None,
        jk: str | None = None,
        **kwargs: Any,
    ) -> None:
        # plain attributes may be set before Module.__init__; init_conv needs the factory
        self._factory, self.conv_name = _conv_factory(conv)
        super().__init__(
            in_channels,
            hidden_channels,
            num_layers,
            out_channels,
            dropout,
            act,
            act_first,
            act_kwargs,
            norm,
            norm_kwargs,
            jk,
            **kwargs,
        )
        first = self.convs[0]
        self.supports_edge_weight = _takes(first, "edge_weight")  # type: ignore[misc]
        self.supports_edge_attr = _takes(first, "edge_attr")  # type: ignore[misc]

    def init_conv(
        self, in_channels: int | tuple[int, int], out_channels: int, **kwargs: Any
    ) -> torch.nn.Module:
        conv = self._factory(in_channels, out_channels, **kwargs)
        if not isinstance(conv, torch.nn.Module):
            raise TypeError(f"'conv' must build a torch.nn.Module, but it returned {v.describe(conv)}")
        return conv

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.conv_name}, {self.in_channels}, {self.out_channels}, "
            f"num_layers={self.num_layers})"
        )
