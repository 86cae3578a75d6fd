"""Real physical notifications per BM unit, 2021-06-30 22:00 … 07-10 18:00 (London), served as the Insights API's PN.

The bundled file (``data/pn_2021/``, from OSUKED/ElexonDataPortal, MIT; "Contains BMRS data © Elexon Limited
copyright and database right") holds each unit's notified level at every half-hour, resampled by its authors from
the PN's ``levelFrom``/``levelTo`` segments: 1,380 units (``T_``/``E_`` generators, ``2__`` supplier units, ``I_``
interconnector units). Each settlement period is served as one segment per unit that notified a level:
``levelFrom`` its level at the period's start, ``levelTo`` at the next half-hour's (the same level at the file's last
half-hour). That is the file's resampling, not the units' own segments: the responses' metadata says so. Periods the
file does not cover are not served (the per-unit data exist only in this window; no split is invented elsewhere).
"""

import datetime as dt
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl

from grid_guardian_assets.settlement import PERIOD, UTC, settlement_periods, to_api_time

SOURCE = ("BMRS physical notifications per BM unit (real), resampled to half-hours by OSUKED/ElexonDataPortal; one "
          "segment per unit and period: levelFrom at the period's start, levelTo at the next half-hour")


def bundled_pn_csv() -> Path:
    return Path(str(resources.files("grid_guardian_assets") / "data" / "pn_2021" / "PN_2021-06-30_07-10_by_bmu.csv.gz"))


@cache
def _levels() -> tuple[dict[dt.datetime, int], list[str], np.ndarray]:
    """(period start (UTC) → row, unit ids, ``(rows, units)`` MW with NaN where a unit notified nothing)."""
    frame = pl.read_csv(bundled_pn_csv(), infer_schema_length=0)
    starts = [dt.datetime.fromisoformat(text).astimezone(UTC) for text in frame["local_datetime"].to_list()]
    units = [c for c in frame.columns if c != "local_datetime"]
    levels = frame.select(pl.col(units).cast(pl.Float64)).to_numpy()
    return {start: i for i, start in enumerate(starts)}, units, levels


@cache
def _national_grid_ids() -> dict[str, str]:
    """Settlement BM unit id → National Grid id, where Elexon's fuel-type file names both."""
    from grid_guardian_assets.replay.bm_units import bm_unit_records

    return {r["elexonBmUnit"]: r["nationalGridBmUnit"] for r in bm_unit_records() if r["elexonBmUnit"]}


def covers(day: dt.date) -> bool:
    """Whether the file holds any period of settlement ``day``."""
    rows, _, _ = _levels()
    return any(p.start in rows for p in settlement_periods(day))


def pn_records(day: dt.date, period: int) -> list[dict]:
    """Every unit's PN segment of one settlement period, as the Insights API's PN records; none outside the file."""
    periods = {p.number: p for p in settlement_periods(day)}
    rows, units, levels = _levels()
    if period not in periods or periods[period].start not in rows:
        return []
    p = periods[period]
    now = levels[rows[p.start]]
    nxt = levels[rows[p.start + PERIOD]] if p.start + PERIOD in rows else now
    grid_ids = _national_grid_ids()
    start, end = to_api_time(p.start), to_api_time(p.end)
    return [
        {"dataset": "PN", "settlementDate": day.isoformat(), "settlementPeriod": period, "timeFrom": start, "timeTo": end,
         "levelFrom": int(round(now[i])), "levelTo": int(round(nxt[i] if np.isfinite(nxt[i]) else now[i])),
         "nationalGridBmUnit": grid_ids.get(unit), "bmUnit": unit}
        for i, unit in enumerate(units) if np.isfinite(now[i])
    ]
