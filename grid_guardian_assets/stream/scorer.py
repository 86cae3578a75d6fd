"""The promoted verifier, stepped through settlement periods as they complete: one at a time live, a stack at once
when a backlog streams in.

Period ``t`` is scored by the error of the prediction the model made after ``t − 1``, exactly as
``LearnedDetector.raw_scores`` scores a stored sequence, so live scores use the checkpoint's calibration as they
are. The recurrent state steps once per new period; consecutive new periods scored together go through the model in
one pass (``GridVerifier.run``, the state carried through the stack), with the same scores as one at a time. A
period refined later (INDO arriving after FUELHH) is rescored against the prediction already made for it, without
stepping again. A gap in the periods resets the state, and the model scores again after its warm-up. A new
checkpoint rebuilds the state from the last ``window`` periods, so a swap neither loses nor rescores anything.
"""

import base64
import time
from collections import deque
from dataclasses import dataclass, replace

import numpy as np
import torch

from grid_guardian_assets.verifier.scoring import Calibration, LearnedDetector
from grid_guardian_assets.verifier.sequences import GridSequence
from grid_guardian_assets.verifier.train import PreparedSequence, SequenceBatch

PERIOD_US = 30 * 60 * 1_000_000


def single_threaded_torch() -> None:
    """One intra-op torch thread for this process (the live job's): the model's tensors are tiny (29 buses), so
    more threads only add synchronisation, and on a host whose cores are busy a spinning thread pool makes every
    small kernel wait (measured on 2 shared cores: 400 ms instead of 4 ms per period)."""
    torch.set_num_threads(1)


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

    def _prepared(self, periods: list[PeriodInput]) -> SequenceBatch:
        sequence = GridSequence(
            node=np.stack([p.node for p in periods]).astype(np.float32),
            frequency=np.array([p.frequency for p in periods], dtype=np.float32),
            loading=np.stack([p.loading for p in periods]).astype(np.float32),
            start_us=np.array([p.start_us for p in periods]),
        )
        device = next(self.detector.model.parameters()).device
        return SequenceBatch.stack([PreparedSequence.of(sequence, self.detector.normaliser, device)], self.detector.graph)

    @torch.no_grad()
    def _step(self, periods: list[PeriodInput], batch: SequenceBatch) -> list[PeriodScores | None]:
        """Score and step through consecutive new periods (each one period after the last stepped, or after a reset)."""
        node, balance, _, self._hidden = self.detector.model.run(
            batch.inputs, batch.edge_index, batch.edge_weight, batch.loading, batch.batch, self._hidden, predict_loading=False
        )
        compared: list[tuple[int, tuple[torch.Tensor, float]]] = []  # (row, the prediction made before its step)
        for i, period in enumerate(periods):
            predicted = self._predictions.get(period.start_us)
            if predicted is not None:
                compared.append((i, predicted))
            self.history.append(period)
            self._steps += 1
            self._last_us = period.start_us
            if self._steps >= self.detector.warmup + 1:
                self._predictions[period.start_us + PERIOD_US] = (node[i], float(balance[i, 0]))
        horizon = self._last_us - self.history.maxlen * PERIOD_US
        for old in [k for k in self._predictions if k < horizon]:
            del self._predictions[old]
        out: list[PeriodScores | None] = [None] * len(periods)
        for (i, _), scores in zip(compared, self._compare(batch, compared)):
            out[i] = scores
        return out

    def _compare(self, batch: SequenceBatch, compared: list[tuple[int, tuple[torch.Tensor, float]]]) -> list[PeriodScores]:
        """The scores of the rows of ``batch`` named in ``compared``, each against its prediction, in its order; all
        in one tensor operation (per period, its handful of small operations cost more than its share of the model's
        pass)."""
        if not compared:
            return []
        index = [i for i, _ in compared]
        node_pred = torch.stack([predicted[0] for _, predicted in compared])
        error = ((node_pred - batch.targets[index]) ** 2).mean(dim=2).sqrt().cpu().numpy()
        balance_pred = np.array([predicted[1] for _, predicted in compared])
        national = np.abs(balance_pred - batch.balance[index, 0].double().cpu().numpy())
        return [PeriodScores(node=error[row] / self.calibration.node_threshold,
                             national=float(national[row]) / self.calibration.period_threshold)
                for row in range(len(compared))]

    def _scores(self, period_us: int, batch: SequenceBatch, i: int) -> PeriodScores | None:
        predicted = self._predictions.get(period_us)
        return None if predicted is None else self._compare(batch, [(i, predicted)])[0]

    def score(self, period: PeriodInput) -> PeriodScores | None:
        """Score a completed (or refined) period; ``None`` while warming up or when it cannot be predicted."""
        return self.score_many([period])[0]

    def score_many(self, periods: list[PeriodInput]) -> list[PeriodScores | None]:
        """Score periods in the order given, as ``score`` would one by one; runs of consecutive new periods go
        through the model in one pass. The time taken is recorded once per call (per batch)."""
        started = time.perf_counter()
        try:
            return self._score_many(periods)
        finally:
            self._latencies_ms.append((time.perf_counter() - started) * 1000)

    def drain_latencies(self) -> list[float]:
        """Milliseconds each ``score``/``score_many`` call took since the last drain (for the latency histogram)."""
        out, self._latencies_ms = self._latencies_ms, []
        return out

    def _score_many(self, periods: list[PeriodInput]) -> list[PeriodScores | None]:
        if not periods:
            return []
        batch = self._prepared(periods)
        out: list[PeriodScores | None] = []
        run: list[int] = []  # indices (contiguous) of consecutive new periods waiting for one pass through the model

        def flush() -> None:
            if run:
                rows = slice(run[0], run[-1] + 1)
                sub = replace(batch, inputs=batch.inputs[rows], targets=batch.targets[rows], balance=batch.balance[rows],
                              loading=batch.loading[rows])
                out.extend(self._step(periods[rows], sub))
                run.clear()

        for i, period in enumerate(periods):
            last = periods[run[-1]].start_us if run else self._last_us
            if last is not None and period.start_us <= last:
                # A refinement (or a late period): score against the prediction already made, never step back.
                flush()
                for j, kept in enumerate(self.history):
                    if kept.start_us == period.start_us:
                        self.history[j] = period
                out.append(self._scores(period.start_us, batch, i))
                continue
            if last is not None and period.start_us != last + PERIOD_US:
                flush()  # a gap: the recurrent state no longer describes the last period
                self._hidden, self._steps = None, 0
            elif last is None:
                self._hidden, self._steps = None, 0
            run.append(i)
        flush()
        return out

    def replay(self, periods: list[PeriodInput]) -> None:
        """Step through already-scored periods to rebuild the state (after a restart or swap); scores nothing."""
        new = [p for p in periods if self._last_us is None or p.start_us > self._last_us]
        self._score_many(new)
