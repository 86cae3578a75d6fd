"""Grid snapshots as model tensors: contiguous sequences of periods, normalisation, batching as disjoint graphs."""

from dataclasses import dataclass

import numpy as np
import torch

from grid_guardian_assets.grid.physics import (
    LOSS_MAX,
    LOSS_MIN,
    NOMINAL_FREQUENCY_HZ,
    TRANSMISSION_LOSS_RATIO,
    trip_frequency_dip_hz,
    trip_period_dips_hz,
)
from grid_guardian_assets.grid.snapshots import NODE_FEATURES, SnapshotDay

NODE_FEATURE_COUNT = len(NODE_FEATURES)
# Model input per bus: the node features plus system frequency (broadcast to every bus).
INPUT_CHANNELS = NODE_FEATURE_COUNT + 1
_GEN = [i for i, name in enumerate(NODE_FEATURES) if name.startswith("gen_")]
_IMPORT, _DEMAND = NODE_FEATURES.index("net_import"), NODE_FEATURES.index("demand")


@dataclass
class GridSequence:
    """Consecutive settlement periods of one network.

    Attributes:
        node: ``(T, N, F)`` node features in MW (see ``NODE_FEATURES``).
        frequency: ``(T,)`` mean system frequency, Hz (NaN where unknown).
        loading: ``(T, E)`` branch loading (|flow| / rating).
        start_us: ``(T,)`` period starts, µs since the epoch (UTC).
        frequency_extreme: ``(T,)`` the FREQ sample farthest from nominal in each period, Hz (NaN where none): what
            the live job's band rule judges, sample by sample. ``None`` where the samples were not kept (the live
            scorer's model input, which is the mean; benchmarks saved before it was kept).
    """

    node: np.ndarray
    frequency: np.ndarray
    loading: np.ndarray
    start_us: np.ndarray
    frequency_extreme: np.ndarray | None = None

    def __len__(self) -> int:
        return self.node.shape[0]

    def slice(self, start: int, stop: int) -> "GridSequence":
        extreme = None if self.frequency_extreme is None else self.frequency_extreme[start:stop]
        return GridSequence(self.node[start:stop], self.frequency[start:stop], self.loading[start:stop], self.start_us[start:stop],
                            extreme)

    def copy(self) -> "GridSequence":
        extreme = None if self.frequency_extreme is None else self.frequency_extreme.copy()
        return GridSequence(self.node.copy(), self.frequency.copy(), self.loading.copy(), self.start_us.copy(), extreme)

    # --- what an event does to the readings of whole periods (the benchmark's injectors and self-play share them) ---
    def lose_infeed(self, start: int, loss_mw: float) -> None:
        """Frequency's answer to ``loss_mw`` lost at the start of period ``start`` (``grid.physics``): the periods'
        means dip by what the response leaves in them, and the period's extreme sample is the nadir below its mean,
        where that lies further from nominal than the extreme it had."""
        dips = trip_period_dips_hz(loss_mw)[: len(self) - start]
        if self.frequency_extreme is not None and start < len(self):
            nadir = self.frequency[start] - float(trip_frequency_dip_hz(loss_mw, 0.0))
            held = self.frequency_extreme[start]
            if not np.isfinite(held) or abs(nadir - NOMINAL_FREQUENCY_HZ) > abs(held - NOMINAL_FREQUENCY_HZ):
                self.frequency_extreme[start] = nadir
        self.frequency[start : start + len(dips)] -= dips

    def blank(self, periods: list[int]) -> None:
        """What a snapshot holds for periods whose readings never arrived: no readings, no flows, no frequency."""
        self.node[periods] = 0.0
        self.frequency[periods] = np.nan
        self.loading[periods] = 0.0
        if self.frequency_extreme is not None:
            self.frequency_extreme[periods] = np.nan

    def repeat(self, source: int, periods: list[int]) -> None:
        """Periods that hold period ``source``'s readings again (a duplicated delivery)."""
        for t in periods:
            self.node[t], self.frequency[t], self.loading[t] = self.node[source], self.frequency[source], self.loading[source]
            if self.frequency_extreme is not None:
                self.frequency_extreme[t] = self.frequency_extreme[source]


def sequence_from_days(days: list[SnapshotDay]) -> GridSequence:
    """Concatenate stored snapshot days (they should be consecutive) into one sequence."""
    if not days:
        raise ValueError("no snapshot days: materialise grid_snapshots for the range first")
    return GridSequence(
        node=np.concatenate([d.node_features for d in days]).astype(np.float32),
        frequency=np.concatenate([d.frequency_hz for d in days]).astype(np.float32),
        loading=np.nan_to_num(np.concatenate([d.edge_features[:, :, 2] for d in days])).astype(np.float32),
        start_us=np.concatenate([d.start_us for d in days]),
        frequency_extreme=np.concatenate([d.frequency_extreme_hz for d in days]).astype(np.float32),
    )


def balance_ratio(node: np.ndarray) -> np.ndarray:
    """``(T,)``: (generation + net import − demand) / (generation + net import), from bus readings alone.

    With demand as INDO (national demand, without station load, pumping and exports) and signed generation (pumping
    and exports negative) the residual is transmission losses and station load, which no bus reading shows: −3–6 % in
    normal operation (``grid.physics``'s ``LOSS_MIN`` .. ``LOSS_MAX``). Misread or missing readings move it, and so do
    the FUELHH glitches of the real data (a period whose generation is mostly missing: ratios of −10 to −25 on
    2018-01-23, 05-10 and 09-11).
    """
    supply = node[:, :, _GEN].sum(axis=(1, 2)) + node[:, :, _IMPORT].sum(axis=1)
    residual = supply - node[:, :, _DEMAND].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(supply) > 1.0, residual / supply, 1.0)


def normal_periods(node: np.ndarray) -> np.ndarray:
    """``(T,)`` True where a period balances as the snapshots' check defines it (``LOSS_MIN`` .. ``LOSS_MAX`` of
    supply): what normal data is. The others are data faults (e.g. a FUELHH glitch) that the ``grid_snapshots``
    check flags; they must not set the normalisation, be trained on as normal, or set the alarm thresholds."""
    ratio = balance_ratio(node)
    return (ratio >= LOSS_MIN) & (ratio <= LOSS_MAX)


@dataclass
class Normaliser:
    """Mean and spread per bus and feature, fitted on training data (stored in every checkpoint).

    Per bus rather than per feature: a 200 MW swing is routine at a big CCGT bus and alarming at a small one.
    """

    node_mean: np.ndarray  # (N, F)
    node_std: np.ndarray  # (N, F)
    frequency_mean: float
    frequency_std: float
    balance_mean: float = TRANSMISSION_LOSS_RATIO  # before fitting: supply exceeds demand by the losses
    balance_std: float = 0.01

    @classmethod
    def fit(cls, sequence: GridSequence) -> "Normaliser":
        freq = sequence.frequency[np.isfinite(sequence.frequency)]
        # Statistics of normal periods only: one FUELHH glitch (a balance ratio of −17) among 13,000 periods
        # inflates the balance spread 10–20× (0.5 instead of 0.026 on 2018-09-01..30), squashing every normal one.
        normal = normal_periods(sequence.node)
        if not normal.any():
            normal = np.ones(len(sequence), dtype=bool)
        node, ratio = sequence.node[normal], balance_ratio(sequence.node)[normal]
        return cls(
            node_mean=node.mean(axis=0),
            node_std=np.maximum(node.std(axis=0), 10.0),  # MW: a feature that barely moves gets a 10 MW scale
            frequency_mean=float(freq.mean()) if freq.size else NOMINAL_FREQUENCY_HZ,
            frequency_std=float(max(freq.std(), 1e-3)) if freq.size else 0.05,
            balance_mean=float(ratio.mean()),
            balance_std=float(max(ratio.std(), 1e-3)),
        )

    def balance(self, sequence: GridSequence) -> torch.Tensor:
        """``(T,)`` normalised national balance ratio."""
        return torch.as_tensor((balance_ratio(sequence.node) - self.balance_mean) / self.balance_std, dtype=torch.float32)

    def inputs(self, sequence: GridSequence) -> torch.Tensor:
        """``(T, N, F + 1)`` float32: normalised node features and frequency."""
        node = (sequence.node - self.node_mean) / self.node_std
        freq = np.nan_to_num((sequence.frequency - self.frequency_mean) / self.frequency_std)
        freq = np.broadcast_to(freq[:, None, None], (*node.shape[:2], 1))
        return torch.as_tensor(np.concatenate([node, freq], axis=2), dtype=torch.float32)

    def state(self) -> dict[str, torch.Tensor]:
        return {
            "node_mean": torch.as_tensor(self.node_mean, dtype=torch.float64),
            "node_std": torch.as_tensor(self.node_std, dtype=torch.float64),
            "frequency": torch.tensor([self.frequency_mean, self.frequency_std], dtype=torch.float64),
            "balance": torch.tensor([self.balance_mean, self.balance_std], dtype=torch.float64),
        }

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> "Normaliser":
        return cls(
            state["node_mean"].numpy(), state["node_std"].numpy(), float(state["frequency"][0]), float(state["frequency"][1]),
            float(state["balance"][0]), float(state["balance"][1]),
        )


def batched_edge_index(edge_index: torch.Tensor, num_nodes: int, copies: int) -> torch.Tensor:
    """``copies`` disjoint copies of a graph as one graph (how PyG batches graphs)."""
    offsets = (torch.arange(copies, device=edge_index.device) * num_nodes).repeat_interleave(edge_index.shape[1])
    return edge_index.repeat(1, copies) + offsets
