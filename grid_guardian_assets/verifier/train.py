"""Training the verifier (and the per-bus GRU baseline) on runs of snapshots batched as disjoint graphs.

Contiguous snapshots are cut into chunks of ``chunk_periods`` (a day by default); ``batch_chunks`` chunks are
stacked as one disjoint-union graph (how PyG batches graphs) and the recurrent model steps once through their
periods, predicting each next period. One optimiser step thus covers e.g. 32 days × 29 buses, where the original
plan's loop stepped one day on one graph at a time (see bench/bench_verifier.py for both, timed in one run).
"""

import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from grid_guardian_assets.verifier.graph import GraphTensors
from grid_guardian_assets.verifier.model import GridVerifier, PerBusGRU
from grid_guardian_assets.verifier.sequences import (
    INPUT_CHANNELS,
    NODE_FEATURE_COUNT,
    GridSequence,
    Normaliser,
    batched_edge_index,
    normal_periods,
)
from grid_guardian_assets.verifier.train_config import TrainConfig


@dataclass
class TrainingHistory:
    losses: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)


def pick_device(prefer: str = "auto") -> torch.device:
    """CUDA when present (unless told otherwise), else the CPU."""
    if prefer == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(prefer)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


@dataclass
class PreparedSequence:
    """A sequence as tensors on the model's device."""

    inputs: torch.Tensor  # (T, N, C)
    targets: torch.Tensor  # (T, N, F)
    balance: torch.Tensor  # (T,)
    loading: torch.Tensor  # (T, E) forward branches
    normal: torch.Tensor | None = None  # (T,) bool: the period balances (see ``normal_periods``); None: all do

    @classmethod
    def of(cls, sequence: GridSequence, normaliser: Normaliser, device: torch.device) -> "PreparedSequence":
        inputs = normaliser.inputs(sequence)
        return cls(
            inputs=inputs.to(device),
            targets=inputs[:, :, :NODE_FEATURE_COUNT].contiguous().to(device),
            balance=normaliser.balance(sequence).to(device),
            loading=torch.as_tensor(sequence.loading, dtype=torch.float32, device=device),
            normal=torch.as_tensor(normal_periods(sequence.node), device=device),
        )

    def normal_mask(self) -> torch.Tensor:
        return self.normal if self.normal is not None else torch.ones(len(self), dtype=torch.bool, device=self.inputs.device)

    def __len__(self) -> int:
        return self.inputs.shape[0]


@dataclass
class SequenceBatch:
    """``B`` equal-length runs stacked along the node axis (``(L, B*N, ...)``) with the batched graph."""

    inputs: torch.Tensor
    targets: torch.Tensor
    balance: torch.Tensor  # (L, B)
    loading: torch.Tensor  # (L, 2E*B), both directions
    edge_index: torch.Tensor
    edge_weight: torch.Tensor
    batch: torch.Tensor
    normal: torch.Tensor | None = None  # (L, B) bool: the period of that run balances

    @classmethod
    def stack(cls, runs: list[PreparedSequence], graph: GraphTensors) -> "SequenceBatch":
        b = len(runs)
        return cls(
            inputs=torch.cat([r.inputs for r in runs], dim=1),
            targets=torch.cat([r.targets for r in runs], dim=1),
            balance=torch.stack([r.balance for r in runs], dim=1),
            loading=torch.cat([r.loading.repeat(1, 2) for r in runs], dim=1),
            edge_index=batched_edge_index(graph.edge_index, graph.num_nodes, b),
            edge_weight=graph.edge_weight.repeat(b),
            batch=torch.arange(b, device=runs[0].inputs.device).repeat_interleave(graph.num_nodes),
            normal=torch.stack([r.normal_mask() for r in runs], dim=1),
        )

    def scored(self, warmup: int) -> torch.Tensor:
        """``(L - warmup - 1, B)`` float: 1 where the prediction made after period ``t`` for ``t + 1`` is a fair
        example of normal data (both periods balance), for ``t`` from ``warmup``; 0 where either is a data fault."""
        n = self.normal.float()
        return n[warmup:-1] * n[warmup + 1 :]


def predict(kind: str, model: torch.nn.Module, batch: SequenceBatch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Predictions for every next period: ``(L, M, F)`` nodes and, for the GNN, ``(L, B)`` balance, ``(L, E)`` loading."""
    if kind == "gnn":
        return model(batch.inputs, batch.edge_index, batch.edge_weight, batch.loading, batch.batch)
    return model(batch.inputs), None, None


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries whose ``weight`` (``(L, M)``, 0 or 1, broadcast over trailing axes) is 1;
    equal to ``mse_loss`` when every weight is 1."""
    weight = weight.reshape(*weight.shape, *([1] * (prediction.dim() - weight.dim())))
    squared = (prediction - target) ** 2 * weight
    count = weight.expand_as(squared).sum()
    return squared.sum() / count.clamp(min=1.0)


def build_model(kind: str, config: TrainConfig) -> torch.nn.Module:
    if kind == "gnn":
        return GridVerifier(INPUT_CHANNELS, NODE_FEATURE_COUNT, config.hidden_channels, config.heads)
    if kind == "gru":
        return PerBusGRU(INPUT_CHANNELS, NODE_FEATURE_COUNT, config.hidden_channels)
    raise ValueError(f"unknown model kind {kind!r} (gnn or gru)")


def _chunks(prepared: list[PreparedSequence], length: int) -> list[PreparedSequence]:
    out = []
    for p in prepared:
        for start in range(0, len(p) - length + 1, length):
            end = start + length
            out.append(PreparedSequence(p.inputs[start:end], p.targets[start:end], p.balance[start:end], p.loading[start:end],
                                        p.normal_mask()[start:end]))
    return out


def train_model(
    kind: str,
    sequences: list[GridSequence],
    normaliser: Normaliser,
    graph: GraphTensors,
    config: TrainConfig,
    device: torch.device,
    on_epoch=None,
) -> tuple[torch.nn.Module, TrainingHistory]:
    """Train a ``gnn`` (GridVerifier) or ``gru`` (PerBusGRU) model; deterministic given ``config.seed`` and device."""
    seed_everything(config.seed)
    model = build_model(kind, config).to(device)
    chunks = _chunks([PreparedSequence.of(s, normaliser, device) for s in sequences], config.chunk_periods)
    if not chunks:
        raise ValueError(f"no training data: every run of snapshots is shorter than chunk_periods={config.chunk_periods}")
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    order_rng = np.random.default_rng(config.seed)
    history = TrainingHistory()
    w = config.warmup
    per_step = max(1, min(config.batch_chunks, config.max_batch_buses // graph.num_nodes))
    for epoch in range(config.epochs):
        started = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        order = order_rng.permutation(len(chunks))
        for start in range(0, len(order), per_step):
            batch = SequenceBatch.stack([chunks[j] for j in order[start : start + per_step]], graph)
            optimiser.zero_grad()
            node, balance, loading = predict(kind, model, batch)
            # Periods that do not balance (FUELHH glitches) are data faults, not normal data: left out of the loss.
            weight = batch.scored(w)  # (L', B)
            loss = masked_mse(node[w:-1], batch.targets[w + 1 :], weight.repeat_interleave(graph.num_nodes, dim=1))
            if kind == "gnn":
                loss = loss + config.balance_weight * masked_mse(balance[w:-1], batch.balance[w + 1 :], weight)
                edges = batch.loading.shape[1] // weight.shape[1]
                loss = loss + config.loading_weight * masked_mse(loading[w:-1], batch.loading[w + 1 :], weight.repeat_interleave(edges, dim=1))
            loss.backward()
            optimiser.step()
            total += loss.item()
            count += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        history.losses.append(total / count)
        history.epoch_seconds.append(time.perf_counter() - started)
        if on_epoch is not None:
            on_epoch(epoch, history.losses[-1], history.epoch_seconds[-1])
    model.eval()
    return model, history
