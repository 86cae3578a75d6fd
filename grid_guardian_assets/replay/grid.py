"""Grid snapshots straight from the bundled recording (validated as the assets validate), for tests and benchmarks
that need many days of snapshots without running every BMRS chain through Dagster."""

import datetime as dt

from grid_guardian_assets import gaps
from grid_guardian_assets.datasets import DEMAND_PUBLISH_MARGIN, FREQ, FUELHH, INDO
from grid_guardian_assets.grid.dcflow import DCPowerFlow
from grid_guardian_assets.grid.mapping import bus_mapping
from grid_guardian_assets.grid.network import GridNetwork
from grid_guardian_assets.grid.snapshots import SnapshotDay, build_snapshot_day
from grid_guardian_assets.replay import bmrs_history, synthetic
from grid_guardian_assets.settlement import day_bounds_utc, days_between
from grid_guardian_assets.validation import frame_from_records, validate_partition


def bundled_inputs(day: dt.date):
    """Validated FUELHH, INDO and FREQ frames of a bundled day, or None when any fails validation; the periods the files
    never held are the frames' recorded gaps, as a fetch confirmed twice makes them. FREQ is ``None`` on a day the
    synthetic FREQ does not cover (outside 2018)."""
    start, end = day_bounds_utc(day)
    frames = []
    for spec, rows in (
        (FUELHH, bmrs_history.fuelhh_records(day)),
        (INDO, bmrs_history.demand_records("INDO", start, end + DEMAND_PUBLISH_MARGIN)),
        (FREQ, synthetic.freq_records(start, end)),
    ):
        if spec is FREQ and not synthetic.covers(day):
            frames.append(None)
            continue
        confirmed = gaps.missing_cells(spec, day, rows) if gaps.confirmable(spec) and rows else None
        report = validate_partition(spec, day, frame_from_records(spec, rows), confirmed)
        if not report.passed:
            return None
        frames.append(report.frame)
    return frames


def bundled_snapshot_days(network: GridNetwork, start: dt.date, end: dt.date) -> list[SnapshotDay]:
    """Snapshots of every valid, whole bundled day in ``start``..``end`` (days that fail validation, and days with a
    recorded gap, are skipped, as ``SnapshotStore.read_range`` skips them)."""
    mapping, flow = bus_mapping(network), DCPowerFlow(network)
    out = []
    for day in days_between(start, end):
        inputs = bundled_inputs(day)
        if inputs is not None and inputs[0].height and inputs[1].height:
            snapshots = build_snapshot_day(day, mapping, flow, *inputs)
            if snapshots.whole:
                out.append(snapshots)
    return out
