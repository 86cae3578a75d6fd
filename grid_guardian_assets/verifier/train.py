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
from torch.nn.functional import mse_loss

from grid_guardian_assets.verifier.graph import GraphTensors
from grid_guardian_assets.verifier.model import GridVerifier, PerBusGRU
from grid_guardian_assets.verifier.sequences import INPUT_CHANNELS, NODE_FEATURE_COUNT, GridSequence, Normaliser, batched_edge_index
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

    @classmethod
    def of(cls, sequence: GridSequence, normaliser: Normaliser, device: torch.device) -> "PreparedSequence":
        inputs = normaliser.inputs(sequence)
        return cls(
            inputs=inputs.to(device),
            targets=inputs[:, :, :NODE_FEATURE_COUNT].contiguous().to(device),
            balance=normaliser.balance(sequence).to(device),
            loading=torch.as_tensor(sequence.loading, dtype=torch.float32, device=device),
        )

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
        )


def predict(kind: str, model: torch.nn.Module, batch: SequenceBatch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Predictions for every next period: ``(L, M, F)`` nodes and, for the GNN, ``(L, B)`` balance, ``(L, E)`` loading."""
    if kind == "gnn":
        return model(batch.inputs, batch.edge_index, batch.edge_weight, batch.loading, batch.batch)
    return model(batch.inputs), None, None


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
            out.append(PreparedSequence(p.inputs[start:end], p.targets[start:end], p.balance[start:end], p.loading[start:end]))
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
            loss = mse_loss(node[w:-1], batch.targets[w + 1 :])
            if kind == "gnn":
                loss = loss + config.balance_weight * mse_loss(balance[w:-1], batch.balance[w + 1 :])
                loss = loss + config.loading_weight * mse_loss(loading[w:-1], batch.loading[w + 1 :])
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
