"""PyG Temporal's recurrent models import and run through the torch-sparse stand-in."""

import sys

import pytest
import torch

from grid_guardian_assets.compat.pyg_temporal import torch_geometric_temporal


def test_stand_in_is_registered_without_touching_installed_files() -> None:
    assert "torch_sparse" in sys.modules
    assert torch_geometric_temporal.__name__ == "torch_geometric_temporal"


@pytest.mark.parametrize("name, kwargs", [("TGCN", {}), ("GConvGRU", {"K": 2}), ("DCRNN", {"K": 2}), ("GConvLSTM", {"K": 2})])
def test_recurrent_models_run_on_a_tiny_graph(name: str, kwargs: dict) -> None:
    from torch_geometric_temporal.nn import recurrent

    torch.manual_seed(0)
    model = getattr(recurrent, name)(3, 8, **kwargs)
    x = torch.randn(4, 3)
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    out = model(x, edge_index, torch.ones(4))
    out = out[0] if isinstance(out, tuple) else out
    assert out.shape == (4, 8) and torch.isfinite(out).all()


def test_a3tgcn_attends_over_periods() -> None:
    from torch_geometric_temporal.nn.recurrent import A3TGCN

    out = A3TGCN(3, 8, periods=5)(torch.randn(4, 3, 5), torch.tensor([[0, 1, 2], [1, 2, 3]]), torch.ones(3))
    assert out.shape == (4, 8)
