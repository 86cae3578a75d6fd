"""Real FUELHH for 2018, bundled with the package, as Insights API records per settlement day."""

import datetime as dt
from functools import cache
from importlib import resources
from pathlib import Path

import polars as pl

from grid_guardian_assets.settlement import PERIOD, period_of, to_api_time

SOURCE = "Elexon BMRS FUELHH 2018 (recorded)"


def bundled_fuelhh_csv() -> Path:
    """Path of the bundled real FUELHH 2018 file (see data/fuelhh_2018/ATTRIBUTION.md)."""
    return Path(str(resources.files("grid_guardian_assets") / "data" / "fuelhh_2018" / "FUELHH_2018.csv"))


@cache
def fuelhh_long(path: Path | None = None) -> pl.DataFrame:
    """The wide CSV as one row per (period, fuel type), in file order, with Insights API field names.

    Rows with an empty timestamp keep their place: they take the settlement date of the row above them and a
    null startTime/settlementPeriod, so that validation of that day reports them.
    """
    wide = pl.read_csv(path or bundled_fuelhh_csv(), infer_schema_length=0)  # all text: nothing is coerced away
    fuels = [c for c in wide.columns if c != "local_datetime"]
    stamps = wide["local_datetime"].to_list()
    dates, starts, periods = [], [], []
    last_date = None
    for text in stamps:
        if text:
            local = dt.datetime.fromisoformat(text)
            day, number = period_of(local)
            last_date = day
            dates.append(day)
            starts.append(to_api_time(local))
            periods.append(number)
        else:
            dates.append(last_date)
            starts.append(None)
            periods.append(None)
    base = pl.DataFrame(
        {
            "row": range(wide.height),
            "settlementDate": pl.Series(dates, dtype=pl.Date),
            "startTime": pl.Series(starts, dtype=pl.Utf8),
            "settlementPeriod": pl.Series(periods, dtype=pl.Int64),
        }
    )
    long = (
        pl.concat([base, wide.select(fuels)], how="horizontal")
        .unpivot(index=["row", "settlementDate", "startTime", "settlementPeriod"], on=fuels, variable_name="fuelType", value_name="generation")
        .with_columns(pl.col("fuelType").str.to_uppercase(), pl.col("generation").cast(pl.Int64, strict=False))
        .sort("row", maintain_order=True)
    )
    publish = (
        long["startTime"].str.to_datetime(time_zone="UTC", strict=False) + pl.duration(minutes=int(PERIOD.total_seconds() // 60))
    ).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return long.with_columns(publishTime=publish, dataset=pl.lit("FUELHH"))


@cache
def _by_day(path: Path | None = None) -> dict[dt.date, list[dict]]:
    frame = fuelhh_long(path).with_columns(pl.col("settlementDate").cast(pl.Utf8).alias("settlementDateText"))
    days: dict[dt.date, list[dict]] = {}
    for row in frame.iter_rows(named=True):
        days.setdefault(row["settlementDate"], []).append(
            {
                "dataset": "FUELHH",
                "publishTime": row["publishTime"],
                "startTime": row["startTime"],
                "settlementDate": row["settlementDateText"],
                "settlementPeriod": row["settlementPeriod"],
                "fuelType": row["fuelType"],
                "generation": row["generation"],
            }
        )
    return days


def fuelhh_records(day: dt.date, path: Path | None = None) -> list[dict]:
    """The recorded FUELHH rows of settlement ``day`` exactly as served (defects included)."""
    return list(_by_day(path).get(day, []))


def recorded_days(path: Path | None = None) -> list[dt.date]:
    return sorted(d for d in _by_day(path) if d is not None)


def fuel_generation(day: dt.date, path: Path | None = None) -> dict[int, dict[str, int]]:
    """{period: {fuelType: MW}} of a recorded day, first occurrence of each key (for synthetic companions)."""
    out: dict[int, dict[str, int]] = {}
    for r in fuelhh_records(day, path):
        if r["settlementPeriod"] is not None and r["generation"] is not None:
            out.setdefault(r["settlementPeriod"], {}).setdefault(r["fuelType"], r["generation"])
    return out
