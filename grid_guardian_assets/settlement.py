"""Settlement days and periods of the GB electricity market.

A settlement day runs from local midnight to local midnight in Europe/London and is cut into half-hour
settlement periods numbered from 1. Clock changes make the spring day 46 periods long and the autumn day 50.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC
PERIOD = dt.timedelta(minutes=30)
PERIODS_PER_DAY = 48  # a settlement day without a clock change: what "a day" means in rates and budgets


@dataclass(frozen=True)
class SettlementPeriod:
    """One half-hour settlement period of a settlement day."""

    settlement_date: dt.date
    number: int
    start: dt.datetime  # UTC, tz-aware
    end: dt.datetime  # UTC, tz-aware


def day_bounds_utc(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants of local midnight at the start and end of ``day``."""
    start = dt.datetime.combine(day, dt.time(0), tzinfo=LONDON).astimezone(UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=LONDON).astimezone(UTC)
    return start, end


def period_count(day: dt.date) -> int:
    """How many settlement periods ``day`` has: 48, or 46/50 on the clock-change days."""
    start, end = day_bounds_utc(day)
    return int((end - start) / PERIOD)


def settlement_periods(day: dt.date) -> list[SettlementPeriod]:
    """Every settlement period of ``day`` in order, with UTC start and end times."""
    start, _ = day_bounds_utc(day)
    return [
        SettlementPeriod(day, n + 1, start + n * PERIOD, start + (n + 1) * PERIOD)
        for n in range(period_count(day))
    ]


def period_start(day: dt.date, number: int) -> dt.datetime:
    """The UTC start of settlement period ``number`` of ``day``, without building the day's list of periods."""
    start, end = day_bounds_utc(day)
    count = int((end - start) / PERIOD)
    if not 1 <= number <= count:
        raise ValueError(f"settlement period {number} does not exist on {day} ({count} periods)")
    return start + (number - 1) * PERIOD


def period_of(instant: dt.datetime) -> tuple[dt.date, int]:
    """The (settlement date, period number) that contains a tz-aware ``instant``."""
    if instant.tzinfo is None:
        raise ValueError(f"period_of needs a tz-aware datetime, got naive {instant!r}")
    day = instant.astimezone(LONDON).date()
    start, _ = day_bounds_utc(day)
    return day, int((instant.astimezone(UTC) - start) / PERIOD) + 1


def parse_day(text: str) -> dt.date:
    """Parse ``YYYY-MM-DD`` with an error that names the bad value."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not a settlement day (want YYYY-MM-DD): {text!r}") from exc


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """Settlement days ``start``..``end`` inclusive."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


# The Insights API's ISO-8601 UTC form of an instant.
API_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def to_api_time(instant: dt.datetime) -> str:
    """The Insights API's ISO-8601 UTC form, e.g. ``2018-03-01T00:00:00Z``."""
    return instant.astimezone(UTC).strftime(API_TIME_FORMAT)


def contiguous_spans(days: Iterable[dt.date]) -> list[list[dt.date]]:
    """``days`` sorted and cut into runs of adjacent days (e.g. the ranges a backfill of them takes)."""
    ordered = sorted(set(days))
    return [[day for _, day in group] for _, group in groupby(enumerate(ordered), key=lambda item: item[1].toordinal() - item[0])]
