"""The verifier model (a temporal graph network) and its non-graph learned baseline."""

import torch
from torch import Tensor
from torch.nn import GRU, Linear, Module, ReLU, Sequential
from torch_geometric.nn import GATConv, global_mean_pool

from grid_guardian_assets.compat.pyg_temporal import torch_geometric_temporal  # noqa: F401  (registers the shim)
from torch_geometric_temporal.nn.recurrent import TGCN


class GridVerifier(Module):
    r"""A temporal graph network that predicts the next settlement period of every bus.

    A TGCN encoder (graph convolution inside a GRU) runs over a window of periods; graph attention over the
    branches (GAT, with the branches' last loading as edge features) refines the final state. Three heads predict
    period :math:`t` from periods :math:`t-W..t-1`: every node feature of every bus, the national balance ratio
    (a physics constraint: generation + imports − demand over supply) and each branch's loading. The node head
    predicts the change from the last period (a residual), from the recurrent and attended states and the bus's own
    last reading. Prediction errors are the plausibility scores.

    Args:
        in_channels: Input features per bus and period.
        out_channels: Node features predicted per bus.
        hidden_channels: Width of the recurrent state and attention.
        heads: Attention heads of the GAT layer (averaged).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 32, heads: int = 2):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.heads = heads
        self.encoder = TGCN(in_channels, hidden_channels)
        self.attention = GATConv(hidden_channels, hidden_channels, heads=heads, concat=False, edge_dim=1)
        self.node_head = Linear(2 * hidden_channels + in_channels, out_channels)
        self.balance_head = Linear(2 * hidden_channels, 1)
        self.loading_head = Sequential(Linear(4 * hidden_channels, hidden_channels), ReLU(), Linear(hidden_channels, 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in (self.encoder.conv_z, self.encoder.conv_r, self.encoder.conv_h, self.encoder.linear_z,
                       self.encoder.linear_r, self.encoder.linear_h, self.attention, self.node_head, self.balance_head):
            module.reset_parameters()
        for layer in self.loading_head:
            if isinstance(layer, Linear):
                layer.reset_parameters()

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor, edge_loading: Tensor, batch: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Predict the period after a window.

        Args:
            x: ``(W, M, in_channels)`` a window of ``W`` periods over ``M`` buses (several graphs as one).
            edge_index: ``(2, E)`` directed edges of the batched graph.
            edge_weight: ``(E,)`` edge weights for the graph convolution (scaled susceptance).
            edge_loading: ``(E,)`` each edge's loading in the window's last period.
            batch: ``(M,)`` which graph each bus belongs to.

        Returns:
            ``(M, out_channels)`` node features, ``(G,)`` balance ratio, ``(E,)`` loading, all for the next period.
        """
        hidden = None
        for step in x:
            hidden = self.encoder(step, edge_index, edge_weight, hidden)
        attended = self.attention(hidden, edge_index, edge_loading.unsqueeze(-1)).relu()
        state = torch.cat([hidden, attended], dim=-1)
        # Residual: predict the change from the last period; graph convolution alone smooths a bus into its neighbours.
        last = x[-1]
        node = last[:, : self.out_channels] + self.node_head(torch.cat([state, last], dim=-1))
        balance = self.balance_head(global_mean_pool(state, batch)).squeeze(-1)
        loading = self.loading_head(torch.cat([state[edge_index[0]], state[edge_index[1]]], dim=-1)).squeeze(-1)
        return node, balance, loading

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"hidden_channels={self.hidden_channels}, heads={self.heads})"
        )


class PerBusGRU(Module):
    r"""Non-graph learned baseline: one GRU forecaster applied to each bus on its own.

    Args:
        in_channels: Input features per bus and period.
        out_channels: Node features predicted per bus.
        hidden_channels: GRU width.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 32):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.gru = GRU(in_channels, hidden_channels)
        self.head = Linear(hidden_channels, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.gru.reset_parameters()
        self.head.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(W, M, in_channels)``; returns ``(M, out_channels)`` for the next period."""
        _, hidden = self.gru(x)
        return x[-1, :, : self.out_channels] + self.head(hidden[-1])  # residual, as in GridVerifier

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, hidden_channels={self.hidden_channels})"
