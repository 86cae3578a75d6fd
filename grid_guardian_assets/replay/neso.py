"""Real NESO historic demand for 2018 and 2021, bundled with the package: NESO's own dataset, not BMRS's INDO/ITSDO.

NESO's ``ND`` (National Demand) and ``TSD`` (Transmission System Demand) are its settled figures; BMRS publishes its
own initial outturns as INDO and ITSDO (``replay.bmrs_history``), a different series (in 2018 ITSDO − TSD has p1
−177 MW and p99 +543 MW). The replay server serves these files as NESO's Data Portal does (``replay.neso_portal``);
``neso_demand`` gives them to the detectors' audit of stored days. Settlement periods come from the files, which
already number the clock-change days 1..46 and 1..50. See data/neso_demand_2018 and data/neso_demand_2021.
"""

import datetime as dt
from functools import cache
from importlib import resources
from pathlib import Path

import polars as pl

from grid_guardian_assets.datasets import NESO_DEMAND, NESO_FLOW_FIELDS
from grid_guardian_assets.settlement import PERIOD, day_bounds_utc, to_api_time

# Each bundled year: its folder and files (2018: NESO's file to 12-14, then the UKgrid package's copy of 12-15..12-31).
YEAR_FILES: dict[int, tuple[str, tuple[str, ...]]] = {
    2018: ("neso_demand_2018", ("DemandData_2018.csv", "DemandData_2018-12-15_31_from_UKgrid.csv")),
    2021: ("neso_demand_2021", ("demanddata_2021.csv.gz",)),
}
BUNDLED_YEARS = tuple(YEAR_FILES)
INTERCONNECTOR_COLUMNS = NESO_FLOW_FIELDS
SOURCE = "NESO historic demand data (real); supported by National Grid ESO Open Data"
# Every column but the date is whole MW (or a period number); some files leave some columns empty.
_TEXT_COLUMNS = ("SETTLEMENT_DATE",)


def bundled_neso_dir(year: int = 2018) -> Path:
    """Folder of a bundled NESO year (see its ATTRIBUTION.md)."""
    return Path(str(resources.files("grid_guardian_assets") / "data" / YEAR_FILES[year][0]))


@cache
def neso_year_file(year: int) -> pl.DataFrame:
    """A bundled year's rows as the files hold them (``SETTLEMENT_DATE`` text, the rest integers or null), in file
    order; an empty frame for a year not bundled."""
    if year not in YEAR_FILES:
        return pl.DataFrame(schema={"SETTLEMENT_DATE": pl.Utf8, "SETTLEMENT_PERIOD": pl.Int64})
    parts = []
    for name in YEAR_FILES[year][1]:
        raw = pl.read_csv(bundled_neso_dir(year) / name, infer_schema_length=0)
        parts.append(raw.with_columns(pl.exclude(*_TEXT_COLUMNS).cast(pl.Int64)))
    return pl.concat(parts, how="diagonal")


@cache
def neso_demand() -> pl.DataFrame:
    """Every settlement period of the bundled NESO years, in file order, with the spec's field names.

    Returns:
        One row per period: ``settlementDate`` (date), ``settlementPeriod``, ``startTime`` and ``publishTime``
        (Insights API time text), then the files' MW columns (``ND``, ``TSD``, embedded wind and solar, pumping and the
        interconnector flows, imports positive; IFA's as ``IFA_FLOW`` whatever a year calls it; null where empty).

    Raises:
        ValueError: When two rows share a settlement date and period (the files must not overlap).
    """
    renames = {alias: name for name, aliases in NESO_DEMAND.aliases.items() for alias in aliases if alias != name}
    years = [neso_year_file(year).rename(lambda c: renames.get(c, c)) for year in BUNDLED_YEARS]
    frame = pl.concat(years, how="diagonal").with_columns(pl.col("settlementDate").str.to_date("%d-%b-%y"))
    duplicated = frame.filter(pl.struct("settlementDate", "settlementPeriod").is_duplicated())
    if duplicated.height:
        raise ValueError(f"NESO demand files overlap: {duplicated.select('settlementDate', 'settlementPeriod').head(3).rows()}")
    midnight = {d: day_bounds_utc(d)[0] for d in frame["settlementDate"].unique().to_list()}
    starts = [midnight[d] + (p - 1) * PERIOD for d, p in zip(frame["settlementDate"], frame["settlementPeriod"])]
    return frame.with_columns(
        startTime=pl.Series([to_api_time(s) for s in starts], dtype=pl.Utf8),
        publishTime=pl.Series([to_api_time(s + PERIOD) for s in starts], dtype=pl.Utf8),
    )


@cache
def _rows_by_day() -> dict[dt.date, tuple[dict, ...]]:
    days: dict[dt.date, list[dict]] = {}
    for row in neso_demand().iter_rows(named=True):
        days.setdefault(row["settlementDate"], []).append(row)
    return {d: tuple(rows) for d, rows in days.items()}


def neso_rows(day: dt.date) -> tuple[dict, ...]:
    """The NESO rows of settlement ``day`` (see :func:`neso_demand`); empty when the files have no such day."""
    return _rows_by_day().get(day, ())
