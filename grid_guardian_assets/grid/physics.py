"""Physical constants and thresholds of the GB grid: the one place each number is stated, with where it comes from.

The live rules (``detect/physics_rules.py``), the snapshots' balance check, the benchmark's injectors, the self-play
environment, the replay's synthetic frequency and the plots import them from here; none restates a number.
"""

from typing import TYPE_CHECKING

from grid_guardian_assets.settlement import PERIOD

if TYPE_CHECKING:  # numpy is imported where it is used: the code location imports this module
    import numpy as np

# --- Frequency ------------------------------------------------------------------------------------------------------
NOMINAL_FREQUENCY_HZ = 50.0  # GB system frequency (Grid Code CC.6.1.3: "nominally 50 Hz")
# Half-widths of the bands around nominal. Operational: NESO keeps frequency within 49.8–50.2 Hz in normal operation
# (its operational limit). Statutory: 49.5–50.5 Hz (Grid Code CC.6.1.3; ESQCR 2002 allows ±1 %), left only in
# exceptional circumstances.
FREQUENCY_OPERATIONAL_BAND_HZ = 0.2
FREQUENCY_STATUTORY_BAND_HZ = 0.5

# --- Rate of change of frequency (RoCoF): two different facts --------------------------------------------------------
# The live detector's alarm: 0.125 Hz/s, the loss-of-mains RoCoF setting of embedded generation before the Accelerated
# Loss of Mains Change Programme (ALoMCP, 2019–2022; ENA G59). A RoCoF that high used to trip embedded generation and
# deepen the event (9 August 2019), so it is the cautious level to alert on.
ROCOF_ALARM_HZ_PER_S = 0.125
# Self-play's plausibility bound: 1 Hz/s, the loss-of-mains setting after ALoMCP (ENA G99, Grid Code). The system is
# operated so that a secured loss never reaches it, so a proposed trip whose initial RoCoF (swing equation) would
# exceed it is not a physically credible event and is rejected. It is not an alarm level.
ROCOF_PLAUSIBLE_MAX_HZ_PER_S = 1.0

# --- Inertia and the largest loss -----------------------------------------------------------------------------------
# GB system kinetic energy (inertia) around 2018, MW·s (GVA·s), the order National Grid ESO reported then (System
# Operability Framework); lower now. Initial RoCoF of a loss ΔP is ΔP·f0 / (2·E) (the swing equation).
SYSTEM_INERTIA_MWS = 150_000.0
# NETS SQSS infrequent infeed loss risk: the largest single loss of generation the system is secured against.
LARGEST_INFEED_LOSS_MW = 1800.0

# --- The frequency a sudden loss leaves ------------------------------------------------------------------------------
# Seconds after a loss, frequency reaches its nadir: 0.45 Hz below its value before for each GW lost, so 2018's normal
# infeed loss (1,000 MW) stays inside the 0.5 Hz the SQSS allows it. Primary and secondary response then bring it back
# with a time constant of about a minute: inside the operational band within a minute of a 1 GW loss, at its old value
# within minutes. A model of GB's response in 2018, not a measured figure; the demo's incident written into FREQ, the
# benchmark's trips and self-play's all take their dip from it (``trip_frequency_dip_hz``, ``trip_period_dips_hz``).
TRIP_NADIR_HZ_PER_MW = 0.45 / 1000
TRIP_RECOVERY_S = 60.0


def trip_frequency_dip_hz(loss_mw: float, seconds_after: "np.ndarray | float") -> "np.ndarray":
    """How far below its value before the loss ``loss_mw`` MW lost holds frequency ``seconds_after`` it (0 before).

    Args:
        loss_mw: Infeed lost, MW.
        seconds_after: Seconds since the loss, one or many.

    Returns:
        The dip in Hz (positive: frequency is lower), shaped like ``seconds_after``.
    """
    import numpy as np

    t = np.asarray(seconds_after, dtype=float)
    return np.where(t >= 0, loss_mw * TRIP_NADIR_HZ_PER_MW * np.exp(-np.clip(t, 0, None) / TRIP_RECOVERY_S), 0.0)


def trip_period_dips_hz(loss_mw: float, periods: int = 2) -> "np.ndarray":
    """The mean dip over each of the ``periods`` settlement periods from a loss at the start of the first: what the
    loss takes from the half-hourly mean frequency that snapshots hold (the integral of ``trip_frequency_dip_hz``).
    A 1,000 MW loss takes 0.015 Hz from its period's mean and nothing measurable from the next: the nadir is seconds
    long, so the mean hides it."""
    import numpy as np

    span, tau = PERIOD.total_seconds(), TRIP_RECOVERY_S
    edges = np.exp(-np.arange(periods + 1) * span / tau)
    return loss_mw * TRIP_NADIR_HZ_PER_MW * tau / span * (edges[:-1] - edges[1:])


# --- Losses and the national balance --------------------------------------------------------------------------------
# Transmission losses as a share of supply: about 2 % on GB's transmission system (NESO). Used where demand must be
# estimated from supply before it arrives, and as the prior of the balance ratio.
TRANSMISSION_LOSS_RATIO = 0.02
# (supply − INDO) / supply of a normal period. Supply is FUELHH signed as the Insights API serves it (pumped storage
# pumping and interconnectors exporting count negative) and INDO is BMRS's initial national demand, which leaves out
# station load, pumping and exports: the residual is transmission losses (TRANSMISSION_LOSS_RATIO) and station load.
# A fixed sanity band for where no learned balance check runs (``detect.redundancy`` learns the relation itself), so it
# must hold in every year: measured on 2016–2023 (131,936 periods with both, 2018's held-out October–December left
# out; replay.bmrs_history): median 2.1 %, p0.5 −1.4 %, p1 −0.8 %, p99 3.8 %, p99.5 4.2 %, p99.9 5.2 % (2018 alone:
# p0.5 0.7 %, p99.5 3.0 %; 2023 reads higher, p99 4.9 %). −3 %..6 % holds 99.8 % of those periods and every period
# on 2,642 of the 2,767 days; the rest are FUELHH glitches (2018-09-11 period 22 reads −2,456 %, like 2018-01-23 and
# 2018-05-10) that the check must flag, and early 2016. (On the legacy scrape that clipped negatives to 0 the band had
# to reach 16 %: pumping and exports counted as supply.)
LOSS_MIN, LOSS_MAX = -0.03, 0.06
