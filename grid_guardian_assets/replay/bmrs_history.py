"""Real BMRS FUELHH, INDO and ITSDO for 2016–2023, bundled, read as the Insights API serves them.

The bundled files (``data/bmrs_fuelhh_2016_2023``, see its ATTRIBUTION.md) hold one row per settlement period: MW per
fuel type and interconnector, signed as the API gives them (pumped storage while pumping and interconnectors while
exporting are negative), then BMRS's own ``INDO`` and ``ITSDO``. Two defects of the files are repaired here, measured
on the data itself:

* **The last period of each day is filed under the next day (2016–2022).** A row labelled period 48 (50 on the day
  after the autumn clock change) holds the *previous* day's last period of FUELHH, with a ``period_start_utc`` that
  says so; its ``INDO`` and ``ITSDO`` are the labelled day's own. On 2018's period 48s, the fuel total of the row
  labelled day D+1 lies 200 MW from the mean of day D's periods 47 and D+1's 1, the row labelled D 880 MW; the
  legacy 2018 scrape agrees value for value (its 2018-01-01 23:30 CCGT, 7,233 MW, is the row labelled 2018-01-02).
  INDO and ITSDO go the other way (196 MW against 910 MW). Which rows are shifted is read row by row
  (``shifted_last_periods``): the convention changes inside 2021 and 2022, and 2023 is right throughout.
* So a spring clock-change day loses its 46th FUELHH period, an autumn day its 48th, and the day after the spring
  change its 48th INDO and ITSDO: periods the files never had. They, and the periods Elexon never published
  (``known_gaps.csv``), are simply not served, as the API serves nothing for them.

Empty cells are not served (an interconnector before it was built, a period a series lacks).
"""

import datetime as dt
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

import polars as pl

from grid_guardian_assets.settlement import API_TIME_FORMAT, PERIOD, day_bounds_utc, period_count

FIRST_YEAR, LAST_YEAR = 2016, 2023
DEMAND_CODES = ("INDO", "ITSDO")
# FUELHH is published when its period ends; INDO and ITSDO a few minutes later (the files hold no publish time).
FUELHH_PUBLISH_DELAY = dt.timedelta(0)
DEMAND_PUBLISH_DELAY = dt.timedelta(minutes=5)
SOURCE = "Elexon BMRS FUELHH with INDO and ITSDO, 2016-2023 (real, as the Insights API serves them)"
_KEY_COLUMNS = ("settlement_date", "settlement_period", "period_start_utc")


def bundled_history_dir() -> Path:
    """Folder of the bundled yearly files (see data/bmrs_fuelhh_2016_2023/ATTRIBUTION.md)."""
    return Path(str(resources.files("grid_guardian_assets") / "data" / "bmrs_fuelhh_2016_2023"))


def year_file(year: int, directory: Path | None = None) -> Path:
    return (directory or bundled_history_dir()) / f"fuelhh_{year}.csv.gz"


def covered_days() -> tuple[dt.date, dt.date]:
    """First and last settlement day the bundled files cover."""
    return dt.date(FIRST_YEAR, 1, 1), dt.date(LAST_YEAR, 12, 31)


def _midnights(dates: pl.Series) -> dict[dt.date, dt.datetime]:
    return {d: day_bounds_utc(d)[0] for d in dates.unique().to_list()}


def _with_times(frame: pl.DataFrame, delay: dt.timedelta) -> pl.DataFrame:
    """``startTime`` (from settlement date and period, never the file's start column) and ``publishTime`` as the API's
    text, and ``publishInstant``; computed in polars once per year file (a year is about 250,000 rows)."""
    utc = pl.Datetime("us", "UTC")
    midnight = pl.col("settlementDate").replace_strict(_midnights(frame["settlementDate"]), return_dtype=utc)
    start = midnight + pl.duration(minutes=int(PERIOD.total_seconds() // 60)) * (pl.col("settlementPeriod") - 1)
    published = start + pl.duration(seconds=int((PERIOD + delay).total_seconds()))
    return frame.with_columns(
        startTime=start.dt.strftime(API_TIME_FORMAT),
        publishTime=published.dt.strftime(API_TIME_FORMAT),
        publishInstant=published,
    )


def shifted_last_periods(wide: pl.DataFrame) -> pl.Series:
    """Per row of a year file, whether it holds the previous settlement day's last FUELHH period.

    A row labelled period 48, or beyond its day's periods (50 on the day after an autumn change), is shifted when its
    ``period_start_utc`` lies before its labelled day: the files say so themselves, row by row (2016 to mid-2022, with
    runs of correct rows in 2021 and 2022; 2023 is right throughout). One row hides it: on an autumn clock-change day
    whose last period is filed under the next day (that day has a row labelled 50), the row labelled 48 is the day
    before's too, though its start was rewritten to the autumn day's own (2018-10-28's 7,887 MW of CCGT is
    2018-10-27 23:30 BST in the legacy scrape; the autumn day's own 48th, 14,032 MW, is in no row).
    """
    midnight = _midnights(wide["settlement_date"])
    count = {d: period_count(d) for d in midnight}
    dates, periods = wide["settlement_date"].to_list(), wide["settlement_period"].to_list()
    starts = wide["period_start_utc"].str.to_datetime(time_zone="UTC", strict=False).to_list()
    fifty_after = {d - dt.timedelta(days=1) for d, p in zip(dates, periods) if p > count[d]}
    moved = []
    for day, period, start in zip(dates, periods, starts):
        last_label = period == 48 or period > count[day]
        early = start is not None and start < midnight[day]
        moved.append(last_label and (early or (count[day] == 50 and period == 48 and day in fifty_after)))
    return pl.Series("moved", moved, dtype=pl.Boolean)


@lru_cache(maxsize=3)  # a request touches a day's year (and the next, for 31 December); a backfill moves on year by year
def _year(year: int, directory: Path | None = None) -> tuple[dict[dt.date, pl.DataFrame], dict[dt.date, pl.DataFrame]]:
    """One year file as ``(fuel, demand)`` long frames per settlement day, with the file's defect repaired.

    ``fuel`` rows: ``settlementDate``, ``settlementPeriod``, ``fuelType``, ``generation``; ``demand`` rows the same key
    and ``INDO``/``ITSDO`` (null where the file is empty). A shifted row's FUELHH goes to the day before, which for 1
    January is in the previous year's file: the caller joins the files.
    """
    path = year_file(year, directory)
    if not path.exists():
        return {}, {}
    wide = pl.read_csv(path, infer_schema_length=0).with_columns(
        pl.col("settlement_date").str.to_date(), pl.col("settlement_period").cast(pl.Int64)
    )
    values = [c for c in wide.columns if c not in _KEY_COLUMNS]
    fuels = [c for c in values if c not in DEMAND_CODES]
    label_date, label_period = pl.col("settlement_date"), pl.col("settlement_period")
    moved = shifted_last_periods(wide)
    previous = wide["settlement_date"] - dt.timedelta(days=1)
    last_of_previous = {d: period_count(d) for d in previous.unique().to_list()}
    fuel_date = pl.when(moved).then(label_date - pl.duration(days=1)).otherwise(label_date)
    fuel_period = pl.when(moved).then(
        (label_date - pl.duration(days=1)).replace_strict(last_of_previous, return_dtype=pl.Int64)
    ).otherwise(label_period)
    fuel = (
        wide.select(*fuels, settlementDate=fuel_date, settlementPeriod=fuel_period)
        .unpivot(index=["settlementDate", "settlementPeriod"], on=fuels, variable_name="fuelType", value_name="generation")
        .filter(pl.col("generation").is_not_null() & (pl.col("generation") != ""))
        .with_columns(pl.col("generation").cast(pl.Int64))
    )
    demand = wide.select(settlementDate=label_date, settlementPeriod=label_period,
                         **{code: pl.col(code).cast(pl.Int64) for code in DEMAND_CODES})
    # A label beyond its day's periods (the spring day's row 48) holds no period of that day's demand.
    counts = {d: period_count(d) for d in wide["settlement_date"].unique().to_list()}
    demand = demand.filter(pl.col("settlementPeriod") <= pl.col("settlementDate").replace_strict(counts, return_dtype=pl.Int64))
    fuel, demand = _with_times(fuel, FUELHH_PUBLISH_DELAY), _with_times(demand, DEMAND_PUBLISH_DELAY)
    fuel_by_day = {key[0]: part.sort("settlementPeriod", maintain_order=True)
                   for key, part in fuel.partition_by("settlementDate", as_dict=True, maintain_order=True).items()}
    demand_by_day = {key[0]: part.sort("settlementPeriod")
                     for key, part in demand.partition_by("settlementDate", as_dict=True, maintain_order=True).items()}
    return fuel_by_day, demand_by_day


def _source_years(day: dt.date) -> tuple[int, ...]:
    # A day's last FUELHH period can be filed under the next day, in the next year's file for 31 December.
    return (day.year, day.year + 1) if (day.month, day.day) == (12, 31) else (day.year,)


@lru_cache(maxsize=64)
def fuelhh_day(day: dt.date, directory: Path | None = None) -> pl.DataFrame:
    """FUELHH of settlement ``day`` as served: ``settlementDate``, ``settlementPeriod``, ``fuelType``, ``generation``
    (signed MW), ``startTime``, ``publishTime`` and ``publishInstant``, by period in the file's fuel order."""
    parts = [_year(year, directory)[0].get(day) for year in _source_years(day)]
    frames = [p for p in parts if p is not None]
    if not frames:
        return _with_times(pl.DataFrame(schema={"settlementDate": pl.Date, "settlementPeriod": pl.Int64, "fuelType": pl.Utf8,
                                                "generation": pl.Int64}), FUELHH_PUBLISH_DELAY)
    return pl.concat(frames).sort("settlementPeriod", maintain_order=True)


@lru_cache(maxsize=64)
def demand_day(day: dt.date, directory: Path | None = None) -> pl.DataFrame:
    """INDO and ITSDO of settlement ``day``: ``settlementDate``, ``settlementPeriod``, ``INDO``, ``ITSDO`` (MW, null
    where the file has none), ``startTime``, ``publishTime`` and ``publishInstant``."""
    frame = _year(day.year, directory)[1].get(day)
    if frame is None:
        return _with_times(pl.DataFrame(schema={"settlementDate": pl.Date, "settlementPeriod": pl.Int64,
                                                **dict.fromkeys(DEMAND_CODES, pl.Int64)}), DEMAND_PUBLISH_DELAY)
    return frame


def fuelhh_records(day: dt.date, directory: Path | None = None) -> list[dict]:
    """The FUELHH records of settlement ``day`` as the Insights API serves them."""
    frame = fuelhh_day(day, directory)
    return frame.select(
        dataset=pl.lit("FUELHH"),
        publishTime="publishTime",
        startTime="startTime",
        settlementDate=pl.col("settlementDate").cast(pl.Utf8),
        settlementPeriod="settlementPeriod",
        fuelType="fuelType",
        generation="generation",
    ).to_dicts()


def demand_records(code: str, publish_from: dt.datetime, publish_to: dt.datetime, directory: Path | None = None) -> list[dict]:
    """INDO or ITSDO records published within ``[publish_from, publish_to]`` (tz-aware, both ends inclusive)."""
    if code not in DEMAND_CODES:
        raise KeyError(f"{code!r} is not one of {DEMAND_CODES}")
    rows: list[dict] = []
    day = (publish_from - dt.timedelta(days=1)).date()
    while day <= publish_to.date():
        frame = demand_day(day, directory).filter(
            pl.col(code).is_not_null() & pl.col("publishInstant").is_between(publish_from, publish_to)
        )
        rows += frame.select(
            dataset=pl.lit(code),
            publishTime="publishTime",
            startTime="startTime",
            settlementDate=pl.col("settlementDate").cast(pl.Utf8),
            settlementPeriod="settlementPeriod",
            demand=pl.col(code),
        ).to_dicts()
        day += dt.timedelta(days=1)
    return rows


def history_days(directory: Path | None = None) -> list[dt.date]:
    """Every settlement day with FUELHH in the bundled files."""
    first, last = covered_days()
    return [d for year in range(first.year, last.year + 1) for d in sorted(_year(year, directory)[0]) if first <= d <= last]


@cache
def known_gaps(directory: Path | None = None) -> dict[dt.date, int]:
    """``known_gaps.csv``: settlement day → periods the files hold of it (fewer than the day has)."""
    frame = pl.read_csv((directory or bundled_history_dir()) / "known_gaps.csv", try_parse_dates=True)
    return dict(zip(frame["settlement_date"].to_list(), frame["actual"].to_list()))


def fuel_generation(day: dt.date, directory: Path | None = None) -> dict[int, dict[str, int]]:
    """``{period: {fuelType: MW}}`` of settlement ``day`` (the synthetic datasets are built on it)."""
    out: dict[int, dict[str, int]] = {}
    frame = fuelhh_day(day, directory)
    for period, fuel, mw in zip(frame["settlementPeriod"].to_list(), frame["fuelType"].to_list(), frame["generation"].to_list()):
        out.setdefault(period, {})[fuel] = mw
    return out
