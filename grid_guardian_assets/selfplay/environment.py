"""The environment's verifier: is a proposed scenario physically possible, and plausible to the trained GNN?

Checks, in order (the first that fails is the rejection reason):

* ``shape``: the scenario fits its window (a period before it for stuck/duplicated readings), its bus exists, and a
  bus-level fault has something to act on (a flowing interconnector, a running unit, a moving reading).
* ``capacity``: a trip loses at most what the fuel is generating at the bus; no bus generates above its installed
  capacity afterwards (``stations_2018.csv`` on ``gb29``; generator ratings on ``gb2224``); demand stays ≥ 0.
* ``balance`` (physical events): supply − demand stays within losses (``LOSS_MIN..LOSS_MAX`` of supply).
* ``line_limits`` (physical events): no branch above ``MAX_SURVIVABLE_LOADING`` × its limit (protection would trip
  the line first); an overload redispatch must overload something, or it is not one.
* ``ramp`` (physical events): units that respond move by at most their fuel's ramp rate per half hour × the
  installed capacity at the bus (the tripped unit itself is exempt: a trip is instantaneous by nature).
* ``frequency`` (trips): the loss is at most the largest secured infeed loss (1,800 MW, SQSS), the initial RoCoF from
  the swing equation ``ΔP·f0 / (2·E)`` with GB's system inertia ``E`` stays under the plausibility bound of 1 Hz/s
  (not the live detector's 0.125 Hz/s alarm: see ``grid.physics``), and the injected half-hour-mean dip matches the
  system response to that loss.

The physical constants are ``grid.physics``'s; the branch limits are the ones the ``branch_limits`` asset stored.
* ``gnn_plausibility`` (physical events): the trained verifier's calibrated score stays below
  ``IMPLAUSIBLE_SCORE``: a real event should look like an anomaly, not like noise from another planet.

Sensor and data faults (stuck, scaled, sign-flipped readings; missing or duplicated periods) do not change the
physics of the grid, so only the shape and capacity checks apply to them.
"""

from dataclasses import dataclass

import numpy as np

from grid_guardian_assets.grid.branch_limits import BranchLimits
from grid_guardian_assets.grid.dcflow import DCPowerFlow
from grid_guardian_assets.grid.mapping import GENERATION_FUELS, station_capacity
from grid_guardian_assets.grid.network import GridNetwork
from grid_guardian_assets.grid.physics import (
    LARGEST_INFEED_LOSS_MW,
    LOSS_MAX,
    LOSS_MIN,
    NOMINAL_FREQUENCY_HZ,
    ROCOF_PLAUSIBLE_MAX_HZ_PER_S,
    SYSTEM_INERTIA_MWS,
    trip_period_dips_hz,
)
from grid_guardian_assets.selfplay.scenarios import DEMAND, GEN, IMPORT, PHYSICAL_KINDS, SYSTEM_KINDS, Scenario, apply_scenario, tripped_fuel
from grid_guardian_assets.verifier.scoring import Calibration, LearnedDetector
from grid_guardian_assets.verifier.sequences import GridSequence, balance_ratio

MAX_SURVIVABLE_LOADING = 1.5
IMPLAUSIBLE_SCORE = 50.0
# Ramp rate per half hour as a share of installed capacity (flexible gas fast; nuclear barely moves).
RAMP_PER_PERIOD = {"CCGT": 1.0, "OCGT": 1.0, "OIL": 1.0, "COAL": 0.5, "NUCLEAR": 0.05, "WIND": 1.0, "PS": 1.0,
                   "NPSHYD": 1.0, "BIOMASS": 0.5, "OTHER": 0.5}


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str  # "accepted" or the failing check's name
    detail: str = ""


def installed_capacity(network: GridNetwork) -> np.ndarray:
    """``(N, fuels)`` installed MW per bus and generation fuel (``gb2224``: the bus's generator rating, any fuel)."""
    if network.name != "gb29":
        return np.repeat(network.generator_mw[:, None], len(GENERATION_FUELS), axis=1)
    table = np.zeros((network.n_buses, len(GENERATION_FUELS)))
    for row in station_capacity().iter_rows(named=True):
        if row["fuel_type"] in GENERATION_FUELS:
            table[network.bus_index(row["bus"]), GENERATION_FUELS.index(row["fuel_type"])] += row["capacity_mw"]
    return table


class PhysicsVerifier:
    """Rejects impossible scenarios; see the module docstring for the checks.

    Args:
        network: The grid model.
        limits: Branch limits (as the live overload rule uses them).
        detector, calibration: The trained GNN verifier, for the plausibility check (``None`` skips it).
    """

    def __init__(self, network: GridNetwork, limits: BranchLimits, detector: LearnedDetector | None = None,
                 calibration: Calibration | None = None):
        self.network, self.limits = network, limits
        self.flow = DCPowerFlow(network)
        self.capacity = installed_capacity(network)
        self.detector, self.calibration = detector, calibration

    def verify(self, window: GridSequence, scenario: Scenario) -> tuple[Verdict, GridSequence | None]:
        """The verdict and, when the shape allows, the window with the scenario applied."""
        shape = self._shape(window, scenario)
        if shape:
            return Verdict(False, "shape", shape), None
        after = apply_scenario(window, scenario, self.network, self.flow)
        for check in (self._capacity, self._balance, self._line_limits, self._ramp, self._frequency, self._plausibility):
            problem = check(window, after, scenario)
            if problem:
                return Verdict(False, check.__name__.lstrip("_"), problem), after
        return Verdict(True, "accepted"), after

    def _shape(self, window: GridSequence, s: Scenario) -> str | None:
        if s.duration < 1 or s.start < 1 or s.start + s.duration > len(window):
            return f"periods {s.start}..{s.start + s.duration - 1} do not fit a {len(window)}-period window after its first"
        if s.kind in SYSTEM_KINDS:
            return None
        if not 0 <= s.bus < self.network.n_buses:
            return f"bus {s.bus} is not on {self.network.name}"
        t = s.start
        if s.kind == "interconnector_sign_flip" and abs(window.node[t, s.bus, IMPORT]) < 100:
            return f"no interconnector flows ≥ 100 MW at {self.network.bus_names[s.bus]}"
        if s.kind in ("unit_trip", "unit_scaling", "stuck_sensor") and window.node[t, s.bus, GEN].max() < 50:
            return f"no unit generates ≥ 50 MW at {self.network.bus_names[s.bus]}"
        if s.kind == "stuck_sensor":
            fuel = tripped_fuel(window, s)
            if np.abs(np.diff(window.node[t - 1 : t + s.duration, s.bus, fuel])).sum() < 1.0:
                return "the reading does not move in these periods: a stuck sensor would be invisible and untestable"
        return None

    def _capacity(self, before: GridSequence, after: GridSequence, s: Scenario) -> str | None:
        ts = list(s.periods)
        if s.kind == "unit_trip":
            fuel = tripped_fuel(before, s)
            running = float(before.node[ts, s.bus, fuel].min())
            if s.magnitude > running + 1e-6:
                name = GENERATION_FUELS[GEN.index(fuel)]
                return (f"unit_trip loses {s.magnitude:.0f} MW at {self.network.bus_names[s.bus]}, which generates only "
                        f"{running:.0f} MW of {name} (installed {self.capacity[s.bus, GEN.index(fuel)]:.0f} MW)")
        if s.kind in PHYSICAL_KINDS:
            gen = after.node[ts][:, :, GEN]
            raised = gen > before.node[ts][:, :, GEN] + 1.0  # only what the scenario adds is judged
            over = np.where(raised, gen - self.capacity[None] * 1.05, 0.0)  # 5 %: stations table rounding
            if np.any(gen < -1e-6):
                return "a unit would generate a negative amount"
            if np.any(over > 1.0):
                t, bus, k = np.unravel_index(int(np.argmax(over)), over.shape)
                return (f"{self.network.bus_names[bus]} would generate {gen[t, bus, k]:.0f} MW of {GENERATION_FUELS[k]}, above "
                        f"its installed {self.capacity[bus, k]:.0f} MW")
            if np.any(after.node[ts][:, :, DEMAND] < 0):
                return "demand would be negative"
        return None

    def _balance(self, before: GridSequence, after: GridSequence, s: Scenario) -> str | None:
        if s.kind not in PHYSICAL_KINDS:
            return None
        ratio = balance_ratio(after.node[list(s.periods)])
        bad = (ratio < LOSS_MIN) | (ratio > LOSS_MAX)
        if bad.any():
            return f"supply − demand would be {ratio[bad][0]:.1%} of supply (losses keep it within {LOSS_MIN:.0%}..{LOSS_MAX:.0%})"
        return None

    def _line_limits(self, before: GridSequence, after: GridSequence, s: Scenario) -> str | None:
        if s.kind not in PHYSICAL_KINDS:
            return None
        relative = after.loading[list(s.periods)] / self.limits.limit[None]
        if relative.max() > MAX_SURVIVABLE_LOADING:
            return f"a branch would carry {relative.max():.2f}× its limit (protection trips above {MAX_SURVIVABLE_LOADING}×)"
        if s.kind == "overload_redispatch" and relative.max() <= 1.0:
            return "the redispatch overloads no branch"
        return None

    def _ramp(self, before: GridSequence, after: GridSequence, s: Scenario) -> str | None:
        if s.kind not in PHYSICAL_KINDS:
            return None
        ts = list(range(s.start - 1, min(s.start + s.duration + 1, len(after))))
        step = np.abs(np.diff(after.node[ts][:, :, GEN], axis=0)) - np.abs(np.diff(before.node[ts][:, :, GEN], axis=0))
        limit = np.array([RAMP_PER_PERIOD[f] for f in GENERATION_FUELS])[None, None] * self.capacity[None]
        excess = step - limit
        if s.kind == "unit_trip":
            excess[:, s.bus, GEN.index(tripped_fuel(before, s))] = -np.inf
        if np.any(excess > 1.0):
            t, bus, k = np.unravel_index(int(np.argmax(excess)), excess.shape)
            return (f"{GENERATION_FUELS[k]} at {self.network.bus_names[bus]} would ramp {step[t, bus, k]:.0f} MW in a half hour "
                    f"(at most {limit[0, bus, k]:.0f} MW)")
        return None

    def _frequency(self, before: GridSequence, after: GridSequence, s: Scenario) -> str | None:
        if s.kind != "unit_trip":
            return None
        if s.magnitude > LARGEST_INFEED_LOSS_MW:
            return (f"a {s.magnitude:.0f} MW loss exceeds the largest secured infeed loss ({LARGEST_INFEED_LOSS_MW:.0f} MW): "
                    "frequency would leave the statutory band")
        rocof = s.magnitude * NOMINAL_FREQUENCY_HZ / (2 * SYSTEM_INERTIA_MWS)
        if rocof > ROCOF_PLAUSIBLE_MAX_HZ_PER_S:
            return f"initial RoCoF {rocof:.2f} Hz/s exceeds {ROCOF_PLAUSIBLE_MAX_HZ_PER_S} Hz/s"
        dip = float(np.nan_to_num(before.frequency[s.start] - after.frequency[s.start]))
        expected = float(trip_period_dips_hz(s.magnitude)[0])
        if not np.isclose(dip, expected, rtol=0.5, atol=0.005):
            return (f"frequency dips {dip:.3f} Hz for a {s.magnitude:.0f} MW loss; the grid's response to a loss "
                    f"(grid.physics) says about {expected:.3f} Hz")
        return None

    def _plausibility(self, before: GridSequence, after: GridSequence, s: Scenario) -> str | None:
        if s.kind not in PHYSICAL_KINDS or self.detector is None or self.calibration is None:
            return None
        node, _ = self.calibration.apply(self.detector.raw_scores(after))
        peak = float(np.nanmax(node[list(s.periods)])) if np.isfinite(node[list(s.periods)]).any() else 0.0
        if peak > IMPLAUSIBLE_SCORE:
            return f"the GNN verifier scores it {peak:.0f}× its alarm threshold: not a plausible grid state"
        return None
