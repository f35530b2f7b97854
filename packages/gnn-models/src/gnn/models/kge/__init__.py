"""Knowledge-graph embedding models: :class:`KGEModel` and TransE, DistMult, ComplEx, RotatE."""

from __future__ import annotations

from .base import KGEModel
from .complex import ComplEx
from .distmult import DistMult
from .loader import KGTripletLoader
from .rotate import RotatE
from .transe import TransE

__all__ = ["KGEModel", "TransE", "DistMult", "ComplEx", "RotatE", "KGTripletLoader"]
