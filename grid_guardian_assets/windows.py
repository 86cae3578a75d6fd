"""The day windows the learned assets learn and measure on: explicit dates, or spans that end at the newest stored day.

Four windows, in time order, never overlapping:

* ``fit``: the redundancy relations and spreads, the per-fuel data-quality limits and the verifier's weights learn here;
* ``threshold``: the redundancy thresholds are set here, the verifier calibrates here (its last days), and the
  benchmark's ``validation`` split cuts its cases from it;
* ``held_out``: the benchmark's ``held_out`` split: scored for the final table and the promotion gate, never fitted on.

The defaults are relative: ``held_out`` is the last ``HELD_OUT_DAYS`` stored days, ``threshold`` the ``THRESHOLD_DAYS``
before it, and ``fit`` up to ``FIT_DAYS`` before that (as many as are stored, at least ``MIN_FIT_DAYS``). A deployment
that stored only 2023 then learns on 2023 without any config; the README's 2018 table names its windows explicitly.
A window that is not wholly stored is refused (``WindowNotStored``) with the missing days and the command that fills
them. Every asset that uses a window says which in its metadata (``Windows.describe``).
"""

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from grid_guardian_assets.settlement import contiguous_spans, days_between

# The code location a backfill command names (``dagster asset materialize -m ...``).
CODE_LOCATION_MODULE = "grid_guardian_assets.definitions"
# Held out: 13 weeks, a quarter, as 2018's October–December (the benchmark needs 60 clean whole days in it).
HELD_OUT_DAYS = 91
# Thresholds and the verifier's calibration: six weeks before the held-out days.
THRESHOLD_DAYS = 42
# The fit takes up to 26 weeks before the threshold window, as many as are stored, and needs four weeks at least
# (``detect.data_quality.MIN_REPEAT_EVIDENCE`` asks for 672 non-zero readings of a fuel type: two weeks).
FIT_DAYS = 182
MIN_FIT_DAYS = 28
FIT, THRESHOLD, HELD_OUT = "fit", "threshold", "held_out"


@dataclass(frozen=True)
class DayWindow:
    """Settlement days ``first``..``last``, both included."""

    first: dt.date
    last: dt.date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"a window's last day {self.last} is before its first {self.first}")

    @classmethod
    def parse(cls, first: str, last: str) -> "DayWindow":
        """From ISO dates, naming the one that does not parse."""
        try:
            return cls(dt.date.fromisoformat(first), dt.date.fromisoformat(last))
        except ValueError as exc:
            raise ValueError(f"window {first!r}..{last!r}: {exc}") from None

    def days(self) -> list[dt.date]:
        return days_between(self.first, self.last)

    def __len__(self) -> int:
        return (self.last - self.first).days + 1

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.first <= day <= self.last

    def overlaps(self, other: "DayWindow") -> bool:
        return self.first <= other.last and other.first <= self.last

    def describe(self) -> str:
        return f"{self.first}..{self.last} ({len(self)} days)"


@dataclass(frozen=True)
class Windows:
    """The resolved windows (see the module docstring); ``training`` is ``fit`` and ``threshold`` together."""

    fit: DayWindow
    threshold: DayWindow
    held_out: DayWindow

    def __post_init__(self) -> None:
        named = ((FIT, self.fit), (THRESHOLD, self.threshold), (HELD_OUT, self.held_out))
        for i, (a, first) in enumerate(named):
            for b, second in named[i + 1:]:
                if first.overlaps(second):
                    raise ValueError(f"the {a} window {first.describe()} overlaps the {b} window {second.describe()}")
        if not self.fit.last < self.threshold.first:
            raise ValueError(f"the fit window {self.fit.describe()} must end before the threshold window "
                             f"{self.threshold.describe()}")

    @property
    def training(self) -> DayWindow:
        return DayWindow(self.fit.first, self.threshold.last)

    def named(self) -> dict[str, DayWindow]:
        return {FIT: self.fit, THRESHOLD: self.threshold, HELD_OUT: self.held_out}

    def describe(self) -> dict[str, str]:
        return {name: window.describe() for name, window in self.named().items()}


@dataclass(frozen=True)
class WindowPlan:
    """How to choose the windows: each explicit window is taken as it is; the others are placed relative to the newest
    stored day and to each other (``HELD_OUT_DAYS``, ``THRESHOLD_DAYS``, ``FIT_DAYS``)."""

    fit: DayWindow | None = None
    threshold: DayWindow | None = None
    held_out: DayWindow | None = None
    held_out_days: int = HELD_OUT_DAYS
    threshold_days: int = THRESHOLD_DAYS
    fit_days: int = FIT_DAYS
    min_fit_days: int = MIN_FIT_DAYS

    def resolve(self, stored: Collection[dt.date]) -> Windows:
        """The windows for a store holding ``stored`` days.

        Raises:
            WindowNotStored: a relative window has no stored days to lie on, or the fit would be shorter than
                ``min_fit_days``.
            ValueError: the windows overlap or are out of order.
        """
        if not stored and None in (self.fit, self.threshold, self.held_out):
            raise WindowNotStored("no stored days: backfill the daily stores first", [], "")
        newest = max(stored) if stored else dt.date.min
        held_out = self.held_out or DayWindow(newest - dt.timedelta(days=self.held_out_days - 1), newest)
        threshold = self.threshold or DayWindow(held_out.first - dt.timedelta(days=self.threshold_days),
                                                held_out.first - dt.timedelta(days=1))
        if self.fit is not None:
            fit = self.fit
        else:
            last = threshold.first - dt.timedelta(days=1)
            earliest = max(last - dt.timedelta(days=self.fit_days - 1), _first_of_run(stored, last))
            if (last - earliest).days + 1 < self.min_fit_days:
                wanted = DayWindow(last - dt.timedelta(days=self.min_fit_days - 1), last)
                missing = [d for d in wanted.days() if d not in stored]
                raise WindowNotStored(
                    f"the fit window needs {self.min_fit_days} stored days before the threshold window "
                    f"{threshold.describe()}; {(last - earliest).days + 1} are stored", missing, "")
            fit = DayWindow(earliest, last)
        return Windows(fit, threshold, held_out)


def _first_of_run(stored: Collection[dt.date], last: dt.date) -> dt.date:
    """The first day of the run of consecutive stored days that ends at ``last`` (the day after ``last``: none)."""
    day = last
    while day in stored:
        day -= dt.timedelta(days=1)
    return day + dt.timedelta(days=1)


class WindowNotStored(ValueError):
    """A window whose days are not all stored: the message names them and the command that fills them."""

    def __init__(self, message: str, missing: list[dt.date], command: str):
        super().__init__(message + (f"\nBackfill them:\n{command}" if command else ""))
        self.missing, self.command = missing, command


def backfill_command(select: str, days: Iterable[dt.date]) -> str:
    """One shell command that materialises the selection ``select`` for ``days`` (a range per run of adjacent days)."""
    spans = [f"{run[0].isoformat()}...{run[-1].isoformat()}" for run in contiguous_spans(days)]
    command = f"dagster asset materialize -m {CODE_LOCATION_MODULE} --select '{select}' --partition-range"
    if len(spans) == 1:
        return f"{command} {spans[0]}"
    return f"for r in {' '.join(spans)}; do {command} $r || break; done"


def require_stored(window: DayWindow, stored: Collection[dt.date], *, what: str, asset: str, select: str) -> None:
    """Refuse ``window`` unless every day of it is in ``stored``.

    Args:
        window: The days needed.
        stored: The days ``asset`` holds.
        what: What the window is for, for the message (``"detector_calibration's fit window"``).
        asset: The store the days are missing from (``"fuelhh_store"``).
        select: The Dagster selection that fills it (``"*fuelhh_store"``).

    Raises:
        WindowNotStored: naming up to ten missing days, how many there are, and the backfill command.
    """
    missing = [d for d in window.days() if d not in stored]
    if missing:
        shown = ", ".join(d.isoformat() for d in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise WindowNotStored(f"{what} {window.describe()} is not wholly stored: {asset} lacks {len(missing)} of its days "
                              f"({shown})", missing, backfill_command(select, missing))
