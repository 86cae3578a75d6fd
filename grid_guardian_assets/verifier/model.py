"""The verifier model (a temporal graph network) and its non-graph learned baseline."""

import torch
from torch import Tensor
from torch.nn import GRU, Linear, Module, ReLU, Sequential
from torch_geometric.nn import GATConv, global_mean_pool
from torch_geometric.nn.conv.gcn_conv import gcn_norm

# Through the compat module, which registers the torch_sparse stand-in before PyG Temporal's first import.
from grid_guardian_assets.compat.pyg_temporal import torch_geometric_temporal
from grid_guardian_assets.verifier.attention import dense_attention_supported, dense_graph_attention, small_graph
from grid_guardian_assets.verifier.sequences import batched_edge_index

TGCN = torch_geometric_temporal.nn.recurrent.TGCN


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

    def run(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor,
        edge_loading: Tensor,
        batch: Tensor,
        hidden: Tensor | None = None,
        predict_loading: bool = True,
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
        """Step through ``L`` consecutive periods from ``hidden``, predicting each next one, in one pass.

        Only the recurrence itself is sequential: the TGCN's graph convolutions read the inputs alone, so they run
        over all ``L`` periods at once, and attention and heads read each period's state, so they run over the ``L``
        periods as one batched graph. A stack of periods costs about one period's Python and kernel overhead; the
        results equal ``L`` single steps (``L = 1`` is one step).

        Args:
            x: ``(L, M, in_channels)`` ``L`` consecutive periods over ``M`` buses (several graphs as one).
            edge_index: ``(2, E)`` directed edges of the batched graph.
            edge_weight: ``(E,)`` edge weights for the graph convolution (scaled susceptance).
            edge_loading: ``(L, E)`` each edge's loading per period.
            batch: ``(M,)`` which graph each bus belongs to.
            hidden: The recurrent state after the period before the first (``None`` to start).
            predict_loading: Whether to run the loading head. Scoring reads only the node and balance predictions,
                and the loading head (a layer over every edge of every period) was about a third of a catch-up
                batch's pass.

        Returns:
            ``(L, M, out_channels)`` node features, ``(L, G)`` balance ratio and ``(L, E)`` loading (entry ``t``
            predicts period ``t + 1``; ``None`` without ``predict_loading``), and the recurrent state after the last
            period.
        """
        steps, m = x.shape[0], x.shape[1]
        size = self.hidden_channels
        encoder = self.encoder
        # TGCN's gates: sigmoid/tanh of Linear([GCN(x), h]); the GCN(x) half (and the bias) for every period first.
        # GCN(x) = Â·x·Wᵀ + b is linear in x and the three gates' convolutions share Â: propagate x once, then one
        # matmul with the three gates' weights folded together (the same function as the three GCNConv calls).
        gate_layers = ((encoder.conv_z, encoder.linear_z), (encoder.conv_r, encoder.linear_r), (encoder.conv_h, encoder.linear_h))
        conv = encoder.conv_z
        norm_index, norm_weight = gcn_norm(edge_index, edge_weight, m, conv.improved, conv.add_self_loops, conv.flow, x.dtype)
        if small_graph(m):  # Â as a matrix: one product for every period
            propagated = x.new_zeros(m, m).index_put_((norm_index[1], norm_index[0]), norm_weight, accumulate=True) @ x
        else:
            propagated = x.new_zeros(x.shape).index_add_(1, norm_index[1], x[:, norm_index[0], :] * norm_weight[None, :, None])
        weight = torch.cat([c.lin.weight.T @ lin.weight[:, :size].T for c, lin in gate_layers], dim=-1)
        bias = torch.cat([c.bias @ lin.weight[:, :size].T + lin.bias for c, lin in gate_layers])
        gates = propagated @ weight + bias
        from_x_zr, from_x_h = gates[..., : 2 * size], gates[..., 2 * size :]
        recurrent_zr = torch.cat([encoder.linear_z.weight[:, size:], encoder.linear_r.weight[:, size:]]).T
        recurrent_h = encoder.linear_h.weight[:, size:].T
        h = x.new_zeros(m, size) if hidden is None else hidden
        states = []
        # The fewest ops per step (this loop is the live path's per-period cost): each period's slices taken at once,
        # activations in place on the fresh products.
        for zr_x, h_x in zip(from_x_zr.unbind(0), from_x_h.unbind(0)):
            z, r = torch.addmm(zr_x, h, recurrent_zr).sigmoid_().split(size, dim=1)
            h = torch.lerp(torch.addmm(h_x, h * r, recurrent_h).tanh_(), h, z)  # z·h + (1 − z)·candidate
            states.append(h)
        hidden_seq = torch.stack(states)  # (L, M, H)
        # Attention and heads over the L periods as one graph of L disjoint copies (attention on a small graph as
        # one dense product per period: the same function, several times faster than PyG's gather and scatter).
        flat = hidden_seq.reshape(steps * m, size)
        if dense_attention_supported(self.attention, m):
            attended = dense_graph_attention(self.attention, hidden_seq, edge_index, edge_loading).reshape(steps * m, -1)
        else:
            attended = self.attention(flat, batched_edge_index(edge_index, m, steps), edge_loading.reshape(-1, 1))
        attended = attended.relu()
        state = torch.cat([flat, attended], dim=-1)
        flat_x = x.reshape(steps * m, -1)
        # Residual: predict the change from this period; graph convolution alone smooths a bus into its neighbours.
        node = flat_x[:, : self.out_channels] + self.node_head(torch.cat([state, flat_x], dim=-1))
        graphs = int(batch.max()) + 1
        period_batch = (batch + graphs * torch.arange(steps, device=batch.device)[:, None]).reshape(-1)
        balance = self.balance_head(global_mean_pool(state, period_batch, steps * graphs)).squeeze(-1)
        if not predict_loading:
            return node.reshape(steps, m, -1), balance.reshape(steps, graphs), None, h
        edges = batched_edge_index(edge_index, m, steps)
        loading = self.loading_head(torch.cat([state[edges[0]], state[edges[1]]], dim=-1)).squeeze(-1)
        return node.reshape(steps, m, -1), balance.reshape(steps, graphs), loading.reshape(steps, -1), h

    def step(
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor, edge_loading: Tensor, batch: Tensor, hidden: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Take in one period and predict the next: :meth:`run` over a stack of one.

        Args:
            x: ``(M, in_channels)`` this period's inputs; ``edge_loading``: ``(E,)``; the rest as in :meth:`run`.

        Returns:
            ``(M, out_channels)`` node features, ``(G,)`` balance ratio, ``(E,)`` loading, all for the next period,
            and the new recurrent state.
        """
        node, balance, loading, hidden = self.run(x[None], edge_index, edge_weight, edge_loading[None], batch, hidden)
        return node[0], balance[0], loading[0], hidden

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor, edge_loading: Tensor, batch: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Run through a sequence of periods from a fresh state, predicting each next one (see :meth:`run`).

        Returns:
            ``(L, M, out_channels)``, ``(L, G)`` and ``(L, E)``: entry ``t`` predicts period ``t + 1``.
        """
        node, balance, loading, _ = self.run(x, edge_index, edge_weight, edge_loading, batch)
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
        """``x``: ``(L, M, in_channels)``; returns ``(L, M, out_channels)``, entry ``t`` predicting period ``t + 1``."""
        states, _ = self.gru(x)
        return x[:, :, : self.out_channels] + self.head(states)  # residual, as in GridVerifier

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, hidden_channels={self.hidden_channels})"
