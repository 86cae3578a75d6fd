"""Anomaly scores per bus and period, calibrated so that 1.0 is the alarm threshold for every detector.

* Learned detectors (the GNN verifier, the per-bus GRU): the bus score is the root-mean-square of the normalised
  prediction errors of its features; the GNN adds a period score from its balance head (|predicted − actual|
  national balance ratio, normalised). Thresholds are the (1 − false_alarm_rate) quantiles of those scores on
  held-out normal data, then raised together to the level the calibration days' periods would exceed about
  ``alerts_per_day`` times a day, extrapolated from their scores' tail (``LearnedDetector.calibrate``,
  ``tail_level``); on later days the rate drifts with the data (the README's figures).
* The 3-sigma rule (the original plan's baseline): a bus fires when any of its features is more than three standard
  deviations (per bus and feature, from training data) from its training mean. Its threshold is the rule's 3.
"""

from dataclasses import dataclass

import numpy as np
import torch

from grid_guardian_assets.settlement import PERIODS_PER_DAY
from grid_guardian_assets.verifier.graph import GraphTensors
from grid_guardian_assets.verifier.sequences import GridSequence, Normaliser, normal_periods
from grid_guardian_assets.verifier.train import PreparedSequence, SequenceBatch, predict
from grid_guardian_assets.verifier.train_config import DEFAULT_ALERTS_PER_DAY, DEFAULT_FALSE_ALARM_RATE

# The share of calibration periods whose scores are fitted as the tail (``tail_level``): enough periods to estimate
# its scale (34 of 14 days' 672), few enough to be the tail. On the validation benchmark (bench_ablation.py) the
# tail's level sat 1.13 times above the calibration days' largest scores, and thresholds that much higher took the
# GNN's false alerts per clean day from 0.2 to 0.03-0.08 (rules + GNN F1 0.826 -> 0.871-0.884).
TAIL_SHARE = 0.05


@dataclass
class RawScores:
    """``node``: (T, N) bus scores; ``period``: (T,) system-level score (balance); NaN before the first window."""

    node: np.ndarray
    period: np.ndarray


@dataclass
class Calibration:
    node_threshold: float
    period_threshold: float
    false_alarm_rate: float
    alerts_per_day: float = float("nan")  # the period-level budget the thresholds were raised to (NaN: none)

    def apply(self, raw: RawScores) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated ``(T, N)`` bus scores and ``(T,)`` period scores (max of the bus scores and the balance score)."""
        node = raw.node / self.node_threshold
        with np.errstate(invalid="ignore"):
            period = np.fmax(np.nanmax(np.where(np.isnan(node), -np.inf, node), axis=1), raw.period / self.period_threshold)
        period[np.all(np.isnan(node), axis=1)] = np.nan
        return node, period

    def to_dict(self) -> dict[str, float]:
        return {"node_threshold": self.node_threshold, "period_threshold": self.period_threshold,
                "false_alarm_rate": self.false_alarm_rate, "alerts_per_day": self.alerts_per_day}


class ThreeSigma:
    """The 3-sigma rule per bus and feature."""

    name = "3-sigma"

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean, self.std = mean, std

    @classmethod
    def fit(cls, sequences: list[GridSequence]) -> "ThreeSigma":
        node = np.concatenate([s.node[normal_periods(s.node)] for s in sequences])  # as the Normaliser: normal periods
        if node.shape[0] == 0:
            node = np.concatenate([s.node for s in sequences])
        return cls(node.mean(axis=0), np.maximum(node.std(axis=0), 1.0))

    def raw_scores(self, sequence: GridSequence) -> RawScores:
        z = np.abs(sequence.node - self.mean) / self.std
        return RawScores(node=z.max(axis=2), period=np.zeros(len(sequence)))

    def calibration(self) -> Calibration:
        return Calibration(node_threshold=3.0, period_threshold=np.inf, false_alarm_rate=float("nan"))


def _scored_normally(sequence: GridSequence) -> np.ndarray:
    """``(T,)`` True where period ``t`` and the period before it balance (see ``normal_periods``)."""
    normal = normal_periods(sequence.node)
    return normal & np.concatenate([[True], normal[:-1]])


class LearnedDetector:
    """Scores from a trained forecaster (``kind`` gnn or gru) stepped once through a sequence."""

    def __init__(self, kind: str, model: torch.nn.Module, normaliser: Normaliser, warmup: int, graph: GraphTensors):
        self.kind, self.model, self.normaliser, self.warmup, self.graph = kind, model, normaliser, warmup, graph
        self.name = "GNN verifier" if kind == "gnn" else "per-bus GRU"

    @torch.no_grad()
    def raw_scores(self, sequence: GridSequence) -> RawScores:
        """Period ``t`` is scored by the error of the prediction made after ``t - 1`` (NaN for the warm-up)."""
        device = next(self.model.parameters()).device
        prepared = PreparedSequence.of(sequence, self.normaliser, device)
        batch = SequenceBatch.stack([prepared], self.graph)
        node_pred, balance_pred, _ = predict(self.kind, self.model, batch)
        t_count = len(sequence)
        node = np.full((t_count, self.graph.num_nodes), np.nan)
        period = np.full(t_count, np.nan)
        first = self.warmup + 1
        if t_count > first:
            err = ((node_pred[first - 1 : -1] - batch.targets[first:]) ** 2).mean(dim=2).sqrt()
            node[first:] = err.cpu().numpy()
            if balance_pred is not None:
                period[first:] = (balance_pred[first - 1 : -1, 0] - batch.balance[first:, 0]).abs().cpu().numpy()
            else:
                period[first:] = 0.0
        return RawScores(node=node, period=period)

    def calibrate(self, sequences: list[GridSequence], false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
                  alerts_per_day: float | None = DEFAULT_ALERTS_PER_DAY) -> Calibration:
        """Thresholds from normal ``sequences`` (periods that do not balance, and the periods after them, left out).

        Args:
            sequences: Normal data the model was not trained on.
            false_alarm_rate: Each bus's threshold is the ``1 − false_alarm_rate`` quantile of its scores (the balance
                head's likewise).
            alerts_per_day: Then both thresholds are raised by one factor, to the level the periods' largest
                calibrated score (over buses and the balance head) exceeds about this many times a day
                (``tail_level``: extrapolated from the tail of the calibration days' scores, since 14 days cannot
                show a level rarer than their largest score); ``None`` keeps the per-bus thresholds (a period then
                alarms about ``buses × false_alarm_rate`` of the time).
        """
        raws = [self.raw_scores(s) for s in sequences]
        # Scores of periods that do not balance, or follow one that does not (FUELHH glitches: data faults the
        # grid_snapshots check flags), are not normal data: one such score would set the threshold on its own.
        fair = [_scored_normally(s) for s in sequences]
        node = np.concatenate([r.node[f].ravel() for r, f in zip(raws, fair)])
        period = np.concatenate([r.period[f] for r, f in zip(raws, fair)])
        node, period = node[np.isfinite(node)], period[np.isfinite(period)]
        if node.size == 0:
            raise ValueError("calibration data has no scoreable periods (shorter than the warm-up)")
        period_threshold = float(np.quantile(period, 1 - false_alarm_rate)) if self.kind == "gnn" else np.inf
        per_bus = Calibration(float(np.quantile(node, 1 - false_alarm_rate)), max(period_threshold, 1e-6), false_alarm_rate)
        if alerts_per_day is None:
            return per_bus
        largest = np.concatenate([per_bus.apply(r)[1][f] for r, f in zip(raws, fair)])
        largest = largest[np.isfinite(largest)]
        scale = max(1.0, tail_level(largest, alerts_per_day / PERIODS_PER_DAY)) if largest.size else 1.0
        return Calibration(per_bus.node_threshold * scale, per_bus.period_threshold * scale, false_alarm_rate, alerts_per_day)


def tail_level(scores: np.ndarray, rate: float) -> float:
    """The level ``scores`` exceed in a share ``rate`` of draws, extrapolated past the sample where it must be.

    At or above ``TAIL_SHARE`` it is the plain quantile. Rarer levels are what the alert budget asks for (0.05 alerts
    a day is one period in 960; 14 calibration days hold 672), and a quantile cannot read them off the sample: it
    stops at the largest score, a level later days exceed routinely. So the tail above the ``1 − TAIL_SHARE``
    quantile ``u`` is taken as exponential (peaks over threshold, its scale the mean excess over ``u``) and the level
    is ``u + mean excess × ln(TAIL_SHARE / rate)``.
    """
    if rate >= TAIL_SHARE:
        return float(np.quantile(scores, 1 - rate))
    u = float(np.quantile(scores, 1 - TAIL_SHARE))
    excess = scores[scores > u] - u
    mean_excess = float(excess.mean()) if excess.size else 0.0
    return u + mean_excess * float(np.log(TAIL_SHARE / rate))
