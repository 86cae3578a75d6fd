"""The static graph tensors a model needs, from a network."""

from dataclasses import dataclass

import numpy as np
import torch

from grid_guardian_assets.grid.network import GridNetwork
from grid_guardian_assets.grid.temporal import undirected_edge_index


@dataclass(frozen=True)
class GraphTensors:
    """Edge index (both directions) and normalised susceptance weights of a network, on one device."""

    num_nodes: int
    edge_index: torch.Tensor  # (2, 2E)
    edge_weight: torch.Tensor  # (2E,)

    @classmethod
    def of(cls, network: GridNetwork, device: str | torch.device = "cpu") -> "GraphTensors":
        susceptance = 1.0 / network.x
        weight = np.concatenate([susceptance, susceptance]) / susceptance.max()
        return cls(
            num_nodes=network.n_buses,
            edge_index=undirected_edge_index(network).to(device),
            edge_weight=torch.as_tensor(weight, dtype=torch.float32, device=device),
        )
