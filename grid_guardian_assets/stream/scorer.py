"""The promoted verifier, stepped one settlement period at a time.

Period ``t`` is scored by the error of the prediction the model made after ``t − 1``, exactly as
``LearnedDetector.raw_scores`` scores a stored sequence, so live scores use the checkpoint's calibration as they
are. The recurrent state steps once per new period (about 1.5 ms on gb29); a period refined later (INDO arriving
after FUELHH) is rescored against the prediction already made for it, without stepping again. A gap in the periods
resets the state, and the model scores again after its warm-up. A new checkpoint rebuilds the state from the last
``window`` periods, so a swap neither loses nor rescores anything.
"""

import base64
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from grid_guardian_assets.verifier.scoring import Calibration, LearnedDetector
from grid_guardian_assets.verifier.sequences import GridSequence
from grid_guardian_assets.verifier.train import PreparedSequence, SequenceBatch

PERIOD_US = 30 * 60 * 1_000_000


@dataclass
class PeriodInput:
    """One settlement period's snapshot as the model sees it."""

    start_us: int
    node: np.ndarray  # (N, F) MW
    frequency: float  # Hz, NaN when unknown
    loading: np.ndarray  # (E,)

    def to_json(self) -> dict:
        return {
            "start_us": self.start_us,
            "node": base64.b64encode(self.node.astype(np.float32).tobytes()).decode(),
            "shape": list(self.node.shape),
            "frequency": None if np.isnan(self.frequency) else float(self.frequency),
            "loading": base64.b64encode(self.loading.astype(np.float32).tobytes()).decode(),
        }

    @classmethod
    def from_json(cls, data: dict) -> "PeriodInput":
        node = np.frombuffer(base64.b64decode(data["node"]), dtype=np.float32).reshape(data["shape"])
        loading = np.frombuffer(base64.b64decode(data["loading"]), dtype=np.float32)
        frequency = float("nan") if data["frequency"] is None else float(data["frequency"])
        return cls(int(data["start_us"]), node, frequency, loading)


@dataclass
class PeriodScores:
    """Calibrated scores of one period: ``(N,)`` per bus and the national balance head's; 1.0 = alarm."""

    node: np.ndarray
    national: float


class LiveScorer:
    """Steps a ``LearnedDetector``'s model through periods as they complete.

    Args:
        detector: The GNN detector of the promoted checkpoint.
        calibration: Its calibration (scores divide by its thresholds).
        version: The checkpoint version, stamped on every score.
        window: Periods kept to rebuild the state after a swap or restart.
    """

    def __init__(self, detector: LearnedDetector, calibration: Calibration, version: str, window: int = 16):
        self.detector, self.calibration, self.version = detector, calibration, version
        self.history: deque[PeriodInput] = deque(maxlen=max(window, detector.warmup + 2))
        self._hidden: torch.Tensor | None = None
        self._steps = 0
        self._last_us: int | None = None
        # Predictions for the next period and for recent ones (for refinement), keyed by the target's start.
        self._predictions: dict[int, tuple[torch.Tensor, float]] = {}
        self._latencies_ms: list[float] = []

    def _prepared(self, period: PeriodInput) -> SequenceBatch:
        sequence = GridSequence(
            node=period.node[None].astype(np.float32),
            frequency=np.array([period.frequency], dtype=np.float32),
            loading=period.loading[None].astype(np.float32),
            start_us=np.array([period.start_us]),
        )
        device = next(self.detector.model.parameters()).device
        return SequenceBatch.stack([PreparedSequence.of(sequence, self.detector.normaliser, device)], self.detector.graph)

    @torch.no_grad()
    def _step(self, period: PeriodInput, batch: SequenceBatch) -> None:
        model = self.detector.model
        node, balance, _, self._hidden = model.step(
            batch.inputs[0], batch.edge_index, batch.edge_weight, batch.loading[0], batch.batch, self._hidden
        )
        self._steps += 1
        self._last_us = period.start_us
        if self._steps >= self.detector.warmup + 1:
            self._predictions[period.start_us + PERIOD_US] = (node, float(balance[0]))
        for old in [k for k in self._predictions if k < period.start_us - self.history.maxlen * PERIOD_US]:
            del self._predictions[old]

    def _scores(self, period_us: int, batch: SequenceBatch) -> PeriodScores | None:
        predicted = self._predictions.get(period_us)
        if predicted is None:
            return None
        node_pred, balance_pred = predicted
        error = ((node_pred - batch.targets[0]) ** 2).mean(dim=1).sqrt().cpu().numpy()
        national = abs(balance_pred - float(batch.balance[0, 0]))
        return PeriodScores(
            node=error / self.calibration.node_threshold,
            national=national / self.calibration.period_threshold,
        )

    def score(self, period: PeriodInput) -> PeriodScores | None:
        """Score a completed (or refined) period; ``None`` while warming up or when it cannot be predicted."""
        started = time.perf_counter()
        try:
            return self._score(period)
        finally:
            self._latencies_ms.append((time.perf_counter() - started) * 1000)

    def drain_latencies(self) -> list[float]:
        """Milliseconds each ``score`` call took since the last drain (for the latency histogram)."""
        out, self._latencies_ms = self._latencies_ms, []
        return out

    def _score(self, period: PeriodInput) -> PeriodScores | None:
        batch = self._prepared(period)
        if self._last_us is not None and period.start_us <= self._last_us:
            # A refinement (or a late period): score against the prediction already made, never step back.
            for i, kept in enumerate(self.history):
                if kept.start_us == period.start_us:
                    self.history[i] = period
            return self._scores(period.start_us, batch)
        if self._last_us is None or period.start_us != self._last_us + PERIOD_US:
            self._hidden, self._steps = None, 0  # a gap: the recurrent state no longer describes the last period
        scores = self._scores(period.start_us, batch)
        self.history.append(period)
        self._step(period, batch)
        return scores

    def replay(self, periods: list[PeriodInput]) -> None:
        """Step through already-scored periods to rebuild the state (after a restart or swap); scores nothing."""
        for period in periods:
            if self._last_us is not None and period.start_us <= self._last_us:
                continue  # already stepped
            if self._last_us is not None and period.start_us != self._last_us + PERIOD_US:
                self._hidden, self._steps = None, 0
            self.history.append(period)
            self._step(period, self._prepared(period))
