"""Dense building blocks of gnn-core: :class:`Linear`, :class:`HeteroLinear`,
:class:`HeteroDictLinear`, :class:`Sequential`, :func:`summary` and the
parameter initializers in :mod:`gnn.core.nn.inits`.

``summary`` is imported eagerly so that the name always means the function,
never the submodule of the same name.
"""

from . import inits
from .hetero_linear import HeteroDictLinear, HeteroLinear
from .linear import Linear
from .sequential import Sequential
from .summary import summary

__all__ = ["HeteroDictLinear", "HeteroLinear", "Linear", "Sequential", "inits", "summary"]
