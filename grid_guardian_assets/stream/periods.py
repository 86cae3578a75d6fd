"""Settlement periods assembled from Kafka readings: what has arrived for each, when each is complete, and the JSON
state that carries the assembly across restarts.

* A settlement period is complete as soon as its FUELHH is: every fuel type the last complete period had has
  arrived (a fresh stream learns that set from the first two periods that carry every fuel type seen so far), or no
  new FUELHH row for it came for ``settle_s`` seconds (a fuel type that stopped reporting). Keys spread one period's
  fuel types over a topic's partitions, so a later period's rows do not prove an earlier one complete.
* Demand (INDO, else ITSDO) refines a period when it arrives: the period is due for rescoring.
* B1610 (metered volumes per BM unit, published days later) refines a period still in the refinement window once
  its rows have been quiet for ``settle_s``: its units' MWh × 2, summed by ENTSO-E ``psrType``, replace the FUELHH
  outturn of the matching fuel types (gas split between CCGT and OCGT as FUELHH split it).
* AGWS (wind and solar outturn, published within the hour) refines a period when it arrives: only the
  redundancy checks use it (``detect``), against FUELHH's wind.
* PN (physical notifications) are plans, not outturn: nothing in a period is theirs to refine.
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grid_guardian_assets.detect.measurements import INDO, ITSDO, MW_PER_MWH, measurement
from grid_guardian_assets.grid.mapping import PSR_FUELS
from grid_guardian_assets.settlement import PERIOD, PERIODS_PER_DAY, UTC, period_of, period_start
from grid_guardian_assets.stream.messages import Origin, Reading

DEMAND_SOURCES = ("INDO", "ITSDO")  # preference order
# Periods read ahead of FUELHH that the book keeps for it (a year's): in a catch-up the consumer fetches each topic
# in its own chunks and reads the rare references (ITSDO, 48 a day) weeks or months ahead of FUELHH.
MAX_PERIODS_AHEAD = 366 * PERIODS_PER_DAY


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
    agws: dict[str, float] = field(default_factory=dict)  # psrType -> MW
    agws_origin: Origin | None = None
    last_metered_at: float = 0.0
    metered_settled: bool = False  # B1610 rows quiet for settle_s: a partial set never replaces FUELHH
    last_fuel_at: float = 0.0  # monotonic seconds
    scored: str | None = None  # what the last score used, e.g. "FUELHH:14+INDO"

    @property
    def key(self) -> str:
        return f"{self.settlement_date.isoformat()}/{self.number:02d}"

    @property
    def holds_reference(self) -> bool:
        """Whether a dataset the checks compare FUELHH with has arrived for the period (demand, AGWS, B1610)."""
        return bool(self.demand or self.agws or self.metered)

    @property
    def demand_source(self) -> str | None:
        return next((s for s in DEMAND_SOURCES if s in self.demand), None)

    def signature(self) -> str:
        source = self.demand_source or "estimated"
        metered = f"+B1610:{len(self.metered)}:{sum(v[1] for v in self.metered.values()):.0f}" if self.metered_settled else ""
        agws = f"+AGWS:{len(self.agws)}:{sum(self.agws.values()):.0f}" if self.agws else ""
        return f"FUELHH:{len(self.fuel)}:{sum(self.fuel.values()):.0f}+{source}:{self.demand.get(source, 0):.0f}{metered}{agws}"

    def measurements(self) -> dict[str, float]:
        """What the period holds as ``detect.measurements`` names it (MW): FUELHH per fuel type, INDO and ITSDO, AGWS
        per psrType, and B1610's metered units summed per psrType once they have settled."""
        values = {measurement("FUELHH", fuel): mw for fuel, mw in self.fuel.items()}
        for code in (INDO, ITSDO):
            if code in self.demand:
                values[code] = self.demand[code]
        values.update({measurement("AGWS", psr): mw for psr, mw in self.agws.items()})
        for psr, mw in self.metered.values() if self.metered_settled else ():
            name = measurement("B1610", psr)
            values[name] = values.get(name, 0.0) + mw
        return values

    def origin_of(self, dataset: str) -> Origin | None:
        """The Kafka origin of the period's latest reading of ``dataset`` (FUELHH's when it has none of its own)."""
        own = {"ITSDO": self.demand_origin.get("ITSDO"), "INDO": self.demand_origin.get("INDO"), "AGWS": self.agws_origin}
        return own.get(dataset) or self.fuel_origin

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
            "fuel": self.fuel, "fuel_origin": list(self.fuel_origin) if self.fuel_origin else None,
            "demand": self.demand, "demand_origin": {k: list(v) for k, v in self.demand_origin.items()},
            "freq": self.freq, "frequency_mean": self.frequency_mean, "metered": self.metered,
            "metered_settled": self.metered_settled, "scored": self.scored, "agws": self.agws,
            "agws_origin": list(self.agws_origin) if self.agws_origin else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PeriodState":
        return cls(
            settlement_date=dt.date.fromisoformat(data["date"]), number=data["number"],
            start=dt.datetime.fromisoformat(data["start"]), fuel=data["fuel"], fuel_origin=_origin(data["fuel_origin"]),
            demand=data["demand"], demand_origin={k: Origin(*v) for k, v in data["demand_origin"].items()},
            freq=data["freq"], frequency_mean=data["frequency_mean"], metered=data.get("metered", {}),
            metered_settled=data.get("metered_settled", False), scored=data["scored"], agws=data.get("agws", {}),
            agws_origin=_origin(data.get("agws_origin")),
        )


class PeriodBook:
    """The periods being assembled and the recently scored ones (kept for refinement by late data).

    Args:
        settle_s: Quiet seconds after which a period's FUELHH (or B1610) counts as complete.
        keep_periods: Scored periods kept for refinement by late data.
    """

    def __init__(self, settle_s: float = 5.0, keep_periods: int = 96):
        self.settle_s, self.keep_periods = settle_s, keep_periods
        self.periods: dict[str, PeriodState] = {}
        self.expected_fuels: set[str] = set()
        self.last_freq: tuple[dt.datetime, float] | None = None
        self.fuel_clock: dt.datetime | None = None  # start of the newest period with FUELHH: the book's clock
        self.window = keep_periods * PERIOD  # how far back from its clock the book keeps periods

    def period(self, day: dt.date, number: int) -> PeriodState:
        """The state of settlement period ``number`` of ``day`` (created on first sight)."""
        key = f"{day.isoformat()}/{number:02d}"
        if key not in self.periods:
            self.periods[key] = PeriodState(day, number, period_start(day, number))
        return self.periods[key]

    def apply(self, reading: Reading, now: float) -> PeriodState | None:
        """Record a FUELHH, demand, AGWS, B1610 or FREQ reading (idempotently); the period it refines, if any.

        FREQ samples are kept for the period's mean frequency until it is scored; B1610 and PN refine nothing now.
        """
        code, values = reading.spec.code, reading.values
        if code == "FREQ":
            when, hz = values["measurementTime"], float(values["frequency"])
            # A sample further ahead of FUELHH than the window (a catch-up reading FREQ ahead, or FUELHH stopped) is
            # judged on arrival but not kept for its period's mean: samples are 5,760 a day.
            if self.fuel_clock is None or when - self.fuel_clock <= self.window:
                period = self.period(*period_of(when))
                if period.scored is None:
                    period.freq[when.isoformat()] = hz
            if self.last_freq is None or when > self.last_freq[0]:
                self.last_freq = (when, hz)
            return None
        if code not in ("FUELHH", "B1610", "AGWS", *DEMAND_SOURCES):
            return None  # PN: validated on the way in and counted in messages_processed_total
        period = self.period(values["settlementDate"], values["settlementPeriod"])
        if code == "FUELHH":
            period.fuel[values["fuelType"]] = float(values["generation"])
            period.fuel_origin, period.last_fuel_at = reading.origin, now
            if self.fuel_clock is None or period.start > self.fuel_clock:
                self.fuel_clock = period.start
            return period
        if code == "B1610":
            period.metered[values["bmUnit"]] = [values.get("psrType") or "Other", MW_PER_MWH * float(values["quantity"])]
            period.last_metered_at, period.metered_settled = now, False
            return None
        if code == "AGWS":
            period.agws[values["psrType"]] = float(values["quantity"])
            period.agws_origin = reading.origin
            return period
        period.demand[code] = float(values["demand"])
        period.demand_origin[code] = reading.origin
        return period

    def due(self, touched: set[str]) -> list[PeriodState]:
        """Periods to score now, in time order: complete ones not yet scored, and scored ones that ``touched`` refines.

        Marks each as scored (``scored`` = what the score uses) and learns the expected fuel types as it goes, so a
        period completed earlier in the same call sets the expectation for the later ones, as it would one by one.
        """
        if not self.expected_fuels:
            self._learn_expected_fuels()
        out = []
        for period in sorted(self.periods.values(), key=lambda p: p.start):
            complete = self.expected_fuels and period.scored is None and self.expected_fuels <= set(period.fuel)
            if (complete or (period.scored is not None and period.key in touched)) and self._mark(period):
                out.append(period)
        return out

    def settled(self, now: float) -> list[PeriodState]:
        """Periods to score because their FUELHH (or B1610) has been quiet for ``settle_s``, in time order (marked)."""
        out = []
        for period in sorted(self.periods.values(), key=lambda p: p.start):
            if period.scored is None and period.fuel and now - period.last_fuel_at >= self.settle_s and self._mark(period):
                out.append(period)
            if period.metered and not period.metered_settled and now - period.last_metered_at >= self.settle_s:
                period.metered_settled = True
                if period.scored is not None and self._mark(period):
                    out.append(period)  # the metered refinement
        return out

    def _mark(self, period: PeriodState) -> bool:
        """Mark ``period`` as scored with what it holds now; False when that was scored already (nothing new)."""
        signature = period.signature()
        if period.scored == signature or not period.fuel:
            return False
        if period.scored is None:
            self.expected_fuels = set(period.fuel)
            if period.freq:
                period.frequency_mean = float(np.mean(list(period.freq.values())))
            period.freq = {}
        period.scored = signature
        return True

    def _learn_expected_fuels(self) -> None:
        # A fresh stream has no complete period to learn from: two periods that each carry every fuel type seen
        # so far set the expectation (the quiet-time rule covers a stream that never gets there).
        seen = set().union(*(p.fuel for p in self.periods.values()))
        if seen and sum(set(p.fuel) == seen for p in self.periods.values()) >= 2:
            self.expected_fuels = seen

    def prune(self) -> None:
        """Forget scored periods beyond the newest ``keep_periods``; unscored ones older than the window before the
        book's clock; and the periods furthest ahead of it beyond ``MAX_PERIODS_AHEAD``.

        The clock is the newest period with FUELHH, not the newest reading of any dataset: in a catch-up a reference
        read months ahead of FUELHH would otherwise push the window past every period still waiting for its FUELHH,
        and their redundancy checks would find no reference (a year's backlog ran the balance check on no period).
        Before any FUELHH has come, periods holding a reference wait for it, and only FREQ's samples fall out of the
        window before the newest period (a FREQ-only feed keeps two days of samples, not all of them).
        """
        scored = sorted((p.start, k) for k, p in self.periods.items() if p.scored is not None)
        for _, key in scored[: max(0, len(scored) - self.keep_periods)]:
            del self.periods[key]
        if not self.periods:
            return
        clock = self.fuel_clock or max(p.start for p in self.periods.values())
        horizon = clock - self.window
        for key in [k for k, p in self.periods.items()
                    if p.start < horizon and (self.fuel_clock is not None or not p.holds_reference)]:
            del self.periods[key]
        ahead = sorted((p.start, k) for k, p in self.periods.items() if self.fuel_clock is None or p.start > clock)
        for _, key in ahead[MAX_PERIODS_AHEAD:]:
            del self.periods[key]

    def to_json(self) -> dict[str, Any]:
        return {
            "periods": {k: p.to_json() for k, p in self.periods.items()},
            "expected_fuels": sorted(self.expected_fuels),
            "last_freq": [self.last_freq[0].isoformat(), self.last_freq[1]] if self.last_freq else None,
        }

    def load_json(self, state: dict[str, Any]) -> None:
        self.periods = {k: PeriodState.from_json(v) for k, v in state.get("periods", {}).items()}
        self.fuel_clock = max((p.start for p in self.periods.values() if p.fuel), default=None)
        self.expected_fuels = set(state.get("expected_fuels", []))
        last = state.get("last_freq")
        self.last_freq = (dt.datetime.fromisoformat(last[0]).astimezone(UTC), float(last[1])) if last else None
