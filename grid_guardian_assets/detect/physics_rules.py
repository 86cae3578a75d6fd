"""Physics rules a grid engineer expects, scored so that 1.0 is each rule's alarm threshold (``grid.physics`` holds
the numbers and their sources).

* Frequency: GB's operational limits are 50 Hz ± 0.2 Hz and the statutory limits ± 0.5 Hz. A FREQ sample's score
  is its deviation over the operational half-width; outside the statutory band the alert names that rule.
* Rate of change of frequency: above ``ROCOF_ALARM_HZ_PER_S`` (0.125 Hz/s, the cautious pre-ALoMCP loss-of-mains
  setting) between consecutive samples. Samples more than ``ROCOF_MAX_GAP`` apart are not compared: a gap is not a
  ramp.
* Power imbalance: supply (FUELHH + net imports) minus INDO demand outside the band that losses and station load
  explain (``LOSS_MIN..LOSS_MAX`` of supply).
* Line overload: a branch's DC-flow loading above its rating, on branches whose rating is credible
  (``grid.branch_limits``: one the stored snapshots show routinely exceeded in some season is not judged; the
  ``branch_limits`` asset stores which).
"""

import datetime as dt

import numpy as np

from grid_guardian_assets.detect.findings import SYSTEM_NODE, Finding, Origin
from grid_guardian_assets.grid.physics import (
    FREQUENCY_OPERATIONAL_BAND_HZ,
    FREQUENCY_STATUTORY_BAND_HZ,
    LOSS_MAX,
    LOSS_MIN,
    NOMINAL_FREQUENCY_HZ,
    ROCOF_ALARM_HZ_PER_S,
)

# Samples further apart than this are not compared for RoCoF: across a gap the rate says nothing about a ramp.
ROCOF_MAX_GAP = dt.timedelta(seconds=60)

def frequency_findings(
    time: dt.datetime, hz: float, origin: Origin, previous: tuple[dt.datetime, float] | None, model_version: str = "none"
) -> list[Finding]:
    """Findings for one FREQ sample: its band score, and RoCoF against the previous sample when there is one."""
    deviation = abs(hz - NOMINAL_FREQUENCY_HZ)
    source = "frequency_statutory" if deviation > FREQUENCY_STATUTORY_BAND_HZ else "frequency_operational"
    out = [Finding(SYSTEM_NODE, time, deviation / FREQUENCY_OPERATIONAL_BAND_HZ, source, "FREQ", origin, {"frequency_hz": hz},
                   model_version)]
    if previous is not None:
        gap = time - previous[0]
        if dt.timedelta(0) < gap <= ROCOF_MAX_GAP:
            rocof = (hz - previous[1]) / gap.total_seconds()
            out.append(
                Finding(SYSTEM_NODE, time, abs(rocof) / ROCOF_ALARM_HZ_PER_S, "rocof", "FREQ", origin,
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
