"""Physics rules a grid engineer expects, scored so that 1.0 is each rule's alarm threshold.

* Frequency: GB's operational limits are 50 Hz ± 0.2 Hz and the statutory limits ± 0.5 Hz (Grid Code CC.6.1.3).
  A FREQ sample's score is its deviation over 0.2 Hz; outside the statutory band the alert names that rule.
* Rate of change of frequency: above 0.125 Hz/s between consecutive samples (the loss-of-mains RoCoF setting
  used since the Accelerated Loss of Mains Change Programme was 0.125 Hz/s, later 1 Hz/s; 0.125 is the cautious one).
  Samples more than ``ROCOF_MAX_GAP`` apart are not compared: a gap is not a ramp.
* Power imbalance: supply (FUELHH + net imports) minus INDO demand outside the band that losses and station load
  explain (``grid.snapshots.LOSS_MIN..LOSS_MAX`` of supply).
* Line overload: a branch's DC-flow loading above its limit. The limit is the branch's rating, except where the
  bundled 2018 history shows the reduced model routinely loading a branch past its rating (equivalent branches of
  gb29 whose ratings understate the corridor's): there the limit is that branch's 2018 maximum, so the rule fires on
  flows beyond anything seen in a normal year rather than in half of all periods. ``branch_limits`` reports which.
"""

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grid_guardian_assets.grid.dcflow import DCPowerFlow
from grid_guardian_assets.grid.mapping import BusMapping
from grid_guardian_assets.grid.network import GridNetwork
from grid_guardian_assets.grid.snapshots import LOSS_MAX, LOSS_MIN, period_arrays
from grid_guardian_assets.stream.messages import Origin

NOMINAL_HZ = 50.0
OPERATIONAL_BAND_HZ = 0.2
STATUTORY_BAND_HZ = 0.5
ROCOF_LIMIT_HZ_PER_S = 0.125
ROCOF_MAX_GAP = dt.timedelta(seconds=60)
# Normal-operation loading above a rating in more than this share of 2018 periods marks the rating unreliable.
UNRELIABLE_RATING_SHARE = 0.01

SYSTEM_NODE = "system"  # system frequency
NATIONAL_NODE = "national"  # the national balance of a settlement period


@dataclass(frozen=True)
class Finding:
    """One score for one node at one time, and where it came from. ``score >= 1`` is an alert."""

    node: str
    time: dt.datetime
    score: float
    source: str  # a rule name, or "model"
    dataset: str
    origin: Origin
    detail: dict[str, float | str] = field(default_factory=dict)  # read-only: one period's findings may share it
    model_version: str = "none"  # the checkpoint scoring when the finding was made ("none": physics rules only)

    @property
    def alert(self) -> bool:
        return bool(np.isfinite(self.score) and self.score >= 1.0)


def frequency_findings(
    time: dt.datetime, hz: float, origin: Origin, previous: tuple[dt.datetime, float] | None, model_version: str = "none"
) -> list[Finding]:
    """Findings for one FREQ sample: its band score, and RoCoF against the previous sample when there is one."""
    deviation = abs(hz - NOMINAL_HZ)
    source = "frequency_statutory" if deviation > STATUTORY_BAND_HZ else "frequency_operational"
    out = [Finding(SYSTEM_NODE, time, deviation / OPERATIONAL_BAND_HZ, source, "FREQ", origin, {"frequency_hz": hz},
                   model_version)]
    if previous is not None:
        gap = time - previous[0]
        if dt.timedelta(0) < gap <= ROCOF_MAX_GAP:
            rocof = (hz - previous[1]) / gap.total_seconds()
            out.append(
                Finding(SYSTEM_NODE, time, abs(rocof) / ROCOF_LIMIT_HZ_PER_S, "rocof", "FREQ", origin,
                        {"rocof_hz_per_s": rocof, "frequency_hz": hz}, model_version)
            )
    return out


def imbalance_score(supply_mw: np.ndarray, demand_mw: np.ndarray) -> np.ndarray:
    """Distance of the loss ratio from the middle of the normal band, in half-widths (1.0 at the band's edge), per
    period; infinite where there is no supply to speak of."""
    supply, demand = np.asarray(supply_mw, dtype=float), np.asarray(demand_mw, dtype=float)
    centre, half = (LOSS_MIN + LOSS_MAX) / 2, (LOSS_MAX - LOSS_MIN) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.abs((supply - demand) / supply - centre) / half
    return np.where(np.abs(supply) < 1.0, np.inf, score)


def branch_names(network: GridNetwork) -> list[str]:
    """``branch:{index}:{from}-{to}``: the index keeps parallel circuits apart."""
    return [
        f"branch:{i}:{network.bus_names[a]}-{network.bus_names[b]}"
        for i, (a, b) in enumerate(zip(network.from_bus, network.to_bus))
    ]


@dataclass(frozen=True)
class BranchLimits:
    """Loading above which each branch alarms (1.0 = its rating), and which limits come from history."""

    limit: np.ndarray  # (E,)
    from_history: np.ndarray  # (E,) bool

    def describe(self, network: GridNetwork) -> list[str]:
        names = branch_names(network)
        return [f"{names[i]} limit {self.limit[i]:.2f}× rating (2018 maximum)" for i in np.flatnonzero(self.from_history)]


def historical_loading(mapping: BusMapping, flow: DCPowerFlow) -> np.ndarray:
    """``(T, E)`` loadings of every bundled 2018 period (FUELHH, with demand at 98 % of supply)."""
    from grid_guardian_assets.replay import recorded

    rows = []
    for day in recorded.recorded_days():
        by_period = recorded.fuel_generation(day)
        periods = sorted(by_period)
        fuels = sorted({f for p in periods for f in by_period[p]})
        national = {f: np.array([float(by_period[p].get(f, 0)) for p in periods]) for f in fuels}
        supply = sum(national.values())
        _, edge, _ = period_arrays(mapping, flow, national, 0.98 * supply)
        rows.append(edge[:, :, 2])
    return np.concatenate(rows)


def branch_limits(mapping: BusMapping, flow: DCPowerFlow, cache_dir: Path | None = None) -> BranchLimits:
    """The line-overload limits of a network (cached per network under ``cache_dir``)."""
    cache = cache_dir / f"branch_limits_{mapping.network.name}.npz" if cache_dir else None
    if cache is not None and cache.exists():
        stored = np.load(cache)
        return BranchLimits(stored["limit"], stored["from_history"])
    loading = np.nan_to_num(historical_loading(mapping, flow), nan=0.0)
    unreliable = (loading > 1.0).mean(axis=0) > UNRELIABLE_RATING_SHARE
    limits = BranchLimits(np.where(unreliable, np.maximum(loading.max(axis=0), 1.0), 1.0), unreliable)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, limit=limits.limit, from_history=limits.from_history)
    return limits
