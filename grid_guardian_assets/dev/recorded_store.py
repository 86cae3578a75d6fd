"""Fill the daily stores straight from the replay's recordings, without HTTP or Dagster: for tests and benchmarks that
need months of stored days and measure something downstream of them.

Each day goes the pipeline's own way from the records the replay server would answer with (``replay.server.ROUTES``,
``replay.neso_portal``) through ``validation`` into ``HDF5Store``, its gaps confirmed as a second fetch would confirm
them (the recordings do not change between requests). The product never calls this: a deployment's stores are filled
by the daily chains (``defs/daily``), which the integration tests run too.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from itertools import groupby
from pathlib import Path

from grid_guardian_assets import gaps
from grid_guardian_assets.datasets import AGWS, FUELHH, INDO, ITSDO, NESO_DEMAND, DatasetSpec
from grid_guardian_assets.detect.measurements import StoredMeasurements
from grid_guardian_assets.ingest import typed_rows
from grid_guardian_assets.replay.neso_portal import datastore_search
from grid_guardian_assets.replay.server import ROUTES
from grid_guardian_assets.settlement import days_between
from grid_guardian_assets.store.hdf5 import HDF5Store
from grid_guardian_assets.validation import frame_from_records, validate_partitions
from grid_guardian_assets.windows import DayWindow, Windows


def recorded_records(spec: DatasetSpec, day: dt.date) -> list[dict]:
    """The records the replay server answers ``spec``'s requests for settlement ``day`` with."""
    records: list[dict] = []
    for params in spec.request_plan(day):
        query = {name: [value] for name, value in params.items()}
        if spec.source == "neso":
            records += datastore_search(query, "")["result"]["records"]
        else:
            records += ROUTES[spec.path].handler(query)
    return records


def store_recordings(store: HDF5Store, specs: Iterable[DatasetSpec], days: Sequence[dt.date]) -> dict[str, list[dt.date]]:
    """Validate and store every day of ``days`` for each of ``specs``, a month per write.

    Returns:
        Dataset code → the days that failed validation (not stored).
    """
    refused: dict[str, list[dt.date]] = {}
    for spec in specs:
        for _, month in groupby(sorted(days), key=lambda d: (d.year, d.month)):
            month = list(month)
            records = {day: recorded_records(spec, day) for day in month}
            parsed = {day: frame_from_records(spec, rows) for day, rows in records.items()}
            confirmed = ({day: gaps.missing_cells(spec, day, typed_rows(spec, parsed[day].frame)) for day in month}
                         if gaps.confirmable(spec) else {})
            reports = validate_partitions(spec, parsed, confirmed)
            good = {day: r.frame for day, r in reports.items() if r.passed}
            refused.setdefault(spec.code, []).extend(day for day, r in reports.items() if not r.passed)
            if good:
                store.write_partitions(spec, good, writer="recorded_store", schema_validated=True,
                                       gaps_of={day: reports[day].gaps for day in good})
    return refused


# The windows of the README's 2018 tables: fit January–June, thresholds July–September, held out October–December.
WINDOWS_2018 = Windows(DayWindow(dt.date(2018, 1, 1), dt.date(2018, 6, 30)), DayWindow(dt.date(2018, 7, 1), dt.date(2018, 9, 30)),
                       DayWindow(dt.date(2018, 10, 1), dt.date(2018, 12, 31)))


def recorded_2018(hdf5_root: Path) -> StoredMeasurements:
    """Stores under ``hdf5_root`` holding 2018's real recordings (FUELHH, INDO, ITSDO, AGWS and NESO, every day; about
    25 s), as the detectors read them: for benchmarks of what the README's 2018 windows give."""
    store = HDF5Store(hdf5_root)
    refused = store_recordings(store, (FUELHH, INDO, ITSDO, AGWS, NESO_DEMAND), days_between(dt.date(2018, 1, 1), dt.date(2018, 12, 31)))
    if any(refused.values()):
        raise ValueError(f"recorded days refused by validation: {refused}")
    return StoredMeasurements(store)
