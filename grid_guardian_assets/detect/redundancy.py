"""Redundancy checks: one quantity measured by two datasets, the way a state estimator finds bad data.

A ``PairCheck`` compares a FUELHH side (one or more fuel types, each its own measurement) with a reference from
another dataset. Its ``PairRelation``, learned on training days, says what the FUELHH side should read given the
reference and how far normal periods stray from that:

* **Relation**: ``measured ≈ slope × reference + intercept``, a Huber-weighted least-squares line over the fit days
  (bad data pulls a Huber line far less than an ordinary one); a reference whose interquartile range is under
  ``MIN_SPREAD_MW`` teaches no slope, and gets slope 1 and the median difference. Where the FUELHH side never goes negative in training
  but the reference does, the reference is floored at 0 first (a source that reports imports only, as a legacy scrape
  of FUELHH did, against NESO's signed flow): learned from the data, not assumed; on signed FUELHH no floor is learned.
* **Time of day**: the median of the line's residual in each local hour of the day over the fit days (where at
  least ``MIN_HOUR_PERIODS`` periods teach it), interpolated to each half-hour, is added to what the FUELHH side
  should read then: a check can keep a daily shape its line cannot follow (the national balance's station load and
  losses follow the day's load). The figures of each choice are in the benchmark notes (docs/), not here.
* **Normal spread**: ``q90(|residual|) / 1.645`` over the fit days, the standard deviation a normal residual with
  the same 90 % quantile would have, and never below ``MIN_SPREAD_MW``. A quantile rather than the MAD because the
  residuals are a tight core with a broad tail (FUELHH and NESO agree to 1 MW in most periods but differ by a steady
  ~13 MW for weeks at a time): scaled by the MAD, that ordinary tail reads as 10+ spreads.
* **Threshold** (the false-alarm rate stated): the ``1 − FALSE_ALARM_RATE`` quantile of ``|normalised residual|``
  over the validation days' normal periods, i.e. three alarms per 10,000 normal periods per check (about one per check
  every ten weeks), and at least ``MIN_THRESHOLD_SPREADS``. Normal periods are those within
  ``GROSS_ERROR_SPREADS`` of the relation: beyond that is bad data, which the 2018 files hold plenty of (whole-
  system FUELHH drop-outs, one-period B1630 wind drop-outs almost daily in some months), and which a threshold
  must sit below, not be pushed above.

* **Step** (local level): the residual less the mean of the previous ``STEP_BASELINE_PERIODS`` periods' residuals
  (those known and within ``GROSS_ERROR_SPREADS``), with its own spread and threshold, set the same way. A check's
  residual wanders slowly (the balance's by up to ±170 MW over a day, lag-1 autocorrelation 0.66) while a fault
  starts at once: measured from where the residual just was, the national balance alarms at 403 MW instead of
  642 MW, the wind check at 907 MW instead of 2,604 MW (``fit_detectors``' defaults). The step sees a fault's onset
  (and its end); the residual itself keeps seeing one that lasts.

A finding's score is the larger of ``|normalised residual| / threshold`` and ``|normalised step| / step threshold``
(1.0 = alarm). Its node is the suspect measurement, found as a state estimator's largest-normalised-residual test
finds it: for every measurement ``m``, the statistic ``|Σₖ Aₖₘ zₖ| / ‖A·ₘ‖`` over the checks ``k`` evaluated in the
period (``zₖ`` the normalised residual, or its departure from the local level where the step scores more, ``Aₖₘ``
how a 1 MW error in ``m`` moves it) measures how well one gross error in ``m`` explains all the residuals together,
and each check names its measurement with the largest. FUELHH's wind, for instance, is in the balance, wind and
B1610 checks; an AGWS fault moves only the wind check, a frozen FUELHH wind moves all three. Measurements no other
check covers tie (INDO and FUELHH's INTNEM in the balance): a tie goes to the check's reference measurement, and
the finding lists every tied candidate.
"""

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import polars as pl

from grid_guardian_assets.detect.findings import Finding, Origin
from grid_guardian_assets.detect.measurements import INDO, ITSDO, STORED, dataset_of, fuel_columns, measurement
from grid_guardian_assets.grid.mapping import PSR_FUELS
from grid_guardian_assets.settlement import LONDON

# Alarms per check and normal settlement period. Six checks run on a day's 48 periods before B1610 arrives (its nine
# match FUELHH by construction here, B1610 being synthetic): 3e-4 spends about 0.09 of the combined detector's budget
# of 0.5 false alerts per clean day, leaving the rest to the model. Chosen on the validation split
# (bench_ablation.py --rules-only --false-alarm-rate): 1e-3 gave F1 0.653 and 0.167 false alerts per clean day, 3e-4
# 0.697 and 0.05, 1e-4 0.701 and 0.017 (before alarms inside an event's span on known bad data counted as detections;
# after, 1e-3 gives 0.692 and 3e-4 0.738); 1e-4 is not taken, since 4,400 validation periods cannot estimate it (it is
# about their largest residual).
FALSE_ALARM_RATE = 3e-4
# The national balance: signed FUELHH supply against INDO (the state estimator's version of the power_imbalance band).
BALANCE_CHECK = "redundancy:balance"
SPREAD_QUANTILE = 0.9
GROSS_ERROR_SPREADS = 6.0
# FUELHH and NESO report whole MW and, in 2018, differ by a steady ~13 MW on IFA and BritNed for weeks at a time;
# B1610 (synthetic here) matches FUELHH to rounding. No spread below this is credible for a national MW figure.
MIN_SPREAD_MW = 10.0
# Below three spreads a threshold would alarm on ordinary variation (0.3 % of normal periods for a normal residual).
MIN_THRESHOLD_SPREADS = 3.0
HUBER_K = 1.345  # 95 % efficiency on normal residuals
# The step's baseline: residuals are correlated over about an hour (the balance's lag-1 autocorrelation is 0.66, lag-2
# 0.23, lag-4 0.03 on the validation days), so the two periods before are where a period's residual should be. A
# longer baseline drifts away from it: in a first measurement on the validation days (a median baseline) the balance's
# step alarmed at 428 MW with two periods, 541 MW with four and 660 MW with eight.
STEP_BASELINE_PERIODS = 2
# The time of day is learned per local hour (a median of each hour's two periods) and read per half-hour, interpolated
# between the hours' middles. On the validation split (bench_ablation.py --rules-only, fits before July), with F1
# and false-positive runs: per-hour offsets, read as steps, 0.853 and 22 (the balance's step alarmed at 04:00 local,
# where the night's offset jumps by 79 MW); per-half-hour medians 0.848 and 25; interpolated hours, the one kept,
# 0.866 and 14.
OFFSET_HOURS = 24
SLOTS_PER_HOUR = 2
# An hour seen for fewer fit periods than this (two weeks of its two periods) teaches no offset.
MIN_HOUR_PERIODS = 28
MIN_FIT_PERIODS = 96  # two days
# Relative difference under which two suspects' statistics are one tie (the same formula rounds differently).
TIE_TOLERANCE = 1e-9

# FUELHH's interconnector fuel types and NESO's flow on the same link (imports positive in both).
NESO_FLOW_OF = {"INTFR": "IFA_FLOW", "INTIFA2": "IFA2_FLOW", "INTNED": "BRITNED_FLOW", "INTIRL": "MOYLE_FLOW",
                "INTEW": "EAST_WEST_FLOW", "INTNEM": "NEMO_FLOW", "INTNSL": "NSL_FLOW", "INTELEC": "ELECLINK_FLOW"}
# BMRS's initial demand outturns and NESO's settled figures of the same demand.
NESO_DEMAND_OF = {INDO: "ND", ITSDO: "TSD"}
AGWS_WIND = ("Wind Offshore", "Wind Onshore")


@dataclass(frozen=True)
class PairCheck:
    """Two measurements of one quantity.

    Attributes:
        name: The finding's ``source``, e.g. ``redundancy:balance``.
        measured: FUELHH columns whose sum is one side; each is a measurement a fault can be in.
        reference: Columns whose sum is the other side, one measurement (e.g. AGWS offshore + onshore wind).
        reference_name: What the reference is called when it is the suspect, e.g. ``AGWS:wind``.
    """

    name: str
    measured: tuple[str, ...]
    reference: tuple[str, ...]
    reference_name: str

    @property
    def measurements(self) -> tuple[str, ...]:
        """Every measurement the check covers, reference first (ties go to it)."""
        return (self.reference_name, *self.measured)

    def sides(self, table: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(measured, reference)`` MW per row; NaN where a column the table has is null, or it has none of them.

        A reference column the table lacks altogether counts as no units of that kind (B1610 reports only the
        production types that metered something).
        """
        return _sum(table, self.measured), _sum(table, self.reference)

    def period_sides(self, values: Mapping[str, float | None]) -> tuple[float, float]:
        """``(measured, reference)`` MW of one period's measurements (name → MW, ``None`` when unknown).

        NaN where a measured column is absent or unknown (a FUELHH side short of a fuel type is not that
        quantity), or where a reference column present is unknown, or none is present. An absent reference column
        counts as no units of that kind, as ``sides`` counts one a table lacks. When the reference is unknown the
        check cannot run and the measured side is not summed (NaN): while a backlog of FUELHH streams in ahead of the
        other datasets, no check can.
        """
        reference = _period_sum([_known(values[c]) for c in self.reference if c in values])
        if reference != reference:
            return math.nan, reference
        return _period_sum([_known(values.get(c)) for c in self.measured]), reference

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "measured": list(self.measured), "reference": list(self.reference),
                "reference_name": self.reference_name}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PairCheck":
        return cls(data["name"], tuple(data["measured"]), tuple(data["reference"]), data["reference_name"])


def _sum(table: pl.DataFrame, columns: Sequence[str]) -> np.ndarray:
    present = [c for c in columns if c in table.columns]
    if not present:
        return np.full(table.height, np.nan)
    values = table.select(pl.col(present).cast(pl.Float64)).to_numpy()
    return values.sum(axis=1)  # NaN (a null) anywhere makes the side unknown


def _known(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _period_sum(values: list[float]) -> float:
    return float(sum(values)) if values else float("nan")  # a NaN anywhere makes the side unknown


def local_slots(starts: pl.Series) -> np.ndarray:
    """The time-of-day slot (the Europe/London half-hour of the day, 0–47) of each period start (a UTC datetime
    column); -1 where null."""
    local = starts.dt.convert_time_zone(LONDON.key)
    return (local.dt.hour() * 2 + local.dt.minute() // 30).fill_null(-1).to_numpy().astype(int)


def local_slot(start: dt.datetime) -> int:
    """The time-of-day slot (the Europe/London half-hour of the day, 0–47) of a tz-aware period start."""
    local = start.astimezone(LONDON)
    return local.hour * 2 + local.minute // 30


def b1610_groups() -> dict[tuple[str, ...], list[str]]:
    groups: dict[tuple[str, ...], list[str]] = {}
    for psr, fuels in PSR_FUELS.items():
        groups.setdefault(fuels, []).append(psr)
    return groups


def default_checks(columns: Iterable[str]) -> list[PairCheck]:
    """The four kinds of redundancy check, for whichever of their measurements ``columns`` holds.

    * ``redundancy:balance``: FUELHH supply (every fuel type, signed: imports, and exports and pumping as negatives)
      against INDO. Signed supply less national demand is transmission losses and station load alone: on January–June
      2018 the Huber line's residuals spread 63 MW (q90 / 1.645) against INDO and 604 MW against ITSDO, which adds
      pumping and exports back.
    * ``redundancy:wind``: FUELHH wind (transmission-metered only) against AGWS offshore + onshore wind.
    * ``redundancy:interconnector:{INT}``: each FUELHH interconnector against NESO's flow on the link.
    * ``redundancy:demand:{INDO,ITSDO}``: BMRS's initial national and transmission system demand against NESO's
      settled ND and TSD (two publishers, two metering runs of one quantity).
    * ``redundancy:b1610:{fuels}``: each FUELHH fuel group against B1610's metered units of it (``PSR_FUELS``).
    """
    columns = list(columns)
    fuels = fuel_columns(columns)
    present = set(columns)
    checks = []
    if fuels and INDO in present:
        checks.append(PairCheck(BALANCE_CHECK, tuple(fuels), (INDO,), INDO))
    wind = tuple(measurement("AGWS", p) for p in AGWS_WIND)
    if measurement("FUELHH", "WIND") in present and present & set(wind):
        checks.append(PairCheck("redundancy:wind", (measurement("FUELHH", "WIND"),), wind, "AGWS:wind"))
    for fuel, flow in NESO_FLOW_OF.items():
        if measurement("FUELHH", fuel) in present and measurement("NESO", flow) in present:
            checks.append(PairCheck(f"redundancy:interconnector:{fuel}", (measurement("FUELHH", fuel),),
                                    (measurement("NESO", flow),), measurement("NESO", flow)))
    for bmrs, settled in NESO_DEMAND_OF.items():
        if bmrs in present and measurement("NESO", settled) in present:
            checks.append(PairCheck(f"redundancy:demand:{bmrs}", (bmrs,), (measurement("NESO", settled),),
                                    measurement("NESO", settled)))
    for group, psrs in b1610_groups().items():
        measured = tuple(measurement("FUELHH", f) for f in group if measurement("FUELHH", f) in present)
        reference = tuple(measurement("B1610", p) for p in psrs)
        if measured and present & set(reference):
            label = "+".join(group)
            checks.append(PairCheck(f"redundancy:b1610:{label}", measured, reference, measurement("B1610", label)))
    return checks


def huber_line(x: np.ndarray, y: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """``(slope, intercept)`` of a Huber-weighted least-squares line (IRLS, scale from the residuals' MAD)."""
    design = np.column_stack([x, np.ones_like(x)])
    beta = np.linalg.lstsq(design, y, rcond=None)[0]
    for _ in range(iterations):
        residual = y - design @ beta
        scale = max(1.4826 * float(np.median(np.abs(residual - np.median(residual)))), 1e-6)
        weight = np.sqrt(np.minimum(1.0, HUBER_K * scale / np.maximum(np.abs(residual), 1e-12)))
        updated = np.linalg.lstsq(design * weight[:, None], y * weight, rcond=None)[0]
        if np.allclose(updated, beta, rtol=1e-10, atol=1e-9):
            break
        beta = updated
    return float(beta[0]), float(beta[1])


@dataclass(frozen=True)
class PairRelation:
    """A check's learned relation, spread and threshold (see the module docstring for how each is set).

    Attributes:
        check: The two sides.
        slope, intercept: ``expected measured = slope × reference + intercept`` (MW).
        reference_floor: The reference is raised to this first (0.0 for imports-only FUELHH), or ``None``.
        spread_mw: A normal residual's spread (MW).
        threshold: Alarm threshold in spreads (score 1.0).
        false_alarm_rate: The rate the threshold was set to on the validation days' normal periods.
        fit_periods, validation_periods: Periods the relation and the threshold were learned from.
        gross_errors: Validation periods beyond ``GROSS_ERROR_SPREADS``, left out of the threshold as bad data.
        step_spread_mw: A normal step's spread (MW): the residual less its local level (``step_residuals``).
        step_threshold: The step's alarm threshold in step spreads.
        time_of_day_offset_mw: The median residual of each local hour of the day (``OFFSET_HOURS`` values, MW), from
            which ``offsets`` interpolates what is added to the expected FUELHH side; empty in calibrations stored
            before the time of day was learned (no offset).
    """

    check: PairCheck
    slope: float
    intercept: float
    reference_floor: float | None
    spread_mw: float
    threshold: float
    false_alarm_rate: float
    fit_periods: int
    validation_periods: int
    gross_errors: int
    step_spread_mw: float
    step_threshold: float
    time_of_day_offset_mw: tuple[float, ...] = ()

    def floored(self, reference: np.ndarray) -> np.ndarray:
        return reference if self.reference_floor is None else np.maximum(reference, self.reference_floor)

    def offsets(self, slots: np.ndarray | int) -> np.ndarray:
        """The time-of-day offset (MW) at each half-hour slot ``slots`` (``local_slots``; -1, unknown: none): the hourly
        medians interpolated, around the clock, at the slot's middle."""
        return interpolated_offsets(self.time_of_day_offset_mw, slots)

    def expected(self, reference: np.ndarray, slots: np.ndarray | int = -1) -> np.ndarray:
        """What the FUELHH side should read given the reference at time-of-day ``slots`` (MW)."""
        return self.slope * self.floored(reference) + self.intercept + self.offsets(slots)

    def normalised(self, measured: np.ndarray, reference: np.ndarray, slots: np.ndarray | int = -1) -> np.ndarray:
        """Signed residual in spreads (NaN where either side is unknown)."""
        return (measured - self.expected(reference, slots)) / self.spread_mw

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "check": self.check.to_json(), "time_of_day_offset_mw": list(self.time_of_day_offset_mw)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PairRelation":
        return cls(**{**data, "check": PairCheck.from_json(data["check"]),
                      "time_of_day_offset_mw": tuple(data.get("time_of_day_offset_mw", ()))})


def interpolated_offsets(medians: Sequence[float], slots: np.ndarray | int) -> np.ndarray:
    """``medians`` (one per local hour, MW; empty: none) interpolated, around the clock, at the middle of each
    half-hour slot ``slots`` (``local_slots``); 0 at slot -1 (unknown)."""
    table = np.zeros(OFFSET_HOURS * SLOTS_PER_HOUR + 1)  # the last entry, which index -1 reads, stays 0
    if medians:
        middles = (np.arange(OFFSET_HOURS * SLOTS_PER_HOUR) + 0.5) / SLOTS_PER_HOUR  # in hours
        table[:-1] = np.interp(middles, np.arange(OFFSET_HOURS) + 0.5, medians, period=OFFSET_HOURS)
    return table[np.asarray(slots, dtype=int)]


def local_level(baseline: np.ndarray) -> np.ndarray:
    """The mean over axis 0 of a step's baseline residuals (normalised; one row per baseline period), counting only
    those known and within ``GROSS_ERROR_SPREADS``: bad data is no level to step from. NaN where none counts."""
    usable = np.where(np.abs(baseline) <= GROSS_ERROR_SPREADS, baseline, np.nan)
    counted = np.isfinite(usable).sum(axis=0)
    return np.where(counted > 0, np.nansum(usable, axis=0) / np.maximum(counted, 1), np.nan)


def step_residuals(normalised: np.ndarray) -> np.ndarray:
    """Each period's normalised residual less the ``local_level`` of the previous ``STEP_BASELINE_PERIODS`` periods'
    (rows in time order, one per period). NaN where the period or all of its baseline is unknown."""
    baseline = np.full((STEP_BASELINE_PERIODS, len(normalised)), np.nan)
    for lag in range(1, STEP_BASELINE_PERIODS + 1):
        baseline[lag - 1, lag:] = normalised[:-lag]
    return normalised - local_level(baseline)


def _spread(residual: np.ndarray) -> float:
    """The standard deviation a normal residual with the same ``SPREAD_QUANTILE`` quantile of ``|residual|`` would
    have, and at least ``MIN_SPREAD_MW`` (MW; ``residual`` holds no NaN)."""
    normal_quantile = NormalDist().inv_cdf(0.5 + SPREAD_QUANTILE / 2)
    return max(float(np.quantile(np.abs(residual), SPREAD_QUANTILE)) / normal_quantile, MIN_SPREAD_MW)


def _threshold(z: np.ndarray, false_alarm_rate: float) -> tuple[float, int]:
    """``(threshold, gross errors)``: the ``1 − false_alarm_rate`` quantile of ``|z|`` over the normal periods (within
    ``GROSS_ERROR_SPREADS``), at least ``MIN_THRESHOLD_SPREADS``, and how many periods were beyond (``z`` holds no
    NaN)."""
    normal = np.abs(z) <= GROSS_ERROR_SPREADS
    return max(float(np.quantile(np.abs(z[normal]), 1 - false_alarm_rate)), MIN_THRESHOLD_SPREADS), int((~normal).sum())


def hourly_medians(residual: np.ndarray, slots: np.ndarray) -> tuple[float, ...]:
    """The median of ``residual`` (MW, no NaN) in each local hour of the day (``slots``: half-hours), 0 where fewer
    than ``MIN_HOUR_PERIODS`` periods fall in it."""
    hours = slots // SLOTS_PER_HOUR
    return tuple(float(np.median(residual[hours == h])) if (hours == h).sum() >= MIN_HOUR_PERIODS else 0.0
                 for h in range(OFFSET_HOURS))


def fit_relation(check: PairCheck, fit: pl.DataFrame, validation: pl.DataFrame,
                 false_alarm_rate: float = FALSE_ALARM_RATE) -> PairRelation:
    """Learn a check's relation and spreads on ``fit`` and its thresholds on ``validation`` (measurement tables of
    consecutive periods, in time order).

    Raises:
        ValueError: When either table has fewer than ``MIN_FIT_PERIODS`` periods with both sides known.
    """
    all_measured, all_reference = check.sides(fit)
    known = np.isfinite(all_measured) & np.isfinite(all_reference)
    v_measured, v_reference = check.sides(validation)
    v_known = np.isfinite(v_measured) & np.isfinite(v_reference)
    if known.sum() < MIN_FIT_PERIODS or v_known.sum() < MIN_FIT_PERIODS:
        raise ValueError(f"{check.name}: {known.sum()} fit and {v_known.sum()} validation periods with both sides; "
                         f"need {MIN_FIT_PERIODS} of each")
    measured, reference = all_measured[known], all_reference[known]
    floor = 0.0 if measured.min() >= 0 and reference.min() < 0 else None
    floored = reference if floor is None else np.maximum(reference, floor)
    low, high = np.quantile(floored, [0.25, 0.75])
    if high - low < MIN_SPREAD_MW:
        # A reference that hardly moves (FUELHH oil: 0 in almost every period) cannot teach a slope: take 1.
        slope, intercept = 1.0, float(np.median(measured - floored))
    else:
        slope, intercept = huber_line(floored, measured)
    slots, v_slots = local_slots(fit["start"]), local_slots(validation["start"])
    residual = measured - (slope * floored + intercept)
    medians = hourly_medians(residual, slots[known])
    spread = _spread(residual - interpolated_offsets(medians, slots[known]))
    relation = PairRelation(check, slope, intercept, floor, spread, MIN_THRESHOLD_SPREADS, false_alarm_rate,
                            int(known.sum()), int(v_known.sum()), 0, spread, MIN_THRESHOLD_SPREADS, medians)
    # The step is measured in the static residual's spreads first, then given a spread of its own.
    fit_steps = step_residuals(relation.normalised(all_measured, all_reference, slots)) * spread
    step_spread = _spread(fit_steps[np.isfinite(fit_steps)])
    z = relation.normalised(v_measured, v_reference, v_slots)
    threshold, gross = _threshold(z[v_known], false_alarm_rate)
    steps = step_residuals(z) * spread / step_spread
    static_normal = np.abs(z) <= GROSS_ERROR_SPREADS
    step_threshold, _ = _threshold(steps[np.isfinite(steps) & static_normal], false_alarm_rate)
    return PairRelation(check, slope, intercept, floor, spread, threshold, false_alarm_rate, int(known.sum()),
                        int(v_known.sum()), gross, step_spread, step_threshold, medians)


PERIOD_KEY = ("settlementDate", "settlementPeriod", "start")
RESULT_SCHEMA = {
    "settlementDate": pl.Date, "settlementPeriod": pl.Int64, "start": pl.Datetime("us", "UTC"), "check": pl.Utf8,
    "measured_mw": pl.Float64, "reference_mw": pl.Float64, "expected_mw": pl.Float64, "normalised_residual": pl.Float64,
    "step_residual": pl.Float64, "score": pl.Float64, "suspect": pl.Utf8, "suspect_statistic": pl.Float64,
    "candidates": pl.List(pl.Utf8),
}


class PeriodChecks:
    """The calibrated checks prepared for one settlement period after another.

    What does not change from period to period (which measurements there are, each check's slope, floor and spread,
    which measurement each of its columns is) is laid out in arrays once; a period then costs a few array operations,
    and nothing beyond its sides when no check has both (only FUELHH has arrived, say). The live job scores tens of
    thousands of periods while it catches up.

    Args:
        relations: The calibrated checks.
    """

    def __init__(self, relations: Mapping[str, PairRelation]):
        self.relations = list(relations.values())
        rels = self.relations
        names = list(dict.fromkeys(m for r in rels for m in r.check.measurements))
        index = {n: i for i, n in enumerate(names)}
        self.columns = [[index[m] for m in r.check.measurements] for r in rels]  # each check's measurements
        self.slope = np.array([r.slope for r in rels], dtype=float)
        self.intercept = np.array([r.intercept for r in rels], dtype=float)
        self.spread = np.array([r.spread_mw for r in rels], dtype=float)
        self.threshold = np.array([r.threshold for r in rels], dtype=float)
        # A step in the static residual's spreads, times this, is in step spreads.
        self.step_scale = np.array([r.spread_mw / r.step_spread_mw for r in rels], dtype=float)
        self.step_threshold = np.array([r.step_threshold for r in rels], dtype=float)
        # (K, slots + 1): each check's offset at each half-hour slot, and 0 last, for an unknown one (-1).
        slots = np.r_[np.arange(OFFSET_HOURS * SLOTS_PER_HOUR), -1]
        self.time_of_day_offset = np.array([r.offsets(slots) for r in rels], dtype=float)
        self.floored = np.array([r.reference_floor is not None for r in rels])
        self.floor = np.array([0.0 if r.reference_floor is None else r.reference_floor for r in rels], dtype=float)
        # sensitivity[k, m]: how a 1 MW error in measurement m moves check k's normalised residual; the reference's
        # entry depends on the period (a floored reference below its floor does not move the residual).
        self.measured_sensitivity = np.zeros((len(rels), len(names)))
        for k, rel in enumerate(rels):
            for column in rel.check.measured:
                self.measured_sensitivity[k, index[column]] = 1.0 / rel.spread_mw
        self.reference_column = np.array([index[r.check.reference_name] for r in rels], dtype=int)

    def evaluate(self, values: Mapping[str, float | None], previous: Sequence[Mapping[str, float]] = (),
                 slot: int = -1) -> list[dict[str, Any]]:
        """Every check on one settlement period's measurements where both its sides are known.

        Args:
            values: Measurement name → MW (``None`` when unknown); see ``PairCheck.period_sides`` for absent names.
            previous: The normalised residuals (check name → spreads) of the periods before this one, latest first,
                as this method returned them; the first ``STEP_BASELINE_PERIODS`` are the step's baseline (see
                ``step_residuals``). Empty, or a check absent from them: the step is unknown and only the residual
                scores.
            slot: The period's time-of-day slot (``local_slot``), which picks each check's time-of-day
                offset; -1: none.

        Returns:
            One row per check that ran, with ``RESULT_SCHEMA``'s fields but the period's: ``check``, ``measured_mw``,
            ``reference_mw``, ``expected_mw``, ``normalised_residual`` (signed, in spreads), ``step_residual`` (signed,
            in step spreads; NaN without a baseline), ``score`` (1.0 = alarm: the larger of the residual's and the
            step's), ``suspect`` (the measurement the period's residuals point to, of this check's),
            ``suspect_statistic`` (its largest-normalised-residual statistic) and ``candidates`` (every measurement
            tied with it).
        """
        rels = self.relations
        if not rels:
            return []
        sides = np.array([r.check.period_sides(values) for r in rels])
        measured_mw, reference_mw = sides[:, 0], sides[:, 1]
        floored = np.where(self.floored, np.maximum(reference_mw, self.floor), reference_mw)
        expected_mw = self.slope * floored + self.intercept + self.time_of_day_offset[:, slot]
        z = (measured_mw - expected_mw) / self.spread  # (K,), NaN where a side is unknown
        known = np.isfinite(z)
        if not known.any():
            return []
        moves = np.where(self.floored, (reference_mw > self.floor).astype(float), 1.0)
        sensitivity = self.measured_sensitivity.copy()
        sensitivity[np.arange(len(rels)), self.reference_column] = -self.slope * moves / self.spread
        sensitivity *= known[:, None]
        departure = z - self._levels(previous)  # from the local level, in the check's spreads; NaN without one
        step = departure * self.step_scale
        static_score, step_score = np.abs(z) / self.threshold, np.abs(step) / self.step_threshold
        # The suspect is sought in what raised each check's score: its residual, or its step where that scores more.
        driving = np.where(step_score > static_score, departure, z)
        explained = np.where(known, driving, 0.0) @ sensitivity
        with np.errstate(invalid="ignore", divide="ignore"):
            statistic = np.abs(explained) / np.sqrt((sensitivity**2).sum(axis=0))
        score = np.fmax(static_score, step_score)
        rows = []
        for k in np.flatnonzero(known):
            rel, (measured, reference) = rels[k], sides[k]
            stats = statistic[self.columns[k]]
            best = float(np.nanmax(stats))
            tied = [rel.check.measurements[i] for i, s in enumerate(stats) if s >= best * (1 - TIE_TOLERANCE)]
            rows.append({"check": rel.check.name, "measured_mw": float(measured), "reference_mw": float(reference),
                         "expected_mw": float(expected_mw[k]), "normalised_residual": float(z[k]),
                         "step_residual": float(step[k]), "score": float(score[k]), "suspect": tied[0],
                         "suspect_statistic": best, "candidates": tied})
        return rows

    def _levels(self, previous: Sequence[Mapping[str, float]]) -> np.ndarray:
        """``(K,)`` each check's ``local_level`` over the baseline periods, in its spreads."""
        return local_level(np.array([[p.get(r.check.name, math.nan) for r in self.relations]
                                     for p in previous[:STEP_BASELINE_PERIODS]] or [[math.nan] * len(self.relations)]))


def period_suspects(result: pl.DataFrame) -> pl.DataFrame:
    """Per settlement period, the check with the largest score and the measurement it names."""
    return (
        result.sort("score", descending=True)
        .group_by("settlementDate", "settlementPeriod", maintain_order=True)
        .first()
        .select("settlementDate", "settlementPeriod", "start", "check", "score", "suspect")
        .sort("start")
    )


def redundancy_findings(result: pl.DataFrame | Iterable[Mapping[str, Any]], origin: Origin = STORED,
                        model_version: str = "none") -> list[Finding]:
    """``PeriodChecks.evaluate``'s rows with their period's key (``RESULT_SCHEMA``; a frame or dicts) as findings: node the
    suspect measurement, source the check, dataset the suspect's."""
    findings = []
    for row in result.iter_rows(named=True) if isinstance(result, pl.DataFrame) else result:
        detail: dict[str, float | str] = {
            "settlement_date": row["settlementDate"].isoformat(), "settlement_period": row["settlementPeriod"],
            "measured_mw": row["measured_mw"], "reference_mw": row["reference_mw"], "expected_mw": row["expected_mw"],
            "normalised_residual": row["normalised_residual"], "step_residual": row["step_residual"],
            "suspect_statistic": row["suspect_statistic"],
            "candidates": ",".join(row["candidates"]),
        }
        findings.append(Finding(row["suspect"], row["start"], row["score"], row["check"], dataset_of(row["suspect"]),
                                origin, detail, model_version))
    return findings

