"""Training the verifier (and the per-bus GRU baseline) on windows of snapshots, batched as disjoint graphs.

Windows of ``W`` periods predict the next period. ``batch_windows`` windows are stacked into one disjoint-union graph
per step (how PyG batches graphs): one optimiser step then covers e.g. 64 × 29 buses, which is what makes an epoch
over a year fast on 2 CPU cores, instead of stepping one day at a time.
"""

import random
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch.nn.functional import mse_loss

from grid_guardian_assets.verifier.graph import GraphTensors
from grid_guardian_assets.verifier.model import GridVerifier, PerBusGRU
from grid_guardian_assets.verifier.sequences import INPUT_CHANNELS, NODE_FEATURE_COUNT, GridSequence, Normaliser, batched_edge_index


@dataclass
class TrainConfig:
    """Hyper-parameters (all logged to MLflow and stored in the checkpoint)."""

    window: int = 6
    hidden_channels: int = 32
    heads: int = 2
    epochs: int = 4
    batch_windows: int = 64
    learning_rate: float = 3e-3
    balance_weight: float = 0.5
    loading_weight: float = 0.5
    seed: int = 0

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


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
    """A sequence as tensors on the training device."""

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


def window_batch(prepared: PreparedSequence, ends: list[int], window: int, graph: GraphTensors):
    """Stack windows ending before each ``t`` in ``ends`` into one disjoint-union graph."""
    b = len(ends)
    x = torch.cat([prepared.inputs[t - window : t] for t in ends], dim=1)  # (W, b*N, C)
    target = torch.cat([prepared.targets[t] for t in ends])  # (b*N, F)
    edge_index = batched_edge_index(graph.edge_index, graph.num_nodes, b)
    edge_weight = graph.edge_weight.repeat(b)
    last_loading = torch.cat([prepared.loading[t - 1].repeat(2) for t in ends])
    target_loading = torch.cat([prepared.loading[t].repeat(2) for t in ends])
    batch = torch.arange(b, device=x.device).repeat_interleave(graph.num_nodes)
    return x, target, edge_index, edge_weight, last_loading, target_loading, batch, prepared.balance[ends]


def build_model(kind: str, config: TrainConfig) -> torch.nn.Module:
    if kind == "gnn":
        return GridVerifier(INPUT_CHANNELS, NODE_FEATURE_COUNT, config.hidden_channels, config.heads)
    if kind == "gru":
        return PerBusGRU(INPUT_CHANNELS, NODE_FEATURE_COUNT, config.hidden_channels)
    raise ValueError(f"unknown model kind {kind!r} (gnn or gru)")


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
    import time

    seed_everything(config.seed)
    model = build_model(kind, config).to(device)
    prepared = [PreparedSequence.of(s, normaliser, device) for s in sequences]
    samples = [(i, t) for i, p in enumerate(prepared) for t in range(config.window, p.inputs.shape[0])]
    if not samples:
        raise ValueError(f"no training windows: sequences are shorter than window={config.window}")
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    order_rng = np.random.default_rng(config.seed)
    history = TrainingHistory()
    for epoch in range(config.epochs):
        started = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        order = order_rng.permutation(len(samples))
        for start in range(0, len(order), config.batch_windows):
            chunk = [samples[j] for j in order[start : start + config.batch_windows]]
            by_sequence: dict[int, list[int]] = {}
            for i, t in chunk:
                by_sequence.setdefault(i, []).append(t)
            optimiser.zero_grad()
            loss = torch.zeros((), device=device)
            for i, ends in by_sequence.items():
                x, target, edge_index, edge_weight, last_loading, target_loading, batch, balance = window_batch(
                    prepared[i], ends, config.window, graph
                )
                if kind == "gnn":
                    node, bal, load = model(x, edge_index, edge_weight, last_loading, batch)
                    part = mse_loss(node, target) + config.balance_weight * mse_loss(bal, balance) + config.loading_weight * mse_loss(load, target_loading)
                else:
                    part = mse_loss(model(x), target)
                loss = loss + part * len(ends) / len(chunk)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(chunk)
            count += len(chunk)
        history.losses.append(total / count)
        history.epoch_seconds.append(time.perf_counter() - started)
        if on_epoch is not None:
            on_epoch(epoch, history.losses[-1], history.epoch_seconds[-1])
    model.eval()
    return model, history
