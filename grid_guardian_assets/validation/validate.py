"""Validate one settlement day of one dataset: drift, types, ranges, duplicates, completeness, time alignment.

A report lists every failing row with the check and the reason, so an analyst sees exactly what was wrong.
Exact duplicate rows (the same record twice) are dropped and counted; rows that share a key but disagree fail.
"""

import datetime as dt
import json
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, NamedTuple

import pandera.errors
import polars as pl

from grid_guardian_assets import gaps
from grid_guardian_assets.datasets import DatasetSpec
from grid_guardian_assets.settlement import PERIOD, day_bounds_utc, period_count, settlement_periods
from grid_guardian_assets.validation.parse import ParsedFrame
from grid_guardian_assets.validation.schemas import schema_for

# FREQ is sampled every 15 s; a gap longer than this is a hole in the record, not jitter.
FREQ_MAX_GAP = dt.timedelta(seconds=60)

FAILURE_SCHEMA = {"check": pl.Utf8, "column": pl.Utf8, "reason": pl.Utf8, "row": pl.Utf8}


@dataclass
class ValidationReport:
    """The outcome of validating one partition.

    Attributes:
        frame: The partition's rows with exact duplicates and rows of other days removed, sorted by time.
        failures: One row per problem: ``check``, ``column``, ``reason`` and the offending ``row`` as JSON.
        exact_duplicates_dropped: Rows removed because an identical row was already present.
        rows_outside_partition: Rows the API returned for another settlement day (expected for publish-time
            queries such as INDO), removed before checking.
        unexpected_fields: Fields the API sent that the spec does not know (additive drift, a warning only).
        gaps: Cells (group, settlement period) missing from the day that the source confirmed it does not have
            (``grid_guardian_assets.gaps``): recorded, not failures.
    """

    dataset: str
    day: dt.date
    frame: pl.DataFrame
    failures: pl.DataFrame
    exact_duplicates_dropped: int = 0
    rows_outside_partition: int = 0
    unexpected_fields: list[str] = field(default_factory=list)
    gaps: "frozenset[gaps.Cell]" = frozenset()

    @property
    def passed(self) -> bool:
        return self.failures.height == 0

    @property
    def complete(self) -> bool:
        """Every settlement period of the day is present (no recorded gap)."""
        return not self.gaps

    def missing_periods(self) -> list[int]:
        """Settlement periods of the recorded gap with no row at all (others lack only some groups)."""
        if not self.gaps:
            return []
        present = set(self.frame["settlementPeriod"].drop_nulls().to_list()) if "settlementPeriod" in self.frame.columns else set()
        return sorted({p for _, p in self.gaps} - present)

    def failure_counts(self) -> dict[str, int]:
        counts = self.failures.group_by("check").len().sort("check")
        return dict(zip(counts["check"].to_list(), counts["len"].to_list()))

    def failure_sample(self, per_check: int = 10) -> pl.DataFrame:
        """Up to ``per_check`` failures of each check, so one noisy check cannot hide the others."""
        return self.failures.group_by("check", maintain_order=True).head(per_check)

    def summary(self) -> str:
        if self.passed:
            return f"{self.dataset} {self.day}: {self.frame.height} rows valid"
        parts = ", ".join(f"{check}: {n}" for check, n in self.failure_counts().items())
        return f"{self.dataset} {self.day}: {self.failures.height} problems ({parts}); first: {self.failures['reason'][0]}"


class _Failures:
    def __init__(self) -> None:
        self.rows: list[dict[str, str | None]] = []

    def add(self, check: str, column: str | None, reason: str, row: dict[str, Any] | None = None) -> None:
        self.rows.append({"check": check, "column": column, "reason": reason, "row": _row_json(row)})

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema=FAILURE_SCHEMA)


def _row_json(row: dict[str, Any] | None) -> str | None:
    return None if row is None else json.dumps(row, default=str)


def _check_conflicts(spec: DatasetSpec, frame: pl.DataFrame, failures: _Failures) -> None:
    key = list(spec.key)
    dup = frame.filter(pl.struct(key).is_duplicated() & pl.all_horizontal(pl.col(key).is_not_null()))
    for row in dup.sort(key).iter_rows(named=True):
        key_text = ", ".join(f"{k}={row[k]}" for k in key)
        failures.add("conflicting_duplicates", ",".join(key), f"two or more different rows share the key ({key_text})", row)


def _schema_failures(spec: DatasetSpec, frames: list[pl.DataFrame]) -> list[list[tuple[str | None, str, dict | None]]]:
    """Pandera's verdict on each of ``frames`` (one schema, one day each), from one validation of them all: pandera's
    cost is mostly per call (a few dozen small collects), so a month of days is checked at once. Per frame, its
    failures as ``(column, reason, row)``; a failure that names no row (a wrong column type, a missing column) is
    every frame's."""
    out: list[list[tuple[str | None, str, dict | None]]] = [[] for _ in frames]
    if not frames:
        return out
    whole = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
    try:
        schema_for(spec).validate(whole, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        ends = list(accumulate(f.height for f in frames))
        for case in errors.failure_cases.iter_rows(named=True):
            index, column = case.get("index"), case.get("column")
            reason = f"{column or 'frame'} failed {case['check']} (value {case['failure_case']!r})"
            if index is None or not 0 <= index < whole.height:
                for failures in out:
                    failures.append((column, reason, None))
                continue
            which = bisect_right(ends, int(index))
            out[which].append((column, reason, whole.row(int(index), named=True)))
    return out


def _check_periods(spec: DatasetSpec, day: dt.date, frame: pl.DataFrame, failures: _Failures,
                   confirmed: frozenset[gaps.Cell] = frozenset()) -> frozenset[gaps.Cell]:
    """Completeness of a settlement-date dataset's day; returns the confirmed cells that are indeed missing (the day's
    recorded gap), and adds a failure for every other missing or extra period."""
    n = period_count(day)
    expected = set(range(1, n + 1))
    rows = frame.filter(pl.col("settlementPeriod").is_not_null())
    if spec.per_period_group is None:
        absent = expected - set(rows["settlementPeriod"].to_list())
        known = {p for p in absent if (gaps.WHOLE_DATASET, p) in confirmed}
        for p in sorted(absent - known):
            failures.add("completeness", "settlementPeriod", f"settlement period {p} of {n} has no rows")
        return frozenset((gaps.WHOLE_DATASET, p) for p in known)
    group = list(spec.per_period_group)
    groups = rows.group_by(group).agg(pl.col("settlementPeriod")).sort(group) if group else None
    items = (
        [(tuple(r[g] for g in group), r["settlementPeriod"]) for r in groups.iter_rows(named=True)]
        if groups is not None
        else [((), rows["settlementPeriod"].to_list())]
    )
    recorded: set[gaps.Cell] = set()
    for label, periods in items:
        where = f" for {', '.join(f'{g}={v}' for g, v in zip(group, label))}" if group else ""
        cell_group = "|".join(str(v) for v in label)
        absent = expected - set(periods)
        known = {p for p in absent if (cell_group, p) in confirmed or (gaps.WHOLE_DATASET, p) in confirmed}
        recorded |= {(cell_group, p) for p in known}
        missing = sorted(absent - known)
        if missing:
            failures.add(
                "completeness",
                "settlementPeriod",
                f"{len(missing)} of {n} settlement periods missing{where}: {gaps.period_ranges(missing)}",
            )
        extra = sorted(set(periods) - expected)
        if extra:
            failures.add("completeness", "settlementPeriod", f"settlement periods beyond the day's {n}{where}: {extra}")
    return frozenset(recorded)


def _check_alignment(spec: DatasetSpec, day: dt.date, frame: pl.DataFrame, failures: _Failures) -> None:
    """startTime (or halfHourEndTime) must be the UTC start (end) of the row's settlement period."""
    field_name, offset = ("startTime", 0) if "startTime" in spec.fields else ("halfHourEndTime", 1)
    if field_name not in spec.fields:
        return
    bounds = {p.number: p.start + offset * PERIOD for p in settlement_periods(day)}
    expected = pl.col("settlementPeriod").replace_strict(bounds, default=None, return_dtype=pl.Datetime("us", "UTC"))
    bad = frame.filter(
        pl.col(field_name).is_not_null() & pl.col("settlementPeriod").is_not_null() & (pl.col(field_name) != expected)
    )
    for row in bad.iter_rows(named=True):
        failures.add(
            "period_alignment",
            field_name,
            f"{field_name} {row[field_name]} is not the {'start' if offset == 0 else 'end'} of settlement period "
            f"{row['settlementPeriod']} of {day} ({bounds.get(row['settlementPeriod'])})",
            row,
        )


def _check_freq_spacing(day: dt.date, frame: pl.DataFrame, failures: _Failures) -> None:
    start, end = day_bounds_utc(day)
    times = frame["measurementTime"].drop_nulls().sort()
    if times.len() == 0:
        return
    bounds = pl.Series([start, end]).cast(times.dtype)
    edges = pl.concat([bounds.head(1), times, bounds.tail(1)])
    gaps = pl.DataFrame({"before": edges.head(-1), "after": edges.tail(-1)}).filter(
        pl.col("after") - pl.col("before") > FREQ_MAX_GAP
    )
    for before, after in gaps.iter_rows():
        failures.add(
            "completeness",
            "measurementTime",
            f"no frequency readings from {before.isoformat()} to {after.isoformat()} "
            f"({(after - before).total_seconds():.0f} s gap; at most {FREQ_MAX_GAP.total_seconds():.0f} s allowed)",
        )




def validate_partition(spec: DatasetSpec, day: dt.date, parsed: ParsedFrame,
                       confirmed_gaps: frozenset[gaps.Cell] | None = None) -> ValidationReport:
    """Check one settlement ``day`` of ``spec``; the report says whether it may be stored.

    ``confirmed_gaps``: cells the source confirmed it does not have (``ingest.fetch_partition``); missing, they are the
    report's ``gaps`` rather than failures."""
    return validate_partitions(spec, {day: parsed}, {day: confirmed_gaps} if confirmed_gaps else None)[day]


def validate_partitions(spec: DatasetSpec, parsed: Mapping[dt.date, ParsedFrame],
                        confirmed_gaps: Mapping[dt.date, frozenset[gaps.Cell] | None] | None = None) -> dict[dt.date, ValidationReport]:
    """Check settlement days of ``spec`` (a ranged run's month), each as ``validate_partition`` would alone: the
    same checks and the same report, with the pandera schema run once over all of them."""
    confirmed_gaps = confirmed_gaps or {}
    prepared = {day: _prepare(spec, day, frame) for day, frame in parsed.items()}
    checked = [day for day, p in prepared.items() if p.deduped.height]
    schema = dict(zip(checked, _schema_failures(spec, [prepared[day].deduped for day in checked])))
    reports = {}
    for day, (failures, deduped, dropped, outside) in prepared.items():
        confirmed = confirmed_gaps.get(day) or frozenset()
        recorded: frozenset[gaps.Cell] = frozenset()
        whole_day = frozenset((gaps.WHOLE_DATASET, p) for p in range(1, period_count(day) + 1))
        if deduped.height == 0 and whole_day <= confirmed and not parsed[day].missing_fields:
            recorded = whole_day  # the source confirmed it has nothing of this day: stored empty, with its gap
        elif deduped.height == 0:
            failures.add("completeness", None, f"no {spec.code} rows for settlement day {day} (expected {period_count(day)} periods)")
        else:
            for column, reason, row in schema[day]:
                failures.add("schema", column, reason, row)
            _check_conflicts(spec, deduped, failures)
            if spec.membership == "settlement_date":
                recorded = _check_periods(spec, day, deduped, failures, confirmed)
                _check_alignment(spec, day, deduped, failures)
            else:
                _check_freq_spacing(day, deduped, failures)
        reports[day] = ValidationReport(
            dataset=spec.code,
            day=day,
            frame=deduped.sort([spec.time_field, *spec.key], nulls_last=True),
            failures=failures.frame(),
            exact_duplicates_dropped=dropped,
            rows_outside_partition=outside,
            unexpected_fields=parsed[day].unexpected_fields,
            gaps=recorded,
        )
    return reports


class _PreparedDay(NamedTuple):
    """A day before its checks: drift and type failures so far, its rows without other days' and exact duplicates,
    and how many of each were removed."""

    failures: _Failures
    deduped: pl.DataFrame
    duplicates_dropped: int
    rows_outside: int


def _prepare(spec: DatasetSpec, day: dt.date, parsed: ParsedFrame) -> _PreparedDay:
    """Drift and type failures, and the day's rows with other days' and exact duplicates removed (with how many)."""
    failures = _Failures()
    for name in parsed.missing_fields:
        hint = f"; the response carried unknown fields {parsed.unexpected_fields}" if parsed.unexpected_fields else ""
        failures.add("schema_drift", name, f"field {name!r} is missing from every record{hint}")
    for err in parsed.type_errors.iter_rows(named=True):
        kind = spec.fields[err["column"]]
        failures.add("type", err["column"], f"{err['column']} value {err['value']!r} is not a valid {kind} (record {err['row']})")
    frame = parsed.frame
    inside = frame.filter(spec.of_day(day))
    # Only rows with a whole key can be "the same record twice"; rows missing key parts all stay and fail.
    keyed = pl.all_horizontal(pl.col(list(spec.key)).is_not_null())
    deduped = pl.concat([inside.filter(keyed).unique(maintain_order=True), inside.filter(~keyed)])
    return _PreparedDay(failures, deduped, inside.height - deduped.height, frame.height - inside.height)
