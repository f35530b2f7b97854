"""gnn-hetero's entry point in group ``gnn``: registers its components lazily."""

from __future__ import annotations
