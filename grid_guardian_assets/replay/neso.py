"""Real NESO historic demand for 2018, bundled with the package, as INDO and ITSDO records per settlement day.

NESO's ``ND`` (National Demand) is the demand BMRS publishes as INDO, and ``TSD`` (Transmission System Demand:
ND plus station load, pumping and exports) is ITSDO. Settlement periods come from the file, which already numbers
the clock-change days 1..46 and 1..50. See data/neso_demand_2018/ATTRIBUTION.md for sources and licences.
"""

import datetime as dt
from functools import cache
from importlib import resources
from pathlib import Path

import polars as pl

from grid_guardian_assets.settlement import PERIOD, day_bounds_utc, to_api_time

# NESO's file for 2018-01-01..12-14, then the UKgrid package's copy of the same data for 12-15..12-31.
NESO_FILES = ("DemandData_2018.csv", "DemandData_2018-12-15_31_from_UKgrid.csv")
# The Insights API publishes INDO/ITSDO a few minutes after the period ends; the file has no publish time.
DEMAND_PUBLISH_DELAY = dt.timedelta(minutes=5)
# The BMRS dataset each NESO column is published as.
DEMAND_COLUMNS = {"INDO": "ND", "ITSDO": "TSD"}
INTERCONNECTOR_COLUMNS = ("FRENCH_FLOW", "BRITNED_FLOW", "MOYLE_FLOW", "EAST_WEST_FLOW")
NUMBER_COLUMNS = (
    "SETTLEMENT_PERIOD", "ND", "TSD", "EMBEDDED_WIND_GENERATION", "EMBEDDED_SOLAR_GENERATION", "PUMP_STORAGE_PUMPING",
    *INTERCONNECTOR_COLUMNS,
)
SOURCE = "NESO historic demand data 2018 (real); supported by National Grid ESO Open Data"


def bundled_neso_dir() -> Path:
    """Folder of the bundled NESO 2018 demand files (see data/neso_demand_2018/ATTRIBUTION.md)."""
    return Path(str(resources.files("grid_guardian_assets") / "data" / "neso_demand_2018"))


@cache
def neso_demand(directory: Path | None = None) -> pl.DataFrame:
    """Every settlement period of the bundled NESO files, in file order.

    Args:
        directory: Folder holding ``NESO_FILES``; the bundled copy by default.

    Returns:
        One row per period: ``settlementDate`` (date), ``settlementPeriod``, ``startTime`` and ``publishTime``
        (Insights API time text), then the file's MW columns (``ND``, ``TSD``, embedded wind and solar,
        ``PUMP_STORAGE_PUMPING`` and the interconnector flows, imports positive; null where the source is empty).

    Raises:
        ValueError: When two rows share a settlement date and period (the files must not overlap).
    """
    folder = directory or bundled_neso_dir()
    # Every column but the date is whole MW (or a period number); the UKgrid file leaves some columns empty.
    raw = pl.concat(
        [pl.read_csv(folder / name, schema_overrides={c: pl.Int64 for c in NUMBER_COLUMNS}) for name in NESO_FILES]
    )
    frame = raw.with_columns(pl.col("SETTLEMENT_DATE").str.to_date("%d-%b-%y").alias("settlementDate")).rename(
        {"SETTLEMENT_PERIOD": "settlementPeriod"}
    )
    duplicated = frame.filter(pl.struct("settlementDate", "settlementPeriod").is_duplicated())
    if duplicated.height:
        raise ValueError(f"NESO demand files overlap: {duplicated.select('settlementDate', 'settlementPeriod').head(3).rows()}")
    midnight = {d: day_bounds_utc(d)[0] for d in frame["settlementDate"].unique().to_list()}
    starts = [midnight[d] + (p - 1) * PERIOD for d, p in zip(frame["settlementDate"], frame["settlementPeriod"])]
    return frame.drop("SETTLEMENT_DATE").with_columns(
        startTime=pl.Series([to_api_time(s) for s in starts], dtype=pl.Utf8),
        publishTime=pl.Series([to_api_time(s + PERIOD + DEMAND_PUBLISH_DELAY) for s in starts], dtype=pl.Utf8),
    )


@cache
def _rows_by_day(directory: Path | None = None) -> dict[dt.date, tuple[dict, ...]]:
    days: dict[dt.date, list[dict]] = {}
    for row in neso_demand(directory).iter_rows(named=True):
        days.setdefault(row["settlementDate"], []).append(row)
    return {d: tuple(rows) for d, rows in days.items()}


def neso_rows(day: dt.date, directory: Path | None = None) -> tuple[dict, ...]:
    """The NESO rows of settlement ``day`` (see :func:`neso_demand`); empty when the files have no such day."""
    return _rows_by_day(directory).get(day, ())


def demand_records(
    code: str, publish_from: dt.datetime, publish_to: dt.datetime, directory: Path | None = None
) -> list[dict]:
    """INDO (NESO ND) or ITSDO (NESO TSD) records published within ``[publish_from, publish_to]``.

    Args:
        code: ``INDO`` or ``ITSDO``.
        publish_from: Earliest publish time, inclusive (tz-aware).
        publish_to: Latest publish time, inclusive (tz-aware).
        directory: Folder of the NESO files; the bundled copy by default.
    """
    column = DEMAND_COLUMNS[code]
    rows = []
    day = (publish_from - dt.timedelta(days=1)).date()
    while day <= publish_to.date():
        for r in neso_rows(day, directory):
            published = dt.datetime.fromisoformat(r["publishTime"].replace("Z", "+00:00"))
            if publish_from <= published <= publish_to:
                rows.append(
                    {
                        "dataset": code,
                        "publishTime": r["publishTime"],
                        "startTime": r["startTime"],
                        "settlementDate": r["settlementDate"].isoformat(),
                        "settlementPeriod": r["settlementPeriod"],
                        "demand": r[column],
                    }
                )
        day += dt.timedelta(days=1)
    return rows
