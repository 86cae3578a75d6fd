"""Anomaly scenarios as parameters (type, bus, start, duration, magnitude), applied to real stored windows.

The benchmark's injectors (``verifier/anomalies.py``) pick their own bus and size at random; here the proposer picks
them, so a scenario can be anything, including the physically impossible, which the environment must then reject.
``magnitude`` means: MW lost (``unit_trip``), MW of flexible (CCGT/OCGT) output moved from every other bus to the scenario's bus
(``overload_redispatch``), the fractional change of demand (``demand_shift``), the factor a reading is multiplied by
(``unit_scaling``: 0.001 is MW read as kW); the other types ignore it.
"""

from dataclasses import asdict, dataclass

import numpy as np

from grid_guardian_assets.grid.dcflow import DCPowerFlow
from grid_guardian_assets.grid.network import GridNetwork
from grid_guardian_assets.grid.snapshots import NODE_FEATURES
from grid_guardian_assets.verifier.anomalies import ANOMALY_TYPES, AnomalyLabel, flex_share, rederive
from grid_guardian_assets.verifier.sequences import GridSequence

GEN = [i for i, n in enumerate(NODE_FEATURES) if n.startswith("gen_")]
FLEX = [NODE_FEATURES.index("gen_ccgt"), NODE_FEATURES.index("gen_ocgt")]
IMPORT, DEMAND = NODE_FEATURES.index("net_import"), NODE_FEATURES.index("demand")
SYSTEM_KINDS = ("missing_period", "duplicated_period")
PHYSICAL_KINDS = ("unit_trip", "demand_shift", "overload_redispatch")  # real events: the physics must hold


@dataclass(frozen=True)
class Scenario:
    """One proposed anomaly. ``bus`` is -1 for system-wide types; ``window`` indexes the round's stored windows."""

    kind: str
    bus: int
    start: int
    duration: int
    magnitude: float
    window: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ANOMALY_TYPES:
            raise ValueError(f"unknown anomaly type {self.kind!r}; known: {', '.join(ANOMALY_TYPES)}")

    @property
    def periods(self) -> range:
        return range(self.start, self.start + self.duration)

    def label(self) -> AnomalyLabel:
        return AnomalyLabel(self.kind, -1 if self.kind in SYSTEM_KINDS else self.bus, self.start, self.duration, self.magnitude)

    def to_row(self) -> dict:
        return asdict(self)


def tripped_fuel(window: GridSequence, scenario: Scenario) -> int:
    """The node-feature index of the fuel a trip or scaling hits: the bus's largest generation at the start."""
    return GEN[int(np.argmax(window.node[scenario.start, scenario.bus, GEN]))]


def apply_scenario(window: GridSequence, scenario: Scenario, network: GridNetwork, flow: DCPowerFlow) -> GridSequence:
    """A copy of ``window`` with the scenario's readings, net injections and flows re-derived as the pipeline would.

    Nothing is clipped to make it possible: an impossible scenario is applied as asked (generation may go negative),
    so the environment sees exactly what was proposed.
    """
    s = window.copy()
    ts = [t for t in scenario.periods if t < len(s)]
    bus, kind = scenario.bus, scenario.kind
    if kind == "unit_trip":
        fuel = tripped_fuel(s, scenario)
        for t in ts:
            s.node[t, bus, fuel] -= scenario.magnitude
            s.node[t, :, FLEX[0]] += scenario.magnitude * flex_share(s.node[t], bus)  # other units pick the loss up
        s.lose_infeed(scenario.start, scenario.magnitude)
    elif kind == "stuck_sensor":
        fuel = tripped_fuel(s, scenario)
        s.node[ts, bus, fuel] = s.node[scenario.start - 1, bus, fuel]
    elif kind == "unit_scaling":
        s.node[ts, bus, tripped_fuel(s, scenario)] *= scenario.magnitude
    elif kind == "interconnector_sign_flip":
        s.node[ts, bus, IMPORT] *= -1.0
    elif kind == "demand_shift":
        s.node[ts, bus, DEMAND] *= 1.0 + scenario.magnitude
    elif kind == "overload_redispatch":
        for t in ts:
            s.node[t, :, FLEX[0]] -= scenario.magnitude * flex_share(s.node[t], bus)
            s.node[t, bus, FLEX[0]] += scenario.magnitude
    elif kind == "missing_period":
        s.blank(ts)
        return s
    elif kind == "duplicated_period":
        s.repeat(scenario.start - 1, ts)
        return s
    rederive(s, range(ts[0], ts[-1] + 1) if ts else range(0), network, flow)
    return s
