"""What each fuel type's output usually does at a time of day: the fall ``infeed_loss`` expects before it alarms.

Plant follows the market's daily schedules: in the summer of 2018 the biomass fleet came down by 600-820 MW at 23:00
on many nights, which January to June never showed (their largest biomass fall was 606 MW), so an ``infeed_loss``
limit learned in spring alarmed on normal summer nights: 11 biomass alarms on July to September's normal data at
January to June's limits. A unit that trips does so at no particular time. So the fall judged is the one beyond the
fuel type's usual fall at that settlement period: the median, over the ``SCHEDULE_DAYS`` days before, of each day's
largest fall within one period of it. The median keeps one day's trip or glitch out of the schedule, and a fall that
happens on fewer than half of the days (wind following the weather) schedules little. With it, 3 of the 11 remain.

The limit stays the largest fall training shows at all (``data_quality.FuelLimits.drop_limit_mw``), not the largest
fall beyond the schedule: measured on the validation split (``bench/bench_ablation.py --split validation
--rules-only``, every fit before July), limits learned on the falls beyond the schedule came out tighter (CCGT 1,684 MW
instead of 3,355, biomass 439 instead of 606) and alarmed outside the events in 44 periods instead of 25, since a
new season's falls are less regular than the spring's; with the schedule and the limits as they were, 2, with the
same 185 events detected (F1 0.813 -> 0.856, false alerts per clean day 0.117 -> 0.033).

Settlement periods are numbered in local time, as the market's schedules run, so a 23:00 ramp keeps its number across
a clock change (only the clock-change days' own numbering shifts by two after 01:00).

``ScheduledFalls`` keeps the falls of the last days and answers for one period at a time: the live job and batch
``detect`` step through periods with it (``calibration.PeriodDetector``), and the benchmark teaches it the recorded
days before each case, as the live job would have seen them.
"""

import datetime as dt
import math
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

# Days of history a period's usual fall is taken from: a week covers weekday and weekend schedules, and a median of
# seven days ignores up to three unusual ones.
SCHEDULE_DAYS = 7
# Periods either side of the same period number on each day before: schedules move by a half-hour from day to day.
SCHEDULE_SLACK_PERIODS = 1

PeriodKey = tuple[dt.date, int]  # (settlement date, settlement period)


class ScheduledFalls:
    """The falls (MW, a rise is 0) of the measurements it is told about, per settlement period, for the last
    ``SCHEDULE_DAYS`` days, and the usual fall at a period from them.

    Args:
        measurements: The measurement names it keeps falls of (the fuel types ``infeed_loss`` judges).
    """

    def __init__(self, measurements: Iterable[str]):
        self.measurements = frozenset(measurements)
        self.falls: dict[PeriodKey, dict[str, float]] = {}

    def expected(self, settlement_date: dt.date, number: int) -> dict[str, float]:
        """Measurement name → usual fall (MW) at period ``number`` of ``settlement_date``, from the days before it
        (a measurement with no history there is absent: nothing is expected of it)."""
        day_peaks: dict[str, list[float]] = {}
        for back in range(1, SCHEDULE_DAYS + 1):
            day = settlement_date - dt.timedelta(days=back)
            peaks: dict[str, float] = {}
            for n in range(number - SCHEDULE_SLACK_PERIODS, number + SCHEDULE_SLACK_PERIODS + 1):
                for name, fall in self.falls.get((day, n), {}).items():
                    peaks[name] = max(peaks.get(name, 0.0), fall)
            for name, peak in peaks.items():
                day_peaks.setdefault(name, []).append(peak)
        return {name: statistics.median(peaks) for name, peaks in day_peaks.items()}

    def add(self, settlement_date: dt.date, number: int, falls: Mapping[str, float]) -> None:
        """Keep period ``number`` of ``settlement_date``'s falls (a period told again replaces what it had), and
        forget the days more than ``SCHEDULE_DAYS`` before the newest kept."""
        self.falls[(settlement_date, number)] = {k: v for k, v in falls.items() if k in self.measurements}
        newest = max(day for day, _ in self.falls)
        oldest = newest - dt.timedelta(days=SCHEDULE_DAYS)
        if min(day for day, _ in self.falls) < oldest:
            self.falls = {key: f for key, f in self.falls.items() if key[0] >= oldest}

    def to_json(self) -> dict[str, Any]:
        return {f"{day.isoformat()}/{n}": falls for (day, n), falls in self.falls.items()}

    def load_json(self, data: Mapping[str, Any]) -> None:
        self.falls = {}
        for key, falls in data.items():
            day, n = key.split("/")
            self.falls[(dt.date.fromisoformat(day), int(n))] = {k: float(v) for k, v in falls.items()}


def period_falls(values: Mapping[str, float | None], previous: Mapping[str, float | None]) -> dict[str, float]:
    """Per measurement known in both periods, how far ``values`` fell from ``previous`` (MW; a rise is 0)."""
    falls = {}
    for name, value in values.items():
        before = previous.get(name)
        if value is not None and before is not None and math.isfinite(value) and math.isfinite(before):
            falls[name] = max(before - value, 0.0)
    return falls
