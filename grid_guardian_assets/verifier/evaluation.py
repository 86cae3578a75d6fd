"""Event-wise precision, recall, F1 and detection delay per anomaly type, without point adjustment.

A labelled event counts once: detected if any period from its start to ``GRACE`` periods after its end has a
calibrated score ≥ 1 (its delay is the first such period minus the start). Every other run of consecutive alarming
periods is one false-positive event. Alarms on periods whose real data is known to be bad (the benchmark's
``known_bad``: the 2018 files hold such periods on most days) are not false alerts, since the detector that raises
one is right about the data, which the benchmark does not label; inside a labelled event's span an alarm detects the
event whatever the data beneath (the marks only take alarms out of the false-alert count), unless the detector
alarms at that period of the case's untouched window too (``Benchmark.untouched``): an alarm that would be there
without the event does not detect it, so a detector is not credited with events that fall where it alarms anyway
(on July to September's cases the rules had 7 of their 183 detections so). Point
adjustment (marking a whole event detected from one hit and scoring points) is not used: it lets even a random
scorer look good (Kim et al., AAAI 2022).
"""

from dataclasses import dataclass

import numpy as np
import polars as pl

from grid_guardian_assets.verifier.anomalies import ANOMALY_TYPES, Benchmark

GRACE = 2  # periods after an event's last period in which a detection still counts
CLEAN = "clean"  # the kind of a case without an anomaly


@dataclass
class CaseOutcome:
    """How a detector did on one benchmark case.

    Attributes:
        kind: The anomaly type, or ``CLEAN``.
        detected: Whether the labelled event was detected (False on a clean case).
        delay: Periods from the event's start to its first detection; NaN if missed or clean.
        false_positives: Runs of alarming periods outside the event (and its grace periods).
        periods: The case's length in periods (what false alerts per clean day divide by).
    """

    kind: str
    detected: bool
    delay: float
    false_positives: int
    periods: int


def _runs(mask: np.ndarray) -> int:
    return int(np.sum(mask[1:] & ~mask[:-1]) + (1 if mask.size and mask[0] else 0))


def event_span(label, periods: int) -> np.ndarray:
    """``(periods,)`` where an alarm detects ``label``'s event: its start to ``GRACE`` periods after its end (none
    for a clean case, ``label`` ``None``)."""
    span = np.zeros(periods, dtype=bool)
    if label is not None:
        span[label.start : label.start + label.duration + GRACE] = True
    return span


def _alarms(period_score: np.ndarray) -> np.ndarray:
    return np.nan_to_num(period_score, nan=0.0) >= 1.0


def evaluate_case(period_score: np.ndarray, label, known_bad: np.ndarray | None = None,
                  untouched_score: np.ndarray | None = None) -> CaseOutcome:
    """How the period scores ``(L,)`` of one case did against its ``label`` (``None``: a clean case).

    Args:
        period_score: Calibrated period scores (≥ 1 alarms; NaN does not).
        label: The case's event, or ``None``.
        known_bad: ``(L,)`` periods of known bad real data: alarms there are not false alerts.
        untouched_score: The same detector's period scores on the case's window without its event: an alarm at a
            period where this alarms too does not detect the event.
    """
    alarms = _alarms(period_score)
    countable = alarms if known_bad is None else alarms & ~known_bad  # what can be a false alert
    if label is None:
        return CaseOutcome(CLEAN, False, float("nan"), _runs(countable), alarms.size)
    span = event_span(label, alarms.size)
    caused = alarms if untouched_score is None else alarms & ~_alarms(untouched_score)
    hits = np.flatnonzero(caused & span)
    return CaseOutcome(label.kind, hits.size > 0, float(hits[0] - label.start) if hits.size else float("nan"),
                       _runs(countable & ~span), alarms.size)


def evaluate(detector, calibration, benchmark: Benchmark) -> list[CaseOutcome]:
    outcomes = []
    for k, label in enumerate(benchmark.labels):
        _, period = calibration.apply(detector.raw_scores(benchmark.case(k)))
        untouched = benchmark.untouched(k) if label is not None else None
        untouched_period = None if untouched is None else calibration.apply(detector.raw_scores(untouched))[1]
        outcomes.append(evaluate_case(period, label, benchmark.known_bad[k], untouched_period))
    return outcomes


def summarise(outcomes: list[CaseOutcome]) -> pl.DataFrame:
    """One row per anomaly type, then ``clean`` (false positives on normal windows) and ``overall``."""
    rows = []

    def row(name: str, selected: list[CaseOutcome]) -> dict:
        events = [o for o in selected if o.kind != CLEAN]
        tp = sum(o.detected for o in events)
        fp = sum(o.false_positives for o in selected)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / len(events) if events else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        delays = [o.delay for o in events if o.detected]
        return {"type": name, "events": len(events), "detected": tp, "false_positives": fp, "precision": round(precision, 3),
                "recall": round(recall, 3), "f1": round(f1, 3), "mean_delay_periods": round(float(np.mean(delays)), 2) if delays else None}

    for kind in ANOMALY_TYPES:
        rows.append(row(kind, [o for o in outcomes if o.kind == kind]))
    rows.append(row(CLEAN, [o for o in outcomes if o.kind == CLEAN]))
    rows.append(row("overall", outcomes))
    return pl.DataFrame(rows)
