"""One chain per BMRS dataset: raw responses, validated polars frames, HDF5 store.

The chains are asset *specs*; they are computed by the settlement-day multi-asset (``defs/daily``), which works
through a range of days one at a time. This module holds what is BMRS-specific: the specs, the blocking ``valid``
check, and the work of one dataset's settlement days (taken and parsed one by one, validated a month at a time),
returned as Dagster events so that each day is recorded as its own partition (a bad day is not materialised; the good
days around it are).
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import polars as pl

from grid_guardian_assets.datasets import DatasetSpec
from grid_guardian_assets.defs.bmrs.partitions import bmrs_daily_partitions
from grid_guardian_assets.defs.resources import BmrsStorageResource
from grid_guardian_assets.elexon.responses import ElexonError
from grid_guardian_assets.reporting import markdown_table
from grid_guardian_assets.settlement import period_count

if TYPE_CHECKING:  # pandera and h5py load where a day is validated or stored, not with the code location
    from concurrent.futures import Future

    from grid_guardian_assets import gaps
    from grid_guardian_assets.store.hdf5 import StoredPartition
    from grid_guardian_assets.store.raw_archive import RawPartition
    from grid_guardian_assets.validation import ParsedFrame, ValidationReport

ELEXON_POOL = "elexon_api"
VALID_CHECK = "valid"
COMPLETE_CHECK = "complete"


def raw_key(spec: DatasetSpec) -> dg.AssetKey:
    return dg.AssetKey(f"{spec.name}_raw")


def frames_key(spec: DatasetSpec) -> dg.AssetKey:
    return dg.AssetKey(f"{spec.name}_frames")


def store_key(spec: DatasetSpec) -> dg.AssetKey:
    return dg.AssetKey(f"{spec.name}_store")


def bmrs_asset_specs(spec: DatasetSpec) -> list[dg.AssetSpec]:
    """``{name}_raw`` -> ``{name}_frames`` -> ``{name}_store`` for one dataset."""
    common = {
        "partitions_def": bmrs_daily_partitions,
        "group_name": f"bmrs_{spec.name}",
        "tags": {"dataset": spec.code},
        # Each settlement day is recorded as it is done; a day that fails is left out, not the whole range.
        "skippable": True,
    }
    return [
        dg.AssetSpec(
            raw_key(spec),
            kinds={"python", "json"},
            description=f"Raw Insights API responses for {spec.code} ({spec.description}), gzip'd JSON per fetch.",
            **common,
        ),
        dg.AssetSpec(
            frames_key(spec),
            deps=[raw_key(spec)],
            kinds={"polars", "parquet"},
            description=f"{spec.code} rows of one settlement day, typed and validated (pandera, polars backend).",
            **common,
        ),
        dg.AssetSpec(
            store_key(spec),
            deps=[frames_key(spec)],
            kinds={"hdf5"},
            description=f"{spec.code} settlement days in HDF5 (h5py, chunked, gzip); a rewrite replaces the day.",
            **common,
        ),
    ]


def valid_check_spec(spec: DatasetSpec) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        VALID_CHECK,
        asset=frames_key(spec),
        blocking=True,
        # Recorded per settlement day, so the UI shows which day passed or failed.
        partitions_def=bmrs_daily_partitions,
        description="pandera schema, physical ranges, unique keys, every settlement period present, "
        "no conflicting duplicates. A failing settlement day is not stored.",
    )


def complete_check_spec(spec: DatasetSpec) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        COMPLETE_CHECK,
        asset=store_key(spec),
        blocking=False,
        partitions_def=bmrs_daily_partitions,
        description="Every settlement period of the day is stored. A day whose missing periods the source confirmed on "
        "a second fetch (periods Elexon never published) is stored with its gap, and this check warns, naming them; "
        "downstream assets leave those periods out.",
    )


def gap_metadata(cells: "frozenset[gaps.Cell]") -> dict[str, object]:
    """What a stored day's recorded gap looks like in metadata: the missing periods per group, and how many."""
    from grid_guardian_assets import gaps

    return {"missing_cells": len(cells), "missing_periods": dg.MetadataValue.json(gaps.describe(cells))}


def complete_evaluation(spec: DatasetSpec, day: dt.date, cells: "frozenset[gaps.Cell]") -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=store_key(spec),
        check_name=COMPLETE_CHECK,
        passed=not cells,
        metadata={"partition": day.isoformat(), **gap_metadata(cells)},
        severity=dg.AssetCheckSeverity.WARN,
        partition=day.isoformat(),
    )


def _time_range(spec: DatasetSpec, frame: pl.DataFrame) -> dict[str, str]:
    times = frame[spec.time_field].drop_nulls()
    if times.len() == 0 or not times.dtype.is_temporal():  # NESO's rows are ordered by period alone
        return {}
    return {"time_min": times.min().isoformat(), "time_max": times.max().isoformat()}


def _check_metadata(report: "ValidationReport") -> dict[str, object]:
    meta: dict[str, object] = {
        "partition": report.day.isoformat(),
        "failures": report.failures.height,
        "exact_duplicates_dropped": report.exact_duplicates_dropped,
        "rows_outside_partition": report.rows_outside_partition,
        "settlement_periods_expected": period_count(report.day),
    }
    if report.unexpected_fields:
        meta["unexpected_fields"] = ", ".join(report.unexpected_fields)
    if not report.passed:
        meta["failures_by_check"] = dg.MetadataValue.json(report.failure_counts())
        sample = report.failure_sample(per_check=10)
        meta["failing_rows"] = dg.MetadataValue.md(
            f"{sample.height} of {report.failures.height} problems, up to 10 per check:\n\n" + markdown_table(sample, limit=sample.height)
        )
    return meta


def _check_evaluation(spec: DatasetSpec, day: dt.date, passed: bool, metadata: dict[str, object]) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=frames_key(spec),
        check_name=VALID_CHECK,
        passed=passed,
        metadata=metadata,
        severity=dg.AssetCheckSeverity.ERROR,
        blocking=True,
        partition=day.isoformat(),
    )


@dataclass
class DatasetDay:
    """What one dataset's settlement day produced: Dagster events, the frame to store, or why the day is bad.

    Between ``take_dataset_day`` and ``validate_dataset_days`` it holds the day's parsed responses (``parsed``) and
    where they came from (not the responses themselves: a month of them waits for validation)."""

    spec: DatasetSpec
    day: dt.date
    events: list[object] = field(default_factory=list)
    frame: pl.DataFrame | None = None
    error: str | None = None
    parsed: "ParsedFrame | None" = None
    raw_path: Path | None = None
    synthetic: bool = False
    confirmed_gaps: "frozenset[gaps.Cell] | None" = None
    gaps: "frozenset[gaps.Cell]" = frozenset()


def take_dataset_day(
    spec: DatasetSpec,
    day: dt.date,
    selected: Iterable[dg.AssetKey],
    fetched: "Future[RawPartition] | None",
    storage: BmrsStorageResource,
    base_url: str,
) -> DatasetDay:
    """Take the fetch (if ``{name}_raw`` is selected) and parse it for validation (if ``{name}_frames`` is), or read
    the frame to store (if only ``{name}_store`` is).

    ``fetched`` is the day's fetch, already under way (``fetch_partition`` in a background thread, so that the
    next days download while this one is parsed); it raises ``ElexonError`` when the fetch failed. Upstream
    stages that are not selected are read from where an earlier run left them (the raw archive, the frame files),
    so a day can be re-validated or re-stored without fetching it again. Validation is ``validate_dataset_days``'s
    (a month of days at once) and storing is the caller's (a month of days in one HDF5 rewrite).
    """
    from grid_guardian_assets.validation import frame_from_raw

    selected = set(selected)
    out = DatasetDay(spec, day)
    raw = None
    if raw_key(spec) in selected:
        if fetched is None:
            raise ValueError(f"{raw_key(spec).to_user_string()} is selected for {day} but nothing fetched it")
        try:
            raw = fetched.result()
        except ElexonError as exc:
            out.error = str(exc)
            return out
        out.events.append(
            dg.AssetMaterialization(
                raw_key(spec),
                partition=day.isoformat(),
                metadata={
                    "requests": len(raw.responses),
                    "bytes": raw.byte_count,
                    "synthetic": raw.synthetic,
                    "archive_path": dg.MetadataValue.path(str(raw.path)),
                    "base_url": base_url,
                },
            )
        )
    if frames_key(spec) in selected:
        try:
            raw = raw or storage.raw_archive().latest(spec.code, day)
            out.raw_path, out.synthetic, out.confirmed_gaps = raw.path, raw.synthetic, raw.confirmed_gaps
            out.parsed = frame_from_raw(spec, raw)
        except (FileNotFoundError, ValueError, ElexonError) as exc:
            out.error = str(exc)
            out.events.append(_check_evaluation(spec, day, False, {"partition": day.isoformat(), "error": str(exc)}))
    elif store_key(spec) in selected:
        try:
            out.frame = storage.frame_store().read(frames_key(spec).path[-1], day)
            out.gaps = storage.frame_store().read_gaps(frames_key(spec).path[-1], day)
        except FileNotFoundError as exc:
            out.error = str(exc)
    return out


def validate_dataset_days(days: list[DatasetDay], storage: BmrsStorageResource) -> list[object]:
    """Validate the parsed days of one dataset together (one pandera call: ``validate_partitions``), write each valid
    day's frame, and return the events: each day's ``valid`` result and, where it passed, its frame's
    materialisation. A failing day gets its ``error``; a passing one its ``frame`` (to store)."""
    from grid_guardian_assets.validation import validate_partitions

    waiting = [d for d in days if d.parsed is not None and d.error is None]
    if not waiting:
        return []
    spec = waiting[0].spec
    reports = validate_partitions(spec, {d.day: d.parsed for d in waiting}, {d.day: d.confirmed_gaps for d in waiting})
    frames = storage.frame_store()
    events: list[object] = []
    for out in waiting:
        report = reports[out.day]
        out.parsed = None  # the month's parsed responses are not kept beyond validation
        events.append(_check_evaluation(spec, out.day, report.passed, _check_metadata(report)))
        if not report.passed:
            out.error = report.summary()
            continue
        path = frames.write(frames_key(spec).path[-1], out.day, report.frame, gaps=report.gaps)
        events.append(
            dg.AssetMaterialization(
                frames_key(spec),
                partition=out.day.isoformat(),
                metadata={
                    "rows": report.frame.height,
                    **(gap_metadata(report.gaps) if report.gaps else {}),
                    "exact_duplicates_dropped": report.exact_duplicates_dropped,
                    "synthetic": out.synthetic,
                    "raw_archive_path": dg.MetadataValue.path(str(out.raw_path)),
                    "frame_path": dg.MetadataValue.path(str(path)),
                    **_time_range(spec, report.frame),
                    "preview": dg.MetadataValue.md(markdown_table(report.frame, limit=10)),
                },
            )
        )
        out.frame, out.gaps = report.frame, report.gaps
    return events


def store_materialization(
    spec: DatasetSpec, stored: "StoredPartition", frame: pl.DataFrame, plot: str | None, cells: "frozenset[gaps.Cell]" = frozenset()
) -> dg.AssetMaterialization:
    metadata: dict[str, object] = {
        "rows": stored.rows,
        **(gap_metadata(cells) if cells else {}),
        "file": dg.MetadataValue.path(str(stored.path)),
        "file_bytes": stored.file_bytes,
        "replaced_existing_day": stored.replaced,
        "sha256": stored.sha256,
        **_time_range(spec, frame),
    }
    if plot:
        metadata["plot"] = dg.MetadataValue.md(plot)
    return dg.AssetMaterialization(store_key(spec), partition=stored.day.isoformat(), metadata=metadata)
