"""The bundled data as one row per settlement period, each column one named measurement (MW).

A measurement is named ``{DATASET}:{what}``: ``FUELHH:WIND`` (signed, as the Insights API serves it),
``AGWS:Wind Offshore``, ``NESO:FRENCH_FLOW``, ``B1610:Fossil Gas``; national demand is ``INDO`` and transmission
system demand ``ITSDO`` (BMRS's own). Rows follow ``settlement.settlement_periods``, so clock-change days have 46 and 50 rows and a period a
source lacks (one Elexon never published) is a null. B1610 has no real recording here: its columns are
``replay.synthetic``'s, built unit by unit from the same day's FUELHH.
"""

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from functools import lru_cache

import polars as pl

from grid_guardian_assets.datasets import AGWS_PSR_TYPES
from grid_guardian_assets.replay import agws, bmrs_history, neso, synthetic
from grid_guardian_assets.settlement import PERIOD, settlement_periods
from grid_guardian_assets.stream.messages import Origin

KEY = ["settlementDate", "settlementPeriod"]
INDO = "INDO"
ITSDO = "ITSDO"
# Findings computed from stored days rather than from a Kafka message carry this origin.
STORED = Origin("stored", -1, -1)
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


def _period_grid(days: Sequence[dt.date]) -> pl.DataFrame:
    rows = [(p.settlement_date, p.number, p.start) for day in days for p in settlement_periods(day)]
    return pl.DataFrame(rows, schema={"settlementDate": pl.Date, "settlementPeriod": pl.Int64,
                                      "start": pl.Datetime("us", "UTC")}, orient="row")


def _fuelhh(days: Sequence[dt.date]) -> pl.DataFrame:
    rows = pl.concat([bmrs_history.fuelhh_day(day) for day in days]).select(*KEY, "fuelType", "generation")
    wide = rows.pivot(on="fuelType", index=KEY, values="generation", aggregate_function="first")
    return wide.select(*KEY, *(pl.col(f).cast(pl.Float64).alias(measurement("FUELHH", f)) for f in wide.columns if f not in KEY))


def _demand(days: Sequence[dt.date]) -> pl.DataFrame:
    frame = pl.concat([bmrs_history.demand_day(day) for day in days])
    return frame.select(*KEY, pl.col(INDO).cast(pl.Float64), pl.col(ITSDO).cast(pl.Float64))


def _neso(days: Sequence[dt.date]) -> pl.DataFrame:
    frame = neso.neso_demand().filter(pl.col("settlementDate").is_in(list(days)))
    columns = [c for c in ("ND", "TSD", *neso.INTERCONNECTOR_COLUMNS) if c in frame.columns and frame[c].null_count() < frame.height]
    return frame.select(*KEY, *(pl.col(c).cast(pl.Float64).alias(measurement("NESO", c)) for c in columns))


def _agws(days: Sequence[dt.date]) -> pl.DataFrame:
    rows = [
        (dt.date.fromisoformat(r["settlementDate"]), r["settlementPeriod"], r["psrType"], r["quantity"])
        for day in days
        for r in agws.agws_day_records(day)
    ]
    frame = pl.DataFrame(rows, schema={"settlementDate": pl.Date, "settlementPeriod": pl.Int64, "psrType": pl.Utf8,
                                       "quantity": pl.Float64}, orient="row")
    wide = frame.pivot(on="psrType", index=KEY, values="quantity", aggregate_function="first")
    return wide.select(*KEY, *(pl.col(p).alias(measurement("AGWS", p)) for p in AGWS_PSR_TYPES if p in wide.columns))


def _b1610(days: Sequence[dt.date]) -> pl.DataFrame:
    totals: dict[tuple[dt.date, int, str], float] = {}
    for day in days:
        for period in settlement_periods(day):
            for r in synthetic.b1610_records(day, period.number):
                key = (day, period.number, r["psrType"])
                totals[key] = totals.get(key, 0.0) + r["quantity"] * MW_PER_MWH
    frame = pl.DataFrame([(*k, v) for k, v in totals.items()], orient="row",
                         schema={"settlementDate": pl.Date, "settlementPeriod": pl.Int64, "psrType": pl.Utf8, "mw": pl.Float64})
    if frame.height == 0:
        return frame.select(KEY)
    wide = frame.pivot(on="psrType", index=KEY, values="mw")
    return wide.select(*KEY, *(pl.col(p).alias(measurement("B1610", p)) for p in wide.columns if p not in KEY))


def measurement_table(days: Sequence[dt.date], *, b1610_days: Collection[dt.date] | None = None) -> pl.DataFrame:
    """Every settlement period of ``days``, in time order, with the bundled measurements of each (MW).

    Args:
        days: Settlement days, in any order (the table is sorted).
        b1610_days: Days that get (synthetic) B1610 columns; all of ``days`` when ``None``. B1610 takes about a
            tenth of a second a day to generate; days without it have nulls there, as live days have before
            B1610 is published.

    Returns:
        ``settlementDate``, ``settlementPeriod``, ``start`` (UTC), then one Float64 column per measurement.
    """
    ordered = sorted(set(days))
    with_b1610 = ordered if b1610_days is None else sorted(set(b1610_days) & set(ordered))
    table = _period_grid(ordered)
    for part in (_fuelhh(ordered), _demand(ordered), _neso(ordered), _agws(ordered), _b1610(with_b1610)):
        table = table.join(part, on=KEY, how="left")
    return table.sort("start")
