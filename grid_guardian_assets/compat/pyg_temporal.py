"""Import PyTorch Geometric Temporal without torch-sparse.

torch-geometric-temporal 0.56.2 declares torch-sparse and torch-scatter, which have no wheels for torch 2.13, so it
is installed with ``--no-deps``. Its only hard import of them is ``from torch_sparse import SparseTensor`` in
``nn/recurrent/evolvegcno.py``, used as a type hint. torch_geometric ships a pure-Python ``SparseTensor`` stand-in
(``torch_geometric.typing.SparseTensor``) for exactly this case; registering it as ``torch_sparse`` before the first
import lets every recurrent model (TGCN, A3TGCN, GConvGRU, DCRNN, ...) import and run. Installed files stay as
they are. If the real torch-sparse is installed, it is used instead.

Use ``from grid_guardian_assets.compat.pyg_temporal import torch_geometric_temporal``.
"""

import importlib
import importlib.util
import sys
import types


def _register_torch_sparse_stand_in() -> None:
    if "torch_sparse" in sys.modules or importlib.util.find_spec("torch_sparse") is not None:
        return
    from torch_geometric.typing import SparseTensor

    stand_in = types.ModuleType("torch_sparse")
    stand_in.SparseTensor = SparseTensor
    stand_in.__doc__ = "Stand-in registered by grid_guardian_assets.compat.pyg_temporal (torch-sparse is not installed)."
    sys.modules["torch_sparse"] = stand_in


_register_torch_sparse_stand_in()
torch_geometric_temporal = importlib.import_module("torch_geometric_temporal")

__all__ = ["torch_geometric_temporal"]
