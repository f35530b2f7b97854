"""The issue-15 names of gnn-models (second half): exported lazily from gnn.models and gnn.nn, and
usable without the optional extras (captum, huggingface_hub), whose features then raise an
ImportError naming the extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import gnn.models

NAMES = [
    "Node2Vec", "MetaPath2Vec", "LightGCN", "KGEModel", "TransE", "DistMult", "ComplEx", "RotatE",
    "DataParallel", "PyGModelHubMixin", "to_captum_model", "to_captum_input", "captum_output_to_dicts",
]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_name_is_exported_from_models_and_the_facade(name):
    import gnn.nn
    from gnn.nn import _names

    assert name in gnn.models.__all__ and name in dir(gnn.models)
    assert _names.NAMES[name] == ("gnn.models", "gnn-models")
    assert getattr(gnn.nn, name) is getattr(gnn.models, name)


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="NoSuchModel"):
        gnn.models.NoSuchModel  # noqa: B018


def test_package_works_without_the_extras():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["captum"] = None
        sys.modules["huggingface_hub"] = None
        import torch
        import gnn.models as m
        from gnn.models import PyGModelHubMixin, TransE, to_captum_input, to_captum_model

        for name in m.__all__:
            getattr(m, name)
        x, ei = torch.randn(3, 2), torch.tensor([[0, 1], [1, 2]])
        inputs, extra = to_captum_input(x, ei, "edge")
        assert inputs[0].shape == (1, 2)
        from gnn.conv import GCNConv

        assert to_captum_model(GCNConv(2, 4), "node")(x.unsqueeze(0), ei).shape == (3, 4)

        class Hub(TransE, PyGModelHubMixin):
            def __init__(self, model_name, dataset_name, model_kwargs):
                TransE.__init__(self, **model_kwargs)
                PyGModelHubMixin.__init__(self, model_name, dataset_name, model_kwargs)

        for call in (lambda: Hub("a", "b", dict(num_nodes=3, num_relations=1, hidden_channels=2)),
                     lambda: Hub.from_pretrained("somewhere")):
            try:
                call()
            except ImportError as error:
                assert "gnn-models[hub]" in str(error), error
            else:
                raise AssertionError("no ImportError")
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr
