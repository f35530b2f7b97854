"""gnn-conv's entry point in group ``gnn``: registers its components lazily.

Every layer is registered as a ``"module:attr"`` string, so that discovery
imports none of them; the registry derives the name from the class name
(``GCNConv`` -> ``"gcn"``, ``APPNP`` -> ``"appnp"``).
"""

from __future__ import annotations

from collections.abc import Callable

from gnn.core.plugins import hookimpl

#: class name -> module (under ``gnn.conv``) that defines it
CONVS: dict[str, str] = {
    # the GCN family (message x_j or edge_weight * x_j)
    "SimpleConv": "simple",
    "GCNConv": "gcn",
    "ChebConv": "cheb",
    "SAGEConv": "sage",
    "GraphConv": "graph_conv",
    "TAGConv": "tag",
    "SGConv": "sg",
    "SSGConv": "ssg",
    "APPNP": "appnp",
    "ClusterGCNConv": "cluster_gcn",
    "LGConv": "lg",
    "GCN2Conv": "gcn2",
    "MixHopConv": "mixhop",
    "ARMAConv": "arma",
    "LEConv": "le",
    "GINConv": "gin",
    "GINEConv": "gin",
    "WLConv": "wl",
    "WLConvContinuous": "wl",
    # attention layers
    "GATConv": "gat",
    "GATv2Conv": "gatv2",
    "TransformerConv": "transformer",
    "AGNNConv": "agnn",
    "SuperGATConv": "supergat",
    "FAConv": "fa",
    # gated, edge-conditioned and other layers
    "ResGatedGraphConv": "res_gated",
    "GatedGraphConv": "gated_graph",
    "GeneralConv": "general",
    "EGConv": "eg",
    "PDNConv": "pdn",
    "FiLMConv": "film",
    "MFConv": "mf",
    "NNConv": "nn_conv",
    "CGConv": "cg",
    "EdgeConv": "edge_conv",
    "PNAConv": "pna",
    "GENConv": "gen",
    "PANConv": "pan",
    "SignedConv": "signed",
    "AntiSymmetricConv": "antisymmetric",
    "DirGNNConv": "dir_gnn",
    # graph transformers
    "GPSConv": "gps",
    # -- relational layers (issue 11, helper "rel") --
    "RGCNConv": "rgcn",
    "FastRGCNConv": "rgcn",
    "RGATConv": "rgat",
    "CuGraphRGCNConv": "cugraph_rgcn",
    # -- end of the relational layers --
    # -- point-cloud and geometric layers (issue 11, helper "point") --
    "GravNetConv": "gravnet",
    "DNAConv": "dna",
    "PointNetConv": "point_net",
    "PPFConv": "ppf",
    "PointTransformerConv": "point_transformer",
    "PointGNNConv": "point_gnn",
    "XConv": "x_conv",
    "DynamicEdgeConv": "dynamic_edge_conv",
    "FeaStConv": "feast",
    "GMMConv": "gmm",
    # -- end of point-cloud and geometric layers --
    # -- issue 11 (part 2, helper "spline"): spline, hypergraph, mesh, fused and CuGraph layers --
    "SplineConv": "spline",
    "HypergraphConv": "hypergraph",
    "MeshCNNConv": "mesh_cnn",
    "FusedGATConv": "fused_gat",
    "CuGraphSAGEConv": "cugraph",
    "CuGraphGATConv": "cugraph",
    # -- end of the "spline" block --
}


#: normalization layer -> module (under ``gnn.conv``) that defines it; registered in the
#: ``norms`` registry, whose names drop the suffix "norm" (``GraphNorm`` -> ``"graph"``, so
#: ``"graph_norm"``, ``"GraphNorm"`` and ``"graphnorm"`` all resolve to it)
NORMS: dict[str, str] = {
    "BatchNorm": "norm.batch_norm",
    "InstanceNorm": "norm.instance_norm",
    "LayerNorm": "norm.layer_norm",
    "GraphNorm": "norm.graph_norm",
    "GraphSizeNorm": "norm.graph_size_norm",
    "PairNorm": "norm.pair_norm",
    "MeanSubtractionNorm": "norm.mean_subtraction_norm",
    "MessageNorm": "norm.msg_norm",
    "DiffGroupNorm": "norm.diff_group_norm",
}


@hookimpl
def gnn_register_convs(register: Callable[..., None]) -> None:
    for name, module in CONVS.items():
        register(f"gnn.conv.{module}:{name}")


@hookimpl
def gnn_register_norms(register: Callable[..., None]) -> None:
    for name, module in NORMS.items():
        register(f"gnn.conv.{module}:{name}")
