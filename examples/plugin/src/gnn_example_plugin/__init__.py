"""gnn-example-plugin: a third-party plugin for gnn (see the README)."""

__version__ = "0.1.0"
