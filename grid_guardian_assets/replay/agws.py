"""Real BMRS B1630 (Insights API ``AGWS``) wind and solar generation for 2018, bundled, as records per settlement day.

See data/agws_2018/ATTRIBUTION.md. Missing periods of the source stay missing: validation of their days fails.
"""

import datetime as dt
from functools import cache
from importlib import resources
from pathlib import Path

import polars as pl

from grid_guardian_assets.datasets import AGWS_PSR_TYPES
from grid_guardian_assets.settlement import PERIOD, period_of, to_api_time

# EU Regulation 543/2013 art. 16 has actual wind and solar generation published at most an hour after the period;
# the file has no publish time, so the replay publishes at that deadline.
AGWS_PUBLISH_DELAY = dt.timedelta(hours=1)
# ENTSO-E business type of each psrType, as the Insights API reports it.
BUSINESS_TYPES = {psr: "Solar generation" if psr == "Solar" else "Wind generation" for psr in AGWS_PSR_TYPES}
SOURCE = "Elexon BMRS B1630 (AGWS) 2018 (real)"


def bundled_agws_csv() -> Path:
    """Path of the bundled real B1630 2018 file (see data/agws_2018/ATTRIBUTION.md)."""
    return Path(str(resources.files("grid_guardian_assets") / "data" / "agws_2018" / "B1630_2018.csv"))


@cache
def _by_day(path: Path | None = None) -> dict[dt.date, tuple[dict, ...]]:
    wide = pl.read_csv(path or bundled_agws_csv(), infer_schema_length=0)
    # The source's column names carry literal quote characters ("Solar" with its quotes).
    wide = wide.rename({c: c.strip('"') for c in wide.columns})
    psr_types = [c for c in wide.columns if c != "local_datetime"]
    unknown = set(psr_types) - set(BUSINESS_TYPES)
    if unknown:
        raise ValueError(f"{path or bundled_agws_csv()}: unknown psrType columns {sorted(unknown)}")
    days: dict[dt.date, list[dict]] = {}
    for row in wide.iter_rows(named=True):
        start = dt.datetime.fromisoformat(row["local_datetime"])
        day, number = period_of(start)
        for psr in psr_types:
            days.setdefault(day, []).append(
                {
                    "dataset": "AGWS",
                    "documentId": None,
                    "documentRevisionNumber": None,
                    "publishTime": to_api_time(start + PERIOD + AGWS_PUBLISH_DELAY),
                    "businessType": BUSINESS_TYPES[psr],
                    "psrType": psr,
                    "quantity": None if row[psr] in (None, "") else float(row[psr]),
                    "startTime": to_api_time(start),
                    "settlementDate": day.isoformat(),
                    "settlementPeriod": number,
                }
            )
    return {d: tuple(rows) for d, rows in days.items()}


def agws_day_records(day: dt.date, path: Path | None = None) -> list[dict]:
    """The AGWS rows of settlement ``day`` (three per period present in the source)."""
    return [dict(r) for r in _by_day(path).get(day, ())]


def agws_records(publish_from: dt.datetime, publish_to: dt.datetime, path: Path | None = None) -> list[dict]:
    """AGWS rows published within ``[publish_from, publish_to]`` (tz-aware), as the Insights API filters them."""
    rows = []
    day = (publish_from - dt.timedelta(days=1)).date()
    while day <= publish_to.date():
        for r in _by_day(path).get(day, ()):
            published = dt.datetime.fromisoformat(r["publishTime"].replace("Z", "+00:00"))
            if publish_from <= published <= publish_to:
                rows.append(dict(r))
        day += dt.timedelta(days=1)
    return rows
