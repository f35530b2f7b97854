"""A sequential container for modules that take several inputs (PyG 2.8's ``Sequential``).

Each module comes with a header ``"in_1, in_2 -> out_1, out_2"`` naming the
values it reads and the values it produces; the model's own arguments are
declared by ``input_args``. Headers are parsed once, with plain string
splitting, into a list of steps that :meth:`Sequential.forward` interprets:
no code is generated or evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .inits import reset

__all__ = ["Sequential"]

_NO_DEFAULT = object()


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not nested inside brackets (``Tuple[Tensor, Tensor]``)."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    # tolerate one trailing comma, as Python does ("x, y,")
    if len(parts) > 1 and not parts[-1].strip():
        parts.pop()
    return [part.strip() for part in parts]


def _parse_name(item: str, what: str, text: str) -> str:
    """``"x"`` or ``"x: Tensor"`` -> ``"x"`` (the annotation is ignored)."""
    name = item.split(":", 1)[0].strip()
    if not name.isidentifier():
        raise ValueError(f"{what} {text!r}: {item!r} is not a valid argument name")
    return name


def _parse_names(text: str, what: str) -> tuple[str, ...]:
    if not text.strip():
        raise ValueError(f"{what} {text!r} names no arguments")
    return tuple(_parse_name(item, what, text) for item in _split_top_level(text))


def parse_input_args(input_args: str) -> tuple[tuple[str, ...], dict[str, Any]]:
    """``"x, edge_index, batch: OptTensor = None"`` -> names and ``{name: default}``.

    The only default that is understood is ``None``.
    """
    if not isinstance(input_args, str):
        raise TypeError(
            f"'input_args' must be a string like 'x, edge_index', got {type(input_args).__name__}"
        )
    what = "'input_args'"
    if not input_args.strip():
        raise ValueError(f"{what} {input_args!r} names no arguments")
    if "->" in input_args:
        raise ValueError(
            f"{what} {input_args!r} must only list the model's arguments (no '->'); "
            "headers with '->' belong to the modules"
        )
    names: list[str] = []
    defaults: dict[str, Any] = {}
    for item in _split_top_level(input_args):
        declaration, has_default, default = item.partition("=")
        name = _parse_name(declaration, what, input_args)
        if has_default:
            if default.strip() != "None":
                raise ValueError(
                    f"{what} {input_args!r}: default {default.strip()!r} of {name!r} is not supported "
                    "(only '= None' is)"
                )
            defaults[name] = None
        elif defaults:
            raise ValueError(f"{what} {input_args!r}: {name!r} without default follows an argument with one")
        if name in names:
            raise ValueError(f"{what} {input_args!r} names {name!r} twice")
        names.append(name)
    return tuple(names), defaults


def parse_header(header: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``"x, edge_index -> x"`` -> ``(("x", "edge_index"), ("x",))``."""
    if not isinstance(header, str):
        raise TypeError(f"a module header must be a string like 'x, edge_index -> x', got {header!r}")
    sides = header.split("->")
    if len(sides) != 2:
        raise ValueError(
            f"header {header!r} must have the form 'in_1, in_2 -> out_1, ...' with exactly one '->'"
        )
    inputs = _parse_names(sides[0], "header (inputs)")
    outputs = _parse_names(sides[1], "header (outputs)")
    return inputs, outputs


@dataclass(frozen=True)
class _Step:
    """One entry of the container: what it reads, what it writes, where it lives."""

    name: str  # child-module name (``module_<i>`` or the dict key)
    function: Callable[..., Any] | None  # a plain callable; ``None`` for a registered module
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


class Sequential(torch.nn.Module):
    r"""A :class:`torch.nn.Sequential` for modules with several inputs and outputs.

    ``input_args`` names the model's arguments; every entry of ``modules``
    is ``(module, "in_1, in_2 -> out_1, ...")`` or just ``module``, which then
    reads and writes the previous entry's outputs (the first entry may omit
    its header only when the model has a single argument). Entries may be
    :class:`torch.nn.Module` instances (registered as children
    ``module_0``, ``module_1``, ... or under the keys of an ``OrderedDict``)
    or plain callables (lambdas, functions; not registered).

    The model returns the last entry's outputs (a tuple when it has several).

    Args:
        input_args: the model's arguments, e.g. ``"x, edge_index, batch"``
            (``"name: Type"`` annotations are accepted and ignored;
            ``"batch=None"`` gives an optional argument).
        modules: a list of entries, or an ``OrderedDict`` of named entries.

    Example:
        >>> model = Sequential("x, edge_index", [
        ...     (GCNConv(16, 64), "x, edge_index -> x"),
        ...     torch.nn.ReLU(inplace=True),
        ...     (GCNConv(64, 64), "x, edge_index -> x"),
        ...     torch.nn.ReLU(inplace=True),
        ...     torch.nn.Linear(64, 7),
        ... ])
        >>> out = model(x, edge_index)   # [N, 7]
    """

    def __init__(self, input_args: str, modules: list[Any] | Mapping[str, Any]) -> None:
        super().__init__()
        self.input_args, self._defaults = parse_input_args(input_args)

        if isinstance(modules, Mapping):
            entries = list(modules.items())
        elif isinstance(modules, (list, tuple)):
            entries = [(f"module_{i}", entry) for i, entry in enumerate(modules)]
        else:
            raise TypeError(f"'modules' must be a list or an OrderedDict, got {type(modules).__name__}")
        if not entries:
            raise ValueError("'modules' must contain at least one module")

        known = set(self.input_args)
        steps: list[_Step] = []
        for i, (name, entry) in enumerate(entries):
            if isinstance(entry, tuple):
                if len(entry) != 2 or not isinstance(entry[1], str):
                    raise ValueError(
                        f"'modules' entry {i} must be a callable or a (callable, header) pair, got {entry!r}"
                    )
                function, header = entry
                try:
                    inputs, outputs = parse_header(header)
                except ValueError as error:
                    raise ValueError(f"'modules' entry {i}: {error}") from None
                for arg in inputs:
                    if arg not in known:
                        raise ValueError(
                            f"'modules' entry {i}: header {header!r} reads {arg!r}, which is neither "
                            f"an input argument ({', '.join(self.input_args)}) nor an output of an "
                            "earlier module"
                        )
            else:
                function = entry
                if steps:
                    inputs = outputs = steps[-1].outputs
                elif len(self.input_args) == 1:
                    inputs = outputs = self.input_args
                else:
                    raise ValueError(
                        f"'modules' entry 0 needs a header such as '{', '.join(self.input_args)} -> x', "
                        f"since 'input_args' has several arguments ({', '.join(self.input_args)})"
                    )
            if not callable(function):
                raise TypeError(f"'modules' entry {i} must be callable, got {function!r}")
            if not isinstance(name, str) or not name or "." in name:
                raise ValueError(f"'modules' key {name!r} must be a non-empty string without '.'")
            if isinstance(function, torch.nn.Module):
                if hasattr(self, name) and name not in self._modules:
                    raise ValueError(f"'modules' key {name!r} clashes with an attribute of Sequential")
                self.add_module(name, function)
                function = None
            steps.append(_Step(name, function, inputs, outputs))
            known.update(outputs)
        self._steps = steps

    # -- container protocol ---------------------------------------------------------------
    def _callable(self, step: _Step) -> Callable[..., Any]:
        return step.function if step.function is not None else self._modules[step.name]

    def __len__(self) -> int:
        return len(self._steps)

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        return (self._callable(step) for step in self._steps)

    def __getitem__(self, idx: int) -> Callable[..., Any]:
        if not isinstance(idx, int):
            raise TypeError(f"Sequential indices must be integers, got {type(idx).__name__}")
        return self._callable(self._steps[idx])

    def reset_parameters(self) -> None:
        """Reset every child module (see :func:`gnn.core.nn.inits.reset`)."""
        for step in self._steps:
            if step.function is None:
                reset(self._modules[step.name])

    # -- forward ---------------------------------------------------------------------------
    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        names = self.input_args
        if len(args) > len(names):
            raise TypeError(
                f"Sequential takes {len(names)} arguments ({', '.join(names)}) but {len(args)} were given"
            )
        values = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names:
                raise TypeError(f"Sequential got an unexpected argument {key!r}; its arguments are {names}")
            if key in values:
                raise TypeError(f"Sequential got several values for argument {key!r}")
            values[key] = value
        missing = [name for name in names if name not in values and name not in self._defaults]
        if missing:
            raise TypeError(f"Sequential is missing argument(s) {missing}; its arguments are {names}")
        for name, default in self._defaults.items():
            values.setdefault(name, default)
        return values

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the entries in order on the named values; return the last entry's outputs."""
        env = self._bind(args, kwargs)
        for i, step in enumerate(self._steps):
            out = self._callable(step)(*[env[name] for name in step.inputs])
            if len(step.outputs) == 1:
                env[step.outputs[0]] = out
                continue
            if not isinstance(out, (tuple, list)) or len(out) != len(step.outputs):
                got = f"{len(out)} values" if isinstance(out, (tuple, list)) else type(out).__name__
                raise ValueError(
                    f"module {i} of Sequential must return {len(step.outputs)} values for its header "
                    f"outputs ({', '.join(step.outputs)}), got {got}"
                )
            env.update(zip(step.outputs, out))
        last = self._steps[-1].outputs
        return env[last[0]] if len(last) == 1 else tuple(env[name] for name in last)

    def __repr__(self) -> str:
        lines = [f"{self.__class__.__name__}("]
        for i, step in enumerate(self._steps):
            header = f"{', '.join(step.inputs)} -> {', '.join(step.outputs)}"
            lines.append(f"  ({i}) - {self._callable(step)!r}: {header}")
        lines.append(")")
        return "\n".join(lines)
