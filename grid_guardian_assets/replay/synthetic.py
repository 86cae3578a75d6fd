"""Synthetic companions of the real FUELHH recording, for datasets with no real recording in the repository.

Everything here is generated, deterministic per settlement day, and served with ``synthetic: true`` in the
response metadata and header; BM unit names start with ``SYN-`` so that no one mistakes them for real units.
The numbers are kept consistent with the real FUELHH of the same day: metered unit volumes add up to their fuel
type's generation, and frequency wanders near 50 Hz as GB's does. (Demand is real: see ``replay.neso``.)
"""

import datetime as dt
import hashlib
from bisect import bisect_left
from functools import cache, lru_cache
from operator import itemgetter

import numpy as np

from grid_guardian_assets.grid.physics import NOMINAL_FREQUENCY_HZ
from grid_guardian_assets.replay.bmrs_history import fuel_generation
from grid_guardian_assets.settlement import PERIOD, day_bounds_utc, settlement_periods, to_api_time

FREQ_STEP = dt.timedelta(seconds=15)  # the Insights API's FREQ spacing

# Synthetic BM units per fuel type (how many, and the ENTSO-E psrType they report as in B1610).
UNITS: dict[str, tuple[int, str]] = {
    "CCGT": (30, "Fossil Gas"),
    "OCGT": (5, "Fossil Gas"),
    "COAL": (8, "Fossil Hard coal"),
    "OIL": (2, "Fossil Oil"),
    "NUCLEAR": (15, "Nuclear"),
    "WIND": (40, "Wind Offshore"),
    "BIOMASS": (6, "Biomass"),
    "NPSHYD": (10, "Hydro Run-of-river and poundage"),
    "PS": (8, "Hydro Pumped Storage"),
    "OTHER": (5, "Other"),
}
# The synthetic datasets are served for 2018 alone, the year the project's synthetic companions have always covered
# (AGWS, their real neighbour, is 2018 only): other years' backfills take FUELHH, INDO and ITSDO, the real datasets.
SYNTHETIC_YEARS = frozenset({2018})
METADATA = {
    "synthetic": True,
    "generator": "grid_guardian_assets.replay.synthetic",
    "basis": "real FUELHH of the same settlement day (Elexon BMRS, signed)",
    "years": sorted(SYNTHETIC_YEARS),
}


def covers(day: dt.date) -> bool:
    """Whether the synthetic datasets are served for settlement ``day``."""
    return day.year in SYNTHETIC_YEARS


def _rng(label: str) -> np.random.Generator:
    # hash() is salted per process; a digest keeps every run's numbers identical.
    seed = int.from_bytes(hashlib.sha256(label.encode()).digest()[:8], "little")
    return np.random.default_rng(seed)


@cache
def freq_samples(day: dt.date) -> tuple[tuple[dt.datetime, float], ...]:
    """15-second frequency readings for a day: an Ornstein-Uhlenbeck walk around 50 Hz (sd ~0.06 Hz)."""
    start, end = day_bounds_utc(day)
    n = int((end - start) / FREQ_STEP)
    rng = _rng(f"FREQ:{day}")
    theta, sigma = 0.02, 0.012  # per step: mean reversion over ~12 min, stationary sd = sigma/sqrt(2 theta)
    f = np.empty(n)
    f[0] = NOMINAL_FREQUENCY_HZ + rng.normal(0, 0.05)
    shocks = rng.normal(0, sigma, n)
    for i in range(1, n):
        f[i] = f[i - 1] - theta * (f[i - 1] - NOMINAL_FREQUENCY_HZ) + shocks[i]
    return tuple((start + i * FREQ_STEP, round(float(v), 3)) for i, v in enumerate(f))


@lru_cache(maxsize=4)  # a request reads three days; a backfill moves on day by day
def _freq_api_times(day: dt.date) -> tuple[str, ...]:
    """``to_api_time`` of each of the day's samples, formatted at once (a day is 5,760 of them: formatting one by one
    was most of the replay server's time in a backfill)."""
    start, _ = day_bounds_utc(day)
    first = np.datetime64(start.replace(tzinfo=None), "s")
    instants = first + np.arange(len(freq_samples(day))) * np.timedelta64(int(FREQ_STEP.total_seconds()), "s")
    return tuple(np.char.add(np.datetime_as_string(instants, unit="s"), "Z").tolist())


def freq_records(start: dt.datetime, end: dt.datetime) -> list[dict]:
    """FREQ rows with ``start <= measurementTime < end``."""
    rows = []
    day = (start - dt.timedelta(days=1)).date()
    while day <= end.date() + dt.timedelta(days=1):
        if covers(day) and fuel_generation(day):
            samples = freq_samples(day)
            first = bisect_left(samples, start, key=itemgetter(0))
            last = bisect_left(samples, end, key=itemgetter(0))
            texts = _freq_api_times(day)
            rows.extend(
                {"dataset": "FREQ", "measurementTime": texts[i], "frequency": samples[i][1]} for i in range(first, last)
            )
        day += dt.timedelta(days=1)
    return rows


@cache
def _unit_weights(fuel: str) -> np.ndarray:
    count, _ = UNITS[fuel]
    weights = _rng(f"UNITS:{fuel}").uniform(0.5, 1.5, count)
    return weights / weights.sum()


def unit_output_mw(day: dt.date, period: int) -> list[tuple[str, str, float]]:
    """(unit, psrType, MW) for every synthetic BM unit in a period; units of a fuel sum to its FUELHH value."""
    fuels = fuel_generation(day).get(period, {}) if covers(day) else {}
    out = []
    for fuel, (_, psr) in UNITS.items():
        if fuel not in fuels:
            continue
        for i, w in enumerate(_unit_weights(fuel), 1):
            out.append((f"SYN-{fuel}-{i:02d}", psr, fuels[fuel] * float(w)))
    return out


def b1610_records(day: dt.date, period: int) -> list[dict]:
    """Metered volumes (MWh = MW x 0.5 h) per synthetic unit for one settlement period."""
    periods = {p.number: p for p in settlement_periods(day)}
    if period not in periods:
        return []
    end = to_api_time(periods[period].end)
    return [
        {
            "dataset": "B1610",
            "psrType": psr,
            "bmUnit": f"T_{unit}",
            "nationalGridBmUnitId": unit,
            "settlementDate": day.isoformat(),
            "settlementPeriod": period,
            "halfHourEndTime": end,
            "quantity": round(mw * PERIOD.total_seconds() / 3600, 3),
        }
        for unit, psr, mw in unit_output_mw(day, period)
    ]


def pn_records(day: dt.date, period: int) -> list[dict]:
    """One physical notification per synthetic unit and period, ramping towards the next period's level."""
    periods = {p.number: p for p in settlement_periods(day)}
    if period not in periods:
        return []
    now = unit_output_mw(day, period)
    nxt = {u: mw for u, _, mw in unit_output_mw(day, period + 1)} if period + 1 in periods else {}
    p = periods[period]
    return [
        {
            "dataset": "PN",
            "settlementDate": day.isoformat(),
            "settlementPeriod": period,
            "timeFrom": to_api_time(p.start),
            "timeTo": to_api_time(p.end),
            "levelFrom": int(round(mw)),
            "levelTo": int(round(nxt.get(unit, mw))),
            "nationalGridBmUnit": unit,
            "bmUnit": f"T_{unit}",
        }
        for unit, _, mw in now
    ]
