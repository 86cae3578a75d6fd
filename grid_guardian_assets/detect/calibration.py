"""Fitting every detector on the stored days of its windows, its JSON form, and what it does on held-out days.

The windows (``grid_guardian_assets.windows``) say which days: the redundancy relations and spreads learn on the ``fit``
window, their thresholds are set on the ``threshold`` window, and the per-fuel data-quality limits come from both. The
``held_out`` window is never used to fit or choose anything (``Windows`` refuses overlapping windows), and
``held_out_alarm_rates`` only measures on it. Everything is read from the daily chains' stores
(``measurements.StoredMeasurements``): a check whose datasets are not stored for the windows is not fitted, and the
calibration says so (``DetectorCalibration.not_fitted``) instead of failing.
"""

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from grid_guardian_assets.datasets import AGWS, FUELHH
from grid_guardian_assets.detect.data_quality import (
    SCORE_SCHEMA,
    STUCK_READING,
    UNIT_JUMP,
    UNSEEN_SIGN,
    FuelChecks,
    FuelLimits,
    FuelTrack,
    fit_fuel_limits,
    fuel_findings,
    integrity_findings,
)
from grid_guardian_assets.detect.findings import Finding, Origin
from grid_guardian_assets.detect.measurements import (
    INDO,
    ITSDO,
    NESO_COLUMNS,
    STORED,
    StoredMeasurements,
    fuel_columns,
    measurement,
)
from grid_guardian_assets.detect.redundancy import (
    AGWS_WIND,
    BALANCE_CHECK,
    FALSE_ALARM_RATE,
    GROSS_ERROR_SPREADS,
    RESULT_SCHEMA,
    STEP_BASELINE_PERIODS,
    PairRelation,
    PeriodChecks,
    b1610_groups,
    default_checks,
    fit_relation,
    local_slot,
    redundancy_findings,
)
from grid_guardian_assets.detect.schedules import ScheduledFalls, period_falls
from grid_guardian_assets.settlement import PERIOD
from grid_guardian_assets.windows import DayWindow, Windows

# A reading under this share of both its neighbours is a drop-out (a whole-system FUELHH gap, a B1630 wind glitch).
DROPOUT_SHARE = 0.6
# 2: the redundancy checks' step spreads and thresholds; 3: the fuel types' infeed-loss limits; 4: the checks not
# fitted, and why
FORMAT_VERSION = 4


def _possible_columns(fuels: Iterable[str]) -> list[str]:
    """Every reference a check may be fitted against, beside the FUELHH columns ``fuels`` a store holds: what the
    checks would be with every dataset stored (to name those a calibration could not fit)."""
    return [*fuels, INDO, ITSDO, *(measurement("NESO", c) for c in NESO_COLUMNS),
            *(measurement("AGWS", p) for p in AGWS_WIND), *(measurement("B1610", p) for ps in b1610_groups().values() for p in ps)]


@dataclass(frozen=True)
class DetectorCalibration:
    """Everything the detectors learned, as an asset stores it and the live job loads it.

    Attributes:
        relations: Redundancy check name → its relation, spread and threshold.
        fuel_limits: FUELHH fuel type → its data-quality limits.
        fit_days, validation_days: First and last day of the fit and threshold windows.
        false_alarm_rate: The rate the redundancy thresholds were set to.
        not_fitted: Redundancy check name → why it was not fitted (its datasets not stored for the windows, too few
            periods with both sides): the live job runs without it and says so.
    """

    relations: dict[str, PairRelation]
    fuel_limits: dict[str, FuelLimits]
    fit_days: tuple[dt.date, dt.date]
    validation_days: tuple[dt.date, dt.date]
    false_alarm_rate: float
    not_fitted: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "fit_days": [d.isoformat() for d in self.fit_days],
            "validation_days": [d.isoformat() for d in self.validation_days],
            "false_alarm_rate": self.false_alarm_rate,
            "relations": {name: r.to_json() for name, r in self.relations.items()},
            "fuel_limits": {fuel: limit.to_json() for fuel, limit in self.fuel_limits.items()},
            "not_fitted": self.not_fitted,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DetectorCalibration":
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"detector calibration format {data.get('format_version')!r}, expected {FORMAT_VERSION}: "
                             "materialise detector_calibration again")
        first, last = (dt.date.fromisoformat(d) for d in data["fit_days"])
        v_first, v_last = (dt.date.fromisoformat(d) for d in data["validation_days"])
        return cls(
            relations={name: PairRelation.from_json(r) for name, r in data["relations"].items()},
            fuel_limits={fuel: FuelLimits.from_json(limit) for fuel, limit in data["fuel_limits"].items()},
            fit_days=(first, last),
            validation_days=(v_first, v_last),
            false_alarm_rate=float(data["false_alarm_rate"]),
            not_fitted=dict(data.get("not_fitted", {})),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path: Path) -> "DetectorCalibration":
        return cls.from_json(json.loads(path.read_text()))


def fit_detectors(measurements: StoredMeasurements, windows: Windows, *,
                  false_alarm_rate: float = FALSE_ALARM_RATE) -> DetectorCalibration:
    """Fit every detector on the stored days of ``windows``' fit and threshold windows.

    Args:
        measurements: The stores to read.
        windows: Relations, spreads and limits learn on ``fit``, thresholds on ``threshold``; ``held_out`` is not read.
        false_alarm_rate: Alarms per check and normal settlement period at the thresholds.

    Raises:
        ValueError: No FUELHH is stored for the fit window (nothing to fit).
    """
    fit_days, validation_days = windows.fit.days(), windows.threshold.days()
    fit = measurements.table(fit_days)
    validation = measurements.table(validation_days)
    fuels = fuel_columns(fit.columns)
    if not fuels:
        raise ValueError(f"no FUELHH stored for the fit window {windows.fit.describe()}: nothing to fit")
    relations: dict[str, PairRelation] = {}
    not_fitted: dict[str, str] = {}
    for check in default_checks(fit.columns):
        try:
            relations[check.name] = fit_relation(check, fit, validation, false_alarm_rate)
        except ValueError as exc:
            not_fitted[check.name] = str(exc)
    for check in default_checks(_possible_columns(fuels)):
        if check.name not in relations and check.name not in not_fitted:
            lacking = sorted({name.split(":", 1)[0] for name in (*check.measured, *check.reference)
                              if name not in fit.columns})
            not_fitted[check.name] = f"{', '.join(lacking)} not stored for the fit window {windows.fit.describe()}"
    training = pl.concat([fit, validation], how="diagonal_relaxed").sort("start")
    fit_range, validation_range = (fit_days[0], fit_days[-1]), (validation_days[0], validation_days[-1])
    # Bad data teaches no step limit: the periods the relations just fitted know to be bad (FUELHH's whole-system
    # glitches move nuclear by 3,000 MW and more), found before any fuel type has limits.
    relations_only = DetectorCalibration(relations, {}, fit_range, validation_range, false_alarm_rate)
    bad = training["start"].is_in(known_bad_periods(relations_only, training, measurements)).to_numpy()
    return DetectorCalibration(relations, fit_fuel_limits(training, false_alarm_rate, bad), fit_range, validation_range,
                               false_alarm_rate, dict(sorted(not_fitted.items())))


@dataclass(frozen=True)
class Detection:
    """What the learned detectors found in a measurement table: ``redundancy.PeriodChecks.evaluate``'s rows
    (``RESULT_SCHEMA``) and ``data_quality.FuelChecks.score``' rows (``SCORE_SCHEMA``) of every period."""

    redundancy: pl.DataFrame
    fuel: pl.DataFrame

    def findings(self, origin: Origin = STORED) -> list[Finding]:
        return redundancy_findings(self.redundancy, origin) + fuel_findings(self.fuel, origin)

    def alarms(self) -> list[Finding]:
        return [f for f in self.findings() if f.alert]


@dataclass(frozen=True)
class PeriodDetection:
    """What the learned detectors found in one settlement period: rows of ``RESULT_SCHEMA`` and ``SCORE_SCHEMA``."""

    redundancy: list[dict[str, Any]]
    fuel: list[dict[str, Any]]

    def findings(self, origin: Origin = STORED, model_version: str = "none") -> list[Finding]:
        return redundancy_findings(self.redundancy, origin, model_version) + fuel_findings(self.fuel, origin, model_version)


class PeriodDetector:
    """Every learned detector stepped through settlement periods as they are scored: the one code path of the batch
    ``detect`` and the live job.

    The redundancy checks need the period and their residuals of the periods before it (a step's baseline); the
    per-fuel detectors need the period before it (a run of one reading, a step between readings) and the fuel types'
    falls of the week before (``detect.schedules``: ``infeed_loss`` judges the fall beyond the usual one). So each scored
    period's ``FuelTrack``s and normalised residuals are kept by its start. A period rescored (late demand, AGWS or
    B1610 refining it) is scored against the same preceding periods again, and a period whose predecessors were never
    scored (a gap) starts its runs afresh and has no step, as a null row does in a table.

    Args:
        calibration: The fitted detectors.
        keep_periods: Periods whose state is kept (the live job keeps ``STEP_BASELINE_PERIODS`` more than it keeps
            periods for refinement, so the oldest refinable period still has its predecessors').
    """

    def __init__(self, calibration: DetectorCalibration, keep_periods: int = STEP_BASELINE_PERIODS):
        self.calibration, self.keep_periods = calibration, keep_periods
        self.checks = PeriodChecks(calibration.relations)
        self.fuel_checks = FuelChecks(calibration.fuel_limits)
        self.tracks: dict[dt.datetime, dict[str, FuelTrack]] = {}
        self.residuals: dict[dt.datetime, dict[str, float]] = {}
        self.schedule = ScheduledFalls(self.fuel_checks.falls_judged)

    def score(self, settlement_date: dt.date, number: int, start: dt.datetime,
              values: Mapping[str, float | None]) -> PeriodDetection:
        """Score one period's measurements (name → MW, ``None`` when unknown; see ``measurements``' names)."""
        key = {"settlementDate": settlement_date, "settlementPeriod": number, "start": start}
        before = self.tracks.get(start - PERIOD, {})
        fuel, self.tracks[start] = self.fuel_checks.score(key, values, before, self.schedule.expected(settlement_date, number))
        self.schedule.add(settlement_date, number, period_falls({k: t.value for k, t in self.tracks[start].items()},
                                                                {k: t.value for k, t in before.items()}))
        previous = [self.residuals.get(start - lag * PERIOD, {}) for lag in range(1, STEP_BASELINE_PERIODS + 1)]
        redundancy = self.checks.evaluate(values, previous, local_slot(start))
        if redundancy:  # a catch-up's FUELHH, ahead of every reference, leaves nothing to keep
            self.residuals[start] = {row["check"]: row["normalised_residual"] for row in redundancy}
        else:
            self.residuals.pop(start, None)
        for state in (self.tracks, self.residuals):
            if len(state) > self.keep_periods:
                for old in sorted(state)[: len(state) - self.keep_periods]:
                    del state[old]
        return PeriodDetection([{**key, **row} for row in redundancy], fuel)

    def learn_schedule(self, table: pl.DataFrame) -> None:
        """Learn the usual falls (``detect.schedules``) from a table of the consecutive periods before those to be
        scored, without scoring them: what the live job would have seen of the days before."""
        previous: dict[str, float | None] = {}
        for row in table.iter_rows(named=True):
            if row["settlementDate"] is None:  # a period the table has no row for
                previous = {}
                continue
            values = {name: row.get(name) for name in self.schedule.measurements}
            self.schedule.add(row["settlementDate"], row["settlementPeriod"], period_falls(values, previous))
            previous = values

    def to_json(self) -> dict[str, Any]:
        return {
            "tracks": {start.isoformat(): {name: [t.value, t.run] for name, t in tracks.items()}
                       for start, tracks in self.tracks.items()},
            "residuals": {start.isoformat(): residuals for start, residuals in self.residuals.items()},
            "scheduled_falls": self.schedule.to_json(),
        }

    def load_json(self, data: Mapping[str, Any]) -> None:
        self.tracks = {dt.datetime.fromisoformat(start): {name: FuelTrack(float(v), int(r)) for name, (v, r) in tracks.items()}
                       for start, tracks in data.get("tracks", {}).items()}
        self.residuals = {dt.datetime.fromisoformat(start): {name: float(z) for name, z in residuals.items()}
                          for start, residuals in data.get("residuals", {}).items()}
        self.schedule.load_json(data.get("scheduled_falls", {}))


def balance_checked(findings: Iterable[Finding]) -> bool:
    """Whether the learned national balance check (signed FUELHH supply against INDO) scored a period, given the period's
    detector findings (of every score). Where it did, it replaces the fixed ``power_imbalance`` band
    (``grid.physics.LOSS_MIN``…``LOSS_MAX`` of supply, set against INDO, which leaves out pumping, station load and
    exports): both judge the national balance, and the learned check compares the same quantity measured twice, with
    its normal spread, and names the suspect. Where it did not (no calibration, no INDO yet, a fuel type missing from
    the period), the band still runs."""
    return any(f.source == BALANCE_CHECK and math.isfinite(f.score) for f in findings)


def detect(calibration: DetectorCalibration, table: pl.DataFrame) -> Detection:
    """Run the redundancy checks and the per-fuel detectors over a measurement table (consecutive periods), period
    by period as the live job does (``PeriodDetector``)."""
    detector = PeriodDetector(calibration)
    redundancy: list[dict[str, Any]] = []
    fuel: list[dict[str, Any]] = []
    for row in table.iter_rows(named=True):
        found = detector.score(row["settlementDate"], row["settlementPeriod"], row["start"], row)
        redundancy.extend(found.redundancy)
        fuel.extend(found.fuel)
    return Detection(pl.DataFrame(redundancy, schema=RESULT_SCHEMA).sort("start", "check"),
                     pl.DataFrame(fuel, schema=SCORE_SCHEMA))


def dropouts(table: pl.DataFrame) -> pl.Series:
    """Per period, whether FUELHH's total or AGWS's wind is under ``DROPOUT_SHARE`` of both its neighbours: bad data
    anyone can see without a detector, used to tell clean held-out days from the rest."""
    sums = {"supply": fuel_columns(table.columns),
            "wind": [c for c in (measurement("AGWS", p) for p in AGWS_WIND) if c in table.columns]}
    present = {name: columns for name, columns in sums.items() if columns}  # a dataset not stored has no drop-out
    if not present:
        return pl.Series("dropout", [False] * table.height, dtype=pl.Boolean)
    frame = table.select(**{name: pl.sum_horizontal(columns) for name, columns in present.items()})
    flags = [
        (pl.col(c) < DROPOUT_SHARE * pl.min_horizontal(pl.col(c).shift(1), pl.col(c).shift(-1))).fill_null(False)
        for c in present
    ]
    return frame.select(pl.any_horizontal(flags).alias("dropout"))["dropout"]


def _day_records(measurements: StoredMeasurements, spec, days: Sequence[dt.date]) -> dict[dt.date, list[dict[str, Any]]]:
    """The stored rows of ``spec`` on ``days`` as records, by day."""
    rows = measurements.rows(spec, days)
    by_day: dict[dt.date, list[dict[str, Any]]] = {day: [] for day in days}
    for record in rows.to_dicts():
        by_day.setdefault(record["settlementDate"], []).append(record)
    return by_day


def known_bad_periods(calibration: DetectorCalibration, table: pl.DataFrame,
                      measurements: StoredMeasurements) -> list[dt.datetime]:
    """Starts of the periods of a measurement table whose real data is known to be bad, and their neighbours.

    Known bad, by criteria that do not depend on any detector's threshold: two independent measurements of one
    quantity disagree by ``GROSS_ERROR_SPREADS`` or more of the check's normal spread (FUELHH's IFA reading 334 MW
    while NESO's flow on the link is 1,999 MW, on 2018-07-12 at 11:00), or their disagreement jumps by as many of its
    normal step spreads from one period to the next (the checks' thresholds leave both out as bad data), a drop-out
    (``dropouts``), or a FUELHH fuel type missing from the period (``integrity_findings`` on the stored rows, which
    a day with a recorded gap lacks). The 2018 data holds such periods on most days (some in 51 of the 92 days of July
    to September), so the benchmark cannot leave them out; it marks them, and an alarm on a marked period is not a
    false alert (``verifier.evaluation``). The period before and after each is marked too: a check that reads the
    period before (a step, a run) alarms next to it.
    """
    found = detect(calibration, table)
    # A step without a baseline is NaN, which polars sorts above every number: it is no gross step.
    gross = found.redundancy.filter((pl.col("normalised_residual").abs() >= GROSS_ERROR_SPREADS)
                                    | (pl.col("step_residual").fill_nan(0.0).abs() >= GROSS_ERROR_SPREADS))["start"].to_list()
    dropped = table.filter(dropouts(table))["start"].to_list()
    days = table["settlementDate"].unique().sort().to_list()
    broken = [f.time for day, records in _day_records(measurements, FUELHH, days).items()
              for f in integrity_findings(FUELHH, day, records)]
    bad = set(gross) | set(dropped) | set(broken)
    return sorted(bad | {t + PERIOD for t in bad} | {t - PERIOD for t in bad})


def clean_days(table: pl.DataFrame, measurements: StoredMeasurements) -> list[dt.date]:
    """Days of a measurement table with every FUELHH and AGWS period stored once (a day with a recorded gap is not
    clean), INDO in every period, and no drop-out (``dropouts``)."""
    flagged = table.with_columns(dropout=dropouts(table))
    days = flagged["settlementDate"].unique().sort().to_list()
    fuel_records, wind_records = _day_records(measurements, FUELHH, days), _day_records(measurements, AGWS, days)
    clean = []
    for (day,), rows in flagged.group_by("settlementDate", maintain_order=True):
        if rows["dropout"].any() or INDO not in rows.columns or rows[INDO].null_count() or not fuel_records[day] or not wind_records[day]:
            continue
        if not integrity_findings(FUELHH, day, fuel_records[day]) and not integrity_findings(AGWS, day, wind_records[day]):
            clean.append(day)
    return sorted(clean)


def held_out_alarm_rates(calibration: DetectorCalibration, measurements: StoredMeasurements,
                         window: DayWindow) -> pl.DataFrame:
    """Per detector (finding source), alarm periods per day on ``window``'s stored days and on the clean ones among
    them.

    A redundancy check counts only the days it could run on (NESO's flows stop on 2018-12-14). Measurement only:
    nothing here feeds back into the calibration.
    """
    table = measurements.table(window.days())
    found = detect(calibration, table)
    good = set(clean_days(table, measurements))
    scored = pl.concat([
        found.redundancy.select("settlementDate", "settlementPeriod", "score", source="check"),
        found.fuel.select("settlementDate", "settlementPeriod", "score", "source"),
    ])
    every_day = set(table["settlementDate"].to_list())
    rows = []
    for source in [*calibration.relations, STUCK_READING, UNSEEN_SIGN, UNIT_JUMP]:
        mine = scored.filter(pl.col("source") == source)
        ran = set(mine["settlementDate"].to_list()) if source in calibration.relations else every_day
        alarms = mine.filter(pl.col("score") >= 1).select("settlementDate", "settlementPeriod").unique()
        on_clean = alarms.filter(pl.col("settlementDate").is_in(sorted(good)))
        rows.append((source, len(ran), alarms.height, alarms.height / max(len(ran), 1), len(ran & good), on_clean.height,
                     on_clean.height / max(len(ran & good), 1)))
    return pl.DataFrame(rows, orient="row", schema={
        "source": pl.Utf8, "days": pl.Int64, "alarm_periods": pl.Int64, "per_day": pl.Float64, "clean_days": pl.Int64,
        "alarm_periods_clean": pl.Int64, "per_clean_day": pl.Float64})
