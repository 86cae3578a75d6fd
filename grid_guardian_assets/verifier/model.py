"""The verifier model (a temporal graph network) and its non-graph learned baseline."""

import torch
from torch import Tensor
from torch.nn import GRU, Linear, Module, ReLU, Sequential
from torch_geometric.nn import GATConv, global_mean_pool

from grid_guardian_assets.compat.pyg_temporal import torch_geometric_temporal  # noqa: F401  (registers the shim)
from torch_geometric_temporal.nn.recurrent import TGCN


class GridVerifier(Module):
    r"""A temporal graph network that predicts the next settlement period of every bus.

    A TGCN encoder (graph convolution inside a GRU) steps through the periods; graph attention over the branches
    (GAT, with the branches' loading as edge features) refines each state. After period :math:`t` three heads
    predict period :math:`t+1`: every node feature of every bus, the national balance ratio
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

    def step(
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor, edge_loading: Tensor, batch: Tensor, hidden: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Take in one period and predict the next.

        Args:
            x: ``(M, in_channels)`` this period's inputs over ``M`` buses (several graphs as one).
            edge_index: ``(2, E)`` directed edges of the batched graph.
            edge_weight: ``(E,)`` edge weights for the graph convolution (scaled susceptance).
            edge_loading: ``(E,)`` each edge's loading in this period.
            batch: ``(M,)`` which graph each bus belongs to.
            hidden: The recurrent state after the previous period (``None`` to start).

        Returns:
            ``(M, out_channels)`` node features, ``(G,)`` balance ratio, ``(E,)`` loading, all for the next period,
            and the new recurrent state.
        """
        hidden = self.encoder(x, edge_index, edge_weight, hidden)
        attended = self.attention(hidden, edge_index, edge_loading.unsqueeze(-1)).relu()
        state = torch.cat([hidden, attended], dim=-1)
        # Residual: predict the change from this period; graph convolution alone smooths a bus into its neighbours.
        node = x[:, : self.out_channels] + self.node_head(torch.cat([state, x], dim=-1))
        balance = self.balance_head(global_mean_pool(state, batch)).squeeze(-1)
        loading = self.loading_head(torch.cat([state[edge_index[0]], state[edge_index[1]]], dim=-1)).squeeze(-1)
        return node, balance, loading, hidden

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor, edge_loading: Tensor, batch: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Run through a sequence of periods, predicting each next one.

        Args:
            x: ``(L, M, in_channels)`` ``L`` consecutive periods over ``M`` buses (several graphs as one).
            edge_index, edge_weight, batch: as in :meth:`step`.
            edge_loading: ``(L, E)`` each edge's loading per period.

        Returns:
            ``(L, M, out_channels)``, ``(L, G)`` and ``(L, E)``: entry ``t`` predicts period ``t + 1``.
        """
        hidden, nodes, balances, loadings = None, [], [], []
        for t in range(x.shape[0]):
            node, balance, loading, hidden = self.step(x[t], edge_index, edge_weight, edge_loading[t], batch, hidden)
            nodes.append(node)
            balances.append(balance)
            loadings.append(loading)
        return torch.stack(nodes), torch.stack(balances), torch.stack(loadings)

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
        """``x``: ``(L, M, in_channels)``; returns ``(L, M, out_channels)``, entry ``t`` predicting period ``t + 1``."""
        states, _ = self.gru(x)
        return x[:, :, : self.out_channels] + self.head(states)  # residual, as in GridVerifier

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, hidden_channels={self.hidden_channels})"
