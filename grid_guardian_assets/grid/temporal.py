"""PyTorch Geometric and PyG Temporal views of the network and its snapshots."""

import numpy as np
import torch
from torch_geometric.data import Data

# Through the compat module, which registers the torch_sparse stand-in before PyG Temporal's first import.
from grid_guardian_assets.compat.pyg_temporal import torch_geometric_temporal
from grid_guardian_assets.grid.network import GridNetwork
from grid_guardian_assets.grid.snapshots import EDGE_FEATURES, NODE_FEATURES, SnapshotDay

StaticGraphTemporalSignal = torch_geometric_temporal.signal.StaticGraphTemporalSignal


def undirected_edge_index(network: GridNetwork) -> torch.Tensor:
    """``(2, 2E)``: every branch in both directions (branch ``k`` is columns ``k`` and ``E + k``)."""
    forward = np.stack([network.from_bus, network.to_bus])
    return torch.as_tensor(np.concatenate([forward, forward[::-1]], axis=1), dtype=torch.long)


def topology_data(network: GridNetwork) -> Data:
    """The static graph: positions, branch parameters (r, x, b, rating) as edge attributes, bus names."""
    params = np.stack([network.r, network.x, network.b, network.rating_mva], axis=1)
    return Data(
        edge_index=undirected_edge_index(network),
        edge_attr=torch.as_tensor(np.concatenate([params, params]), dtype=torch.float32),
        pos=torch.as_tensor(network.coords, dtype=torch.float32),
        num_nodes=network.n_buses,
        bus_names=list(network.bus_names),
        edge_attr_names=["r_pu", "x_pu", "b_pu", "rating_mva"],
        network=network.name,
        geographic=network.geographic,
    )


def snapshot_data(network: GridNetwork, day: SnapshotDay, t: int) -> Data:
    """Period ``t`` of a day as a PyG ``Data``: node features, edge features (both directions), frequency."""
    edges = day.edge_features[t]
    reverse = edges * np.array([1.0, -1.0, 1.0], dtype=edges.dtype)  # flow runs the other way on the reverse edge
    return Data(
        x=torch.as_tensor(day.node_features[t]),
        edge_index=undirected_edge_index(network),
        edge_attr=torch.as_tensor(np.concatenate([edges, reverse])),
        frequency=torch.tensor([day.frequency_hz[t]], dtype=torch.float32),
        period=int(day.periods[t]),
        node_feature_names=list(NODE_FEATURES),
        edge_feature_names=list(EDGE_FEATURES),
    )


def temporal_signal(network: GridNetwork, days: list[SnapshotDay]) -> StaticGraphTemporalSignal:
    """Consecutive snapshots over ``days`` as a PyG Temporal signal: features at ``t``, targets at ``t + 1``.

    Edge weights are branch susceptances scaled to a maximum of 1. Targets are every node feature of the next
    settlement period, so a model's prediction error is a plausibility score.
    """
    if not days:
        raise ValueError("temporal_signal needs at least one day of snapshots")
    features = np.concatenate([d.node_features for d in days])
    susceptance = np.abs(days[0].edge_features[0, :, 0])
    weight = np.concatenate([susceptance, susceptance]) / susceptance.max()
    return StaticGraphTemporalSignal(
        edge_index=undirected_edge_index(network).numpy(),
        edge_weight=weight.astype(np.float32),
        features=list(features[:-1]),
        targets=list(features[1:]),
    )
