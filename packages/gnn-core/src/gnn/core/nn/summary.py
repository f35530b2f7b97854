"""A table of a model's layers, their input/output shapes and parameter counts.

:func:`summary` runs the model once (``eval`` mode, no gradients), records
each submodule's positional inputs and its output with forward hooks, and
draws::

    +---------------------+---------------------+--------------+--------+
    | Layer               | Input Shape         | Output Shape | #Param |
    |---------------------+---------------------+--------------+--------|
    | GCN                 | [100, 128], [2, 20] | [100, 32]    | 10,336 |
    | ├─(act)ReLU         | [100, 64]           | [100, 64]    | --     |
    | ├─(convs)ModuleList | --                  | --           | 10,336 |
    | │    └─(0)GCNConv   | [100, 128], [2, 20] | [100, 64]    | 8,256  |
    | │    └─(1)GCNConv   | [100, 64], [2, 20]  | [100, 32]    | 2,080  |
    +---------------------+---------------------+--------------+--------+
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch.nn.parameter import is_lazy

__all__ = ["summary"]

HEADERS = ("Layer", "Input Shape", "Output Shape", "#Param")
NOT_CALLED = "--"


def _shape(value: Any) -> str:
    return str(list(value.shape))


def _input_shapes(args: tuple[Any, ...]) -> str:
    """Shapes of the tensors among the positional arguments (others are left out)."""
    return ", ".join(_shape(arg) for arg in args if isinstance(arg, torch.Tensor))


def _output_shapes(out: Any) -> str:
    """Shape of a tensor output, or of the tensors directly inside a tuple/list output."""
    if isinstance(out, torch.Tensor):
        return _shape(out)
    if isinstance(out, (tuple, list)):
        return ", ".join(_shape(item) for item in out if isinstance(item, torch.Tensor))
    return ""


def _num_params(module: torch.nn.Module) -> str:
    """``"1,234"``; ``"--"`` for none; ``"-1"`` while a parameter is still lazy."""
    total = 0
    for param in module.parameters():
        if is_lazy(param):
            return "-1"
        total += param.numel()
    return f"{total:,}" if total > 0 else NOT_CALLED


def _leaf_types(leaf_module: Any) -> tuple[type, ...]:
    if leaf_module is None:
        return ()
    if isinstance(leaf_module, str):
        if leaf_module != "MessagePassing":
            raise ValueError(
                f"'leaf_module' must be a module class, a list of classes, None or 'MessagePassing', "
                f"got {leaf_module!r}"
            )
        from ..message_passing import MessagePassing

        return (MessagePassing,)
    types = tuple(leaf_module) if isinstance(leaf_module, (list, tuple)) else (leaf_module,)
    for item in types:
        if not isinstance(item, type):
            raise TypeError(f"'leaf_module' must contain module classes, got {item!r}")
    return types


def _is_leaf(module: torch.nn.Module, leaf_types: tuple[type, ...], message_passing_leaf: bool) -> bool:
    if leaf_types and isinstance(module, leaf_types):
        return True
    # objects that look like a MessagePassing of another library (e.g. PyG's) count as one
    return message_passing_leaf and any(cls.__name__ == "MessagePassing" for cls in type(module).__mro__)


def _rows(
    model: torch.nn.Module, max_depth: int, leaf_types: tuple[type, ...], message_passing_leaf: bool
) -> list[tuple[str, torch.nn.Module, int]]:
    """``(label, module, depth)`` in registration order, depth-first; a shared module
    appears once per name it is registered under."""
    rows: list[tuple[str, torch.nn.Module, int]] = []

    def visit(name: str | None, module: torch.nn.Module, depth: int) -> None:
        if depth > max_depth:
            return
        label = type(module).__name__ if name is None else f"({name}){type(module).__name__}"
        if depth == 1:
            label = "├─" + label
        elif depth > 1:
            label = "│    " * (depth - 1) + "└─" + label
        rows.append((label, module, depth))
        if _is_leaf(module, leaf_types, message_passing_leaf):
            return
        for child_name, child in module._modules.items():  # shared children once per name
            if child is not None:
                visit(child_name, child, depth + 1)

    visit(None, model, 0)
    return rows


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    widths = [max(len(row[col]) for row in [HEADERS, *rows]) for col in range(len(HEADERS))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |"

    border = "+" + "+".join("-" * (width + 2) for width in widths) + "+"
    separator = "|" + "+".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([border, line(HEADERS), separator, *(line(row) for row in rows), border])


def summary(
    model: torch.nn.Module,
    *args: Any,
    max_depth: int = 3,
    leaf_module: Any = "MessagePassing",
    **kwargs: Any,
) -> str:
    """Summarize ``model``: layer names, input and output shapes, number of parameters.

    The model is called once as ``model(*args, **kwargs)`` in eval mode
    without gradients (its training mode is restored afterwards). Shapes are
    those of the tensors among a layer's *positional* inputs and of its
    output (or the tensors in its output tuple/list), from its first call;
    a module registered under several names shows its successive calls.
    Layers that did not run show ``--``. ``#Param`` counts all parameters of
    the layer and its children (``--`` for none, ``-1`` if some stay lazy).

    Args:
        model: the module to summarize.
        *args: positional arguments of ``model``.
        max_depth: deepest nesting level shown (the model itself is level 0).
        leaf_module: module class(es) whose children are not shown; the
            default ``"MessagePassing"`` stands for
            :class:`gnn.core.MessagePassing` (and look-alikes of other
            libraries); ``None`` shows everything.
        **kwargs: keyword arguments of ``model``.

    Returns:
        The table as a string (see the module docstring for the layout).

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU())
        >>> print(summary(model, torch.randn(10, 4)))
        +-------------+-------------+--------------+--------+
        | Layer       | Input Shape | Output Shape | #Param |
        |-------------+-------------+--------------+--------|
        | Sequential  | [10, 4]     | [10, 8]      | 40     |
        | ├─(0)Linear | [10, 4]     | [10, 8]      | 40     |
        | ├─(1)ReLU   | [10, 8]     | [10, 8]      | --     |
        +-------------+-------------+--------------+--------+
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"'model' must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(max_depth, int) or isinstance(max_depth, bool) or max_depth < 0:
        raise ValueError(f"'max_depth' must be a non-negative int, got {max_depth!r}")
    leaf_types = _leaf_types(leaf_module)
    message_passing_leaf = isinstance(leaf_module, str)
    rows = _rows(model, max_depth, leaf_types, message_passing_leaf)

    calls: dict[int, list[tuple[str, str]]] = defaultdict(list)

    def record(module: torch.nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        calls[id(module)].append((_input_shapes(inputs), _output_shapes(output)))

    handles = []
    seen: set[int] = set()
    for _, module, _ in rows:
        if id(module) not in seen:
            seen.add(id(module))
            handles.append(module.register_forward_hook(record))

    modes = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training

    table: list[tuple[str, str, str, str]] = []
    used: dict[int, int] = defaultdict(int)
    for label, module, _ in rows:
        records = calls.get(id(module), [])
        k = used[id(module)]
        used[id(module)] += 1
        in_shape, out_shape = records[k] if k < len(records) else (NOT_CALLED, NOT_CALLED)
        table.append((label, in_shape, out_shape, _num_params(module)))
    return _table(table)
