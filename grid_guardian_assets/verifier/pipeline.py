"""Train, calibrate, evaluate and checkpoint the verifier: the whole recipe behind the ``gnn_verifier`` asset."""

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl
import torch

from grid_guardian_assets.detect.calibration import DetectorCalibration
from grid_guardian_assets.detect.measurements import StoredMeasurements
from grid_guardian_assets.grid.branch_limits import BranchLimits
from grid_guardian_assets.grid.mapping import bus_mapping
from grid_guardian_assets.grid.network import GridNetwork
from grid_guardian_assets.grid.snapshots import SnapshotDay
from grid_guardian_assets.verifier.anomalies import Benchmark
from grid_guardian_assets.verifier.checkpoints import Checkpoint, ModelStore
from grid_guardian_assets.verifier.evaluation import CaseOutcome, evaluate, summarise
from grid_guardian_assets.verifier.graph import GraphTensors
from grid_guardian_assets.verifier.rule_detectors import Combined, RulesDetector
from grid_guardian_assets.verifier.scoring import Calibration, LearnedDetector, ThreeSigma
from grid_guardian_assets.verifier.sequences import GridSequence, Normaliser, sequence_from_days
from grid_guardian_assets.verifier.train import build_model, train_model
from grid_guardian_assets.verifier.train_config import (
    DEFAULT_ALERTS_PER_DAY,
    DEFAULT_CALIBRATION_DAYS,
    DEFAULT_FALSE_ALARM_RATE,
    TrainConfig,
)


def contiguous_sequences(days: list[SnapshotDay]) -> list[GridSequence]:
    """Runs of consecutive stored days as sequences (a day that failed validation splits the run)."""
    runs: list[list[SnapshotDay]] = []
    for day in sorted(days, key=lambda d: d.day):
        if runs and (day.day - runs[-1][-1].day).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return [sequence_from_days(run) for run in runs]


@dataclass
class TrainedVerifier:
    model: torch.nn.Module
    baseline: torch.nn.Module
    normaliser: Normaliser
    calibration: Calibration
    baseline_calibration: Calibration
    three_sigma: ThreeSigma
    config: TrainConfig
    losses: list[float]
    baseline_losses: list[float]
    epoch_seconds: list[float]
    train_days: tuple[dt.date, dt.date]
    calibration_days: tuple[dt.date, dt.date]
    device: str
    metrics: dict[str, float] = field(default_factory=dict)


def train_verifier(
    network: GridNetwork,
    days: list[SnapshotDay],
    config: TrainConfig,
    *,
    calibration_days: int = DEFAULT_CALIBRATION_DAYS,
    false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
    alerts_per_day: float | None = DEFAULT_ALERTS_PER_DAY,
    device: torch.device,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> TrainedVerifier:
    """Train the GNN and the per-bus GRU baseline on ``days`` less their last ``calibration_days`` (held out for
    calibration; both calibrated alike, see ``LearnedDetector.calibrate`` for ``false_alarm_rate`` and
    ``alerts_per_day``), and fit the 3-sigma rule on the same training days."""
    days = sorted(days, key=lambda d: d.day)
    if len(days) <= calibration_days:
        raise ValueError(f"{len(days)} days of snapshots: need more than the {calibration_days} held out for calibration")
    train, calibrate = days[:-calibration_days], days[-calibration_days:]
    train_seqs, cal_seqs = contiguous_sequences(train), contiguous_sequences(calibrate)
    normaliser = Normaliser.fit(sequence_from_days(train))
    graph = GraphTensors.of(network, device)
    model, history = train_model("gnn", train_seqs, normaliser, graph, config, device, on_epoch)
    baseline, baseline_history = train_model("gru", train_seqs, normaliser, graph, config, device)
    gnn = LearnedDetector("gnn", model, normaliser, config.warmup, graph)
    gru = LearnedDetector("gru", baseline, normaliser, config.warmup, graph)
    return TrainedVerifier(
        model=model,
        baseline=baseline,
        normaliser=normaliser,
        calibration=gnn.calibrate(cal_seqs, false_alarm_rate, alerts_per_day),
        baseline_calibration=gru.calibrate(cal_seqs, false_alarm_rate, alerts_per_day),
        three_sigma=ThreeSigma.fit(train_seqs),
        config=config,
        losses=history.losses,
        baseline_losses=baseline_history.losses,
        epoch_seconds=history.epoch_seconds,
        train_days=(train[0].day, train[-1].day),
        calibration_days=(calibrate[0].day, calibrate[-1].day),
        device=str(device),
    )


@dataclass
class DetectorOutcomes:
    """One detector's outcome on every benchmark case, and the seconds scoring them took."""

    outcomes: list[CaseOutcome]
    seconds: float


def benchmark_outcomes(
    trained: TrainedVerifier,
    network: GridNetwork,
    benchmark: Benchmark,
    detector_calibration: DetectorCalibration | None = None,
    branch_limits: BranchLimits | None = None,
    recorded: StoredMeasurements | None = None,
) -> dict[str, DetectorOutcomes]:
    """Every detector scored on every case of ``benchmark``, by name.

    Without ``detector_calibration``: the GNN verifier, the 3-sigma rule and the per-bus GRU. With it, the ablation:
    the rules alone (``RulesDetector``: the live job's redundancy, data-quality and physics rules), the
    GNN verifier alone, the two combined as the live job runs them (``Combined``), the 3-sigma rule and the per-bus
    GRU, in that order.

    Args:
        trained: The verifier, its baselines and their calibrations.
        network: The benchmark's network.
        benchmark: The frozen cases.
        detector_calibration: The fitted redundancy and data-quality detectors (the ``detector_calibration``
            asset's), or ``None`` to leave the rules out.
        branch_limits: The rules' line-overload limits; ``None``: every branch at its rating (see ``RulesDetector``).
        recorded: The stores the benchmark was cut from (``RulesDetector``'s readings beside each case's).
    """
    device = next(trained.model.parameters()).device
    graph = GraphTensors.of(network, device)
    gnn = LearnedDetector("gnn", trained.model, trained.normaliser, trained.config.warmup, graph)
    gru = LearnedDetector("gru", trained.baseline, trained.normaliser, trained.config.warmup, graph)
    learned = [(gnn, trained.calibration)]
    baselines = [(trained.three_sigma, trained.three_sigma.calibration()), (gru, trained.baseline_calibration)]
    if detector_calibration is None:
        detectors = [*learned, *baselines]
    else:
        rules = RulesDetector(detector_calibration, bus_mapping(network), branch_limits, recorded)
        combined = Combined(rules, rules.calibration(), gnn, trained.calibration)
        detectors = [(rules, rules.calibration()), *learned, (combined, combined.calibration()), *baselines]
    scored = {}
    for detector, calibration in detectors:
        started = time.perf_counter()
        outcomes = evaluate(detector, calibration, benchmark)
        scored[detector.name] = DetectorOutcomes(outcomes, time.perf_counter() - started)
    return scored


def benchmark_table(scored: dict[str, DetectorOutcomes]) -> pl.DataFrame:
    """Event-wise metrics per anomaly type for each detector of ``benchmark_outcomes`` (point estimates; the
    intervals are ``verifier.bootstrap``'s)."""
    tables = [summarise(run.outcomes).with_columns(pl.lit(name).alias("detector"), pl.lit(run.seconds).alias("seconds"))
              for name, run in scored.items()]
    return pl.concat(tables).select("detector", pl.exclude("detector"))


def save_checkpoint(store: ModelStore, trained: TrainedVerifier, network: GridNetwork, metrics: dict, benchmark_version: str) -> Checkpoint:
    tensors = {
        "model": trained.model.state_dict(),
        "baseline": trained.baseline.state_dict(),
        "normaliser": trained.normaliser.state(),
        "three_sigma": {"mean": torch.as_tensor(trained.three_sigma.mean), "std": torch.as_tensor(trained.three_sigma.std)},
    }
    meta = {
        "kind": "GridVerifier",
        "network": network.name,
        "config": trained.config.to_dict(),
        "calibration": trained.calibration.to_dict(),
        "baseline_calibration": trained.baseline_calibration.to_dict(),
        "train_days": [d.isoformat() for d in trained.train_days],
        "calibration_days": [d.isoformat() for d in trained.calibration_days],
        "benchmark_version": benchmark_version,
        "device": trained.device,
        "metrics": metrics,
    }
    return store.save({k: v for k, v in tensors.items()}, meta)


def load_detector(checkpoint: Checkpoint, network: GridNetwork, device: str | torch.device = "cpu") -> tuple[LearnedDetector, Calibration]:
    """The GNN detector and its calibration from a checkpoint (for the live job and self-play)."""
    meta = checkpoint.meta
    if meta.get("network") != network.name:
        raise ValueError(f"checkpoint {checkpoint.version} was trained on {meta.get('network')}, not {network.name}")
    config = TrainConfig(**meta["config"])
    model = build_model("gnn", config).to(device)
    model.load_state_dict(checkpoint.tensors["model"])
    model.eval()
    normaliser = Normaliser.from_state(checkpoint.tensors["normaliser"])
    detector = LearnedDetector("gnn", model, normaliser, config.warmup, GraphTensors.of(network, device))
    return detector, Calibration(**meta["calibration"])
