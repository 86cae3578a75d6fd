"""Readings in, findings out: periods assembled (``stream.periods``) and scored by the physics rules, the model and
the learned bad-data detectors (``detect``: redundancy checks and per-fuel data quality).

* FREQ samples are scored as they arrive (band and RoCoF rules on the ``system`` node).
* Settlement periods are scored when ``PeriodBook`` says they are complete or refined. However many are due at
  once (one at the live rate, hundreds while a backlog streams in), they are scored together: one multi-column DC
  flow, the balance and overload rules over arrays, and the model over the stack in one pass; the findings equal
  those of scoring the same periods one by one.
* The bad-data detectors score each period's measurements through ``detect.calibration.PeriodDetector``, the code
  path the batch ``detect`` steps through a table: live and batch findings of the same readings are the same.
* Until demand (INDO, else ITSDO) arrives the snapshot uses demand estimated at ``1 − TRANSMISSION_LOSS_RATIO`` of
  supply (the balance rule does not run on an estimate), so a dataset that never arrives never stops scoring.
"""

import time
from typing import Any

import numpy as np

from grid_guardian_assets.detect.calibration import PeriodDetector, balance_checked
from grid_guardian_assets.detect.findings import NATIONAL_NODE, Finding
from grid_guardian_assets.detect.measurements import dataset_of
from grid_guardian_assets.detect.physics_rules import frequency_findings, imbalance_score
from grid_guardian_assets.grid.branch_limits import BranchLimits, branch_names
from grid_guardian_assets.grid.dcflow import DCPowerFlow
from grid_guardian_assets.grid.mapping import BusMapping, UnknownFuelTypeError
from grid_guardian_assets.grid.physics import TRANSMISSION_LOSS_RATIO
from grid_guardian_assets.grid.snapshots import period_arrays
from grid_guardian_assets.stream.messages import Reading
from grid_guardian_assets.stream.periods import PeriodBook, PeriodState
from grid_guardian_assets.stream.scorer import LiveScorer, PeriodInput


class LiveProcessor:
    """Turns validated readings into findings; its state survives restarts through ``state()``/``load_state``.

    Args:
        mapping: How national signals spread over the buses.
        flow: The network's DC power flow.
        limits: Line-overload limits per branch.
        scorer: The promoted checkpoint stepped live, or ``None`` (physics rules only).
        detectors: The stored detector calibration stepped live, or ``None`` (no redundancy or data-quality checks).
        fuel_settle_s: Seconds without new FUELHH rows after which a period counts as complete.
        keep_periods: Scored periods kept for refinement by late data.
    """

    def __init__(
        self,
        mapping: BusMapping,
        flow: DCPowerFlow,
        limits: BranchLimits,
        scorer: LiveScorer | None = None,
        detectors: PeriodDetector | None = None,
        *,
        fuel_settle_s: float = 5.0,
        keep_periods: int = 96,
    ):
        self.mapping, self.flow, self.limits, self.scorer, self.detectors = mapping, flow, limits, scorer, detectors
        self.book = PeriodBook(fuel_settle_s, keep_periods)
        self.branches = branch_names(mapping.network)
        self.periods_per_batch: list[int] = []  # periods scored per call since the last drain (for the histogram)

    @property
    def model_version(self) -> str:
        return self.scorer.version if self.scorer else "none"

    @property
    def periods(self) -> dict[str, PeriodState]:
        return self.book.periods

    # --- readings ---------------------------------------------------------------------------------------------
    def check(self, reading: Reading) -> str | None:
        """Why a valid record still cannot be used here (e.g. a fuel type with no bus), or ``None``."""
        if reading.spec.code == "FUELHH":
            try:
                self.mapping.weights(reading.values["fuelType"])
            except UnknownFuelTypeError as exc:
                return str(exc)
        return None

    def add(self, readings: list[Reading], now: float | None = None) -> list[Finding]:
        """Apply readings (idempotently: a redelivered reading changes nothing) and score what they complete."""
        now = time.monotonic() if now is None else now
        findings: list[Finding] = []
        touched: set[str] = set()
        # FREQ in time order (a topic's partitions interleave), and first: a period's samples precede its FUELHH.
        freq = sorted((r for r in readings if r.spec.code == "FREQ"), key=lambda r: r.values["measurementTime"])
        for reading in freq + [r for r in readings if r.spec.code != "FREQ"]:
            if reading.spec.code == "FREQ":
                findings.extend(self._frequency(reading, now))
                continue
            period = self.book.apply(reading, now)
            if period is not None:
                touched.add(period.key)
        findings.extend(self._score(self.book.due(touched)))
        self.book.prune()
        return findings

    def tick(self, now: float | None = None) -> list[Finding]:
        """Score periods whose FUELHH (or B1610) has been quiet for ``fuel_settle_s`` (call between polls)."""
        return self._score(self.book.settled(time.monotonic() if now is None else now))

    def _frequency(self, reading: Reading, now: float) -> list[Finding]:
        when, hz = reading.values["measurementTime"], float(reading.values["frequency"])
        last = self.book.last_freq
        previous = last if last and last[0] < when else None
        self.book.apply(reading, now)
        return frequency_findings(when, hz, reading.origin, previous, self.model_version)

    # --- scoring ----------------------------------------------------------------------------------------------
    def _score(self, periods: list[PeriodState]) -> list[Finding]:
        """Findings of periods due for scoring (in time order), computed over all of them at once."""
        if not periods:
            return []
        self.periods_per_batch.append(len(periods))
        generation = [p.generation() for p in periods]
        # Fuels in one fixed order: a period's supply and injections sum the same way alone as in a stack.
        fuels = sorted(set().union(*(g for g, _ in generation)))
        national = {f: np.array([g.get(f, 0.0) for g, _ in generation]) for f in fuels}
        supply = sum((national[f] for f in fuels), np.zeros(len(periods)))
        sources = [p.demand_source for p in periods]
        demand = np.array([p.demand[s] if s else supply[t] * (1 - TRANSMISSION_LOSS_RATIO) for t, (p, s) in enumerate(zip(periods, sources))])
        node, edge, _ = period_arrays(self.mapping, self.flow, national, demand)
        loading = np.nan_to_num(edge[:, :, 2], nan=0.0)
        imbalance = imbalance_score(supply, demand)
        overloads = np.argwhere(loading / self.limits.alarm_limit >= 1.0)
        model_scores = self._model_scores(periods, node, loading)
        version, names = self.model_version, self.mapping.network.bus_names
        findings: list[Finding] = []
        for t, period in enumerate(periods):
            origin, source = period.fuel_origin, sources[t]
            detail = {"settlement_date": period.settlement_date.isoformat(), "settlement_period": period.number,
                      "demand_source": source or "estimated", "generation_source": generation[t][1]}
            checked = self._detector_findings(period)
            if source is not None and not balance_checked(checked):  # the learned balance check replaces the band
                findings.append(Finding(NATIONAL_NODE, period.start, float(imbalance[t]), "power_imbalance", source,
                                        period.demand_origin[source],
                                        {**detail, "supply_mw": float(supply[t]), "demand_mw": float(demand[t])}, version))
            for i in overloads[overloads[:, 0] == t, 1]:
                findings.append(Finding(self.branches[i], period.start, float(loading[t, i] / self.limits.alarm_limit[i]),
                                        "line_overload", "FUELHH", origin,
                                        {**detail, "loading": float(loading[t, i]), "flow_mw": float(edge[t, i, 1])}, version))
            scores = model_scores[t]
            if scores is not None:
                findings.extend(Finding(name, period.start, s, "model", "FUELHH", origin, detail, version)
                                for name, s in zip(names, scores.node.tolist()))  # Python floats in one call
                findings.append(Finding(NATIONAL_NODE, period.start, float(scores.national), "model", "FUELHH", origin,
                                        detail, version))
            findings.extend(checked)
        return findings

    def _detector_findings(self, period: PeriodState) -> list[Finding]:
        """The redundancy checks and per-fuel detectors on the period's measurements, each finding stamped with the
        Kafka origin of its suspect's dataset."""
        if self.detectors is None:
            return []
        found = self.detectors.score(period.settlement_date, period.number, period.start, period.measurements())
        origins: dict[str, Any] = {}  # per dataset, once per period: most findings are FUELHH's, stamped already
        stamped = []
        for f in found.findings(period.fuel_origin, self.model_version):
            dataset = dataset_of(f.node)
            origin = origins.get(dataset) or origins.setdefault(dataset, period.origin_of(dataset) or f.origin)
            stamped.append(f if origin == f.origin else f._replace(origin=origin))
        return stamped

    def _model_scores(self, periods: list[PeriodState], node: np.ndarray, loading: np.ndarray) -> list:
        if self.scorer is None:
            return [None] * len(periods)
        inputs = [
            PeriodInput(int(p.start.timestamp() * 1_000_000), node[t].astype(np.float32),
                        p.frequency_mean if p.frequency_mean is not None else float("nan"), loading[t].astype(np.float32))
            for t, p in enumerate(periods)
        ]
        return self.scorer.score_many(inputs)

    def drain_periods_per_batch(self) -> list[int]:
        """Periods scored together per scoring call since the last drain."""
        out, self.periods_per_batch = self.periods_per_batch, []
        return out

    # --- state ------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {**self.book.to_json(), "model_history": [p.to_json() for p in self.scorer.history] if self.scorer else [],
                "detector_tracks": self.detectors.to_json() if self.detectors else {}}

    def load_state(self, state: dict[str, Any]) -> None:
        self.book.load_json(state)
        if self.detectors is not None:
            self.detectors.load_json(state.get("detector_tracks", {}))
        if self.scorer is not None:
            self.scorer.replay([PeriodInput.from_json(p) for p in state.get("model_history", [])])

    def swap(self, scorer: LiveScorer) -> None:
        """Hand scoring to a new checkpoint between batches: its state is rebuilt from the kept periods."""
        history = list(self.scorer.history) if self.scorer else []
        scorer.replay(history)
        self.scorer = scorer
