"""The live job's rules as a benchmark detector, and the rules and a learned model combined.

A benchmark case is a window of snapshots (``GridSequence``), not the readings the live job sees;
``verifier.observation.case_measurements`` turns it back into those readings, one row per period (its docstring says
how each is rebuilt).

``RulesDetector`` runs what the live job runs on those rows (``detect.calibration.PeriodDetector``: the redundancy
checks and per-fuel data-quality detectors), the row-level integrity checks (``data_quality.row_integrity_findings``)
and the physics rules that apply to half-hourly snapshot data (frequency band, power imbalance, line overload, each
with the live job's functions or formula); ``Combined`` takes the larger of the rules' and a learned detector's
calibrated scores. Both have ``ThreeSigma``'s and ``LearnedDetector``'s interface, so ``evaluation.evaluate`` scores
them alike.
"""

import datetime as dt

import numpy as np

from grid_guardian_assets.detect.calibration import DetectorCalibration, PeriodDetector, balance_checked
from grid_guardian_assets.detect.data_quality import row_integrity_findings
from grid_guardian_assets.detect.findings import NATIONAL_NODE, Finding
from grid_guardian_assets.detect.measurements import STORED, StoredMeasurements, fuel_columns, measurement
from grid_guardian_assets.detect.physics_rules import frequency_findings, imbalance_score
from grid_guardian_assets.detect.schedules import SCHEDULE_DAYS
from grid_guardian_assets.grid.branch_limits import BranchLimits, branch_names
from grid_guardian_assets.grid.mapping import GENERATION_FUELS, BusMapping
from grid_guardian_assets.grid.snapshots import NODE_FEATURES
from grid_guardian_assets.settlement import PERIOD, PERIODS_PER_DAY
from grid_guardian_assets.verifier.observation import case_measurements, recorded_measurements
from grid_guardian_assets.verifier.scoring import Calibration, RawScores
from grid_guardian_assets.verifier.sequences import GridSequence

_GEN = [NODE_FEATURES.index(f"gen_{fuel.lower()}") for fuel in GENERATION_FUELS]
_IMPORT, _DEMAND = NODE_FEATURES.index("net_import"), NODE_FEATURES.index("demand")
# Every finding is already calibrated (1.0 = its alarm threshold), so the rules' thresholds are 1.0.
UNIT_CALIBRATION = Calibration(node_threshold=1.0, period_threshold=1.0, false_alarm_rate=float("nan"))


class RulesDetector:
    """The live job's rules on a benchmark case, calibrated so that 1.0 is the alarm, with the interface of the
    learned detectors.

    Per period, in order, on the case's rebuilt measurements (``case_measurements``):

    * ``PeriodDetector``, the live job's and batch ``detect``'s code: the redundancy checks that can run while an
      event lasts (FUELHH against INDO and AGWS; those against B1610 and NESO's interconnector flows, published a day
      or more later, audit stored days) and the per-fuel data-quality detectors (stuck readings, unseen signs, unit
      jumps), with the period before carried as the live job carries it;
    * ``row_integrity_findings``: a missing period, a duplicated one;
    * physics, as the live job scores it: the period's FREQ sample farthest from nominal against the bands
      (``detect.physics_rules``' ``frequency_findings``: alarming outside the operational band, 50 Hz ± 0.2 Hz, and naming the
      statutory band beyond ± 0.5 Hz; the live job judges every sample, so a period alarms there when its farthest
      does; the period's mean where the case does not keep samples; RoCoF needs samples seconds apart, which a case
      does not keep, so it is not scored);
      the power imbalance of supply against the snapshot's INDO demand (``imbalance_score``) where the learned
      balance check cannot run (``detect.calibration.balance_checked``), as in the live job; and line overload,
      each branch's loading over its rating where the rating is credible (``BranchLimits.alarm_limit``).

    A period's score is the largest of its findings' (0 without one). Bus scores are 0 except at an interconnector's
    landing bus when a finding names that interconnector (``Calibration.apply`` reads a period whose bus scores are
    all NaN as unscored, so they are 0, not NaN).

    Args:
        calibration: The fitted redundancy and data-quality detectors (the ``detector_calibration`` asset's).
        mapping: The bus mapping of the benchmark's network.
        limits: Line-overload limits per branch (``grid.branch_limits``; the rule judges ``alarm_limit``); ``None``:
            every branch at its rating (1.0), which on ``gb29`` alarms in many normal periods on the equivalent
            branches whose ratings understate their corridors.
        recorded: The stores the cases' periods were recorded in: their ITSDO, AGWS and the week before
            (``verifier.observation``); ``None``: a case's own readings alone.
    """

    name = "rules"

    def __init__(self, calibration: DetectorCalibration, mapping: BusMapping, limits: BranchLimits | None = None,
                 recorded: StoredMeasurements | None = None):
        self.detectors, self.mapping, self.recorded = calibration, mapping, recorded
        network = mapping.network
        self.limit = np.ones(network.n_branches) if limits is None else np.asarray(limits.alarm_limit, dtype=float)
        self.branches = branch_names(network)
        # A finding on an interconnector names its landing bus when it has exactly one.
        self.landing_bus = {measurement("FUELHH", fuel): int(np.flatnonzero(w)[0])
                            for fuel, w in mapping.fuel_weights.items() if fuel.startswith("INT") and np.count_nonzero(w) == 1}

    def findings(self, sequence: GridSequence) -> list[list[Finding]]:
        """Every finding of every period of ``sequence``, by period (scores of every size, not only alarms)."""
        table = case_measurements(sequence, self.mapping, self.recorded)
        node = np.asarray(sequence.node, dtype=np.float64)
        supply = node[:, :, _GEN].sum(axis=(1, 2)) + node[:, :, _IMPORT].sum(axis=1)
        demand = node[:, :, _DEMAND].sum(axis=1)
        imbalance = imbalance_score(supply, demand)
        overload = np.nan_to_num(np.asarray(sequence.loading, dtype=np.float64), nan=0.0) / self.limit
        # Each FREQ sample is judged in the live job: a period alarms when its farthest sample is out of band.
        judged_frequency = sequence.frequency if sequence.frequency_extreme is None else sequence.frequency_extreme
        detector = PeriodDetector(self.detectors)
        # The live job has seen the days before the case: their recorded readings teach the usual falls.
        before = sequence.start_us[0] - np.arange(SCHEDULE_DAYS * PERIODS_PER_DAY, 0, -1) * (PERIOD // dt.timedelta(microseconds=1))
        detector.learn_schedule(recorded_measurements(before, self.recorded))
        previous: dict[str, float | None] | None = None
        out: list[list[Finding]] = []
        for t, row in enumerate(table.iter_rows(named=True)):
            start = row["start"]
            found = row_integrity_findings(start, row, previous)
            checked = detector.score(row["settlementDate"], row["settlementPeriod"], start, row).findings()
            found += checked
            arrived = any(row[c] is not None for c in fuel_columns(row))
            if arrived:  # a period that never arrived has no supply to balance and no flow of its own
                hz = float(judged_frequency[t])
                if np.isfinite(hz):
                    found += frequency_findings(start, hz, STORED, None)
                if not balance_checked(checked):  # as the live job: the learned balance check replaces the band
                    found.append(Finding(NATIONAL_NODE, start, float(imbalance[t]), "power_imbalance", "INDO", STORED,
                                         {"supply_mw": float(supply[t]), "demand_mw": float(demand[t])}))
                found += [Finding(self.branches[i], start, float(overload[t, i]), "line_overload", "FUELHH", STORED,
                                  {"loading": float(sequence.loading[t, i]), "limit": float(self.limit[i])})
                          for i in np.flatnonzero(overload[t] >= 1.0)]
            out.append(found)
            previous = row if arrived else None
        return out

    def raw_scores(self, sequence: GridSequence) -> RawScores:
        """``(T, N)`` bus scores and ``(T,)`` period scores: the largest finding of each period (see the class)."""
        node = np.zeros((len(sequence), self.mapping.network.n_buses))
        period = np.zeros(len(sequence))
        for t, found in enumerate(self.findings(sequence)):
            for finding in found:
                if not np.isfinite(finding.score):
                    continue
                period[t] = max(period[t], finding.score)
                bus = self.landing_bus.get(finding.node)
                if bus is not None:
                    node[t, bus] = max(node[t, bus], finding.score)
        return RawScores(node=node, period=period)

    def calibration(self) -> Calibration:
        return UNIT_CALIBRATION


class Combined:
    """The rules and a learned detector together, as the live job runs them: each calibrated on its own, then the
    larger of the two scores per bus and per period (NaN only where both are).

    Args:
        rules: The rules (``RulesDetector``).
        rules_calibration: Its calibration (thresholds 1.0).
        model: A learned detector (``LearnedDetector``).
        model_calibration: The model's calibration.
        name: The detector's name in tables.
    """

    def __init__(self, rules: RulesDetector, rules_calibration: Calibration, model, model_calibration: Calibration,
                 name: str = "rules + GNN verifier"):
        self.rules, self.rules_calibration = rules, rules_calibration
        self.model, self.model_calibration = model, model_calibration
        self.name = name

    def raw_scores(self, sequence: GridSequence) -> RawScores:
        """Calibrated scores (1.0 = alarm): ``max(rules, model)`` per bus and per period."""
        rules_node, rules_period = self.rules_calibration.apply(self.rules.raw_scores(sequence))
        model_node, model_period = self.model_calibration.apply(self.model.raw_scores(sequence))
        return RawScores(node=np.fmax(rules_node, model_node), period=np.fmax(rules_period, model_period))

    def calibration(self) -> Calibration:
        return UNIT_CALIBRATION
