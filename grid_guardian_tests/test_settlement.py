import datetime as dt

import pytest

from grid_guardian_assets.settlement import (
    day_bounds_utc,
    days_between,
    parse_day,
    period_count,
    period_of,
    settlement_periods,
)

# Last Sunday of March / October, when GB clocks change.
CLOCK_CHANGES = {
    2018: (dt.date(2018, 3, 25), dt.date(2018, 10, 28)),
    2019: (dt.date(2019, 3, 31), dt.date(2019, 10, 27)),
    2020: (dt.date(2020, 3, 29), dt.date(2020, 10, 25)),
    2024: (dt.date(2024, 3, 31), dt.date(2024, 10, 27)),
    2025: (dt.date(2025, 3, 30), dt.date(2025, 10, 26)),
    2026: (dt.date(2026, 3, 29), dt.date(2026, 10, 25)),
    2030: (dt.date(2030, 3, 31), dt.date(2030, 10, 27)),
}


@pytest.mark.parametrize("year", sorted(CLOCK_CHANGES))
def test_clock_change_days_have_46_and_50_periods(year: int) -> None:
    spring, autumn = CLOCK_CHANGES[year]
    assert period_count(spring) == 46
    assert period_count(autumn) == 50
    assert period_count(spring - dt.timedelta(days=1)) == 48
    assert period_count(autumn + dt.timedelta(days=1)) == 48


@pytest.mark.parametrize("year", [2018, 2023, 2024, 2031])
def test_every_other_day_of_the_year_has_48(year: int) -> None:
    days = days_between(dt.date(year, 1, 1), dt.date(year, 12, 31))
    counts = {d: period_count(d) for d in days}
    odd = {d: n for d, n in counts.items() if n != 48}
    assert sorted(odd.values()) == [46, 50]
    assert sum(counts.values()) == 48 * len(days)  # the short and long days balance out


def test_periods_tile_the_day_in_utc() -> None:
    day = dt.date(2018, 10, 28)
    periods = settlement_periods(day)
    start, end = day_bounds_utc(day)
    assert periods[0].start == start == dt.datetime(2018, 10, 27, 23, 0, tzinfo=dt.UTC)
    assert periods[-1].end == end == dt.datetime(2018, 10, 29, 0, 0, tzinfo=dt.UTC)
    assert [p.number for p in periods] == list(range(1, 51))
    assert all(a.end == b.start for a, b in zip(periods, periods[1:]))


def test_period_of_handles_the_repeated_hour() -> None:
    # 01:00-02:00 local happens twice on 2018-10-28: first in BST (00:00Z), then in GMT (01:00Z).
    first = dt.datetime(2018, 10, 28, 0, 0, tzinfo=dt.UTC)
    second = dt.datetime(2018, 10, 28, 1, 0, tzinfo=dt.UTC)
    assert period_of(first) == (dt.date(2018, 10, 28), 3)
    assert period_of(second) == (dt.date(2018, 10, 28), 5)
    with pytest.raises(ValueError, match="tz-aware"):
        period_of(dt.datetime(2018, 1, 1))


def test_parse_day_names_the_bad_value() -> None:
    with pytest.raises(ValueError, match="2018-13-01"):
        parse_day("2018-13-01")
