"""The live job's rules as a benchmark detector, and the rules and a learned model combined.

A benchmark case is a window of snapshots (``GridSequence``), not the readings the live job sees. ``case_measurements``
turns it back into the measurements the detectors take (``detect.measurements``' names), one row per period:

* ``FUELHH:{fuel}``: the case's generation of the fuel summed over buses: what the national FUELHH reading was, since
  the snapshot spread it over buses with weights that sum to one. A fault injected into one bus's reading changes the
  national figure by the same amount.
* ``FUELHH:INT*``: the case's net import at each interconnector's landing bus (``grid.mapping``). Where several
  interconnectors land on one bus (IFA and Nemo at Sellindge on ``gb29``; every link on ``gb2224``, whose mapping
  spreads them all alike) the bus's import is split between them in proportion to their recorded readings of the
  period, evenly when those are all zero: a fault on the bus's import moves each link by the same factor. In 2018
  Nemo reads 0 throughout, so IFA takes Sellindge's import whole.
* ``ITSDO``: the snapshot's demand is INDO (National Demand) spread over buses; ITSDO (Transmission System Demand,
  what the redundancy check compares with) is INDO plus station load, pumping and exports. The case's ITSDO is the
  recorded ITSDO plus the change of the case's summed demand from the recorded INDO: a demand meter fault moves both
  publications alike, and an untouched period reads exactly the recorded ITSDO.
* ``AGWS:*`` (wind and solar outturn) and ``NESO:*`` (interconnector flows): looked up in the bundled recordings by the
  case's period starts. They are independent measurements: an injected fault does not reach them, as in reality a
  faulty FUELHH reading leaves AGWS and NESO's metering alone. (A real physical event would show in them too; the
  injectors' unit trips and redispatches do not, so a trip of a wind unit reads here as a FUELHH-against-AGWS
  mismatch. That makes the rules' score on ``unit_trip`` somewhat optimistic for wind trips.)
* B1610 is left out: it is published about five days after the day, so it cannot raise an alarm within an event and
  its grace periods, which is what the benchmark scores.

A period whose snapshot is all zeros (``Injector``'s missing period: its readings never arrived) has no FUELHH or
ITSDO reading.

``RulesDetector`` runs what the live job runs on those rows (``detect.calibration.PeriodDetector``: the redundancy
checks and per-fuel data-quality detectors), the row-level integrity checks (``data_quality.row_integrity_findings``)
and the physics rules that apply to half-hourly snapshot data (frequency band, power imbalance, line overload, each
with the live job's functions or formula); ``Combined`` takes the larger of the rules' and a learned detector's
calibrated scores. Both have ``ThreeSigma``'s and ``LearnedDetector``'s interface, so ``evaluation.evaluate`` scores
them alike.
"""

import dataclasses
import datetime as dt
from functools import cache

import numpy as np
import polars as pl

from grid_guardian_assets.detect.calibration import DetectorCalibration, PeriodDetector, balance_checked
from grid_guardian_assets.detect.data_quality import row_integrity_findings
from grid_guardian_assets.detect.measurements import ITSDO, STORED, fuel_columns, fuel_of, measurement, measurement_table
from grid_guardian_assets.grid.branch_limits import BranchLimits, branch_names
from grid_guardian_assets.grid.dcflow import DCPowerFlow
from grid_guardian_assets.grid.mapping import GENERATION_FUELS, BusMapping, bus_mapping
from grid_guardian_assets.grid.network import GridNetwork
from grid_guardian_assets.grid.snapshots import NODE_FEATURES, period_arrays
from grid_guardian_assets.replay import neso
from grid_guardian_assets.settlement import UTC, period_of
from grid_guardian_assets.stream.rules import NATIONAL_NODE, Finding, frequency_findings, imbalance_score
from grid_guardian_assets.verifier.anomalies import Benchmark
from grid_guardian_assets.verifier.scoring import Calibration, RawScores
from grid_guardian_assets.verifier.sequences import GridSequence

_GEN = [NODE_FEATURES.index(f"gen_{fuel.lower()}") for fuel in GENERATION_FUELS]
_IMPORT, _DEMAND = NODE_FEATURES.index("net_import"), NODE_FEATURES.index("demand")
# The recorded INDO of a period, beside the measurement table's columns: what the case's demand is compared with.
RECORDED_INDO = "recorded:INDO"
KEY_COLUMNS = ("settlementDate", "settlementPeriod", "start")
# Every finding is already calibrated (1.0 = its alarm threshold), so the rules' thresholds are 1.0.
UNIT_CALIBRATION = Calibration(node_threshold=1.0, period_threshold=1.0, false_alarm_rate=float("nan"))


@cache
def _recorded_day(day: dt.date) -> pl.DataFrame:
    """The bundled measurements of ``day`` (no B1610) and its recorded INDO, one row per period."""
    indo = neso.neso_demand().filter(pl.col("settlementDate") == day).select(
        "settlementDate", "settlementPeriod", pl.col(neso.DEMAND_COLUMNS["INDO"]).cast(pl.Float64).alias(RECORDED_INDO))
    return measurement_table([day], b1610_days=()).join(indo, on=["settlementDate", "settlementPeriod"], how="left")


def recorded_measurements(start_us: np.ndarray) -> pl.DataFrame:
    """The bundled measurements of the periods starting at ``start_us`` (µs since the epoch, UTC), in that order.

    Returns:
        ``measurement_table``'s columns (without B1610) plus ``RECORDED_INDO``; a period the recordings lack has
        nulls.
    """
    starts = [dt.datetime.fromtimestamp(int(us) / 1e6, UTC) for us in start_us]
    days = sorted({period_of(s)[0] for s in starts})
    recorded = pl.concat([_recorded_day(day) for day in days], how="diagonal_relaxed")
    wanted = pl.DataFrame({"start": pl.Series(np.asarray(start_us, dtype=np.int64)).cast(pl.Datetime("us", "UTC"))})
    return wanted.with_row_index("order").join(recorded, on="start", how="left").sort("order").select(
        *KEY_COLUMNS, pl.exclude("order", *KEY_COLUMNS))


def _interconnector_groups(mapping: BusMapping, links: list[str]) -> list[tuple[np.ndarray, list[str]]]:
    """The links that land on the same buses, with those buses: ``[(bus mask, [INT..])]``.

    Raises:
        ValueError: Two links land on overlapping but different buses (no mapping does this; the split would be
            ambiguous).
    """
    groups: list[tuple[np.ndarray, list[str]]] = []
    for link in links:
        weights = mapping.weights(link)
        for mask, members in groups:
            if np.array_equal(mask, weights > 0) and np.allclose(mapping.weights(members[0]), weights):
                members.append(link)
                break
            if np.any(mask & (weights > 0)):
                raise ValueError(f"{link} shares some but not all landing buses with {', '.join(members)}")
        else:
            groups.append((weights > 0, [link]))
    return groups


def case_measurements(sequence: GridSequence, mapping: BusMapping) -> pl.DataFrame:
    """The measurements the detectors take, one row per period of ``sequence`` (the module docstring says how each
    is rebuilt).

    Args:
        sequence: A benchmark case (or any run of snapshots) of ``mapping``'s network.
        mapping: How the snapshots were spread over buses.

    Returns:
        A measurement table (``detect.measurements``: ``settlementDate``, ``settlementPeriod``, ``start``, then one
        Float64 column per measurement, B1610 left out) in the case's period order; on an untouched day it equals
        ``measurement_table`` of that day to float32 rounding.
    """
    node = np.asarray(sequence.node, dtype=np.float64)
    recorded = recorded_measurements(sequence.start_us)
    missing = np.all(node == 0, axis=(1, 2))
    rebuilt: dict[str, np.ndarray] = {
        measurement("FUELHH", fuel): node[:, :, k].sum(axis=1) for fuel, k in zip(GENERATION_FUELS, _GEN)
    }
    links = [fuel_of(c) for c in fuel_columns(recorded.columns) if fuel_of(c).startswith("INT")]
    for buses, members in _interconnector_groups(mapping, links):
        imported = node[:, buses, _IMPORT].sum(axis=1)
        readings = recorded.select(pl.col(measurement("FUELHH", m)).fill_null(0.0) for m in members).to_numpy()
        total = readings.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(total != 0, readings / total, 1.0 / len(members))
        for i, link in enumerate(members):
            rebuilt[measurement("FUELHH", link)] = imported * share[:, i]
    demand = node[:, :, _DEMAND].sum(axis=1)
    rebuilt[ITSDO] = recorded[ITSDO].to_numpy() + (demand - recorded[RECORDED_INDO].to_numpy())
    columns = [pl.Series(name, np.where(missing, np.nan, values), dtype=pl.Float64).fill_nan(None)
               for name, values in rebuilt.items()]
    return recorded.with_columns(columns).drop(RECORDED_INDO)


def observed_case(sequence: GridSequence, mapping: BusMapping, flow: DCPowerFlow) -> GridSequence:
    """The case as the live job would see it: its national readings (``case_measurements``' FUELHH per fuel type and
    interconnector, and its summed demand) spread over the buses by ``mapping``, and the flows solved again, as
    ``grid_snapshots`` and the live processor build every real period.

    An injector changes one bus's readings; no real snapshot shows that, since each national FUELHH reading is
    spread with fixed weights (there is no BM unit → bus table for the reduced network). A redispatch between buses,
    or a trip picked up by the same fuel elsewhere, leaves the national readings as they were, so the live job
    cannot see it. ``observed_benchmark`` applies this to every case (``gnn_verifier``'s
    ``benchmark_summary_as_observed``, ``bench_ablation.py --observed``). A period that never arrived stays all zeros.
    """
    node = np.asarray(sequence.node, dtype=np.float64)
    table = case_measurements(sequence, mapping)
    national = {fuel: node[:, :, k].sum(axis=1) for fuel, k in zip(GENERATION_FUELS, _GEN)}
    for column in fuel_columns(table.columns):
        if fuel_of(column).startswith("INT"):
            national[fuel_of(column)] = table[column].fill_null(0.0).to_numpy()
    observed, edge, _ = period_arrays(mapping, flow, national, node[:, :, _DEMAND].sum(axis=1))
    missing = np.all(node == 0, axis=(1, 2))
    observed[missing] = 0.0
    loading = np.nan_to_num(edge[:, :, 2], nan=0.0)
    loading[missing] = 0.0
    return GridSequence(observed.astype(sequence.node.dtype), sequence.frequency, loading.astype(sequence.loading.dtype),
                        sequence.start_us)


def observed_benchmark(benchmark: Benchmark, network: GridNetwork) -> Benchmark:
    """``benchmark`` with every case replaced by ``observed_case``'s (labels, marks and version as they were)."""
    mapping, flow = bus_mapping(network), DCPowerFlow(network)
    seen = [observed_case(benchmark.case(k), mapping, flow) for k in range(len(benchmark.labels))]
    return dataclasses.replace(benchmark, node=np.stack([c.node for c in seen]), loading=np.stack([c.loading for c in seen]))


class RulesDetector:
    """The live job's rules on a benchmark case, calibrated so that 1.0 is the alarm, with the interface of the
    learned detectors.

    Per period, in order, on the case's rebuilt measurements (``case_measurements``):

    * ``PeriodDetector``, the live job's and batch ``detect``'s code: the redundancy checks (FUELHH against ITSDO,
      AGWS, NESO's interconnector flows) and the per-fuel data-quality detectors (stuck readings, unseen signs, unit
      jumps), with the period before carried as the live job carries it;
    * ``row_integrity_findings``: a missing period, a duplicated one;
    * physics, as the live job scores it: the period's mean frequency against the bands (``stream.rules``'
      ``frequency_findings``: alarming outside the operational band, 50 Hz ± 0.2 Hz, and naming the statutory band
      beyond ± 0.5 Hz; RoCoF needs samples seconds apart, which a half-hourly mean is not, so it is not scored);
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
    """

    name = "rules"

    def __init__(self, calibration: DetectorCalibration, mapping: BusMapping, limits: BranchLimits | None = None):
        self.detectors, self.mapping = calibration, mapping
        network = mapping.network
        self.limit = np.ones(network.n_branches) if limits is None else np.asarray(limits.alarm_limit, dtype=float)
        self.branches = branch_names(network)
        # A finding on an interconnector names its landing bus when it has exactly one.
        self.landing_bus = {measurement("FUELHH", fuel): int(np.flatnonzero(w)[0])
                            for fuel, w in mapping.fuel_weights.items() if fuel.startswith("INT") and np.count_nonzero(w) == 1}

    def findings(self, sequence: GridSequence) -> list[list[Finding]]:
        """Every finding of every period of ``sequence``, by period (scores of every size, not only alarms)."""
        table = case_measurements(sequence, self.mapping)
        node = np.asarray(sequence.node, dtype=np.float64)
        supply = node[:, :, _GEN].sum(axis=(1, 2)) + node[:, :, _IMPORT].sum(axis=1)
        demand = node[:, :, _DEMAND].sum(axis=1)
        imbalance = imbalance_score(supply, demand)
        overload = np.nan_to_num(np.asarray(sequence.loading, dtype=np.float64), nan=0.0) / self.limit
        detector = PeriodDetector(self.detectors)
        previous: dict[str, float | None] | None = None
        out: list[list[Finding]] = []
        for t, row in enumerate(table.iter_rows(named=True)):
            start = row["start"]
            found = row_integrity_findings(start, row, previous)
            checked = detector.score(row["settlementDate"], row["settlementPeriod"], start, row).findings()
            found += checked
            arrived = any(row[c] is not None for c in fuel_columns(row))
            if arrived:  # a period that never arrived has no supply to balance and no flow of its own
                hz = float(sequence.frequency[t])
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
