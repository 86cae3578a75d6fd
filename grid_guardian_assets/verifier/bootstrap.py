"""Case-level bootstrap intervals for the benchmark's event-wise numbers, one summary row per detector, and the gate.

The benchmark's cases are the unit of resampling: each stratum (an anomaly type, and the clean days) is resampled
with replacement on its own, so every resample keeps the benchmark's design (so many cases per type, so many clean
days) and only which cases were drawn varies. A 95 % interval is the 2.5th .. 97.5th percentile of the statistic
over the resamples (the percentile bootstrap), from a fixed seed so that a table is reproducible.

Cases of one benchmark may share real days (see ``build_benchmark``), which makes them somewhat dependent: the
intervals are then a little narrower than they should be. They still tell detectors apart far better than a point
estimate does.
"""

import datetime as dt
import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl

from grid_guardian_assets.settlement import PERIOD, PERIODS_PER_DAY
from grid_guardian_assets.verifier.anomalies import ANOMALY_TYPES
from grid_guardian_assets.verifier.benchmark_config import (
    DEFAULT_GATE_MARGIN,
    TARGET_F1,
    TARGET_FALSE_ALERTS_PER_CLEAN_DAY,
    TARGET_TYPE_F1,
)
from grid_guardian_assets.verifier.evaluation import CLEAN, CaseOutcome

DEFAULT_RESAMPLES = 1_000
DEFAULT_BOOTSTRAP_SEED = 0
INTERVAL_LEVEL = 0.95
PERIOD_MINUTES = PERIOD / dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap percentile interval (NaN everywhere when there is nothing to estimate)."""

    point: float
    lo: float
    hi: float


def _f1(tp: np.ndarray, fp: np.ndarray, events: int) -> np.ndarray:
    """Event-wise F1 = 2PR / (P + R) written as 2 TP / (2 TP + FP + FN), which is 0 (not undefined) without hits."""
    denominator = tp + fp + events  # 2 TP + FP + (events − TP)
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def _percentiles(samples: np.ndarray) -> tuple[float, float]:
    tail = 100 * (1 - INTERVAL_LEVEL) / 2
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return float(lo), float(hi)


class CaseBootstrap:
    """Resamples of one detector's case outcomes, stratum by stratum, drawn once and shared by every statistic.

    Args:
        outcomes: One ``CaseOutcome`` per benchmark case (any order).
        resamples: How many bootstrap resamples.
        seed: Seed of the resampling (the same seed gives the same intervals).
    """

    def __init__(self, outcomes: list[CaseOutcome], *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_BOOTSTRAP_SEED):
        self.outcomes = outcomes
        self.kind = np.array([o.kind for o in outcomes])
        self.detected = np.array([o.detected for o in outcomes], dtype=float)
        self.false_positives = np.array([o.false_positives for o in outcomes], dtype=float)
        self.delay = np.array([o.delay for o in outcomes], dtype=float)
        self.periods = np.array([o.periods for o in outcomes], dtype=float)
        rng = np.random.default_rng(seed)
        # Per stratum, a (resamples, n) matrix of case indices into ``outcomes``, drawn from that stratum only.
        self.draws: dict[str, np.ndarray] = {}
        for kind in (*ANOMALY_TYPES, CLEAN):
            members = np.flatnonzero(self.kind == kind)
            if members.size:
                self.draws[kind] = members[rng.integers(0, members.size, size=(resamples, members.size))]

    def _strata(self, kinds: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Point-estimate case indices and the ``(resamples, n)`` resampled ones over the strata ``kinds``."""
        present = [k for k in kinds if k in self.draws]
        point = np.flatnonzero(np.isin(self.kind, present))
        draws = np.concatenate([self.draws[k] for k in present], axis=1) if present else np.zeros((0, 0), dtype=int)
        return point, draws

    def f1(self, kind: str | None = None) -> Interval:
        """Event-wise F1 of one anomaly type (its events and its cases' false positives, as ``summarise``), or over
        every case, clean days included, when ``kind`` is None."""
        point, draws = self._strata(ANOMALY_TYPES + (CLEAN,) if kind is None else (kind,))
        if point.size == 0:
            return Interval(float("nan"), float("nan"), float("nan"))
        events = int(np.sum(self.kind[point] != CLEAN))  # the same in every resample: strata keep their sizes
        estimate = float(_f1(self.detected[point].sum(), self.false_positives[point].sum(), events))
        samples = _f1(self.detected[draws].sum(axis=1), self.false_positives[draws].sum(axis=1), events)
        return Interval(estimate, *_percentiles(samples))

    def false_alerts_per_clean_day(self) -> Interval:
        """False-positive runs on the clean cases per day of clean data (a day is ``PERIODS_PER_DAY`` periods)."""
        point, draws = self._strata((CLEAN,))
        if point.size == 0:
            return Interval(float("nan"), float("nan"), float("nan"))
        days = self.periods[point].sum() / PERIODS_PER_DAY
        samples = self.false_positives[draws].sum(axis=1) / (self.periods[draws].sum(axis=1) / PERIODS_PER_DAY)
        return Interval(float(self.false_positives[point].sum() / days), *_percentiles(samples))

    def median_delay_minutes(self, kind: str | None = None) -> Interval:
        """Median detection delay of the detected events of ``kind`` (of every type when None), in minutes; NaN when
        none was detected."""
        point, draws = self._strata(ANOMALY_TYPES if kind is None else (kind,))
        minutes = self.delay * PERIOD_MINUTES  # NaN for missed events
        if point.size == 0 or not np.isfinite(minutes[point]).any():
            return Interval(float("nan"), float("nan"), float("nan"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # nanmedian of a resample whose events were all missed
            samples = np.nanmedian(minutes[draws], axis=1)  # NaN for a resample without a detection: left out
        return Interval(float(np.nanmedian(minutes[point])), *_percentiles(samples))

    def mean_delay_minutes(self, kind: str | None = None) -> float:
        """The mean detection delay of the detected events of ``kind`` (of every type when None), in minutes."""
        point, _ = self._strata(ANOMALY_TYPES if kind is None else (kind,))
        minutes = self.delay[point] * PERIOD_MINUTES
        minutes = minutes[np.isfinite(minutes)]
        return float(minutes.mean()) if minutes.size else float("nan")

    def delay_quantile_minutes(self, q: float, kind: str | None = None) -> float:
        """The ``q`` quantile (0..1) of the detection delay of the detected events of ``kind``, in minutes."""
        point, _ = self._strata(ANOMALY_TYPES if kind is None else (kind,))
        minutes = self.delay[point] * PERIOD_MINUTES
        minutes = minutes[np.isfinite(minutes)]
        return float(np.quantile(minutes, q)) if minutes.size else float("nan")


def _round(value: float, digits: int) -> float | None:
    return round(value, digits) if np.isfinite(value) else None


def detector_row(
    detector: str, outcomes: list[CaseOutcome], *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_BOOTSTRAP_SEED
) -> dict[str, object]:
    """One detector's summary: overall F1 with its interval, false alerts per clean day with its interval, the
    median (with interval), 90th-percentile and mean detection delay in minutes, and the F1 of each anomaly type.

    Args:
        detector: The detector's name (the row's ``detector``).
        outcomes: Its outcome on every benchmark case.
        resamples: Bootstrap resamples.
        seed: Bootstrap seed.

    Returns:
        A flat dict (``None`` where a statistic is undefined, e.g. a delay when nothing was detected).
    """
    boot = CaseBootstrap(outcomes, resamples=resamples, seed=seed)
    f1, alerts, delay = boot.f1(), boot.false_alerts_per_clean_day(), boot.median_delay_minutes()
    row: dict[str, object] = {
        "detector": detector,
        "f1": _round(f1.point, 3), "f1_lo": _round(f1.lo, 3), "f1_hi": _round(f1.hi, 3),
        "false_alerts_per_clean_day": _round(alerts.point, 3), "false_alerts_lo": _round(alerts.lo, 3),
        "false_alerts_hi": _round(alerts.hi, 3),
        "median_delay_min": _round(delay.point, 1), "median_delay_lo": _round(delay.lo, 1), "median_delay_hi": _round(delay.hi, 1),
        "p90_delay_min": _round(boot.delay_quantile_minutes(0.9), 1),
        "mean_delay_min": _round(boot.mean_delay_minutes(), 1),
    }
    row.update({f"f1_{kind}": _round(boot.f1(kind).point, 3) for kind in ANOMALY_TYPES})
    return row


def by_type_table(outcomes: list[CaseOutcome], *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_BOOTSTRAP_SEED) -> pl.DataFrame:
    """One detector, one row per anomaly type and one ``overall``: events, F1 with its interval, median and p90
    detection delay in minutes."""
    boot = CaseBootstrap(outcomes, resamples=resamples, seed=seed)
    rows = []
    for kind in (*ANOMALY_TYPES, None):
        f1, delay = boot.f1(kind), boot.median_delay_minutes(kind)
        rows.append({
            "type": kind or "overall",
            "events": int(np.sum(boot.kind == kind)) if kind else int(np.sum(boot.kind != CLEAN)),
            "f1": _round(f1.point, 3), "f1_lo": _round(f1.lo, 3), "f1_hi": _round(f1.hi, 3),
            "median_delay_min": _round(delay.point, 1), "p90_delay_min": _round(boot.delay_quantile_minutes(0.9, kind), 1),
        })
    return pl.DataFrame(rows, schema_overrides={"f1": pl.Float64, "f1_lo": pl.Float64, "f1_hi": pl.Float64,
                                                "median_delay_min": pl.Float64, "p90_delay_min": pl.Float64})


def summary_table(
    outcomes_by_detector: dict[str, list[CaseOutcome]], *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_BOOTSTRAP_SEED
) -> pl.DataFrame:
    """One ``detector_row`` per detector, in the given order: the table for asset metadata and the README.

    Every detector is resampled with the same seed, and so on the same cases (the strata have the same members
    whatever the detector), which makes their intervals comparable.
    """
    rows = [detector_row(name, outcomes, resamples=resamples, seed=seed) for name, outcomes in outcomes_by_detector.items()]
    float_columns = [c for c in rows[0] if c != "detector"] if rows else []
    return pl.DataFrame(rows, schema_overrides={c: pl.Float64 for c in float_columns})


@dataclass(frozen=True)
class GateDecision:
    """The verifier's promotion gate.

    ``candidate_f1_lo`` (the lower end of the candidate's 95 % F1 interval) must be at least ``baseline_f1`` (the
    baseline's point F1) plus ``margin``; and where ``combined`` is named, the live job's detector with the candidate
    (``combined_f1``) must score at least as well as without it (``rules``, ``rules_f1``): a model that adds more false
    alerts than detections makes the live job worse, whatever it scores alone."""

    candidate: str
    baseline: str
    candidate_f1_lo: float
    baseline_f1: float
    margin: float
    combined: str | None = None
    combined_f1: float = float("nan")
    rules: str | None = None
    rules_f1: float = float("nan")

    @property
    def beats_baseline(self) -> bool:
        return bool(np.isfinite(self.candidate_f1_lo)) and self.candidate_f1_lo >= self.baseline_f1 + self.margin

    @property
    def adds_to_the_rules(self) -> bool:
        return self.combined is None or bool(np.isfinite(self.combined_f1)) and self.combined_f1 >= self.rules_f1

    @property
    def passed(self) -> bool:
        return self.beats_baseline and self.adds_to_the_rules

    def describe(self) -> str:
        verdict = "passes" if self.passed else "fails"
        text = (f"{self.candidate} F1 95 % interval starts at {self.candidate_f1_lo:.3f}; {self.baseline} F1 "
                f"{self.baseline_f1:.3f} + margin {self.margin:.2f} = {self.baseline_f1 + self.margin:.3f}")
        if self.combined is not None:
            text += f"; {self.combined} F1 {self.combined_f1:.3f} against {self.rules} alone {self.rules_f1:.3f}"
        return f"{text}: {verdict}"


def gate(summary: pl.DataFrame, candidate: str, baseline: str, margin: float = DEFAULT_GATE_MARGIN, *,
         combined: str | None = None, rules: str | None = None) -> GateDecision:
    """Compare ``candidate`` against ``baseline`` in a ``summary_table``: the interval's lower end of one against the
    point estimate of the other (the issue's target), so a candidate passes only when chance in which cases were
    drawn cannot explain its lead; with ``combined`` and ``rules``, the point F1 of the rules with the candidate
    against the rules alone too.

    Raises:
        KeyError: ``summary`` has no row for one of the detectors.
    """
    def value(detector: str, column: str) -> float:
        picked = summary.filter(pl.col("detector") == detector)[column]
        if picked.len() == 0:
            raise KeyError(f"no {detector!r} row in the benchmark summary (detectors: {summary['detector'].to_list()})")
        return float("nan") if picked[0] is None else float(picked[0])

    if (combined is None) != (rules is None):
        raise ValueError("gate: name both the combined detector and the rules alone, or neither")
    with_rules = {} if combined is None else {"combined": combined, "combined_f1": value(combined, "f1"), "rules": rules,
                                              "rules_f1": value(rules, "f1")}
    return GateDecision(candidate, baseline, value(candidate, "f1_lo"), value(baseline, "f1"), margin, **with_rules)


def issue_targets(summary: pl.DataFrame, detector: str, baseline: str, margin: float = DEFAULT_GATE_MARGIN) -> dict[str, object]:
    """Where ``detector`` stands against the benchmark's targets (``benchmark_config``) in a ``summary_table``: overall F1 ≥ ``TARGET_F1``, the
    lower end of its F1 interval ≥ ``baseline``'s F1 + ``margin``, every anomaly type's F1 ≥ ``TARGET_TYPE_F1``,
    and false alerts per clean day ≤ ``TARGET_FALSE_ALERTS_PER_CLEAN_DAY``.

    Returns:
        ``f1``, ``f1_lo``, ``baseline_f1`` and ``f1_lo_goal`` (it plus ``margin``), ``min_type_f1`` and
        ``weakest_type``, ``false_alerts_per_clean_day``
        (``None`` where undefined), one ``*_met`` flag per target (False where its figure is undefined), and
        ``all_met``.

    Raises:
        KeyError: ``summary`` has no row for one of the two detectors.
    """
    rows = {row["detector"]: row for row in summary.iter_rows(named=True)}
    for name in (detector, baseline):
        if name not in rows:
            raise KeyError(f"no {name!r} row in the benchmark summary (detectors: {list(rows)})")
    row, baseline_f1 = rows[detector], rows[baseline]["f1"]
    f1_lo_goal = None if baseline_f1 is None else round(baseline_f1 + margin, 3)
    by_type = {kind: row[f"f1_{kind}"] for kind in ANOMALY_TYPES if row[f"f1_{kind}"] is not None}
    weakest = min(by_type, key=by_type.__getitem__) if by_type else None

    def at_least(value: object, goal: float | None) -> bool:
        return value is not None and goal is not None and float(value) >= goal

    met = {
        "f1_met": at_least(row["f1"], TARGET_F1),
        "f1_lo_met": gate(summary, detector, baseline, margin).beats_baseline,  # the promotion gate's first rule
        "every_type_met": len(by_type) == len(ANOMALY_TYPES) and all(f1 >= TARGET_TYPE_F1 for f1 in by_type.values()),
        "false_alerts_met": row["false_alerts_per_clean_day"] is not None
        and row["false_alerts_per_clean_day"] <= TARGET_FALSE_ALERTS_PER_CLEAN_DAY,
    }
    return {
        "f1": row["f1"], "f1_lo": row["f1_lo"], "baseline_f1": baseline_f1, "f1_lo_goal": f1_lo_goal,
        "min_type_f1": by_type[weakest] if weakest else None, "weakest_type": weakest,
        "false_alerts_per_clean_day": row["false_alerts_per_clean_day"],
        **met, "all_met": all(met.values()),
    }
