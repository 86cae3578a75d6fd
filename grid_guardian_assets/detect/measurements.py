"""The stored data as one row per settlement period, each column one named measurement (MW).

A measurement is named ``{DATASET}:{what}``: ``FUELHH:WIND`` (signed, as the Insights API serves it),
``AGWS:Wind Offshore``, ``NESO:FRENCH_FLOW``, ``B1610:Fossil Gas``; national demand is ``INDO`` and transmission
system demand ``ITSDO`` (BMRS's own). Rows follow ``settlement.settlement_periods``, so clock-change days have 46 and 50 rows and a period a
source lacks (one Elexon never published, or a dataset not stored for the day) is a null. The tables are read from
the daily chains' HDF5 stores (``StoredMeasurements``), nothing else: whatever fed the stores (the Insights API,
NESO's Data Portal, the replay server) is what the detectors learn from.
"""

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from grid_guardian_assets.datasets import AGWS, AGWS_PSR_TYPES, B1610, FUELHH, NESO_DEMAND, NESO_FLOW_FIELDS, DatasetSpec
from grid_guardian_assets.datasets import INDO as INDO_SPEC
from grid_guardian_assets.datasets import ITSDO as ITSDO_SPEC
from grid_guardian_assets.detect.findings import STORED  # noqa: F401 (re-exported: the stores' findings carry it)
from grid_guardian_assets.settlement import PERIOD, UTC, period_of, settlement_periods

if TYPE_CHECKING:  # h5py loads where a store is opened
    from grid_guardian_assets.store.hdf5 import HDF5Store

KEY = ["settlementDate", "settlementPeriod"]
INDO = "INDO"
ITSDO = "ITSDO"
# B1610 reports MWh per settlement period; the detectors compare MW.
MW_PER_MWH = 3600 / PERIOD.total_seconds()
# Datasets published too late to raise an alarm while an event lasts: B1610 about five days after the day; NESO's
# interconnector flows once a day, in its Demand Data Update (refreshed daily, before midday; the monthly historic
# file holds them too). The live job has no topic for NESO's flows, and B1610 only refines periods days later, so
# their redundancy checks audit stored days (``detect``) and the benchmark, which scores the live job, leaves them out.
LATE_DATASETS = ("B1610", "NESO")


def measurement(dataset: str, what: str) -> str:
    """The column name of one measurement, e.g. ``measurement("FUELHH", "WIND") == "FUELHH:WIND"``."""
    return f"{dataset}:{what}"


@lru_cache(maxsize=4096)  # measurement names are few, and every finding of every period asks
def dataset_of(name: str) -> str:
    """The dataset a measurement comes from: ``FUELHH:WIND`` → ``FUELHH``, ``ITSDO`` → ``ITSDO``."""
    return name.split(":", 1)[0]


def fuel_columns(columns: Iterable[str]) -> list[str]:
    """The ``FUELHH:*`` columns among a measurement table's ``columns``, in their order."""
    return [c for c in columns if dataset_of(c) == "FUELHH" and c != "FUELHH"]


def timely_columns(columns: Iterable[str]) -> list[str]:
    """``columns`` without the measurements of ``LATE_DATASETS``: what the live job has while an event lasts."""
    return [c for c in columns if dataset_of(c) not in LATE_DATASETS]


def fuel_of(column: str) -> str:
    """``FUELHH:WIND`` → ``WIND``."""
    return column.split(":", 1)[1]


# The datasets a measurement table is read from, each the store of its daily chain.
MEASURED_DATASETS: tuple[DatasetSpec, ...] = (FUELHH, INDO_SPEC, ITSDO_SPEC, NESO_DEMAND, AGWS, B1610)
# NESO's columns the checks use: settled demand and the interconnector flows.
NESO_COLUMNS = ("ND", "TSD", *NESO_FLOW_FIELDS)


def _period_grid(days: Sequence[dt.date]) -> pl.DataFrame:
    rows = [(p.settlement_date, p.number, p.start) for day in days for p in settlement_periods(day)]
    return pl.DataFrame(rows, schema={"settlementDate": pl.Date, "settlementPeriod": pl.Int64,
                                      "start": pl.Datetime("us", "UTC")}, orient="row")


def _wide(rows: pl.DataFrame, on: str, values: str, dataset: str, order: Sequence[str] | None = None) -> pl.DataFrame:
    """One column per value of ``on`` (``{dataset}:{value}``), one row per period; the sum where a period has several
    rows of one value (B1610's units)."""
    if rows.height == 0:
        return rows.select(pl.col(KEY[0]).cast(pl.Date), pl.col(KEY[1]).cast(pl.Int64))
    wide = rows.group_by(*KEY, on).agg(pl.col(values).cast(pl.Float64).sum()).pivot(on=on, index=KEY, values=values)
    names = [c for c in (order or sorted(wide.columns)) if c in wide.columns and c not in KEY]
    return wide.select(*KEY, *(pl.col(c).cast(pl.Float64).alias(measurement(dataset, c)) for c in names))


class StoredMeasurements:
    """Measurement tables read from the daily chains' HDF5 stores (``HDF5Store.read_range``).

    Args:
        store: The stores (``BmrsStorageResource.hdf5_store()``).
        datasets: The datasets to read; the others' columns are left out.
    """

    def __init__(self, store: "HDF5Store", datasets: Sequence[DatasetSpec] = MEASURED_DATASETS):
        self.store, self.datasets = store, tuple(datasets)
        self._timely: dict[dt.date, pl.DataFrame] = {}

    def stored_days(self, spec: DatasetSpec) -> list[dt.date]:
        return self.store.days(spec)

    def rows(self, spec: DatasetSpec, days: Sequence[dt.date]) -> pl.DataFrame:
        """The stored rows of ``spec`` on ``days`` (an empty frame where none is stored)."""
        if not days:
            return pl.DataFrame()
        frame = self.store.read_range(spec, min(days), max(days))
        if frame.height == 0:
            return frame
        return frame.filter(pl.col("settlementDate").is_in(list(days)))

    def _part(self, spec: DatasetSpec, days: Sequence[dt.date]) -> pl.DataFrame | None:
        rows = self.rows(spec, days)
        if rows.height == 0:
            return None
        if spec is FUELHH:
            return _wide(rows, "fuelType", "generation", "FUELHH", list(dict.fromkeys(rows["fuelType"].to_list())))
        if spec in (INDO_SPEC, ITSDO_SPEC):
            return rows.select(*KEY, pl.col("demand").cast(pl.Float64).alias(spec.code))
        if spec is NESO_DEMAND:
            columns = [c for c in NESO_COLUMNS if c in rows.columns and rows[c].null_count() < rows.height]
            return rows.select(*KEY, *(pl.col(c).cast(pl.Float64).alias(measurement("NESO", c)) for c in columns))
        if spec is AGWS:
            return _wide(rows, "psrType", "quantity", "AGWS", AGWS_PSR_TYPES)
        if spec is B1610:
            return _wide(rows.with_columns(pl.col("quantity") * MW_PER_MWH), "psrType", "quantity", "B1610")
        raise ValueError(f"{spec.code} is not a measured dataset (known: {', '.join(s.code for s in MEASURED_DATASETS)})")

    def table(self, days: Iterable[dt.date], *, b1610_days: Collection[dt.date] | None = None) -> pl.DataFrame:
        """Every settlement period of ``days``, in time order, with the stored measurements of each (MW).

        Args:
            days: Settlement days, in any order (the table is sorted).
            b1610_days: Days that get B1610 columns; all of ``days`` when ``None``. Days without it have nulls
                there, as live days have before B1610 is published.

        Returns:
            ``settlementDate``, ``settlementPeriod``, ``start`` (UTC), then one Float64 column per measurement a store
            holds for some of the days.
        """
        ordered = sorted(set(days))
        table = _period_grid(ordered)
        for spec in self.datasets:
            wanted = ordered if spec is not B1610 or b1610_days is None else sorted(set(b1610_days) & set(ordered))
            part = self._part(spec, wanted)
            if part is not None:
                table = table.join(part, on=KEY, how="left")
        return table.sort("start")

    def datasets_stored(self, days: Iterable[dt.date]) -> dict[str, int]:
        """Per measured dataset, how many of ``days`` its store holds."""
        wanted = set(days)
        return {spec.code: len(wanted.intersection(self.store.days(spec))) for spec in self.datasets}

    def timely_day(self, day: dt.date) -> pl.DataFrame:
        """The stored measurements of ``day`` the live job has while an event lasts (``timely_columns``: no B1610,
        no NESO), one row per period; kept, as a benchmark reads the same days again and again."""
        if day not in self._timely:
            table = self.table([day], b1610_days=())
            self._timely[day] = table.select(timely_columns(table.columns))
        return self._timely[day]

    def at(self, start_us: np.ndarray) -> pl.DataFrame:
        """The stored timely measurements of the periods starting at ``start_us`` (µs since the epoch, UTC), in that
        order; a period the stores lack has nulls."""
        starts = [dt.datetime.fromtimestamp(int(us) / 1e6, UTC) for us in start_us]
        days = sorted({period_of(s)[0] for s in starts})
        recorded = pl.concat([self.timely_day(day) for day in days], how="diagonal_relaxed")
        wanted = pl.DataFrame({"start": pl.Series(np.asarray(start_us, dtype=np.int64)).cast(pl.Datetime("us", "UTC"))})
        return wanted.with_row_index("order").join(recorded, on="start", how="left").sort("order").select(
            *KEY, "start", pl.exclude("order", *KEY, "start"))
