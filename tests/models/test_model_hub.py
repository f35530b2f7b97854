"""PyGModelHubMixin: save_pretrained / from_pretrained round trips, with PyG's mixin both ways
(local directories only: push_to_hub is checked to be passed through, never run)."""

from __future__ import annotations

import argparse
import inspect
import json
import os

import pytest
import torch

from gnn.models import LightGCN, PyGModelHubMixin, TransE

hub = pytest.importorskip("huggingface_hub")


class TransEHub(TransE, PyGModelHubMixin):
    def __init__(self, model_name, dataset_name, model_kwargs):
        TransE.__init__(self, **model_kwargs)
        PyGModelHubMixin.__init__(self, model_name, dataset_name, model_kwargs)


class LightGCNHub(LightGCN, PyGModelHubMixin):
    def __init__(self, model_name, dataset_name, model_kwargs):
        LightGCN.__init__(self, **model_kwargs)
        PyGModelHubMixin.__init__(self, model_name, dataset_name, model_kwargs)


KWARGS = dict(num_nodes=30, num_relations=4, hidden_channels=8, margin=2.0, sparse=False)


def test_signatures_match_pyg():
    pytest.importorskip("torch_geometric")
    from torch_geometric.nn.model_hub import PyGModelHubMixin as Theirs

    for name in (
        "__init__",
        "save_pretrained",
        "from_pretrained",
        "_from_pretrained",
        "construct_model_card",
    ):
        ours, theirs = (
            inspect.signature(getattr(PyGModelHubMixin, name)),
            inspect.signature(getattr(Theirs, name)),
        )
        assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
            (p.name, p.kind, p.default) for p in theirs.parameters.values()
        ], name


def test_round_trip(tmp_path):
    torch.manual_seed(0)
    model = TransEHub("transe", "FB15k", dict(KWARGS))
    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["README.md", "config.json", "model.pth"]
    assert json.loads((tmp_path / "config.json").read_text()) == {
        "num_nodes": 30,
        "num_relations": 4,
        "hidden_channels": 8,
        "margin": 2.0,
    }  # fmt: skip  (bools are not stored, as in PyG)
    card = (tmp_path / "README.md").read_text()
    assert "library_name: pytorch_geometric" in card and "FB15k" in card and "graph-machine-learning" in card
    loaded = TransEHub.from_pretrained(str(tmp_path), model_name="transe", dataset_name="FB15k")
    assert not loaded.training and loaded.model_name == "transe" and loaded.dataset_name == "FB15k"
    assert loaded.margin == 2.0
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    # arguments config.json lacks are given at load time and win over nothing
    loaded = TransEHub.from_pretrained(str(tmp_path), model_name="m", dataset_name="d", p_norm=2.0)
    assert loaded.p_norm == 2.0


def test_weights_are_loaded_with_weights_only(tmp_path):
    model = TransEHub("transe", "FB15k", dict(KWARGS))
    model.save_pretrained(tmp_path)
    state = model.state_dict()
    state["extra"] = argparse.Namespace(a=1)  # a class the weights-only unpickler refuses
    torch.save(state, tmp_path / "model.pth")
    with pytest.raises(Exception, match="(?i)weights.only|unpickl|global"):
        TransEHub.from_pretrained(str(tmp_path), model_name="m", dataset_name="d")


def test_pyg_directory_loads_into_ours_and_ours_into_pygs(tmp_path):
    pyg = pytest.importorskip("torch_geometric.nn")
    from torch_geometric.nn.model_hub import PyGModelHubMixin as Theirs

    class PyGLightGCNHub(pyg.LightGCN, Theirs):
        def __init__(self, model_name, dataset_name, model_kwargs):
            pyg.LightGCN.__init__(self, **model_kwargs)
            Theirs.__init__(self, model_name, dataset_name, model_kwargs)

    kwargs = dict(num_nodes=20, embedding_dim=6, num_layers=2, alpha=0.4)
    torch.manual_seed(0)
    theirs = PyGLightGCNHub("lightgcn", "MovieLens", kwargs)
    theirs.save_pretrained(tmp_path / "pyg")
    ours = LightGCNHub.from_pretrained(str(tmp_path / "pyg"), model_name="lightgcn", dataset_name="MovieLens")
    ei = torch.tensor([[0, 1, 2, 3, 4], [10, 11, 12, 13, 19]])
    torch.testing.assert_close(ours(ei), theirs(ei))
    torch.testing.assert_close(ours.alpha, theirs.alpha)

    ours.save_pretrained(tmp_path / "ours")
    assert sorted(os.listdir(tmp_path / "ours")) == sorted(os.listdir(tmp_path / "pyg"))
    # PyG 2.8's from_pretrained passes `use_auth_token`, which huggingface_hub >= 1 hands on to
    # the model's __init__; its loader proper (_from_pretrained) reads the directory
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    back = PyGLightGCNHub._from_pretrained(
        model_id=str(tmp_path / "ours"), revision=None, cache_dir=None, force_download=False,
        local_files_only=True, token=None, config=config,
    )  # fmt: skip
    torch.testing.assert_close(back(ei), ours(ei))


def test_push_to_hub_is_passed_through(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(
        hub.ModelHubMixin, "push_to_hub", lambda self, repo_id, **kw: calls.append(("model", repo_id, kw))
    )
    monkeypatch.setattr(
        hub.ModelCard, "push_to_hub", lambda self, repo_id, **kw: calls.append(("card", repo_id))
    )
    model = TransEHub("transe", "FB15k", dict(KWARGS))
    model.save_pretrained(tmp_path, push_to_hub=True, repo_id="someone/transe", commit_message="hi")
    assert [c[:2] for c in calls] == [("model", "someone/transe"), ("card", "someone/transe")]
    assert calls[0][2]["commit_message"] == "hi" and calls[0][2]["config"] == model.model_config


def test_bad_model_kwargs():
    with pytest.raises(TypeError, match="model_kwargs"):
        PyGModelHubMixin("m", "d", [1, 2])
