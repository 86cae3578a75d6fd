"""The solver: the GNN verifier as a detector that must find a scenario, and how it learns from them.

An attempt is **solved** (reward 1) when a calibrated alarm (score ≥ 1) falls in the scenario's periods (or the
``GRACE`` periods after), as the benchmark scores an event; otherwise the reward is 0. The solver sees the scenario
as the live job would (national readings spread over the buses: ``verifier.observation``), so it cannot be asked for
the bus: it still names the bus with the highest score (``localised`` says whether that is the scenario's) and the
type (nearest centroid of the reading's change at that bus, learned from accepted scenarios), reported beside the
reward, not in it.

Update: the model is fine-tuned to predict the clean next period from a history that contains the scenario
(a denoising forecast loss on the accepted scenarios' windows, plus the ordinary forecast loss on the clean windows
so normal behaviour is not forgotten), then recalibrated on the checkpoint's clean calibration days, and its alarm
threshold is tuned (a scale of 0.7–2× the calibrated one) for the best event-wise F1 on the round's accepted
scenarios and their clean windows: the solver learns its operating point from what the proposer invented.
"""

from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
from torch.nn.functional import mse_loss

from grid_guardian_assets.selfplay.scenarios import SYSTEM_KINDS, Scenario
from grid_guardian_assets.verifier.evaluation import GRACE, evaluate_case, summarise
from grid_guardian_assets.verifier.scoring import Calibration, LearnedDetector
from grid_guardian_assets.verifier.sequences import GridSequence, balance_ratio
from grid_guardian_assets.verifier.train import PreparedSequence, SequenceBatch, predict


@dataclass
class Attempt:
    detected: bool
    localised: bool
    located_bus: int
    type_guess: str | None
    peak_score: float

    @property
    def solved(self) -> bool:
        return self.detected


def signature(window: GridSequence, bus: int, t: int, detector: LearnedDetector) -> np.ndarray:
    """What changed at ``bus`` into period ``t``: normalised feature changes, frequency change, balance change,
    and whether the period repeats the last or is empty (the cues a type leaves)."""
    norm = detector.normaliser
    change = (window.node[t, bus] - window.node[t - 1, bus]) / norm.node_std[bus]
    freq = np.nan_to_num((window.frequency[t] - window.frequency[t - 1]) / norm.frequency_std)
    balance = (balance_ratio(window.node[t : t + 1]) - balance_ratio(window.node[t - 1 : t]))[0] / norm.balance_std
    repeated = float(np.array_equal(window.node[t], window.node[t - 1]))
    empty = float(not window.node[t].any())
    return np.concatenate([np.sign(change) * np.log1p(np.abs(change)), [freq, balance, repeated, empty]]).astype(np.float64)


class Solver:
    """A detector, its calibration and the type centroids (``{type: (signature mean, count)}``)."""

    def __init__(self, detector: LearnedDetector, calibration: Calibration,
                 centroids: dict[str, tuple[np.ndarray, int]] | None = None):
        self.detector, self.calibration = detector, calibration
        self.centroids = centroids or {}

    def attempt(self, injected: GridSequence, scenario: Scenario) -> Attempt:
        node, period = self.calibration.apply(self.detector.raw_scores(injected))
        span = slice(scenario.start, min(scenario.start + scenario.duration + GRACE, len(injected)))
        alarms = np.nan_to_num(period[span], nan=0.0) >= 1.0
        detected = bool(alarms.any())
        window_scores = np.nan_to_num(node[span], nan=-np.inf)
        located = int(np.argmax(window_scores.max(axis=0)))
        localised = detected if scenario.kind in SYSTEM_KINDS else (detected and located == scenario.bus)
        first = scenario.start + (int(np.argmax(alarms)) if detected else 0)
        guess = self.guess_type(signature(injected, located, first, self.detector)) if first >= 1 else None
        peak = float(np.nanmax(node[span])) if np.isfinite(node[span]).any() else 0.0
        return Attempt(detected, localised, located, guess, peak)

    def guess_type(self, sig: np.ndarray) -> str | None:
        if not self.centroids:
            return None
        return min(self.centroids, key=lambda k: float(np.sum((self.centroids[k][0] - sig) ** 2)))

    def learn_types(self, examples: list[tuple[str, np.ndarray]]) -> None:
        """Fold accepted scenarios' signatures into the running type centroids."""
        for kind, sig in examples:
            mean, count = self.centroids.get(kind, (np.zeros_like(sig), 0))
            self.centroids[kind] = ((mean * count + sig) / (count + 1), count + 1)

    def fine_tuned(self, pairs: list[tuple[GridSequence, GridSequence]], steps: int, learning_rate: float,
                   calibration_sequences: list[GridSequence], false_alarm_rate: float, seed: int,
                   labels: list | None = None) -> "Solver":
        """A new solver trained on ``(clean, injected)`` window pairs, recalibrated on clean data; with ``labels``
        (one ``AnomalyLabel`` per pair) its alarm threshold is then tuned on the pairs (``tuned_calibration``)."""
        torch.manual_seed(seed)
        base = self.detector
        model = type(base.model)(base.model.in_channels, base.model.out_channels, base.model.hidden_channels, base.model.heads)
        model.load_state_dict(base.model.state_dict())
        device = next(base.model.parameters()).device
        model.to(device).train()
        clean = [PreparedSequence.of(c, base.normaliser, device) for c, _ in pairs]
        noisy = [PreparedSequence.of(i, base.normaliser, device) for _, i in pairs]
        # Inputs with the scenario, targets without it; plus the clean windows as they are.
        denoise = [PreparedSequence(n.inputs, c.targets, c.balance, c.loading) for c, n in zip(clean, noisy)]
        batch = SequenceBatch.stack(denoise + clean, base.graph)
        optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
        w = base.warmup
        for _ in range(steps):
            optimiser.zero_grad()
            node, balance, loading = predict("gnn", model, batch)
            loss = mse_loss(node[w:-1], batch.targets[w + 1 :]) + 0.5 * mse_loss(balance[w:-1], batch.balance[w + 1 :])
            loss = loss + 0.5 * mse_loss(loading[w:-1], batch.loading[w + 1 :])
            loss.backward()
            optimiser.step()
        model.eval()
        detector = LearnedDetector("gnn", model, base.normaliser, base.warmup, base.graph)
        # Calibrated as its parent was (with its daily alert budget, or without one for a checkpoint from before
        # budgets): the gate then compares the models, not two ways of setting thresholds.
        budget = self.calibration.alerts_per_day
        calibration = detector.calibrate(calibration_sequences, false_alarm_rate,
                                         alerts_per_day=budget if np.isfinite(budget) else None)
        if labels:
            tuned = tuned_calibration(detector, calibration, pairs, labels)
            if tuned != calibration:  # state the false-alarm rate the new threshold has on the clean calibration days
                node = np.concatenate([detector.raw_scores(c).node.ravel() for c in calibration_sequences])
                node = node[np.isfinite(node)]
                rate = float((node >= tuned.node_threshold).mean()) if node.size else float("nan")
                calibration = Calibration(tuned.node_threshold, tuned.period_threshold, rate)
        return Solver(detector, calibration, {k: (v[0].copy(), v[1]) for k, v in self.centroids.items()})


THRESHOLD_SCALES = (0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 1.75, 2.0)


def tuned_calibration(detector: LearnedDetector, calibration: Calibration, pairs: list[tuple[GridSequence, GridSequence]],
                      labels: list) -> Calibration:
    """The alarm threshold (a scale of the calibrated one) with the best event-wise F1 on the round's own labelled
    scenarios and their clean windows: the operating point learned from self-play, not from the benchmark."""
    raws = [(detector.raw_scores(injected), label) for (_, injected), label in zip(pairs, labels)]
    raws += [(detector.raw_scores(clean), None) for clean, _ in pairs]
    best, best_f1 = calibration, -1.0
    for scale in THRESHOLD_SCALES:
        trial = Calibration(calibration.node_threshold * scale, calibration.period_threshold * scale, calibration.false_alarm_rate,
                            calibration.alerts_per_day)
        outcomes = [evaluate_case(trial.apply(raw)[1], label) for raw, label in raws]
        f1 = float(summarise(outcomes).filter(pl.col("type") == "overall")["f1"][0])
        if f1 > best_f1 + 1e-9 or (abs(f1 - best_f1) <= 1e-9 and abs(scale - 1.0) < abs(best.node_threshold / calibration.node_threshold - 1.0)):
            best, best_f1 = trial, f1
    return best
