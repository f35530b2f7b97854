"""gnn-models: ready-made models of gnn (PyG 2.8's ``torch_geometric.nn.models`` API).

Every public name is imported on first access (PEP 562), so ``import
gnn.models`` is cheap::

    >>> from gnn.models import GCN
    >>> model = GCN(16, 32, num_layers=2, out_channels=7, jk="cat")

Beyond PyG, :class:`GNN` builds the same model over any convolution the
conv registry resolves by name (``GNN("sage", 16, 32, 2)``, or a plugin's
``GNN("hiddenmean", 16, 32, 2)``).

The optional extras are imported only by the functions that need them:
``captum`` (``pip install gnn-models[captum]``) and ``huggingface_hub``
(``pip install gnn-models[hub]``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module (relative to gnn.models, or absolute) that defines it
_EXPORTS: dict[str, str] = {}

# -- part 1 of issue 15: basic GNNs, building blocks, autoencoders, propagation, encodings --
_EXPORTS.update(
    {
        "MLP": "gnn.core.nn.mlp",
        "BasicGNN": ".basic_gnn",
        "GCN": ".basic_gnn",
        "GraphSAGE": ".basic_gnn",
        "GIN": ".basic_gnn",
        "GAT": ".basic_gnn",
        "PNA": ".basic_gnn",
        "EdgeCNN": ".basic_gnn",
        "GNN": ".basic_gnn",
        "JumpingKnowledge": ".jumping_knowledge",
        "MetaLayer": ".meta",
        "DeepGCNLayer": ".deepgcn",
        "GraphUNet": ".graph_unet",
        "GroupAddRev": ".rev_gnn",
        "MaskLabel": ".mask_label",
        "InnerProductDecoder": ".autoencoder",
        "GAE": ".autoencoder",
        "VGAE": ".autoencoder",
        "ARGA": ".autoencoder",
        "ARGVA": ".autoencoder",
        "DeepGraphInfomax": ".deep_graph_infomax",
        "SignedGCN": ".signed_gcn",
        "LabelPropagation": ".label_prop",
        "CorrectAndSmooth": ".correct_and_smooth",
        "LINKX": ".linkx",
        "PMLP": ".pmlp",
        "RECT_L": ".rect",
        "PositionalEncoding": ".encoding",
        "TemporalEncoding": ".encoding",
        "bro": ".functional",
        "gini": ".functional",
    }
)


# -- embeddings, KGE, scale-out and ecosystem bridges (issue 15, second half) --------------------
_EXPORTS.update(
    {
        "Node2Vec": ".node2vec",
        "MetaPath2Vec": ".metapath2vec",
        "LightGCN": ".lightgcn",
        "KGEModel": ".kge",
        "TransE": ".kge",
        "DistMult": ".kge",
        "ComplEx": ".kge",
        "RotatE": ".kge",
        "DataParallel": ".data_parallel",
        "PyGModelHubMixin": ".model_hub",
        "to_captum_model": ".captum",
        "to_captum_input": ".captum",
        "captum_output_to_dicts": ".captum",
    }
)

# -- issue 16 (part 2): molecular fingerprints and temporal models --------------------------------
_EXPORTS.update(
    {
        "AttentiveFP": ".attentive_fp",
        "NeuralFingerprint": ".neural_fingerprint",
        "RENet": ".renet",
        "TGNMemory": ".tgn",
    }
)

# -- graph transformers and link predictors (issue 16, part 2: GPSE, SGFormer, Polynormer, LPFormer) --
_EXPORTS.update(
    {
        "GPSE": ".gpse",
        "GPSENodeEncoder": ".gpse",
        "SGFormer": ".sgformer",
        "Polynormer": ".polynormer",
        "LPFormer": ".lpformer",
        "ARLinkPredictor": ".attract_repel",
    }
)

# -- issue 16 (part 2): equivariant / direct-force molecular models -------------------------------
_EXPORTS.update(
    {
        "ViSNet": ".visnet",
        "GNNFF": ".gnnff",
    }
)

# -- issue 16: molecular 3-D models (SchNet, DimeNet, DimeNet++) --------------------------------
_EXPORTS.update(
    {
        "SchNet": ".schnet",
        "DimeNet": ".dimenet",
        "DimeNetPlusPlus": ".dimenet",
    }
)

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from gnn.core.nn.mlp import MLP  # noqa: F401

    from .attentive_fp import AttentiveFP  # noqa: F401
    from .attract_repel import ARLinkPredictor  # noqa: F401
    from .autoencoder import ARGA, ARGVA, GAE, VGAE, InnerProductDecoder  # noqa: F401
    from .basic_gnn import GAT, GCN, GIN, GNN, PNA, BasicGNN, EdgeCNN, GraphSAGE  # noqa: F401
    from .captum import captum_output_to_dicts, to_captum_input, to_captum_model  # noqa: F401
    from .correct_and_smooth import CorrectAndSmooth  # noqa: F401
    from .data_parallel import DataParallel  # noqa: F401
    from .deep_graph_infomax import DeepGraphInfomax  # noqa: F401
    from .deepgcn import DeepGCNLayer  # noqa: F401
    from .dimenet import DimeNet, DimeNetPlusPlus  # noqa: F401
    from .encoding import PositionalEncoding, TemporalEncoding  # noqa: F401
    from .functional import bro, gini  # noqa: F401
    from .gnnff import GNNFF  # noqa: F401
    from .gpse import GPSE, GPSENodeEncoder  # noqa: F401
    from .graph_unet import GraphUNet  # noqa: F401
    from .jumping_knowledge import JumpingKnowledge  # noqa: F401
    from .kge import ComplEx, DistMult, KGEModel, RotatE, TransE  # noqa: F401
    from .label_prop import LabelPropagation  # noqa: F401
    from .lightgcn import LightGCN  # noqa: F401
    from .linkx import LINKX  # noqa: F401
    from .lpformer import LPFormer  # noqa: F401
    from .mask_label import MaskLabel  # noqa: F401
    from .meta import MetaLayer  # noqa: F401
    from .metapath2vec import MetaPath2Vec  # noqa: F401
    from .model_hub import PyGModelHubMixin  # noqa: F401
    from .neural_fingerprint import NeuralFingerprint  # noqa: F401
    from .node2vec import Node2Vec  # noqa: F401
    from .pmlp import PMLP  # noqa: F401
    from .polynormer import Polynormer  # noqa: F401
    from .rect import RECT_L  # noqa: F401
    from .renet import RENet  # noqa: F401
    from .rev_gnn import GroupAddRev  # noqa: F401
    from .schnet import SchNet  # noqa: F401
    from .sgformer import SGFormer  # noqa: F401
    from .signed_gcn import SignedGCN  # noqa: F401
    from .tgn import TGNMemory  # noqa: F401
    from .visnet import ViSNet  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gnn.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
