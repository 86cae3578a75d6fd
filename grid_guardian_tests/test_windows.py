"""The learned assets' windows: relative placement on what is stored, explicit dates, and refusals that say what to do."""

import datetime as dt

import pytest

from grid_guardian_assets.settlement import days_between
from grid_guardian_assets.windows import DayWindow, WindowNotStored, WindowPlan, Windows, backfill_command, require_stored

D = dt.date


def stored(first: dt.date, last: dt.date) -> set[dt.date]:
    return set(days_between(first, last))


@pytest.mark.parametrize(("first", "last", "fit", "threshold", "held_out"), [
    # A year: held out the last 91 days, thresholds the 42 before, the fit the 182 before that.
    (D(2018, 1, 1), D(2018, 12, 31), (D(2018, 2, 20), D(2018, 8, 20)), (D(2018, 8, 21), D(2018, 10, 1)), (D(2018, 10, 2), D(2018, 12, 31))),
    # Half a year: the fit takes what is stored before the thresholds.
    (D(2021, 1, 1), D(2021, 6, 30), (D(2021, 1, 1), D(2021, 2, 17)), (D(2021, 2, 18), D(2021, 3, 31)), (D(2021, 4, 1), D(2021, 6, 30))),
])
def test_relative_windows_end_at_the_newest_stored_day(first, last, fit, threshold, held_out) -> None:
    windows = WindowPlan().resolve(stored(first, last))
    assert (windows.fit, windows.threshold, windows.held_out) == (DayWindow(*fit), DayWindow(*threshold), DayWindow(*held_out))
    assert windows.training == DayWindow(fit[0], threshold[1])


def test_the_fit_stops_at_a_hole_in_the_stored_days() -> None:
    days = stored(D(2018, 1, 1), D(2018, 3, 31)) | stored(D(2021, 1, 1), D(2021, 6, 30))
    assert WindowPlan().resolve(days).fit.first == D(2021, 1, 1)  # not back into 2018 across the missing years


def test_too_few_stored_days_for_a_fit_is_refused_naming_the_days() -> None:
    with pytest.raises(WindowNotStored, match="needs 28 stored days before the threshold window") as refused:
        WindowPlan().resolve(stored(D(2021, 1, 1), D(2021, 5, 1)))
    assert refused.value.missing and all(d < D(2021, 1, 1) for d in refused.value.missing)
    with pytest.raises(WindowNotStored, match="no stored days"):
        WindowPlan().resolve(set())


def test_explicit_windows_are_taken_as_they_are_and_must_not_overlap() -> None:
    plan = WindowPlan(fit=DayWindow(D(2018, 1, 1), D(2018, 6, 30)), threshold=DayWindow(D(2018, 7, 1), D(2018, 9, 30)),
                      held_out=DayWindow(D(2018, 10, 1), D(2018, 12, 31)))
    assert plan.resolve(set()).describe() == {"fit": "2018-01-01..2018-06-30 (181 days)", "threshold": "2018-07-01..2018-09-30 (92 days)",
                                              "held_out": "2018-10-01..2018-12-31 (92 days)"}
    with pytest.raises(ValueError, match="must end before the threshold window"):
        Windows(DayWindow(D(2018, 7, 1), D(2018, 7, 31)), DayWindow(D(2018, 1, 1), D(2018, 6, 30)), DayWindow(D(2018, 10, 1), D(2018, 10, 31)))
    with pytest.raises(ValueError, match="is before its first"):
        DayWindow(D(2018, 2, 1), D(2018, 1, 1))


def test_a_window_not_wholly_stored_names_the_missing_days_and_the_command_that_fills_them() -> None:
    window = DayWindow(D(2018, 3, 1), D(2018, 3, 10))
    require_stored(window, stored(D(2018, 3, 1), D(2018, 3, 10)), what="w", asset="fuelhh_store", select="*fuelhh_store")
    with pytest.raises(WindowNotStored) as refused:
        require_stored(window, stored(D(2018, 3, 1), D(2018, 3, 10)) - {D(2018, 3, 4), D(2018, 3, 8), D(2018, 3, 9)},
                       what="the fit window", asset="fuelhh_store", select="*fuelhh_store")
    assert "fuelhh_store lacks 3 of its days (2018-03-04, 2018-03-08, 2018-03-09)" in str(refused.value)
    assert refused.value.command == backfill_command("*fuelhh_store", [D(2018, 3, 4), D(2018, 3, 8), D(2018, 3, 9)])
    assert "for r in 2018-03-04...2018-03-04 2018-03-08...2018-03-09; do" in refused.value.command
