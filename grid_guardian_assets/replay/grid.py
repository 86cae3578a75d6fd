"""Grid snapshots straight from the bundled recording (validated as the assets validate), for tests and benchmarks
that need many days of snapshots without running every BMRS chain through Dagster."""

import datetime as dt

from grid_guardian_assets.datasets import DEMAND_PUBLISH_MARGIN, FREQ, FUELHH, INDO
from grid_guardian_assets.grid.dcflow import DCPowerFlow
from grid_guardian_assets.grid.mapping import bus_mapping
from grid_guardian_assets.grid.network import GridNetwork
from grid_guardian_assets.grid.snapshots import SnapshotDay, build_snapshot_day
from grid_guardian_assets.replay import neso, recorded, synthetic
from grid_guardian_assets.settlement import day_bounds_utc, days_between
from grid_guardian_assets.validation import frame_from_records, validate_partition


def bundled_inputs(day: dt.date):
    """Validated FUELHH, INDO and FREQ frames of a bundled day, or None when any fails validation."""
    start, end = day_bounds_utc(day)
    frames = []
    for spec, rows in (
        (FUELHH, recorded.fuelhh_records(day)),
        (INDO, neso.demand_records("INDO", start, end + DEMAND_PUBLISH_MARGIN)),
        (FREQ, synthetic.freq_records(start, end)),
    ):
        report = validate_partition(spec, day, frame_from_records(spec, rows))
        if not report.passed:
            return None
        frames.append(report.frame)
    return frames


def bundled_snapshot_days(network: GridNetwork, start: dt.date, end: dt.date) -> list[SnapshotDay]:
    """Snapshots of every valid bundled day in ``start``..``end`` (days that fail validation are skipped)."""
    mapping, flow = bus_mapping(network), DCPowerFlow(network)
    out = []
    for day in days_between(start, end):
        inputs = bundled_inputs(day)
        if inputs is not None:
            out.append(build_snapshot_day(day, mapping, flow, *inputs))
    return out
