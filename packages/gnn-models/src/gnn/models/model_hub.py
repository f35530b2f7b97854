"""Saving and loading models through the Hugging Face hub (PyG 2.8's ``PyGModelHubMixin``).

A directory written by :meth:`PyGModelHubMixin.save_pretrained` has PyG's layout:
``config.json`` (the JSON-typed model arguments), ``model.pth`` (the state dict)
and ``README.md`` (a model card), so a directory saved by PyG's mixin loads into
a gnn model and the other way round. Needs ``huggingface_hub``
(``pip install gnn-models[hub]``); importing this module works without it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

CONFIG_NAME = "config.json"
MODEL_HUB_ORGANIZATION = "pytorch_geometric"
MODEL_WEIGHTS_NAME = "model.pth"
TAGS = ["graph-machine-learning"]

_MISSING = "PyGModelHubMixin needs huggingface_hub: install it with `pip install gnn-models[hub]`"

try:
    from huggingface_hub import ModelHubMixin as _HubBase
except ImportError:  # the mixin stays importable; using it raises

    class _HubBase:  # type: ignore[no-redef]
        """Stand-in for ``huggingface_hub.ModelHubMixin`` when huggingface_hub is not installed."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ImportError(_MISSING)

        def save_pretrained(self, *args: Any, **kwargs: Any) -> Any:
            raise ImportError(_MISSING)

        @classmethod
        def from_pretrained(cls, *args: Any, **kwargs: Any) -> Any:
            raise ImportError(_MISSING)

    _HAVE_HUB = False
else:
    _HAVE_HUB = True


def _hub() -> Any:
    if not _HAVE_HUB:
        raise ImportError(_MISSING)
    import huggingface_hub

    return huggingface_hub


class PyGModelHubMixin(_HubBase):
    r"""A mixin that saves a model to, and loads it from, a local directory or the Hugging Face hub.

    Mix it into a model class whose ``__init__`` takes ``(model_name, dataset_name,
    model_kwargs)``::

        class N2V(Node2Vec, PyGModelHubMixin):
            def __init__(self, model_name, dataset_name, model_kwargs):
                Node2Vec.__init__(self, **model_kwargs)
                PyGModelHubMixin.__init__(self, model_name, dataset_name, model_kwargs)

        model = N2V("node2vec", "Cora", dict(edge_index=edge_index, embedding_dim=128, ...))
        model.save_pretrained("n2v")  # config.json, model.pth, README.md
        model = N2V.from_pretrained("n2v", model_name="node2vec", dataset_name="Cora",
                                    edge_index=edge_index)

    Only the arguments of type ``str``, ``int`` and ``float`` are stored in
    ``config.json``; pass the others (tensors, ...) to :meth:`from_pretrained`.

    Args:
        model_name: name of the model (for the model card).
        dataset_name: name of the dataset the model was trained on (for the model card).
        model_kwargs: the arguments that build the model.
    """

    def __init__(self, model_name: str, dataset_name: str, model_kwargs: dict) -> None:
        _hub()
        _HubBase.__init__(self)
        if not isinstance(model_kwargs, dict):
            raise TypeError(f"'model_kwargs' must be a dict, got {type(model_kwargs).__name__}")
        self.model_config = {k: v for k, v in model_kwargs.items() if type(v) in (str, int, float)}
        self.model_name = model_name
        self.dataset_name = dataset_name

    def construct_model_card(self, model_name: str, dataset_name: str) -> Any:
        """The model card: PyG's card data (library ``pytorch_geometric``, the dataset, the tags)."""
        hub = _hub()
        card_data = hub.ModelCardData(
            language="en",
            license="mit",
            library_name=MODEL_HUB_ORGANIZATION,
            tags=TAGS,
            datasets=dataset_name,
            model_name=model_name,
        )
        return hub.ModelCard.from_template(card_data)

    def _save_pretrained(self, save_directory: str | Path) -> None:
        module = self.module if hasattr(self, "module") else self  # a wrapped model saves its module
        torch.save(module.state_dict(), os.path.join(save_directory, MODEL_WEIGHTS_NAME))

    def save_pretrained(
        self,
        save_directory: str | Path,
        push_to_hub: bool = False,
        repo_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Write ``config.json``, ``model.pth`` and ``README.md`` to ``save_directory`` (and push
        them to the hub repository ``repo_id`` with ``push_to_hub=True``).

        Args:
            save_directory: the directory.
            push_to_hub: also upload to the hub.
            repo_id: the hub repository (default: the directory's name in your namespace).
            **kwargs: passed to ``huggingface_hub.ModelHubMixin.save_pretrained``.
        """
        _hub()
        kwargs.pop("config", None)
        out = super().save_pretrained(
            save_directory=save_directory,
            config=self.model_config,
            push_to_hub=push_to_hub,
            repo_id=repo_id,
            **kwargs,
        )
        card = self.construct_model_card(self.model_name, self.dataset_name)
        card.save(os.path.join(save_directory, "README.md"))
        if push_to_hub:
            card.push_to_hub(repo_id)
        return out

    @classmethod
    def _from_pretrained(
        cls,
        model_id: str,
        revision: str | None,
        cache_dir: str | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        proxies: dict | None = None,
        resume_download: bool = False,
        dataset_name: str = "",
        model_name: str = "",
        map_location: str = "cpu",
        strict: bool = False,
        **model_kwargs: Any,
    ) -> Any:
        def fetch(name: str) -> str | None:
            if os.path.isdir(model_id):
                path = os.path.join(model_id, name)
                return path if os.path.exists(path) else None
            hub = _hub()
            try:
                return hub.hf_hub_download(
                    repo_id=model_id,
                    filename=name,
                    revision=revision,
                    cache_dir=cache_dir,
                    force_download=force_download,
                    token=token,
                    local_files_only=local_files_only,
                )
            except hub.errors.EntryNotFoundError:
                if name == MODEL_WEIGHTS_NAME:
                    raise
                return None

        weights = fetch(MODEL_WEIGHTS_NAME)
        if weights is None:
            raise FileNotFoundError(f"no {MODEL_WEIGHTS_NAME} in {model_id!r}")
        config = model_kwargs.pop("config", None)
        if config is None:  # huggingface_hub passes it only to classes that take a `config` argument
            path = fetch(CONFIG_NAME)
            config = json.loads(Path(path).read_text()) if path is not None else {}
        model = cls(model_name, dataset_name, {**model_kwargs, **config})
        state_dict = torch.load(weights, map_location=torch.device(map_location), weights_only=True)
        model.load_state_dict(state_dict, strict=strict)
        model.eval()
        return model

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | None = None,
        local_files_only: bool = False,
        **model_kwargs: Any,
    ) -> Any:
        """Build the model and load its weights from a hub repository or a local directory.

        Args:
            pretrained_model_name_or_path: a hub model id (``user/name``, ``@revision``
                appended for a revision) or a directory of :meth:`save_pretrained`.
            force_download: download again even if cached.
            token: the hub token (for private repositories).
            cache_dir: where downloads are cached.
            local_files_only: never download.
            **model_kwargs: ``model_name``, ``dataset_name``, ``map_location`` (default
                ``"cpu"``), ``strict`` (default ``False``) and the model arguments that
                ``config.json`` lacks.
        """
        _hub()
        return super().from_pretrained(
            pretrained_model_name_or_path,
            force_download=force_download,
            token=token,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            **model_kwargs,
        )
