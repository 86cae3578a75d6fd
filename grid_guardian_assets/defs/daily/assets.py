"""The settlement-day graph as one multi-asset: every BMRS chain and ``grid_snapshots``, day by day.

Why one multi-asset: a backfill of a year must not pay a process and a code-location import per step and day,
and a bad day must not stop the good days around it. Dagster records an asset's output for every partition of a
ranged run, so the days are recorded here one by one instead (an ``AssetMaterialization`` and per-partition check
result for each day that passed), and the run fails at the end naming every bad day. The lineage graph still shows
each asset (``*_raw`` → ``*_frames`` → ``*_store`` → ``grid_snapshots``); a selection runs only its part
(``can_subset``), reading earlier stages from where a previous run left them.

Inside a range, days are fetched and parsed one at a time, and validated and stored a month at a time (one pandera
call and one HDF5 rewrite per month and dataset: both cost mostly per call), so memory is bounded by a month of one
dataset however long the range. A day's fetch events, a month's validation events and a month's store and snapshot
events are each logged as one batch (``defs/event_batches.py``).
"""

import datetime as dt
from collections.abc import Iterator
from contextlib import ExitStack
from itertools import groupby
from typing import TYPE_CHECKING

import dagster as dg
import polars as pl

from grid_guardian_assets.datasets import STORED_DATASETS, DatasetSpec
from grid_guardian_assets.defs.bmrs.assets import (
    ELEXON_POOL,
    DatasetDay,
    bmrs_asset_specs,
    complete_check_spec,
    complete_evaluation,
    frames_key,
    raw_key,
    store_key,
    store_materialization,
    take_dataset_day,
    valid_check_spec,
    validate_dataset_days,
)
from grid_guardian_assets.defs.bmrs.partitions import bmrs_daily_partitions
from grid_guardian_assets.defs.event_batches import batched_events
from grid_guardian_assets.defs.grid.assets import (
    GRID_SNAPSHOTS,
    SNAPSHOT_INPUTS,
    SnapshotBuilder,
    grid_snapshots_spec,
    power_balance_check_spec,
)
from grid_guardian_assets.defs.resources import BmrsStorageResource, ElexonApiResource, GridResource, NesoApiResource
from grid_guardian_assets.ingest import Prefetcher
from grid_guardian_assets.reporting import partition_plot
from grid_guardian_assets.windows import backfill_command

if TYPE_CHECKING:
    from grid_guardian_assets.store.hdf5 import HDF5Store

# Settlement days fetched ahead of the one being parsed: enough to keep the downloads going through a month's
# validation, store and snapshot work (about a second), about 3 MB of responses a day (B1610 and PN).
PREFETCH_DAYS = 10


def rerun_command(selected: set[dg.AssetKey], bad_days: list[dt.date]) -> str:
    """One shell command that reruns ``selected`` for just ``bad_days`` (a range for each run of adjacent days)."""
    return backfill_command(",".join(sorted(key.to_user_string() for key in selected)), bad_days)


def _months(days: list[dt.date]) -> list[list[dt.date]]:
    return [list(group) for _, group in groupby(days, key=lambda d: (d.year, d.month))]


def _datasets_in(selected: set[dg.AssetKey]) -> list[DatasetSpec]:
    return [spec for spec in STORED_DATASETS.values() if selected & {raw_key(spec), frames_key(spec), store_key(spec)}]


@dg.multi_asset(
    name="settlement_days",
    specs=[*(s for spec in STORED_DATASETS.values() for s in bmrs_asset_specs(spec)), grid_snapshots_spec],
    check_specs=[
        *(valid_check_spec(spec) for spec in STORED_DATASETS.values()),
        *(complete_check_spec(spec) for spec in STORED_DATASETS.values()),
        power_balance_check_spec,
    ],
    can_subset=True,
    partitions_def=bmrs_daily_partitions,
    # A range of days is one run: the CLI's --partition-range and the UI's backfills both take it whole.
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=ELEXON_POOL,
)
def settlement_days(
    context: dg.AssetExecutionContext,
    elexon: ElexonApiResource,
    neso: NesoApiResource,
    bmrs_storage: BmrsStorageResource,
    grid: GridResource,
) -> Iterator[object]:
    selected = set(context.selected_asset_keys)
    days = [dt.date.fromisoformat(key) for key in context.partition_keys]
    datasets = _datasets_in(selected)
    fetching = any(raw_key(spec) in selected for spec in datasets)
    # Plots cost about half a second each: draw the last day of the run only (a single-day run: its day).
    plot_day = days[-1]
    store = bmrs_storage.hdf5_store()
    builder = None
    if GRID_SNAPSHOTS in selected:
        builder = SnapshotBuilder(grid.load(), bmrs_storage.layout.hdf5)
    bad: dict[dt.date, list[str]] = {}
    failed_inputs: dict[dt.date, set[str]] = {}

    with ExitStack() as stack:
        prefetch = None
        if fetching:
            plan = [(day, spec) for day in days for spec in datasets if raw_key(spec) in selected]
            apis = {"elexon": elexon, "neso": neso}
            clients = {source: stack.enter_context(apis[source].get_client()) for source in {spec.source for _, spec in plan}}
            fetched_per_day = sum(raw_key(spec) in selected for spec in datasets)
            prefetch = stack.enter_context(
                Prefetcher(clients, bmrs_storage.raw_archive(), plan, ahead=PREFETCH_DAYS * fetched_per_day)
            )
        for month in _months(days):
            taken: dict[str, list[DatasetDay]] = {}  # by dataset code
            for day in month:
                outcomes = []
                for spec in datasets:
                    fetched = prefetch.take(day, spec) if prefetch is not None and raw_key(spec) in selected else None
                    base_url = neso.base_url if spec.source == "neso" else elexon.base_url
                    outcomes.append(take_dataset_day(spec, day, selected, fetched, bmrs_storage, base_url))
                    taken.setdefault(spec.code, []).append(outcomes[-1])
                yield from batched_events(context, [e for o in outcomes for e in o.events])  # the day's fetches
            validated: list[object] = []
            to_store: dict[str, dict[dt.date, pl.DataFrame]] = {}  # by dataset code
            gaps_of: dict[str, dict[dt.date, frozenset]] = {}  # by dataset code: each stored day's recorded gap
            for code, outcomes in taken.items():
                validated += validate_dataset_days(outcomes, bmrs_storage)
                for outcome in outcomes:
                    if outcome.error is not None:
                        bad.setdefault(outcome.day, []).append(f"{code}: {outcome.error}")
                        failed_inputs.setdefault(outcome.day, set()).add(code)
                    elif store_key(outcome.spec) in selected and outcome.frame is not None:
                        to_store.setdefault(code, {})[outcome.day] = outcome.frame
                        gaps_of.setdefault(code, {})[outcome.day] = outcome.gaps
            yield from batched_events(context, validated)
            stored_events: list[object] = []
            for code, frames in to_store.items():
                spec = STORED_DATASETS[code.lower()]
                # Frames validated above in this run are not schema-checked again; ones read back from the frame
                # files (``X_frames`` not selected) are.
                validated_here = frames_key(spec) in selected
                day_gaps = gaps_of.get(code, {})
                for stored in store.write_partitions(spec, frames, writer=context.run_id, schema_validated=validated_here,
                                                     gaps_of=day_gaps):
                    frame, cells = frames[stored.day], day_gaps.get(stored.day, frozenset())
                    plot = partition_plot(spec, frame, f"{spec.code} {stored.day}") if stored.day == plot_day else None
                    stored_events.append(store_materialization(spec, stored, frame, plot, cells))
                    stored_events.append(complete_evaluation(spec, stored.day, cells))
            if builder is not None:
                stored_events += _snapshot_month(builder, store, month, bad, failed_inputs, plot_day)
            yield from batched_events(context, stored_events)
            context.log.info(
                f"{month[-1].isoformat()}: {sum(d <= month[-1] for d in days)} of {len(days)} settlement days done, "
                f"{len(bad)} bad so far"
            )

    if bad:
        lines = [f"{day.isoformat()}: " + "; ".join(reasons) for day, reasons in sorted(bad.items())]
        command = rerun_command(selected, list(bad))
        raise dg.Failure(
            description=f"{len(bad)} of {len(days)} settlement days failed and were not stored "
            f"(the other {len(days) - len(bad)} were):\n" + "\n".join(lines) + f"\nRerun just these days:\n{command}",
            metadata={
                "bad_days": dg.MetadataValue.json({day.isoformat(): reasons for day, reasons in sorted(bad.items())}),
                "rerun_command": dg.MetadataValue.text(command),
            },
        )


def _snapshot_month(
    builder: SnapshotBuilder,
    store: "HDF5Store",
    month: list[dt.date],
    bad: dict[dt.date, list[str]],
    failed_inputs: dict[dt.date, set[str]],
    plot_day: dt.date,
) -> list[object]:
    from grid_guardian_assets.grid.snapshots import SnapshotInputError  # numpy: loaded by runs, not the code location

    first, last = month[0], month[-1]
    stored = {spec.code: store.read_range(spec, first, last) for spec in SNAPSHOT_INPUTS}
    # Inputs stored with no rows for a day: a whole day their source confirmed it does not have (a recorded gap is only
    # ever a stored day's).
    gaps = {spec.code: store.recorded_gaps(spec, first, last) for spec in SNAPSHOT_INPUTS}
    built = []
    for day in month:
        failed = failed_inputs.get(day, set()) & set(stored)
        if failed:  # an input failed in this run: never build from what an older run left in the store
            bad[day].append(f"grid_snapshots: not built ({', '.join(sorted(failed))} failed above)")
            continue
        try:
            empty = frozenset(spec.code for spec in SNAPSHOT_INPUTS
                              if day in gaps[spec.code] and stored[spec.code].filter(spec.of_day(day)).height == 0)
            built.append(builder.build(day, stored, empty))
        except SnapshotInputError as exc:
            bad.setdefault(day, []).append(f"grid_snapshots: {exc}")
    return builder.store_and_report(built, plot_day=plot_day)
