"""Data-quality detectors: per-fuel limits learned from training days, period integrity, and rejected readings.

Learned per FUELHH fuel type (``fit_fuel_limits``, from the training days' measurement table), each scored so that
1.0 is the alarm threshold:

* ``stuck_reading``: the same non-zero reading for longer than the fuel repeats one in training (CCGT never holds
  one value for three periods; IFA sits at its 2,000 MW limit for days), with a margin: a fuel's longest run grows
  as more days are seen (January–June's longest runs are exceeded in July–September by up to twice, oil's 1 → 2),
  so the alarm is at ``STUCK_MARGIN`` times the longest training run. Score: run length over that limit plus
  one. A run of zeros is a fuel that is off, not a stuck meter, and is not scored; nor is a fuel type with fewer than
  ``MIN_REPEAT_EVIDENCE`` non-zero training readings (a link that was being commissioned): its runs teach nothing.
* ``unseen_sign``: a reading whose sign (negative, zero, positive) a generating fuel type never shows in training
  (nuclear or wind reading negative). Interconnectors and pumped storage are not judged (``datasets.bidirectional``):
  they read either sign as a matter of course (exporting, pumping), so a reversed flow is normal, and a meter whose sign
  is flipped is told from a real reversal by an independent measurement of the link (NESO's flows in
  ``detect.redundancy``, the national balance), not by its sign. Score: the reading's size in
  ``SIGN_RESOLUTION_MW``, and at least 1.0 (every such reading alarms).
* ``unit_jump``: a step between consecutive non-zero readings by a factor near 1000 (a kW/MW or MW/GW mix-up).
  Score: the step in decades over the fuel's limit, the larger of its largest training step and
  ``UNIT_JUMP_MIN_DECADES`` (half a decade short of ×1000), so a ×1000 step alarms on every fuel while a coal unit
  starting up from 1 MW, which 2018 shows at ×850, does not.
* ``infeed_loss``: a generating fuel type's output falls in one period (MW), beyond its usual fall at that time of
  day (``detect.schedules``: plant follows daily market schedules, a trip keeps no time), further than training shows
  it falling at all, at the false-alarm rate shared out over the generating fuel types (so that the detector as a
  whole alarms about as often as one redundancy check), and at least ``DROP_LIMIT_FLOOR_MW``. A unit tripping shows here even when
  other plant picks the loss up, as it does within seconds: nuclear's output falls by at most about 600 MW in a
  half hour of January to September 2018, a reactor trips with 500-1,800 MW, and the CCGT fleet that picks the loss
  up moves by thousands of MW every day. Interconnectors (``INT*``) are not judged: their flows follow the market's
  hourly schedules, falling from full import to none in a period as a matter of course, and NESO's independent
  metering of each link checks them (``detect.redundancy``). Falls into or out of periods of known bad data
  (``calibration.known_bad_periods``) are left out of the fit. Score: the unscheduled fall over the limit.

Integrity (``integrity_findings``), not learned: a settlement period with no row for a group that the day reports
elsewhere (``missing_period``) or with two rows for one key (``duplicated_period``), against the day's own period
count (46 and 50 on clock-change days). And every message the live job sends to the dead-letter topic is an alert
(``stream.dead_letters``): a dead-letter queue nobody watches hides a broken meter.
"""

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from grid_guardian_assets.datasets import FUELHH, DatasetSpec, bidirectional
from grid_guardian_assets.detect.findings import STORED, Finding, Origin
from grid_guardian_assets.detect.measurements import dataset_of, fuel_columns, fuel_of, measurement
from grid_guardian_assets.grid.mapping import GENERATION_FUELS
from grid_guardian_assets.settlement import settlement_periods

STUCK_READING = "stuck_reading"
UNSEEN_SIGN = "unseen_sign"
UNIT_JUMP = "unit_jump"
INFEED_LOSS = "infeed_loss"
MISSING_PERIOD = "missing_period"
DUPLICATED_PERIOD = "duplicated_period"

STUCK_MARGIN = 2
# Non-zero training readings a fuel type needs before its longest run is a limit (two weeks of periods).
MIN_REPEAT_EVIDENCE = 672
UNIT_JUMP_MIN_DECADES = 2.5
SIGN_RESOLUTION_MW = 1.0  # FUELHH reports whole MW
# The smallest infeed-loss limit: a fuel type that hardly moves in training (oil) would otherwise alarm on a few MW,
# less than one small unit stopping, which nobody in a control room acts on.
DROP_LIMIT_FLOOR_MW = 100.0
# Integrity problems are facts, not degrees: they alarm exactly at the threshold.
INTEGRITY_SCORE = 1.0
SIGNS = ("negative", "zero", "positive")

SCORE_SCHEMA = {
    "settlementDate": pl.Date, "settlementPeriod": pl.Int64, "start": pl.Datetime("us", "UTC"), "node": pl.Utf8,
    "source": pl.Utf8, "score": pl.Float64, "value_mw": pl.Float64, "evidence": pl.Float64, "limit": pl.Float64,
}
# What ``evidence`` and ``limit`` measure, per detector (the names the findings' details use).
EVIDENCE = {STUCK_READING: ("run_periods", "repeat_limit"), UNSEEN_SIGN: ("value_mw", "sign_resolution_mw"),
            UNIT_JUMP: ("step_decades", "limit_decades"), INFEED_LOSS: ("unscheduled_drop_mw", "drop_limit_mw")}


def sign_of(value: float) -> str:
    """``SIGNS``' name of a known reading's sign (plain comparisons: the live path asks it of every reading)."""
    if value != value:  # NaN has no sign
        raise ValueError("sign_of: the reading is NaN")
    return SIGNS[int(value > 0) - int(value < 0) + 1]


@dataclass(frozen=True)
class FuelLimits:
    """What one fuel type's FUELHH readings did over the training days.

    Attributes:
        fuel: The FUELHH fuel type.
        longest_repeat: Most consecutive periods with one non-zero reading; ``0`` when fewer than
            ``MIN_REPEAT_EVIDENCE`` readings were non-zero (not judged).
        signs: The signs its readings showed (of ``SIGNS``).
        max_step_decades: Largest ``|log10(reading / previous)|`` between consecutive non-zero readings.
        periods: Training periods with a reading.
        drop_quantile_mw: The one-period fall (MW) that training exceeds at the fuel type's share of the false-alarm
            rate; ``None`` for an interconnector (not judged).
    """

    fuel: str
    longest_repeat: int
    signs: tuple[str, ...]
    max_step_decades: float
    periods: int
    drop_quantile_mw: float | None

    @property
    def repeat_limit(self) -> int | None:
        """Longest run of one non-zero reading that does not alarm; ``None``: not judged (too little evidence)."""
        return STUCK_MARGIN * self.longest_repeat if self.longest_repeat else None

    @property
    def jump_limit_decades(self) -> float:
        return max(self.max_step_decades, UNIT_JUMP_MIN_DECADES)

    @property
    def drop_limit_mw(self) -> float | None:
        """The one-period fall beyond the usual one (MW) at which ``infeed_loss`` alarms; ``None``: not judged."""
        return None if self.drop_quantile_mw is None else max(self.drop_quantile_mw, DROP_LIMIT_FLOOR_MW)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "signs": list(self.signs)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "FuelLimits":
        return cls(**{**data, "signs": tuple(data["signs"])})


def repeat_runs(values: np.ndarray) -> np.ndarray:
    """Per reading, how many consecutive readings up to and including it equal it (a NaN breaks a run, and is 0)."""
    runs = np.zeros(len(values), dtype=int)
    for i, v in enumerate(values):
        if np.isnan(v):
            continue
        runs[i] = runs[i - 1] + 1 if i > 0 and values[i - 1] == v else 1
    return runs


def step_decade(previous: float, value: float) -> float:
    """``step_decades`` of one reading after another, in plain floats (the live path asks it of every fuel type in
    every period, where numpy's per-call cost is most of the work)."""
    if not (math.isfinite(previous) and math.isfinite(value)) or previous == 0 or value == 0:
        return math.nan
    return abs(math.log10(abs(value) / abs(previous)))


def step_decades(values: np.ndarray) -> np.ndarray:
    """Per reading, ``|log10(|reading| / |previous|)|``; NaN where either is zero or unknown (and for the first)."""
    previous = np.concatenate([[np.nan], values[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.abs(np.log10(np.abs(values) / np.abs(previous)))
    return np.where(np.isfinite(steps), steps, np.nan)


def fit_fuel_limits(table: pl.DataFrame, false_alarm_rate: float, bad: np.ndarray | None = None) -> dict[str, FuelLimits]:
    """Per FUELHH fuel type of a training measurement table, its limits.

    Args:
        table: Consecutive periods in time order.
        false_alarm_rate: The share of training periods in which ``infeed_loss`` may alarm on some generating fuel
            type (each of them gets an equal part).
        bad: ``(periods,)`` periods of known bad data (``calibration.known_bad_periods``): no fall into or out of one
            teaches the infeed-loss limit.
    """
    bad = np.zeros(table.height, dtype=bool) if bad is None else np.asarray(bad, dtype=bool)
    touches_bad = bad | np.concatenate([[False], bad[:-1]])  # the step into a bad period, and the one out of it
    generating = [c for c in fuel_columns(table.columns) if fuel_of(c) in GENERATION_FUELS]
    limits = {}
    for column in fuel_columns(table.columns):
        values = table[column].cast(pl.Float64).to_numpy()
        known = values[np.isfinite(values)]
        runs = repeat_runs(values)
        steps = step_decades(values)
        fuel = fuel_of(column)
        drop_quantile = _drop_quantile(values, touches_bad, false_alarm_rate / len(generating)) if column in generating else None
        non_zero = np.isfinite(values) & (values != 0)
        limits[fuel] = FuelLimits(
            fuel=fuel,
            longest_repeat=int(runs[non_zero].max(initial=0)) if non_zero.sum() >= MIN_REPEAT_EVIDENCE else 0,
            signs=tuple(s for s in SIGNS if s in {sign_of(v) for v in known}),
            max_step_decades=float(np.nanmax(steps)) if np.isfinite(steps).any() else 0.0,
            periods=int(known.size),
            drop_quantile_mw=drop_quantile,
        )
    return limits


def _drop_quantile(values: np.ndarray, touches_bad: np.ndarray, rate: float) -> float:
    """The one-period fall of ``values`` (MW; a rise is a fall of 0) exceeded in a share ``rate`` of the periods
    not touching bad data (0 without any)."""
    falls = -np.diff(values, prepend=np.nan)[~touches_bad]
    falls = np.maximum(falls[np.isfinite(falls)], 0.0)
    return float(np.quantile(falls, 1 - rate)) if falls.size else 0.0


class FuelTrack(NamedTuple):
    """One fuel type's reading in a period and how many consecutive periods up to it held that reading."""

    value: float
    run: int


class FuelChecks:
    """The four learned per-fuel detectors, laid out for one settlement period after another.

    Each fuel type's bounds are read from its limits once (the live job scores tens of thousands of periods while it
    catches up, about twenty fuel types each).

    Args:
        limits: Per fuel type; a fuel type training never saw has none to hold it to, and is not scored.
    """

    def __init__(self, limits: Mapping[str, FuelLimits]):
        # measurement name -> (repeat limit or None, signs a reading may take, jump limit in decades, infeed-loss limit
        # in MW or None): an interconnector or pumped storage may take every sign.
        self._bounds = {measurement("FUELHH", fuel): (None if limit.repeat_limit is None else float(limit.repeat_limit),
                                                      frozenset(SIGNS if bidirectional(fuel) else limit.signs),
                                                      limit.jump_limit_decades, limit.drop_limit_mw)
                        for fuel, limit in limits.items()}
        # The measurements infeed_loss judges: the ones whose usual falls a schedule keeps.
        self.falls_judged = frozenset(name for name, bounds in self._bounds.items() if bounds[3] is not None)

    def score(self, key: Mapping[str, Any], values: Mapping[str, float | None], previous: Mapping[str, FuelTrack],
              expected_falls: Mapping[str, float] | None = None) -> tuple[list[dict[str, Any]], dict[str, FuelTrack]]:
        """The detectors on one settlement period's FUELHH readings.

        Args:
            key: The period's ``settlementDate``, ``settlementPeriod`` and ``start``, put at the head of every row.
            values: Measurement name → MW (``None`` when unknown); its ``FUELHH:*`` names are scored.
            previous: The preceding period's tracks by measurement name (empty when that period is unknown); a fuel
                type absent there had no reading.
            expected_falls: Measurement name → its usual fall (MW) at this time of day (``schedules.ScheduledFalls``);
                ``infeed_loss`` judges only the fall beyond it (absent: none is expected).

        Returns:
            The rows with a positive score, by node and source (``SCORE_SCHEMA``: the key, ``node``
            ``FUELHH:{fuel}``, ``source``, ``score`` (1.0 = alarm), ``value_mw``, ``evidence`` and ``limit``: what
            each is, ``EVIDENCE``), and this period's tracks.
        """
        rows: list[dict[str, Any]] = []
        tracks: dict[str, FuelTrack] = {}
        for column in sorted(fuel_columns(values)):
            value = values[column]
            value = math.nan if value is None else float(value)
            if not math.isfinite(value):
                continue  # no reading: no score, and the next period's run starts afresh (as ``repeat_runs``)
            before = previous.get(column)
            run = before.run + 1 if before is not None and before.value == value else 1
            tracks[column] = FuelTrack(value, run)
            bounds = self._bounds.get(column)
            if bounds is None:
                continue
            repeat_limit, signs, jump_limit, drop_limit = bounds
            step = step_decade(before.value if before else math.nan, value)
            head = {**key, "node": column}
            # In the order of the sources' names, as a table of the rows sorts.
            if drop_limit is not None and before is not None and value < before.value:
                fall = before.value - value - (expected_falls.get(column, 0.0) if expected_falls else 0.0)
                if fall > 0:
                    rows.append({**head, "source": INFEED_LOSS, "score": fall / drop_limit, "value_mw": value,
                                 "evidence": fall, "limit": drop_limit})
            if value != 0 and repeat_limit is not None:
                rows.append({**head, "source": STUCK_READING, "score": run / (repeat_limit + 1), "value_mw": value,
                             "evidence": float(run), "limit": repeat_limit})
            if step > 0:  # NaN (no step to measure) is not
                rows.append({**head, "source": UNIT_JUMP, "score": step / jump_limit, "value_mw": value, "evidence": step,
                             "limit": jump_limit})
            if sign_of(value) not in signs:
                rows.append({**head, "source": UNSEEN_SIGN, "score": max(abs(value) / SIGN_RESOLUTION_MW, 1.0),
                             "value_mw": value, "evidence": value, "limit": SIGN_RESOLUTION_MW})
        return rows, tracks


def fuel_findings(scores: pl.DataFrame | Iterable[Mapping[str, Any]], origin: Origin = STORED,
                  model_version: str = "none") -> list[Finding]:
    """``FuelChecks.score``'s rows (``SCORE_SCHEMA``; a frame or dicts) as findings (node
    ``FUELHH:{fuel}``, dataset FUELHH)."""
    findings = []
    dates: dict[dt.date, str] = {}  # a period's rows share one date: written once
    for row in scores.iter_rows(named=True) if isinstance(scores, pl.DataFrame) else scores:
        evidence, bound = EVIDENCE[row["source"]]
        day = row["settlementDate"]
        date = dates.get(day) or dates.setdefault(day, day.isoformat())
        detail: dict[str, float | str] = {"settlement_date": date,
                                          "settlement_period": row["settlementPeriod"], "value_mw": row["value_mw"],
                                          evidence: row["evidence"], bound: row["limit"]}
        findings.append(Finding(row["node"], row["start"], row["score"], row["source"], dataset_of(row["node"]), origin,
                                detail, model_version))
    return findings


def _group_label(spec: DatasetSpec, record: Mapping[str, Any]) -> str:
    return "|".join(str(record.get(g)) for g in spec.per_period_group or ())


def integrity_findings(spec: DatasetSpec, day: dt.date, records: Iterable[Mapping[str, Any]],
                       origin: Origin = STORED, model_version: str = "none") -> list[Finding]:
    """Missing and duplicated settlement periods of one day of a per-period dataset (FUELHH, INDO, ITSDO, AGWS).

    A period lacks a group (a fuel type, a psrType) when the day reports that group in another period but not in
    this one; a whole period missing is one finding on the dataset's node, a single group missing one on
    ``{CODE}:{group}``. Rows without a settlement period are left to validation, which names them.

    Args:
        spec: The dataset (its ``per_period_group`` says what must cover every period once).
        day: The settlement day.
        records: Insights API records (typed or as text); rows of other days are ignored.

    Raises:
        ValueError: For a dataset that is not one row per group and period (FREQ, B1610, PN).
    """
    if spec.per_period_group is None:
        raise ValueError(f"{spec.code} is not one row per settlement period and group")
    mine = [r for r in records if str(r.get("settlementDate")) == day.isoformat() and r.get("settlementPeriod") is not None]
    groups = sorted({_group_label(spec, r) for r in mine})
    by_period: dict[int, list[Mapping[str, Any]]] = {}
    for r in mine:
        by_period.setdefault(int(r["settlementPeriod"]), []).append(r)
    findings = []
    for period in settlement_periods(day):
        rows = by_period.get(period.number, [])
        counts = Counter(_group_label(spec, r) for r in rows)
        detail = {"settlement_date": day.isoformat(), "settlement_period": period.number}
        missing = [g for g in groups if g not in counts]
        for node, labels in _nodes(spec, missing, groups):
            findings.append(Finding(node, period.start, INTEGRITY_SCORE, MISSING_PERIOD, spec.code, origin,
                                    {**detail, "groups": labels}, model_version))
        doubled = sorted(g for g, n in counts.items() if n > 1)
        for node, labels in _nodes(spec, doubled, groups):
            copies = [r for r in rows if _group_label(spec, r) in labels.split(",")]
            versions = {(_group_label(spec, r), *(str(r.get(f)) for f in spec.value_fields)) for r in copies}
            conflicting = len(versions) > len(labels.split(","))
            findings.append(Finding(node, period.start, INTEGRITY_SCORE, DUPLICATED_PERIOD, spec.code, origin,
                                    {**detail, "groups": labels, "rows": len(copies),
                                     "conflicting": "yes" if conflicting else "no"}, model_version))
    return findings


def row_integrity_findings(start: dt.datetime, values: Mapping[str, float | None],
                           previous: Mapping[str, float | None] | None, origin: Origin = STORED,
                           model_version: str = "none") -> list[Finding]:
    """Integrity of one settlement period of a measurement row, where there are no records to count (a period
    rebuilt from snapshots, as the benchmark's cases are): the period's FUELHH readings against the period before.

    * ``missing_period``: no fuel type has a reading (every ``FUELHH:*`` unknown): the period never arrived.
    * ``duplicated_period``: every fuel type reads exactly what it read in the period before, and one is not zero:
      the previous period re-sent under the next period's key. A grid that stood still does not do this: no two
      consecutive periods of the bundled 2018 FUELHH agree in every fuel type (0 of 17,520).

    Args:
        start: The period's start (UTC), the findings' time.
        values: The period's measurements (name → MW, ``None`` when unknown).
        previous: The period before's, or ``None`` when it is unknown (the first period of a run).
        origin: Where the readings came from.
        model_version: The checkpoint scoring alongside.

    Returns:
        At most one finding, on node ``FUELHH``, score ``INTEGRITY_SCORE``.
    """
    columns = fuel_columns(values)
    readings = [values[c] for c in columns]
    if columns and all(v is None or not np.isfinite(v) for v in readings):
        return [Finding(FUELHH.code, start, INTEGRITY_SCORE, MISSING_PERIOD, FUELHH.code, origin,
                        {"groups": ",".join(fuel_of(c) for c in columns)}, model_version)]
    if previous is None or not columns or any(v is None for v in readings) or all(v == 0 for v in readings):
        return []
    if all(previous.get(c) == v for c, v in zip(columns, readings)):
        return [Finding(FUELHH.code, start, INTEGRITY_SCORE, DUPLICATED_PERIOD, FUELHH.code, origin,
                        {"groups": ",".join(fuel_of(c) for c in columns), "copy_of": "previous period"}, model_version)]
    return []


def _nodes(spec: DatasetSpec, affected: list[str], groups: list[str]) -> list[tuple[str, str]]:
    """``(node, groups)`` findings for the affected groups: one on the dataset when all are, else one per group."""
    if not affected:
        return []
    if set(affected) == set(groups) or not spec.per_period_group:
        return [(spec.code, ",".join(affected))]
    return [(f"{spec.code}:{g}", g) for g in affected]
