r"""GPSE, the Graph Positional and Structural Encoder (Cantürk et al., 2024): :class:`GPSE` and
:class:`GPSENodeEncoder`, plus the helpers that compute encodings with a GPSE model
(:func:`gpse_process`, :func:`gpse_process_batch`) and its training loss (:func:`gpse_loss`).

GPSE is a deep residual GNN that maps random node features to learned positional and
structural encodings. Its stages read and write the attributes of a graph object
(``x``, ``edge_index``, ``batch``, ``y``, ``y_graph``): a :class:`gnn.core.data.Data` /
``Batch`` or anything that looks like PyG's.
"""

from __future__ import annotations

import copy
import os.path as osp
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.conv import ResGatedGraphConv
from gnn.core import ops
from gnn.core import validation as v
from gnn.core.nn.mlp import resolve_activation
from gnn.core.utils import to_dense_batch
from gnn.pool import global_add_pool, global_max_pool, global_mean_pool

__all__ = [
    "GPSE",
    "GPSENodeEncoder",
    "cosim_col_sep",
    "gpse_loss",
    "gpse_process",
    "gpse_process_batch",
    "precompute_GPSE",
    "process_batch_idx",
]

_POOLS = {"add": global_add_pool, "max": global_max_pool, "mean": global_mean_pool}


def _clone_graph(batch: Any) -> Any:
    """A shallow copy of a graph object whose attributes can be reassigned without touching the input."""
    if hasattr(batch, "clone"):
        return batch.clone()
    return copy.copy(batch)


def _features(batch: Any) -> Tensor:
    x = getattr(batch, "x", None)
    if not isinstance(x, Tensor):
        raise TypeError(f"GPSE reads node features from 'batch.x' (a [N, F] tensor), got {v.describe(x)}")
    return x


# -- the building blocks (names and nesting as in PyG, so checkpoints load) -----------------------
class Linear(torch.nn.Module):
    """A linear map applied to a tensor or to ``batch.x``."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool) -> None:
        super().__init__()
        self.model = torch.nn.Linear(in_channels, out_channels, bias=bias)

    def forward(self, batch: Any) -> Any:
        if isinstance(batch, Tensor):
            return self.model(batch)
        batch.x = self.model(_features(batch))
        return batch


class ResGatedGCNConv(torch.nn.Module):
    """A :class:`~gnn.conv.ResGatedGraphConv` applied to ``batch.x`` over ``batch.edge_index``."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool, **kwargs: Any) -> None:
        super().__init__()
        self.model = ResGatedGraphConv(in_channels, out_channels, bias=bias, **kwargs)

    def forward(self, batch: Any) -> Any:
        edge_index = getattr(batch, "edge_index", None)
        if edge_index is None:
            raise TypeError(
                "GPSE's message passing reads the graph from 'batch.edge_index', which is missing"
            )
        batch.x = self.model(_features(batch), edge_index)
        return batch


_LAYERS = {"linear": Linear, "resgatedgcnconv": ResGatedGCNConv}


class GeneralLayer(torch.nn.Module):
    r"""One layer followed by (optional) batch norm, dropout, activation and L2 normalization."""

    def __init__(
        self,
        name: str,
        in_channels: int,
        out_channels: int,
        has_batch_norm: bool,
        has_l2_norm: bool,
        dropout: float,
        act: str | None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if name not in _LAYERS:
            raise ValueError(f"'layer_type' must be one of {sorted(_LAYERS)}, got {name!r}")
        self.has_l2_norm = has_l2_norm
        self.layer = _LAYERS[name](in_channels, out_channels, bias=not has_batch_norm, **kwargs)
        post: list[torch.nn.Module] = []
        if has_batch_norm:
            post.append(torch.nn.BatchNorm1d(out_channels, eps=1e-5, momentum=0.1))
        if dropout > 0:
            post.append(torch.nn.Dropout(p=dropout, inplace=False))
        if act is not None:
            post.append(resolve_activation(act))
        self.post_layer = torch.nn.Sequential(*post)

    def _post(self, x: Tensor) -> Tensor:
        x = self.post_layer(x)
        return F.normalize(x, p=2.0, dim=1) if self.has_l2_norm else x

    def forward(self, batch: Any) -> Any:
        batch = self.layer(batch)
        if isinstance(batch, Tensor):
            return self._post(batch)
        batch.x = self._post(batch.x)
        return batch


class GeneralMultiLayer(torch.nn.Module):
    """``num_layers`` :class:`GeneralLayer` in a row (children ``Layer_0``, ``Layer_1``, ...)."""

    def __init__(
        self,
        name: str,
        in_channels: int,
        out_channels: int,
        hidden_channels: int | None,
        num_layers: int,
        has_batch_norm: bool,
        has_l2_norm: bool,
        dropout: float,
        act: str,
        final_act: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        hidden_channels = hidden_channels or out_channels
        for i in range(num_layers):
            last = i == num_layers - 1
            layer = GeneralLayer(
                name=name,
                in_channels=in_channels if i == 0 else hidden_channels,
                out_channels=out_channels if last else hidden_channels,
                has_batch_norm=has_batch_norm,
                has_l2_norm=has_l2_norm,
                dropout=dropout,
                act=None if last and not final_act else act,
                **kwargs,
            )
            self.add_module(f"Layer_{i}", layer)

    def forward(self, batch: Any) -> Any:
        for layer in self.children():
            batch = layer(batch)
        return batch


class MLP(torch.nn.Module):
    """A prediction MLP: ``num_layers - 1`` :class:`GeneralLayer` (linear) and a final linear map."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int | None,
        num_layers: int,
        has_batch_norm: bool = True,
        has_l2_norm: bool = True,
        dropout: float = 0.2,
        act: str = "relu",
        **kwargs: Any,
    ) -> None:
        super().__init__()
        hidden_channels = hidden_channels or in_channels
        layers: list[torch.nn.Module] = []
        if num_layers > 1:
            layers.append(
                GeneralMultiLayer(
                    "linear",
                    in_channels,
                    hidden_channels,
                    hidden_channels,
                    num_layers - 1,
                    has_batch_norm,
                    has_l2_norm,
                    dropout,
                    act,
                    final_act=True,
                    **kwargs,
                )
            )
        layers.append(Linear(hidden_channels, out_channels, bias=True))
        self.model = torch.nn.Sequential(*layers)

    def forward(self, batch: Any) -> Any:
        if isinstance(batch, Tensor):
            return self.model(batch)
        batch.x = self.model(batch.x)
        return batch


class GNNStackStage(torch.nn.Module):
    r"""``num_layers`` message-passing :class:`GeneralLayer` with skip connections.

    ``stage_type="skipsum"``: :math:`x \leftarrow x + f_l(x)`; ``"skipconcat"``:
    :math:`x \leftarrow [x \Vert f_l(x)]` (but after the last layer); anything else: no skip.
    ``final_l2_norm`` L2-normalizes the output rows.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_layers: int,
        layer_type: str,
        stage_type: str = "skipsum",
        final_l2_norm: bool = True,
        has_batch_norm: bool = True,
        has_l2_norm: bool = True,
        dropout: float = 0.2,
        act: str | None = "relu",
    ) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.stage_type = stage_type
        self.final_l2_norm = final_l2_norm
        for i in range(num_layers):
            if i == 0:
                size_in = in_channels
            elif stage_type == "skipconcat":
                size_in = in_channels + i * out_channels
            else:
                size_in = out_channels
            layer = GeneralLayer(layer_type, size_in, out_channels, has_batch_norm, has_l2_norm, dropout, act)
            self.add_module(f"layer{i}", layer)

    def forward(self, batch: Any) -> Any:
        for i, layer in enumerate(self.children()):
            before = batch.x
            batch = layer(batch)
            if self.stage_type == "skipsum":
                batch.x = before + batch.x
            elif self.stage_type == "skipconcat" and i < self.num_layers - 1:
                batch.x = torch.cat([before, batch.x], dim=1)
        if self.final_l2_norm:
            batch.x = F.normalize(batch.x, p=2.0, dim=-1)
        return batch


def _drop_last_node_per_graph(batch_index: Tensor) -> Tensor:
    """Indices of all nodes but the last (highest-index) one of each graph, grouped by graph in
    increasing graph order and by node index within a graph (the virtual nodes sit last)."""
    num_nodes = batch_index.numel()
    if num_nodes == 0:
        return batch_index.new_zeros(0, dtype=torch.long)
    index = batch_index.long()
    position = torch.arange(num_nodes, device=index.device)
    last = ops.scatter(position, index, 0, None, "max")
    keep = position != last.index_select(0, index)
    kept = keep.nonzero().view(-1)
    order = torch.sort(index.index_select(0, kept), stable=True).indices
    return kept.index_select(0, order)


def _pad_and_stack(top: Tensor, bottom: Tensor, pad_top: int, pad_bottom: int) -> Tensor:
    """``[[top, 0], [0, bottom]]``: ``top`` padded by ``pad_bottom`` zero columns on the right,
    ``bottom`` by ``pad_top`` on the left, stacked."""
    return torch.cat([F.pad(top, (0, pad_bottom)), F.pad(bottom, (pad_top, 0))], dim=0)


class GNNInductiveHybridMultiHead(torch.nn.Module):
    r"""GPSE's pre-training head: one small MLP per node-level target and one MLP on the pooled
    graph embedding for the graph-level targets.

    ``forward(batch)`` returns ``(pred, true)``, both ``[N' + B, T_node + T_graph]``: the node
    predictions (``N'`` nodes, virtual nodes removed with ``virtual_node``) padded with zeros on
    the right, stacked over the graph predictions padded on the left; ``true`` likewise from
    ``batch.y`` and ``batch.y_graph``.
    """

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        num_node_targets: int,
        num_graph_targets: int,
        layers_post_mp: int,
        virtual_node: bool = True,
        multi_head_dim_inner: int = 32,
        graph_pooling: str = "add",
        has_bn: bool = True,
        has_l2norm: bool = True,
        dropout: float = 0.2,
        act: str = "relu",
    ) -> None:
        super().__init__()
        if graph_pooling not in _POOLS:
            raise ValueError(f"'graph_pooling' must be one of {sorted(_POOLS)}, got {graph_pooling!r}")
        self.node_target_dim = num_node_targets
        self.graph_target_dim = num_graph_targets
        self.virtual_node = virtual_node
        self.node_post_mps = torch.nn.ModuleList(
            MLP(dim_in, 1, multi_head_dim_inner, layers_post_mp, has_bn, has_l2norm, dropout, act)
            for _ in range(num_node_targets)
        )
        self.graph_pooling = _POOLS[graph_pooling]
        self.graph_post_mp = MLP(
            dim_in, num_graph_targets, dim_in, layers_post_mp, has_bn, has_l2norm, dropout, act
        )

    def _pad_and_stack(self, x1: Tensor, x2: Tensor, pad1: int, pad2: int) -> Tensor:
        return _pad_and_stack(x1, x2, pad1, pad2)

    def _apply_index(
        self, batch: Any, virtual_node: bool, pad_node: int, pad_graph: int
    ) -> tuple[Tensor, Tensor]:
        node_pred, node_true = batch.node_feature, batch.y
        if virtual_node:
            keep = _drop_last_node_per_graph(batch.batch)
            node_pred, node_true = node_pred.index_select(0, keep), node_true.index_select(0, keep)
        pred = _pad_and_stack(node_pred, batch.graph_feature, pad_node, pad_graph)
        true = _pad_and_stack(node_true, batch.y_graph, pad_node, pad_graph)
        return pred, true

    def forward(self, batch: Any) -> tuple[Tensor, Tensor]:
        x = batch.x
        if getattr(batch, "batch", None) is None:
            batch.batch = x.new_zeros(x.size(0), dtype=torch.long)
        for name in ("y", "y_graph"):
            if not isinstance(getattr(batch, name, None), Tensor):
                raise ValueError(
                    f"the GPSE pre-training head needs the targets 'batch.{name}' (a tensor), "
                    f"got {v.describe(getattr(batch, name, None))}"
                )
        batch.node_feature = torch.cat([head(x) for head in self.node_post_mps], dim=1)
        batch.graph_feature = self.graph_post_mp(self.graph_pooling(x, batch.batch))
        return self._apply_index(batch, self.virtual_node, self.node_target_dim, self.graph_target_dim)


class IdentityHead(torch.nn.Module):
    """The head of a pretrained GPSE used as encoder: returns ``(batch.x, batch.y)``."""

    def forward(self, batch: Any) -> tuple[Tensor, Tensor | None]:
        return batch.x, getattr(batch, "y", None)


# -- GPSE ------------------------------------------------------------------------------------------
class GPSE(torch.nn.Module):
    r"""The Graph Positional and Structural Encoder (Cantürk et al., 2024).

    Random node features go through ``layers_pre_mp`` linear layers, a stack of
    ``layers_mp`` residual message-passing layers (:class:`~gnn.conv.ResGatedGraphConv`
    by default; batch norm, dropout, activation and L2 normalization after each, the
    rows L2-normalized at the end) and a pre-training head that predicts
    ``num_node_targets`` node-level and ``num_graph_targets`` graph-level positional and
    structural encodings. Every stage reads and writes ``batch.x``:

    .. math::
        h^{(0)} = \mathrm{MLP}_{\mathrm{pre}}(x), \qquad
        h^{(l)} = h^{(l-1)} + \mathrm{L2}\big(\sigma(\mathrm{BN}(\mathrm{Conv}_l(h^{(l-1)})))\big), \qquad
        h = \mathrm{L2}(h^{(L)})

    ``forward(batch)`` copies ``batch`` (the input is left untouched) and returns the
    head's ``(pred, true)`` pair; a model from :meth:`from_pretrained` has its head
    replaced by an identity (``use_repr``, ``repr_type="no_post_mp"``) and returns
    ``(h, batch.y)``, ``h`` ``[N, dim_inner]`` being the learned encodings.

    Args:
        dim_in: size of the random input features.
        dim_out: output size (unused: the head's size is given by the target counts).
        dim_inner: width of the encoder.
        layer_type: message-passing layer, ``"resgatedgcnconv"`` (or ``"linear"``).
        layers_pre_mp: linear layers before message passing.
        layers_mp: message-passing layers.
        layers_post_mp: layers of each head MLP.
        num_node_targets: node-level pre-training targets.
        num_graph_targets: graph-level pre-training targets.
        stage_type: ``"skipsum"``, ``"skipconcat"`` or anything else (no skips).
        has_bn: batch norm in the encoder layers.
        head_bn: batch norm in the head MLPs.
        final_l2norm: L2-normalize the encoder output.
        has_l2norm: L2-normalize after each layer.
        dropout: dropout after each layer.
        has_act: activation after the message-passing layers.
        final_act: activation after the last pre-MP layer.
        act: activation name.
        virtual_node: the graphs carry a virtual node (last node of each graph), which the
            head removes from the node-level predictions.
        multi_head_dim_inner: width of the node-level head MLPs.
        graph_pooling: ``"add"``, ``"max"`` or ``"mean"``.
        use_repr: use the encoder output as encodings (see :meth:`from_pretrained`).
        repr_type: ``"no_post_mp"``.
        bernoulli_threshold: threshold of ``"BernoulliSE"`` random features.

    Example:
        >>> from gnn.core.data import Data
        >>> model = GPSE(dim_in=4, dim_inner=16, layers_mp=2, num_node_targets=3, num_graph_targets=2)
        >>> data = Data(x=torch.randn(5, 4), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]),
        ...             y=torch.randn(5, 3), y_graph=torch.randn(1, 2), batch=torch.zeros(5, dtype=torch.long))
        >>> pred, true = model.eval()(data)
        >>> pred.shape  # 4 real nodes + 1 graph, 3 + 2 targets
        torch.Size([5, 5])
    """

    url_dict = {
        "molpcba": "https://zenodo.org/record/8145095/files/gpse_model_molpcba_1.0.pt",
        "zinc": "https://zenodo.org/record/8145095/files/gpse_model_zinc_1.0.pt",
        "pcqm4mv2": "https://zenodo.org/record/8145095/files/gpse_model_pcqm4mv2_1.0.pt",
        "geom": "https://zenodo.org/record/8145095/files/gpse_model_geom_1.0.pt",
        "chembl": "https://zenodo.org/record/8145095/files/gpse_model_chembl_1.0.pt",
    }

    def __init__(
        self,
        dim_in: int = 20,
        dim_out: int = 51,
        dim_inner: int = 512,
        layer_type: str = "resgatedgcnconv",
        layers_pre_mp: int = 1,
        layers_mp: int = 20,
        layers_post_mp: int = 2,
        num_node_targets: int = 51,
        num_graph_targets: int = 11,
        stage_type: str = "skipsum",
        has_bn: bool = True,
        head_bn: bool = False,
        final_l2norm: bool = True,
        has_l2norm: bool = True,
        dropout: float = 0.2,
        has_act: bool = True,
        final_act: bool = True,
        act: str = "relu",
        virtual_node: bool = True,
        multi_head_dim_inner: int = 32,
        graph_pooling: str = "add",
        use_repr: bool = True,
        repr_type: str = "no_post_mp",
        bernoulli_threshold: float = 0.5,
    ) -> None:
        super().__init__()
        self.use_repr = use_repr
        self.repr_type = repr_type
        self.bernoulli_threshold = bernoulli_threshold
        if layers_pre_mp > 0:
            self.pre_mp = GeneralMultiLayer(
                name="linear",
                in_channels=dim_in,
                out_channels=dim_inner,
                hidden_channels=dim_inner,
                num_layers=layers_pre_mp,
                has_batch_norm=has_bn,
                has_l2_norm=has_l2norm,
                dropout=dropout,
                act=act,
                final_act=final_act,
            )
            dim_in = dim_inner
        if layers_mp > 0:
            self.mp = GNNStackStage(
                in_channels=dim_in,
                out_channels=dim_inner,
                num_layers=layers_mp,
                layer_type=layer_type,
                stage_type=stage_type,
                final_l2_norm=final_l2norm,
                has_batch_norm=has_bn,
                has_l2_norm=has_l2norm,
                dropout=dropout,
                act=act if has_act else None,
            )
        self.post_mp = GNNInductiveHybridMultiHead(
            dim_inner,
            dim_out,
            num_node_targets,
            num_graph_targets,
            layers_post_mp,
            virtual_node,
            multi_head_dim_inner,
            graph_pooling,
            head_bn,
            has_l2norm,
            dropout,
            act,
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Does nothing (as in PyG 2.8: the layers keep the initialization they were built with)."""

    @classmethod
    def from_pretrained(cls, name: str, root: str = "GPSE_pretrained") -> GPSE:
        r"""A :class:`GPSE` with the weights pre-trained on a dataset, in eval mode, as encoder.

        Nothing is downloaded: the checkpoint ``gpse_model_<name>_1.0.pt`` (from
        :attr:`url_dict`) must already be in ``root``. The model has the default
        arguments, the checkpoint's ``model_state`` (keys with their first component
        stripped) loaded strictly, and its head replaced by :class:`IdentityHead`.

        Args:
            name: ``"molpcba"``, ``"zinc"``, ``"pcqm4mv2"``, ``"geom"`` or ``"chembl"``.
            root: the folder holding the checkpoint.

        Raises:
            ValueError: unknown ``name``.
            FileNotFoundError: the checkpoint is not in ``root`` (the message names the
                file and where to get it).
        """
        if name not in cls.url_dict:
            raise ValueError(f"'name' must be one of {sorted(cls.url_dict)}, got {name!r}")
        url = cls.url_dict[name]
        root = osp.expanduser(osp.normpath(root))
        path = osp.join(root, url.rsplit("/", 1)[-1])
        if not osp.isfile(path):
            raise FileNotFoundError(
                f"GPSE.from_pretrained({name!r}) needs the checkpoint file {path!r}, which is not there; "
                f"gnn never downloads: fetch {url} and place it in {root!r} (or pass its folder as 'root')"
            )
        model = cls()  # every published checkpoint uses the default arguments
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state = (
            checkpoint["model_state"]
            if isinstance(checkpoint, dict) and "model_state" in checkpoint
            else None
        )
        if state is None:
            raise ValueError(f"{path!r} holds no 'model_state' entry, so it is not a GPSE checkpoint")
        model.load_state_dict(OrderedDict((key.split(".", 1)[1], value) for key, value in state.items()))
        if model.use_repr:
            if model.repr_type != "no_post_mp":
                raise ValueError(f"unsupported 'repr_type' {model.repr_type!r}; use 'no_post_mp'")
            model.post_mp = IdentityHead()
        return model.eval()

    def forward(self, batch: Any) -> Any:
        """Run every stage on a copy of ``batch`` (see the class docstring)."""
        x = _features(batch)
        if v.validation_enabled():
            if x.dim() != 2:
                raise ValueError(f"'batch.x' must be a [N, F] tensor, got {v.describe(x)}")
            if getattr(batch, "edge_index", None) is not None:
                v.check_edge_index(batch.edge_index, "batch.edge_index")
        batch = _clone_graph(batch)
        for module in self.children():
            batch = module(batch)
        return batch


class GPSENodeEncoder(torch.nn.Module):
    r"""Maps precomputed GPSE encodings to ``dim_pe_out`` features and appends them to ``x``.

    .. math::
        p = \mathrm{drop}_{ae}\big(\mathrm{Enc}(\mathrm{BN}(\mathrm{drop}_{be}(\mathrm{pe})))\big), \qquad
        \mathrm{out} = [\,x W_x^\top + b_x \;\Vert\; p\,]

    ``Enc`` is an MLP of ``n_layers`` ReLU layers (width ``2 * dim_pe_out``) or a linear
    map; :math:`W_x` (``dim_in -> dim_emb - dim_pe_out``) only with ``expand_x``, else
    ``x`` is used as it is.

    Args:
        dim_emb: size of the final node embedding (larger than ``dim_pe_out``).
        dim_pe_in: size of the GPSE encodings.
        dim_pe_out: size of the mapped encodings.
        dim_in: size of ``x`` (needed with ``expand_x``).
        expand_x: map ``x`` to ``dim_emb - dim_pe_out`` features first.
        norm_type: ``"batchnorm"`` (batch norm of the raw encodings) or anything else (none).
        model_type: ``"mlp"`` or ``"linear"``.
        n_layers: MLP layers.
        dropout_be: dropout of the encodings before the encoder.
        dropout_ae: dropout after the encoder.

    Shapes:
        ``x`` ``[N, F]``, ``pos_enc`` ``[N, dim_pe_in]`` -> ``[N, F' + dim_pe_out]``.

    Example:
        >>> enc = GPSENodeEncoder(dim_emb=16, dim_pe_in=8, dim_pe_out=6, dim_in=4, expand_x=True)
        >>> enc.eval()(torch.randn(3, 4), torch.randn(3, 8)).shape
        torch.Size([3, 16])
    """

    def __init__(
        self,
        dim_emb: int,
        dim_pe_in: int,
        dim_pe_out: int,
        dim_in: int | None = None,
        expand_x: bool = False,
        norm_type: str = "batchnorm",
        model_type: str = "mlp",
        n_layers: int = 2,
        dropout_be: float = 0.5,
        dropout_ae: float = 0.2,
    ) -> None:
        super().__init__()
        if not dim_emb > dim_pe_out:
            raise ValueError(
                f"'dim_pe_out' ({dim_pe_out}) must be smaller than the final node embedding size "
                f"'dim_emb' ({dim_emb})"
            )
        if model_type not in ("mlp", "linear"):
            raise ValueError(f"'model_type' must be 'mlp' or 'linear', got {model_type!r}")
        if expand_x:
            if dim_in is None:
                raise ValueError("'dim_in' (the size of x) is required with expand_x=True")
            self.linear_x = torch.nn.Linear(dim_in, dim_emb - dim_pe_out)
        self.expand_x = expand_x
        self.raw_norm = torch.nn.BatchNorm1d(dim_pe_in) if norm_type == "batchnorm" else None
        self.dropout_be = torch.nn.Dropout(p=dropout_be)
        self.dropout_ae = torch.nn.Dropout(p=dropout_ae)
        if model_type == "mlp":
            # one layer dim_pe_in -> dim_pe_out, or (at least two) through width 2 * dim_pe_out
            depth = 1 if n_layers == 1 else max(n_layers, 2)
            sizes = [dim_pe_in] + [2 * dim_pe_out] * (depth - 1) + [dim_pe_out]
            layers: list[torch.nn.Module] = []
            for a, b in zip(sizes[:-1], sizes[1:]):
                layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
            self.pe_encoder = torch.nn.Sequential(*layers)
        else:
            self.pe_encoder = torch.nn.Linear(dim_pe_in, dim_pe_out)

    def forward(self, x: Tensor, pos_enc: Tensor) -> Tensor:
        """Concatenate (mapped) ``x`` and the mapped encodings (see the class docstring)."""
        if v.validation_enabled():
            v.check_tensor("x", x)
            v.check_tensor("pos_enc", pos_enc)
            if pos_enc.dim() != 2 or x.dim() != 2 or pos_enc.size(0) != x.size(0):
                raise ValueError(
                    f"'x' [N, F] and 'pos_enc' [N, dim_pe_in] must be 2-D with one row per node, got "
                    f"{v.describe(x)} and {v.describe(pos_enc)}"
                )
        pos_enc = self.dropout_be(pos_enc)
        if self.raw_norm is not None:
            pos_enc = self.raw_norm(pos_enc)
        pos_enc = self.dropout_ae(self.pe_encoder(pos_enc))
        h = self.linear_x(x) if self.expand_x else x
        return torch.cat([h, pos_enc], dim=1)


# -- computing encodings with a GPSE model, and its training loss ---------------------------------
def _random_features(num_nodes: int, dim_in: int, rand_type: str, bernoulli_thresh: float) -> Tensor:
    if rand_type == "NormalSE":
        return torch.randn(num_nodes, dim_in)
    if rand_type == "UniformSE":
        return torch.rand(num_nodes, dim_in)
    if rand_type == "BernoulliSE":
        return (torch.rand(num_nodes, dim_in) < bernoulli_thresh).float()
    raise ValueError(f"'rand_type' must be 'NormalSE', 'UniformSE' or 'BernoulliSE', got {rand_type!r}")


def _input_size(model: torch.nn.Module) -> int:
    """The input feature size of a GPSE model: the width of its first weight."""
    first = next(iter(model.state_dict().values()))
    return int(first.shape[1])


def _encode(model: torch.nn.Module, data: Any, neighbor_loader: bool) -> Tensor:
    if neighbor_loader:
        raise NotImplementedError(
            "neighbor_loader=True needs PyG's NeighborLoader, which gnn does not provide; "
            "run GPSE on whole graphs (neighbor_loader=False)"
        )
    out, _ = model(data)
    return out.cpu()


@torch.no_grad()
def gpse_process(
    model: torch.nn.Module,
    data: Any,
    rand_type: str,
    use_vn: bool = True,
    bernoulli_thresh: float = 0.5,
    neighbor_loader: bool = False,
    num_neighbors: list[int] | None = None,
    fillval: int = 5,
    layers_mp: int | None = None,
    **kwargs: Any,
) -> Tensor:
    r"""GPSE encodings ``[N, dim_inner]`` of one graph (``data`` with ``edge_index`` and ``num_nodes``).

    ``data.x`` is replaced by random features of the model's input size (``rand_type``:
    ``"NormalSE"``, ``"UniformSE"`` or ``"BernoulliSE"`` below ``bernoulli_thresh``), drawn
    with torch's generator; with ``use_vn`` the graph's last node is taken to be its virtual
    node and gets zero features. Runs on the model's device.
    """
    num_nodes = int(data.num_nodes)
    device = next(model.parameters()).device
    x = _random_features(num_nodes, _input_size(model), rand_type, bernoulli_thresh)
    if use_vn and num_nodes > 0:
        x[-1] = 0.0
    data.x = x.to(device)
    return _encode(model, data, neighbor_loader)


@torch.no_grad()
def gpse_process_batch(
    model: GPSE,
    batch: Any,
    rand_type: str,
    use_vn: bool = True,
    bernoulli_thresh: float = 0.5,
    neighbor_loader: bool = False,
    num_neighbors: list[int] | None = None,
    fillval: int = 5,
    layers_mp: int | None = None,
    **kwargs: Any,
) -> tuple[Tensor, Tensor]:
    r"""GPSE encodings of a batch of graphs (with ``ptr``), as :func:`gpse_process`.

    With ``use_vn`` the last node of every graph (``ptr[1:] - 1``) is its virtual node and
    gets zero features. Returns ``(encodings [N, dim_inner], batch.ptr)``.
    """
    num_nodes = int(batch.num_nodes)
    device = next(model.parameters()).device
    x = _random_features(num_nodes, _input_size(model), rand_type, bernoulli_thresh)
    ptr = batch.ptr
    if use_vn:
        last = ptr[1:].cpu() - 1
        last = last[last >= ptr[:-1].cpu()]  # empty graphs have no virtual node
        x[last] = 0.0
    batch.x = x.to(device)
    return _encode(model, batch, neighbor_loader), ptr


def _with_virtual_node(edge_index: Tensor, num_nodes: int) -> Tensor:
    """``edge_index`` plus the edges ``i -> N`` and ``N -> i`` of a virtual node ``N`` joined to every node."""
    nodes = torch.arange(num_nodes, device=edge_index.device)
    hub = torch.full_like(nodes, num_nodes)
    return torch.cat([edge_index.long(), torch.stack([nodes, hub]), torch.stack([hub, nodes])], dim=1)


@torch.no_grad()
def precompute_GPSE(  # noqa: N802 - PyG's name
    model: GPSE, dataset: Any, use_vn: bool = True, rand_type: str = "NormalSE", **kwargs: Any
) -> list[Any]:
    r"""Compute GPSE encodings for every graph of ``dataset`` and store them as ``pestat_GPSE``
    (``[N_i, dim_inner]``) on each graph object.

    ``dataset`` is a sequence of graphs (each with ``edge_index`` and ``num_nodes``), e.g. a list
    of :class:`gnn.core.data.Data`; the graphs are processed ``batch_size`` (keyword, default 1)
    at a time. With ``use_vn`` each graph gets a virtual node joined to all its nodes for the
    computation (as the published models were trained), whose row is dropped afterwards.
    Returns the graphs (the same objects, updated in place).
    """
    from gnn.core.data import Batch, Data

    batch_size = int(kwargs.pop("batch_size", 1))
    if batch_size < 1:
        raise ValueError(f"'batch_size' must be a positive int, got {batch_size}")
    graphs = [dataset[i] for i in range(len(dataset))]
    for start in range(0, len(graphs), batch_size):
        chunk = graphs[start : start + batch_size]
        light = []
        for graph in chunk:
            n = int(graph.num_nodes)
            edge_index = graph.edge_index.cpu()
            if use_vn:
                edge_index, n = _with_virtual_node(edge_index, n), n + 1
            light.append(Data(edge_index=edge_index, num_nodes=n))
        out, ptr = gpse_process_batch(model, Batch.from_data_list(light), rand_type, use_vn=use_vn, **kwargs)
        for i, graph in enumerate(chunk):
            end = int(ptr[i + 1]) - (1 if use_vn else 0)
            graph.pestat_GPSE = out[int(ptr[i]) : end]
    return graphs


def cosim_col_sep(pred: Tensor, true: Tensor, batch_idx: Tensor) -> Tensor:
    r"""``1 -`` the mean cosine similarity, per graph and per target column, between ``pred`` and
    ``true`` (``[N, T]``, rows of graph ``batch_idx[i]``, in any order; a ``-1`` index, as the
    graph rows of :func:`process_batch_idx` carry, shifts all indices up by one). PyG 2.8 pads
    the rows in their given order and misplaces such unsorted rows; here they are grouped first. Columns whose targets
    are all zero in a graph are left out."""
    if batch_idx is None:
        raise ValueError("cosim_col_sep needs 'batch_idx' to tell the graphs apart")
    if batch_idx.numel() and int(batch_idx.min()) == -1:
        batch_idx = batch_idx + 1
    # rows grouped by graph (the graph rows of the head's output come last but carry index 0)
    order = torch.sort(batch_idx, stable=True).indices
    batch_idx = batch_idx.index_select(0, order)
    pred_dense = to_dense_batch(pred.index_select(0, order), batch_idx)[0]
    true_dense = to_dense_batch(true.index_select(0, order), batch_idx)[0]
    trivial = (true_dense == 0).all(dim=1)
    similarity = F.cosine_similarity(pred_dense, true_dense, dim=1)
    return 1 - similarity[~trivial].mean()


def gpse_loss(pred: Tensor, true: Tensor, batch_idx: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """GPSE's training loss, mean absolute error plus :func:`cosim_col_sep`; returns ``(loss, pred)``."""
    if batch_idx is None:
        raise ValueError("gpse_loss needs 'batch_idx' to tell the graphs apart")
    loss = F.l1_loss(pred, true) + cosim_col_sep(pred, true, batch_idx)
    return loss, pred


def process_batch_idx(batch_idx: Tensor | None, true: Tensor, use_vn: bool = True) -> Tensor | None:
    """The graph index of each row of the head's stacked output: the nodes' ``batch_idx``
    (without each graph's virtual node with ``use_vn``), then ``-1`` for the graph rows."""
    if batch_idx is None:
        return None
    if use_vn:
        batch_idx = batch_idx.index_select(0, _drop_last_node_per_graph(batch_idx))
    pad = true.shape[0] - batch_idx.shape[0]
    if pad > 0:
        batch_idx = torch.cat([batch_idx, batch_idx.new_full((pad,), -1)])
    return batch_idx
