"""Readings in, findings out: settlement periods assembled from Kafka readings and scored by rules and the model.

* FREQ samples are scored as they arrive (band and RoCoF rules on the ``system`` node).
* A settlement period is scored as soon as its FUELHH is complete: every fuel type the last complete period had
  has arrived (a fresh stream learns that set from the first two periods that carry every fuel type seen so far),
  or no new FUELHH row for it came for ``fuel_settle_s`` seconds (a fuel type that stopped reporting). Keys spread one period's fuel types over a topic's partitions, so a later
  period's rows do not prove an earlier one complete.
* Demand (INDO, else ITSDO) refines a period when it arrives: the period is rescored and its scores overwritten.
  Until then the snapshot uses demand estimated at ``1 − ESTIMATED_LOSS_RATIO`` of supply (the balance rule does not
  run on an estimate), so a dataset that never arrives never stops scoring.
* B1610 (metered volumes per BM unit, published days later) refines a period still in the refinement window: its
  units' MWh × 2, summed by ENTSO-E ``psrType``, replace the FUELHH outturn of the matching fuel types (gas split
  between CCGT and OCGT as FUELHH split it), and the period is rescored. PN (physical notifications) are plans, not
  outturn: they are validated (and counted in the job's metrics); nothing in a snapshot is theirs to refine.
"""

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grid_guardian_assets.grid.dcflow import DCPowerFlow
from grid_guardian_assets.grid.mapping import BusMapping, UnknownFuelTypeError
from grid_guardian_assets.grid.snapshots import period_arrays
from grid_guardian_assets.settlement import UTC, period_of, settlement_periods
from grid_guardian_assets.stream.messages import Origin, Reading
from grid_guardian_assets.stream.rules import (
    NATIONAL_NODE,
    BranchLimits,
    Finding,
    branch_names,
    frequency_findings,
    imbalance_score,
)
from grid_guardian_assets.stream.scorer import LiveScorer, PeriodInput

ESTIMATED_LOSS_RATIO = 0.02
# B1610's ENTSO-E production types → FUELHH fuel types ("Fossil Gas" covers CCGT and OCGT).
PSR_FUELS = {
    "Fossil Gas": ("CCGT", "OCGT"),
    "Fossil Hard coal": ("COAL",),
    "Fossil Oil": ("OIL",),
    "Nuclear": ("NUCLEAR",),
    "Wind Offshore": ("WIND",),
    "Wind Onshore": ("WIND",),
    "Hydro Run-of-river and poundage": ("NPSHYD",),
    "Hydro Pumped Storage": ("PS",),
    "Biomass": ("BIOMASS",),
    "Other": ("OTHER",),
}
DEMAND_SOURCES = ("INDO", "ITSDO")  # preference order


def _origin(data: list | None) -> Origin | None:
    return Origin(*data) if data else None


@dataclass
class PeriodState:
    """What has arrived for one settlement period."""

    settlement_date: dt.date
    number: int
    start: dt.datetime
    fuel: dict[str, float] = field(default_factory=dict)
    fuel_origin: Origin | None = None
    demand: dict[str, float] = field(default_factory=dict)
    demand_origin: dict[str, Origin] = field(default_factory=dict)
    freq: dict[str, float] = field(default_factory=dict)  # samples by time, until the period is scored
    frequency_mean: float | None = None
    metered: dict[str, list] = field(default_factory=dict)  # B1610: bmUnit -> [psrType, MW]
    last_metered_at: float = 0.0
    metered_settled: bool = False  # B1610 rows quiet for fuel_settle_s: a partial set never replaces FUELHH
    last_fuel_at: float = 0.0  # monotonic seconds
    scored: str | None = None  # what the last score used, e.g. "FUELHH:14+INDO"

    def signature(self) -> str:
        source = next((s for s in DEMAND_SOURCES if s in self.demand), "estimated")
        metered = f"+B1610:{len(self.metered)}:{sum(v[1] for v in self.metered.values()):.0f}" if self.metered_settled else ""
        return f"FUELHH:{len(self.fuel)}:{sum(self.fuel.values()):.0f}+{source}:{self.demand.get(source, 0):.0f}{metered}"

    def generation(self) -> tuple[dict[str, float], str]:
        """Generation by fuel type: FUELHH, with B1610's metered totals once they have settled."""
        fuel = dict(self.fuel)
        metered: dict[tuple[str, ...], float] = {}
        for psr, mw in self.metered.values() if self.metered_settled else ():
            group = PSR_FUELS.get(psr, ("OTHER",))
            metered[group] = metered.get(group, 0.0) + mw
        for group, mw in metered.items():
            targets = [f for f in group if f in fuel]
            total = sum(fuel[f] for f in targets)
            for f in targets:
                fuel[f] = mw * (fuel[f] / total if total > 0 else 1 / len(targets))
        return fuel, "B1610 metered" if metered else "FUELHH"

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.settlement_date.isoformat(), "number": self.number, "start": self.start.isoformat(),
            "fuel": self.fuel, "fuel_origin": list(vars(self.fuel_origin).values()) if self.fuel_origin else None,
            "demand": self.demand, "demand_origin": {k: list(vars(v).values()) for k, v in self.demand_origin.items()},
            "freq": self.freq, "frequency_mean": self.frequency_mean, "metered": self.metered,
            "metered_settled": self.metered_settled, "scored": self.scored,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PeriodState":
        return cls(
            settlement_date=dt.date.fromisoformat(data["date"]), number=data["number"],
            start=dt.datetime.fromisoformat(data["start"]), fuel=data["fuel"], fuel_origin=_origin(data["fuel_origin"]),
            demand=data["demand"], demand_origin={k: Origin(*v) for k, v in data["demand_origin"].items()},
            freq=data["freq"], frequency_mean=data["frequency_mean"], metered=data.get("metered", {}),
            metered_settled=data.get("metered_settled", False), scored=data["scored"],
        )


class LiveProcessor:
    """Turns validated readings into findings; its state survives restarts through ``state()``/``load_state``.

    Args:
        mapping: How national signals spread over the buses.
        flow: The network's DC power flow.
        limits: Line-overload limits per branch.
        scorer: The promoted checkpoint stepped live, or ``None`` (physics rules only).
        fuel_settle_s: Seconds without new FUELHH rows after which a period counts as complete.
        keep_periods: Scored periods kept for refinement by late data.
    """

    def __init__(
        self,
        mapping: BusMapping,
        flow: DCPowerFlow,
        limits: BranchLimits,
        scorer: LiveScorer | None = None,
        *,
        fuel_settle_s: float = 5.0,
        keep_periods: int = 96,
    ):
        self.mapping, self.flow, self.limits, self.scorer = mapping, flow, limits, scorer
        self.fuel_settle_s, self.keep_periods = fuel_settle_s, keep_periods
        self.branches = branch_names(mapping.network)
        self.periods: dict[str, PeriodState] = {}
        self.expected_fuels: set[str] = set()
        self.last_freq: tuple[dt.datetime, float] | None = None

    @property
    def model_version(self) -> str:
        return self.scorer.version if self.scorer else "none"

    # --- readings ---------------------------------------------------------------------------------------------
    def check(self, reading: Reading) -> str | None:
        """Why a valid record still cannot be used here (e.g. a fuel type with no bus), or ``None``."""
        if reading.spec.code == "FUELHH":
            try:
                self.mapping.weights(reading.values["fuelType"])
            except UnknownFuelTypeError as exc:
                return str(exc)
        return None

    def _period(self, day: dt.date, number: int) -> tuple[str, PeriodState]:
        key = f"{day.isoformat()}/{number:02d}"
        if key not in self.periods:
            periods = settlement_periods(day)
            if not 1 <= number <= len(periods):
                raise ValueError(f"settlement period {number} does not exist on {day} ({len(periods)} periods)")
            self.periods[key] = PeriodState(day, number, periods[number - 1].start)
        return key, self.periods[key]

    def add(self, readings: list[Reading], now: float | None = None) -> list[Finding]:
        """Apply readings (idempotently: a redelivered reading changes nothing) and score what they complete."""
        now = time.monotonic() if now is None else now
        findings: list[Finding] = []
        touched: set[str] = set()
        # FREQ in time order (a topic's partitions interleave), and first: a period's samples precede its FUELHH.
        freq = sorted((r for r in readings if r.spec.code == "FREQ"), key=lambda r: r.values["measurementTime"])
        for reading in freq + [r for r in readings if r.spec.code != "FREQ"]:
            code, values = reading.spec.code, reading.values
            if code == "FREQ":
                findings.extend(self._frequency(reading))
                continue
            key, period = self._period(values["settlementDate"], values["settlementPeriod"])
            if code == "FUELHH":
                period.fuel[values["fuelType"]] = float(values["generation"])
                period.fuel_origin, period.last_fuel_at = reading.origin, now
                touched.add(key)
            elif code in DEMAND_SOURCES:
                period.demand[code] = float(values["demand"])
                period.demand_origin[code] = reading.origin
                touched.add(key)
            elif code == "B1610":
                period.metered[values["bmUnit"]] = [values.get("psrType") or "Other", 2.0 * float(values["quantity"])]
                period.last_metered_at, period.metered_settled = now, False
            # PN: validated on the way in and counted in messages_processed_total; a plan refines no outturn.
        if not self.expected_fuels:
            self._learn_expected_fuels()
        for key in sorted(self.periods, key=lambda k: self.periods[k].start):
            period = self.periods[key]
            complete = self.expected_fuels and period.scored is None and self.expected_fuels <= set(period.fuel)
            if complete or (period.scored is not None and key in touched):
                findings.extend(self._score(period))
        self._prune()
        return findings

    def _learn_expected_fuels(self) -> None:
        # A fresh stream has no complete period to learn from: two periods that each carry every fuel type seen
        # so far set the expectation (the quiet-time rule covers a stream that never gets there).
        seen = set().union(*(p.fuel for p in self.periods.values()))
        if seen and sum(set(p.fuel) == seen for p in self.periods.values()) >= 2:
            self.expected_fuels = seen

    def tick(self, now: float | None = None) -> list[Finding]:
        """Score periods whose FUELHH has been quiet for ``fuel_settle_s`` (call when polls come back empty)."""
        now = time.monotonic() if now is None else now
        findings: list[Finding] = []
        for period in sorted(self.periods.values(), key=lambda p: p.start):
            if period.scored is None and period.fuel and now - period.last_fuel_at >= self.fuel_settle_s:
                findings.extend(self._score(period))
            if period.metered and not period.metered_settled and now - period.last_metered_at >= self.fuel_settle_s:
                period.metered_settled = True
                if period.scored is not None:
                    findings.extend(self._score(period))  # the metered refinement
        return findings

    def _frequency(self, reading: Reading) -> list[Finding]:
        when, hz = reading.values["measurementTime"], float(reading.values["frequency"])
        _, period = self._period(*period_of(when))
        if period.scored is None:
            period.freq[when.isoformat()] = hz
        previous = self.last_freq if self.last_freq and self.last_freq[0] < when else None
        if self.last_freq is None or when > self.last_freq[0]:
            self.last_freq = (when, hz)
        return [self._stamp(f) for f in frequency_findings(when, hz, reading.origin, previous)]

    def _stamp(self, finding: Finding) -> Finding:
        finding.detail.setdefault("model_version", self.model_version)
        return finding

    # --- scoring ----------------------------------------------------------------------------------------------
    def _score(self, period: PeriodState) -> list[Finding]:
        signature = period.signature()
        if period.scored == signature or not period.fuel:
            return []
        first = period.scored is None
        period.scored = signature
        if first:
            self.expected_fuels = set(period.fuel)
            if period.freq:
                period.frequency_mean = float(np.mean(list(period.freq.values())))
            period.freq = {}
        generation, generation_source = period.generation()
        national = {fuel: np.array([mw]) for fuel, mw in generation.items()}
        supply = float(sum(generation.values()))
        source = next((s for s in DEMAND_SOURCES if s in period.demand), None)
        demand = period.demand[source] if source else supply * (1 - ESTIMATED_LOSS_RATIO)
        node, edge, _ = period_arrays(self.mapping, self.flow, national, np.array([demand]))
        origin = period.fuel_origin
        detail = {"settlement_date": period.settlement_date.isoformat(), "settlement_period": period.number,
                  "demand_source": source or "estimated", "generation_source": generation_source,
                  "model_version": self.model_version}
        findings = []
        if source is not None:
            findings.append(Finding(NATIONAL_NODE, period.start, imbalance_score(supply, demand), "power_imbalance",
                                    source, period.demand_origin[source],
                                    {**detail, "supply_mw": supply, "demand_mw": demand}))
        loading = np.nan_to_num(edge[0, :, 2], nan=0.0)
        for i in np.flatnonzero(loading / self.limits.limit >= 1.0):
            findings.append(Finding(self.branches[i], period.start, float(loading[i] / self.limits.limit[i]),
                                    "line_overload", "FUELHH", origin,
                                    {**detail, "loading": float(loading[i]), "flow_mw": float(edge[0, i, 1])}))
        if self.scorer is not None:
            frequency = period.frequency_mean if period.frequency_mean is not None else float("nan")
            start_us = int(period.start.timestamp() * 1_000_000)
            scores = self.scorer.score(PeriodInput(start_us, node[0].astype(np.float32), frequency, loading.astype(np.float32)))
            if scores is not None:
                names = self.mapping.network.bus_names
                findings.extend(
                    Finding(names[i], period.start, float(s), "model", "FUELHH", origin, detail)
                    for i, s in enumerate(scores.node)
                )
                findings.append(Finding(NATIONAL_NODE, period.start, float(scores.national), "model", "FUELHH", origin, detail))
        return findings

    def _prune(self) -> None:
        scored = sorted((p.start, k) for k, p in self.periods.items() if p.scored is not None)
        for _, key in scored[: max(0, len(scored) - self.keep_periods)]:
            del self.periods[key]
        if self.periods:
            # Periods that never got FUELHH (a FREQ-only feed) go once they fall out of the refinement window.
            horizon = max(p.start for p in self.periods.values()) - self.keep_periods * dt.timedelta(minutes=30)
            for key in [k for k, p in self.periods.items() if p.start < horizon]:
                del self.periods[key]

    # --- state ------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "periods": {k: p.to_json() for k, p in self.periods.items()},
            "expected_fuels": sorted(self.expected_fuels),
            "last_freq": [self.last_freq[0].isoformat(), self.last_freq[1]] if self.last_freq else None,
            "model_history": [p.to_json() for p in self.scorer.history] if self.scorer else [],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.periods = {k: PeriodState.from_json(v) for k, v in state.get("periods", {}).items()}
        self.expected_fuels = set(state.get("expected_fuels", []))
        last = state.get("last_freq")
        self.last_freq = (dt.datetime.fromisoformat(last[0]).astimezone(UTC), float(last[1])) if last else None
        if self.scorer is not None:
            self.scorer.replay([PeriodInput.from_json(p) for p in state.get("model_history", [])])

    def swap(self, scorer: LiveScorer) -> None:
        """Hand scoring to a new checkpoint between batches: its state is rebuilt from the kept periods."""
        history = list(self.scorer.history) if self.scorer else []
        scorer.replay(history)
        self.scorer = scorer
