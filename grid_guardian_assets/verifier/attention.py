"""Graph attention over a stack of periods of one small graph, as one dense product per period and head.

``GridVerifier`` attends over ``L`` periods as ``L`` disjoint copies of the grid (PyG's batching). PyG's ``GATConv``
then gathers, weights and scatters a ``(L·E, heads, channels)`` tensor: on the live path's catch-up batches
(hundreds of periods of a 29-bus grid) those three memory-bound passes were most of the model's time. On a graph this
small the same attention is a ``(heads, M, M)`` matrix per period: the softmax runs over the ``(L, E, heads)``
logits, the weights are added into the matrix and one batched matrix product aggregates. The function is
``GATConv``'s own (self-loops with the mean incoming edge feature, leaky ReLU, softmax per target, heads
averaged, bias), read from the layer's parameters; a test holds it equal to ``GATConv`` on graphs with parallel
edges.
"""

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import GATConv

# Largest graph (buses in one period) handled with dense matrices: a matrix per period (and head) has M² entries,
# against (E + M)·channels per period for the sparse path. A batch of many graphs (training) stays sparse.
DENSE_GRAPH_MAX_NODES = 64


def small_graph(num_nodes: int) -> bool:
    """Whether a graph of ``num_nodes`` is propagated and attended over with dense matrices."""
    return num_nodes <= DENSE_GRAPH_MAX_NODES


def dense_attention_supported(conv: GATConv, num_nodes: int) -> bool:
    """Whether :func:`dense_graph_attention` computes ``conv``'s function on graphs of ``num_nodes``."""
    return (small_graph(num_nodes) and conv.lin is not None and conv.lin_edge is not None
            and conv.add_self_loops and conv.fill_value == "mean" and not conv.concat and conv.res is None
            and conv.lin_edge.bias is None)


def dense_graph_attention(conv: GATConv, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
    """``conv`` over ``L`` periods of one graph, each period a copy of ``edge_index`` with its own edge features.

    Args:
        conv: A ``GATConv`` with one edge feature, heads averaged (``dense_attention_supported``).
        x: ``(L, M, in_channels)`` node features per period.
        edge_index: ``(2, E)`` the graph's directed edges (parallel edges allowed; self-loops are replaced, as
            ``GATConv`` does).
        edge_attr: ``(L, E)`` each edge's feature per period.

    Returns:
        ``(L, M, out_channels)``: what ``conv`` returns for the ``L`` copies as one batched graph.
    """
    steps, m = x.shape[0], x.shape[1]
    heads, channels = conv.heads, conv.out_channels
    projected = conv.lin(x).view(steps, m, heads, channels)
    alpha_src = (projected * conv.att_src).sum(-1)  # (L, M, H)
    alpha_dst = (projected * conv.att_dst).sum(-1)
    keep = edge_index[0] != edge_index[1]
    src, dst, attr = edge_index[0, keep], edge_index[1, keep], edge_attr[:, keep]
    incoming = torch.zeros(m, dtype=attr.dtype, device=attr.device).index_add_(0, dst, torch.ones_like(dst, dtype=attr.dtype))
    loop_attr = attr.new_zeros(steps, m).index_add_(1, dst, attr) / incoming.clamp(min=1)
    nodes = torch.arange(m, device=x.device)
    src, dst, attr = torch.cat([src, nodes]), torch.cat([dst, nodes]), torch.cat([attr, loop_attr], dim=1)
    # lin_edge then att_edge, summed over channels, is one weight per head for a single edge feature.
    edge_weight = (conv.lin_edge.weight.view(heads, channels) * conv.att_edge.view(heads, channels)).sum(-1)
    logits = F.leaky_relu(alpha_src[:, src] + alpha_dst[:, dst] + attr[..., None] * edge_weight, conv.negative_slope)
    target = dst[None, :, None].expand_as(logits)
    most = logits.new_full((steps, m, heads), float("-inf")).scatter_reduce_(1, target, logits.detach(), "amax")
    weights = (logits - most.gather(1, target)).exp()
    total = weights.new_zeros(steps, m, heads).index_add_(1, dst, weights) + 1e-16  # PyG's softmax guard
    weights = F.dropout(weights / total.gather(1, target), p=conv.dropout, training=conv.training)
    matrix = x.new_zeros(steps, heads, m * m).index_add_(2, dst * m + src, weights.transpose(1, 2))
    out = matrix.view(steps, heads, m, m) @ projected.transpose(1, 2)  # (L, H, M, C)
    out = out.mean(dim=1)
    return out + conv.bias if conv.bias is not None else out
