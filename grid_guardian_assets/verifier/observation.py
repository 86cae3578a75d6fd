"""A benchmark case as the live job sees it: the national readings a window of snapshots stands for, and the window
rebuilt from them alone.

``case_measurements`` turns a window of snapshots (``GridSequence``) back into the measurements the live job's
detectors take (``detect.measurements``' names), one row per period:

* ``FUELHH:{fuel}``: the case's generation of the fuel summed over buses: what the national FUELHH reading was, since
  the snapshot spread it over buses with weights that sum to one. A fault injected into one bus's reading changes the
  national figure by the same amount.
* ``FUELHH:INT*``: the case's net import at each interconnector's landing bus (``grid.mapping``). Where several
  interconnectors land on one bus (IFA and Nemo at Sellindge on ``gb29``; every link on ``gb2224``, whose mapping
  spreads them all alike) the bus's import is split between them in proportion to their recorded readings of the
  period, evenly when those are all zero: a fault on the bus's import moves each link by the same factor. In 2018
  Nemo reads 0 throughout, so IFA takes Sellindge's import whole.
* ``INDO`` and ``ITSDO``: the snapshot's demand is INDO (national demand, what the balance check compares with) spread
  over buses, so the case's INDO is its summed demand. ITSDO (transmission system demand) is INDO plus station load,
  pumping and exports: the case's ITSDO is the recorded ITSDO plus the change of the case's summed demand from the
  recorded INDO, so a demand meter fault moves both publications alike, and an untouched period reads exactly the
  recorded ITSDO.

"Recorded" is what the daily stores hold for the case's periods (``detect.measurements.StoredMeasurements.at``);
without stores (``recorded=None``) a case has no ITSDO and no AGWS, and links landing on one bus share its import
evenly.
* ``AGWS:*`` (wind and solar outturn, published within the hour): looked up in the stores by the case's period
  starts. It is an independent measurement: an injected fault does not reach it, as in reality a faulty
  FUELHH reading leaves AGWS's metering alone. (A real physical event would show in it too; the injectors' unit trips
  and redispatches do not, so a trip of a wind unit reads here as a FUELHH-against-AGWS mismatch. That makes the
  rules' score on ``unit_trip`` somewhat optimistic for wind trips.)
* B1610 and NESO's interconnector flows are left out (``detect.measurements.LATE_DATASETS``): B1610 is published
  about five days after the day and NESO's flows once a day, so neither can raise an alarm within an event and its
  grace periods, which is what the benchmark scores, and the live job has no topic for NESO's flows at all. Their
  redundancy checks audit stored days (the ``detect`` asset, ``known_bad_periods``).

A period whose snapshot is all zeros (``Injector``'s missing period: its readings never arrived) has no FUELHH, INDO
or ITSDO reading.

``observed_case`` rebuilds the window from those national readings, as ``grid_snapshots`` builds every real period:
each reading spread over the buses by the fixed mapping weights and the flows solved again. ``build_benchmark`` and
self-play give the detectors this view of every injected case, since no real snapshot holds the bus-level detail an
injector writes (there is no BM unit → bus table for the reduced network).
"""

import datetime as dt

import numpy as np
import polars as pl

from grid_guardian_assets.detect.measurements import (
    INDO,
    ITSDO,
    StoredMeasurements,
    fuel_columns,
    fuel_of,
    measurement,
)
from grid_guardian_assets.grid.dcflow import DCPowerFlow
from grid_guardian_assets.grid.mapping import GENERATION_FUELS, BusMapping
from grid_guardian_assets.grid.snapshots import NODE_FEATURES, period_arrays
from grid_guardian_assets.settlement import UTC, period_of
from grid_guardian_assets.verifier.sequences import GridSequence

_GEN = [NODE_FEATURES.index(f"gen_{fuel.lower()}") for fuel in GENERATION_FUELS]
_IMPORT, _DEMAND = NODE_FEATURES.index("net_import"), NODE_FEATURES.index("demand")
KEY_COLUMNS = ("settlementDate", "settlementPeriod", "start")


def recorded_measurements(start_us: np.ndarray, recorded: StoredMeasurements | None) -> pl.DataFrame:
    """The stored timely measurements of the periods starting at ``start_us`` (µs since the epoch, UTC), in that
    order (``StoredMeasurements.at``); without stores, the periods' keys alone."""
    if recorded is not None:
        return recorded.at(start_us)
    starts = [dt.datetime.fromtimestamp(int(us) / 1e6, UTC) for us in start_us]
    keys = [period_of(s) for s in starts]
    return pl.DataFrame({"settlementDate": [k[0] for k in keys], "settlementPeriod": [k[1] for k in keys], "start": starts},
                        schema={"settlementDate": pl.Date, "settlementPeriod": pl.Int64, "start": pl.Datetime("us", "UTC")})


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


def case_measurements(sequence: GridSequence, mapping: BusMapping, recorded: StoredMeasurements | None) -> pl.DataFrame:
    """The measurements the detectors take, one row per period of ``sequence`` (the module docstring says how each
    is rebuilt).

    Args:
        sequence: A benchmark case (or any run of snapshots) of ``mapping``'s network.
        mapping: How the snapshots were spread over buses.
        recorded: The stores the case's periods were recorded in (``None``: none).

    Returns:
        A measurement table (``detect.measurements``: ``settlementDate``, ``settlementPeriod``, ``start``, then one
        Float64 column per measurement, ``LATE_DATASETS`` left out) in the case's period order; on an untouched day
        it equals ``measurement_table``'s ``timely_columns`` of that day to float32 rounding.
    """
    return _rebuilt_measurements(sequence, mapping, recorded_measurements(sequence.start_us, recorded))


def _rebuilt_measurements(sequence: GridSequence, mapping: BusMapping, recorded: pl.DataFrame) -> pl.DataFrame:
    """``case_measurements`` given the recordings of the case's periods (``recorded_measurements``)."""
    node = np.asarray(sequence.node, dtype=np.float64)
    missing = np.all(node == 0, axis=(1, 2))
    rebuilt: dict[str, np.ndarray] = {
        measurement("FUELHH", fuel): node[:, :, k].sum(axis=1) for fuel, k in zip(GENERATION_FUELS, _GEN)
    }
    # The links the data has (a mapping may know links that did not yet exist); without recordings, the mapping's.
    links = ([fuel_of(c) for c in fuel_columns(recorded.columns) if fuel_of(c).startswith("INT")]
             or [fuel for fuel in mapping.fuel_weights if fuel.startswith("INT")])
    for buses, members in _interconnector_groups(mapping, links):
        imported = node[:, buses, _IMPORT].sum(axis=1)
        readings = np.column_stack([recorded[measurement("FUELHH", m)].fill_null(0.0).to_numpy()
                                    if measurement("FUELHH", m) in recorded.columns else np.zeros(recorded.height)
                                    for m in members])
        total = readings.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(total != 0, readings / total, 1.0 / len(members))
        for i, link in enumerate(members):
            rebuilt[measurement("FUELHH", link)] = imported * share[:, i]
    demand = node[:, :, _DEMAND].sum(axis=1)
    if ITSDO in recorded.columns and INDO in recorded.columns:
        rebuilt[ITSDO] = recorded[ITSDO].to_numpy() + (demand - recorded[INDO].to_numpy())
    rebuilt[INDO] = demand
    columns = [pl.Series(name, np.where(missing, np.nan, values), dtype=pl.Float64).fill_nan(None)
               for name, values in rebuilt.items()]
    return recorded.with_columns(columns)


def observed_case(sequence: GridSequence, mapping: BusMapping, flow: DCPowerFlow,
                  recorded: StoredMeasurements | None) -> GridSequence:
    """The case as the live job would see it: its national readings (``case_measurements``' FUELHH per fuel type and
    interconnector, and its summed demand) spread over the buses by ``mapping``, and the flows solved again, as
    ``grid_snapshots`` and the live processor build every real period.

    An injector changes one bus's readings; no real snapshot shows that, since each national FUELHH reading is
    spread with fixed weights (there is no BM unit → bus table for the reduced network). A redispatch between buses,
    or a trip picked up by the same fuel elsewhere, leaves the national readings as they were, so the live job
    cannot see it; a trip's frequency dip stays, as FREQ is a national measurement. A period that never arrived stays
    all zeros. On a case already observed it returns the case again (to float32 rounding).
    """
    node = np.asarray(sequence.node, dtype=np.float64)
    table = case_measurements(sequence, mapping, recorded)
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
                        sequence.start_us, sequence.frequency_extreme)


def national_trace_mw(sequence: GridSequence, mapping: BusMapping, periods: range,
                      recorded: StoredMeasurements | None) -> float:
    """The largest change (MW) an event leaves in the national readings the live job receives over ``periods``: each
    FUELHH fuel type and interconnector, INDO and ITSDO, of ``sequence`` (``case_measurements``) against the stored
    recordings of the same periods; infinite where a reading is missing from one and not the other.

    An event under about 1 MW leaves nothing for any detector to find (a redispatch between buses, a CCGT trip that
    CCGT elsewhere picks up): the share of such events bounds the recall any detector can reach on the benchmark
    (``bench_ablation.py`` prints it per type)."""
    stored = recorded_measurements(sequence.start_us, recorded)
    seen = _rebuilt_measurements(sequence, mapping, stored)
    columns = [c for c in (*fuel_columns(seen.columns), INDO, ITSDO) if c in stored.columns and c in seen.columns]
    window = slice(periods.start, periods.stop)
    a = seen.select(columns).to_numpy()[window].astype(float)
    b = stored.select(columns).to_numpy()[window].astype(float)
    differ = np.isnan(a) != np.isnan(b)
    if differ.any():
        return float("inf")
    change = np.abs(np.nan_to_num(a) - np.nan_to_num(b))
    return float(change.max()) if change.size else 0.0
