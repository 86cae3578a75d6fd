"""Labelled anomalies injected into real held-out snapshot sequences, and the frozen benchmark made of them.

Every injector works on bus readings (MW), where the event or fault happens, and then re-derives net injection and DC
flows, as ``grid.snapshots`` does. Real physical events (a unit trip, a redispatch) move other units too and keep the
books balanced; sensor faults (stuck, scaled, sign-flipped readings) and data faults (missing, duplicated periods) do
not. ``build_benchmark`` then freezes each case as the live job would observe it (``observation.observed_case``): the
national readings the injected buses add up to, spread over the buses again. A real snapshot holds no more than that,
so a fault that leaves the national readings as they were (a redispatch between buses, a CCGT trip picked up by CCGT
elsewhere) is as invisible in the benchmark as it would be live.
"""

import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from grid_guardian_assets.detect.measurements import StoredMeasurements
from grid_guardian_assets.grid.dcflow import DCPowerFlow
from grid_guardian_assets.grid.mapping import bus_mapping
from grid_guardian_assets.grid.network import GridNetwork
from grid_guardian_assets.grid.physics import FREQUENCY_OPERATIONAL_BAND_HZ, LARGEST_INFEED_LOSS_MW, NOMINAL_FREQUENCY_HZ
from grid_guardian_assets.grid.snapshots import NODE_FEATURES
from grid_guardian_assets.settlement import LONDON, PERIOD
from grid_guardian_assets.verifier.benchmark_config import BenchmarkSpec
from grid_guardian_assets.verifier.observation import observed_case
from grid_guardian_assets.verifier.sequences import GridSequence

ANOMALY_TYPES = (
    "unit_trip",
    "stuck_sensor",
    "unit_scaling",
    "interconnector_sign_flip",
    "demand_shift",
    "missing_period",
    "duplicated_period",
    "overload_redispatch",
)
_GEN = [i for i, n in enumerate(NODE_FEATURES) if n.startswith("gen_")]
_FLEX = [NODE_FEATURES.index("gen_ccgt"), NODE_FEATURES.index("gen_ocgt")]
_IMPORT, _DEMAND, _NET = (NODE_FEATURES.index(n) for n in ("net_import", "demand", "net_injection"))


@dataclass(frozen=True)
class AnomalyLabel:
    """What was injected where: ``bus`` is -1 for system-wide faults; periods ``start`` .. ``start + duration - 1``."""

    kind: str
    bus: int
    start: int
    duration: int
    magnitude: float = 0.0


def flex_share(node: np.ndarray, bus: int) -> np.ndarray:
    """``(N,)`` how a change at ``bus`` spreads over the flexible plant (CCGT, OCGT) of every other bus, in proportion
    to its output in this period ``node`` ``(N, F)`` (evenly over the other buses when none runs)."""
    flex = node[:, _FLEX].sum(axis=1)
    flex[bus] = 0.0
    return flex / flex.sum() if flex.sum() > 0 else np.where(np.arange(len(flex)) == bus, 0, 1) / (len(flex) - 1)


class InjectionError(ValueError):
    """The sequence offers no place for this anomaly (e.g. no interconnector flowing)."""


def rederive(sequence: GridSequence, periods: range, network: GridNetwork, flow: DCPowerFlow) -> None:
    """Recompute net injection and loading from the readings of ``periods``, as the snapshot builder does."""
    ts = list(periods)
    node = sequence.node[ts].astype(float)
    gen = node[:, :, _GEN].sum(axis=2)
    supply = gen.sum(axis=1) + node[:, :, _IMPORT].sum(axis=1)
    losses = np.outer(supply - node[:, :, _DEMAND].sum(axis=1), network.demand_weights)
    injection = gen + node[:, :, _IMPORT] - node[:, :, _DEMAND] - losses
    sequence.node[ts, :, _NET] = injection
    sequence.loading[ts] = np.nan_to_num(flow.solve(injection).loading)


class Injector:
    """Injects one anomaly of each kind into a copy of a sequence."""

    def __init__(self, network: GridNetwork, flow: DCPowerFlow, rng: np.random.Generator):
        self.network, self.flow, self.rng = network, flow, rng

    def inject(self, kind: str, sequence: GridSequence, start: int) -> tuple[GridSequence, AnomalyLabel]:
        if kind not in ANOMALY_TYPES:
            raise KeyError(f"unknown anomaly type {kind!r}; known: {', '.join(ANOMALY_TYPES)}")
        out = sequence.copy()
        label = getattr(self, f"_{kind}")(out, start)
        return out, label

    def _pick(self, candidates: np.ndarray, what: str) -> int:
        if candidates.size == 0:
            raise InjectionError(f"no bus qualifies for {what}")
        return int(self.rng.choice(candidates))

    def _unit_trip(self, s: GridSequence, start: int) -> AnomalyLabel:
        duration = int(self.rng.integers(2, 7))
        gen = s.node[start][:, _GEN]
        bus = self._pick(np.flatnonzero(gen.max(axis=1) >= 400), "a unit trip (≥ 400 MW at a bus)")
        fuel = _GEN[int(np.argmax(gen[bus]))]
        lost = float(min(self.rng.uniform(0.5, 1.0) * s.node[start, bus, fuel], LARGEST_INFEED_LOSS_MW))  # a secured loss
        periods = range(start, min(start + duration, len(s)))
        for t in periods:
            take = min(lost, float(s.node[t, bus, fuel]))
            s.node[t, bus, fuel] -= take
            s.node[t, :, _FLEX[0]] += take * flex_share(s.node[t], bus)  # other units pick the loss up (response, reserve)
        s.lose_infeed(start, lost)
        rederive(s, periods, self.network, self.flow)
        return AnomalyLabel("unit_trip", bus, start, len(periods), lost)

    def _stuck_sensor(self, s: GridSequence, start: int) -> AnomalyLabel:
        duration = int(self.rng.integers(6, 13))
        periods = range(start, min(start + duration, len(s)))
        window = s.node[start : periods.stop][:, :, _GEN]
        movement = np.abs(np.diff(window, axis=0)).sum(axis=0) if len(periods) > 1 else window[0]
        bus, k = np.unravel_index(int(np.argmax(movement)), movement.shape)
        fuel = _GEN[k]
        s.node[list(periods), bus, fuel] = s.node[start - 1, bus, fuel]
        rederive(s, periods, self.network, self.flow)
        return AnomalyLabel("stuck_sensor", int(bus), start, len(periods), float(movement[bus, k]))

    def _unit_scaling(self, s: GridSequence, start: int) -> AnomalyLabel:
        duration = int(self.rng.integers(2, 7))
        gen = s.node[start][:, _GEN]
        bus = self._pick(np.flatnonzero(gen.max(axis=1) >= 300), "a scaling error (≥ 300 MW reading)")
        fuel = _GEN[int(np.argmax(gen[bus]))]
        periods = range(start, min(start + duration, len(s)))
        s.node[list(periods), bus, fuel] /= 1000.0  # MW read as kW
        rederive(s, periods, self.network, self.flow)
        return AnomalyLabel("unit_scaling", bus, start, len(periods), float(gen[bus].max()))

    def _interconnector_sign_flip(self, s: GridSequence, start: int) -> AnomalyLabel:
        duration = int(self.rng.integers(2, 7))
        bus = self._pick(np.flatnonzero(np.abs(s.node[start, :, _IMPORT]) >= 300), "a sign flip (≥ 300 MW interconnector)")
        periods = range(start, min(start + duration, len(s)))
        s.node[list(periods), bus, _IMPORT] *= -1.0
        rederive(s, periods, self.network, self.flow)
        return AnomalyLabel("interconnector_sign_flip", bus, start, len(periods), float(s.node[start, bus, _IMPORT]))

    def _demand_shift(self, s: GridSequence, start: int) -> AnomalyLabel:
        duration = int(self.rng.integers(2, 7))
        top = np.argsort(-s.node[start, :, _DEMAND])[:10]
        bus = self._pick(top, "a demand shift")
        factor = 1.0 + self.rng.choice([-1.0, 1.0]) * self.rng.uniform(0.25, 0.5)
        periods = range(start, min(start + duration, len(s)))
        s.node[list(periods), bus, _DEMAND] *= factor
        rederive(s, periods, self.network, self.flow)
        return AnomalyLabel("demand_shift", bus, start, len(periods), factor)

    def _missing_period(self, s: GridSequence, start: int) -> AnomalyLabel:
        periods = range(start, min(start + int(self.rng.integers(1, 3)), len(s)))
        s.blank(list(periods))
        return AnomalyLabel("missing_period", -1, start, len(periods))

    def _duplicated_period(self, s: GridSequence, start: int) -> AnomalyLabel:
        periods = range(start, min(start + int(self.rng.integers(1, 3)), len(s)))
        s.repeat(start - 1, list(periods))
        return AnomalyLabel("duplicated_period", -1, start, len(periods))

    def _overload_redispatch(self, s: GridSequence, start: int) -> AnomalyLabel:
        duration = int(self.rng.integers(2, 7))
        periods = range(start, min(start + duration, len(s)))
        base = s.loading[start]
        for _ in range(200):
            source, sink = (int(b) for b in self.rng.choice(self.network.n_buses, 2, replace=False))
            available = float(s.node[start, source, _FLEX].sum())
            if available < 300:
                continue
            moved = float(self.rng.uniform(300, min(available, 2500)))
            trial = s.copy()
            for t in periods:
                share = trial.node[t, source, _FLEX] / max(trial.node[t, source, _FLEX].sum(), 1e-9)
                trial.node[t, source, _FLEX] -= np.minimum(moved * share, trial.node[t, source, _FLEX])
                trial.node[t, sink, _FLEX[0]] += moved
            rederive(trial, periods, self.network, self.flow)
            if np.any((trial.loading[start] > 1.0) & (base < 0.9)):
                s.node[:], s.loading[:] = trial.node, trial.loading
                return AnomalyLabel("overload_redispatch", sink, start, len(periods), moved)
        raise InjectionError("no redispatch found that overloads a branch")


# The arrays a benchmark keeps that older ones lack, in the order they enter its version; each is optional in the file.
KEPT_LATER = ("untouched_node", "untouched_frequency", "untouched_loading", "frequency_extreme", "untouched_frequency_extreme")


@dataclass
class Benchmark:
    """Frozen cases: ``node (K, L, N, F)``, ``frequency (K, L)``, ``loading (K, L, E)``, one label per case
    (``None`` for a clean case), the seed, and a version derived from the content.

    ``known_bad (K, L)`` marks the periods whose real data underneath is known to be bad
    (``detect.calibration.known_bad_periods``): an alarm there is not a false alert (``verifier.evaluation``).

    ``untouched_node``, ``untouched_frequency``, ``untouched_loading`` hold each case's window as it was before its
    anomaly was written in (a clean case's is the case itself): a detector that alarms at a period of the untouched
    window too would alarm there without the event, so that alarm does not detect it (``verifier.evaluation``).
    Benchmarks saved before they were kept load without them (``None``) and are scored without that test.

    ``frequency_extreme (K, L)`` (and the untouched windows') holds each period's FREQ sample farthest from nominal,
    which the live job's band rule judges; benchmarks saved before it was kept load it as ``None``, and the rules
    judge the period's mean instead."""

    node: np.ndarray
    frequency: np.ndarray
    loading: np.ndarray
    start_us: np.ndarray
    labels: list[AnomalyLabel | None]
    seed: int
    network: str
    known_bad: np.ndarray | None = None
    untouched_node: np.ndarray | None = None
    untouched_frequency: np.ndarray | None = None
    untouched_loading: np.ndarray | None = None
    frequency_extreme: np.ndarray | None = None
    untouched_frequency_extreme: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.known_bad is None:
            self.known_bad = np.zeros(self.start_us.shape, dtype=bool)
        if self.known_bad.shape != self.start_us.shape:
            raise ValueError(f"known_bad has shape {self.known_bad.shape}, the cases {self.start_us.shape}")
        untouched = (self.untouched_node, self.untouched_frequency, self.untouched_loading)
        if any(a is None for a in untouched) != all(a is None for a in untouched):
            raise ValueError("the untouched windows come as node, frequency and loading together, or not at all")
        for name, array, like in zip(("node", "frequency", "loading"), untouched, (self.node, self.frequency, self.loading)):
            if array is not None and array.shape != like.shape:
                raise ValueError(f"untouched_{name} has shape {array.shape}, the cases' {name} {like.shape}")

    @property
    def has_untouched(self) -> bool:
        return self.untouched_node is not None

    @property
    def version(self) -> str:
        digest = hashlib.sha256()
        for array in (self.node, self.frequency, self.loading, self.start_us):
            digest.update(np.ascontiguousarray(array).tobytes())
        if self.known_bad.any():  # a benchmark without marks keeps the version it had before marks existed
            digest.update(np.packbits(self.known_bad).tobytes())
        for name in KEPT_LATER:  # so does one saved before the untouched windows and the extremes were kept
            if (array := getattr(self, name)) is not None:
                digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(json.dumps([asdict(label) if label else None for label in self.labels]).encode())
        return digest.hexdigest()[:16]

    def case(self, k: int) -> GridSequence:
        return GridSequence(self.node[k], self.frequency[k], self.loading[k], self.start_us[k],
                            None if self.frequency_extreme is None else self.frequency_extreme[k])

    def untouched(self, k: int) -> GridSequence | None:
        """Case ``k``'s window before its anomaly was written in (``None`` if this benchmark does not keep it)."""
        if not self.has_untouched:
            return None
        extreme = None if self.untouched_frequency_extreme is None else self.untouched_frequency_extreme[k]
        return GridSequence(self.untouched_node[k], self.untouched_frequency[k], self.untouched_loading[k], self.start_us[k], extreme)

    def save(self, folder: Path) -> Path:
        """Write ``anomaly_benchmark_{network}_{version}.npz`` (an existing version is left as it is)."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"anomaly_benchmark_{self.network}_{self.version}.npz"
        if not path.exists():
            buffer = io.BytesIO()
            np.savez_compressed(
                buffer, node=self.node, frequency=self.frequency, loading=self.loading, start_us=self.start_us,
                known_bad=self.known_bad,
                **{name: getattr(self, name) for name in KEPT_LATER if getattr(self, name) is not None},
                labels=np.array(json.dumps([asdict(label) if label else None for label in self.labels])),
                meta=np.array(json.dumps({"seed": self.seed, "network": self.network})),
            )
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(buffer.getvalue())
            tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> "Benchmark":
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            labels = [AnomalyLabel(**label) if label else None for label in json.loads(str(data["labels"]))]
            known_bad = data["known_bad"] if "known_bad" in data.files else None
            kept_later = {name: data[name] for name in KEPT_LATER if name in data.files}
            bench = cls(data["node"], data["frequency"], data["loading"], data["start_us"], labels, meta["seed"], meta["network"],
                        known_bad, **kept_later)
        if not path.name.endswith(f"_{bench.version}.npz"):
            raise ValueError(f"benchmark file {path} does not match its content (version {bench.version}): refusing it")
        return bench


def whole_days(sequence: GridSequence, length: int) -> list[int]:
    """Offsets in ``sequence`` where a whole settlement day of exactly ``length`` periods starts: its first period
    starts at local midnight (Europe/London), the next local midnight comes ``length`` periods later, and no period is
    missing in between. With ``length`` 48 the clock-change days (46, 50 periods) are not whole days."""
    step_us = int(PERIOD / dt.timedelta(microseconds=1))
    starts = np.asarray(sequence.start_us, dtype=np.int64)
    ends = np.append(starts[1:], starts[-1] + step_us) if starts.size else starts
    local = [dt.datetime.fromtimestamp(int(us) / 1e6, LONDON) for us in starts]
    midnight = np.array([t.hour == 0 and t.minute == 0 for t in local], dtype=bool)
    # Whether period t's successor starts where t ends (a stored run may lack periods).
    consecutive = np.append(np.diff(starts) == step_us, True) if starts.size else np.zeros(0, dtype=bool)
    offsets = []
    for first in np.flatnonzero(midnight):
        last = first + length - 1
        if last >= starts.size or midnight[first + 1 : last + 1].any() or not consecutive[first:last].all():
            continue
        next_start = dt.datetime.fromtimestamp(int(ends[last]) / 1e6, LONDON)
        if next_start.hour == 0 and next_start.minute == 0:
            offsets.append(int(first))
    return offsets


def build_benchmark(held_out: list[GridSequence], network: GridNetwork, spec: BenchmarkSpec | None = None,
                    known_bad: Iterable[dt.datetime] = (), recorded: StoredMeasurements | None = None) -> Benchmark:
    """Cut ``spec.length``-period windows from held-out sequences and inject one labelled anomaly into each, kept as the
    live job would observe it (``observation.observed_case``), plus ``spec.clean_days`` clean whole days, all from
    ``spec.seed``. ``spec.lead_in`` periods before an anomaly give
    detectors their context window. Periods starting at a time in ``known_bad`` (real data known to be bad:
    ``detect.calibration.known_bad_periods``) are marked in every case that holds them, and so are periods whose
    recorded frequency left the operational band (``frequency_excursions``). ``recorded``: the stores the sequences
    were built from, whose readings the observed cases keep where a fault does not reach them (ITSDO, AGWS).

    The clean cases are distinct whole days (``whole_days``); the anomaly windows start anywhere and may overlap them
    and each other: 30 cases of each of 8 types plus 60 clean days need more than the 92 days of October to December
    if nothing may overlap (91 whole days in all). Each case is scored on its own, so a clean day and an injected
    window over the same real hours are still two different inputs; the shared real data makes the cases somewhat
    dependent, which the bootstrap's intervals do not model (see ``verifier.bootstrap``).

    Raises:
        ValueError: no sequence is long enough, or fewer whole days than ``spec.clean_days`` are stored.
        InjectionError: an anomaly found no place after 50 tries.
    """
    spec = spec or BenchmarkSpec()
    length, lead_in = spec.length, spec.lead_in
    rng = np.random.default_rng(spec.seed)
    flow = DCPowerFlow(network)
    injector = Injector(network, flow, rng)
    mapping = bus_mapping(network)
    usable = [s for s in held_out if len(s) >= length]
    if not usable:
        raise ValueError(f"no held-out sequence is {length} periods long; materialise more grid_snapshots")
    day_starts = [(source, offset) for source in usable for offset in whole_days(source, length)]
    if len(day_starts) < spec.clean_days:
        raise ValueError(f"{spec.clean_days} clean days asked for, but the held-out data holds {len(day_starts)} whole "
                         f"{length}-period days; materialise more grid_snapshots or ask for fewer")
    cases: list[tuple[GridSequence, AnomalyLabel | None]] = []
    untouched: list[GridSequence] = []
    for kind in [kind for kind in ANOMALY_TYPES for _ in range(spec.cases_per_type)]:
        for _attempt in range(50):
            source = usable[int(rng.integers(len(usable)))]
            offset = int(rng.integers(0, len(source) - length + 1))
            window = source.slice(offset, offset + length)
            start = int(rng.integers(lead_in, length - 12))
            try:
                injected, label = injector.inject(kind, window, start)
            except InjectionError:
                continue
            cases.append((observed_case(injected, mapping, flow, recorded), label))
            untouched.append(window)  # real snapshots are observed already: the window is what the live job saw
            break
        else:
            raise InjectionError(f"could not place a {kind} anomaly in the held-out data after 50 tries")
    for pick in rng.choice(len(day_starts), size=spec.clean_days, replace=False):
        source, offset = day_starts[int(pick)]
        cases.append((source.slice(offset, offset + length).copy(), None))
        untouched.append(cases[-1][0])
    start_us = np.stack([c.start_us for c, _ in cases])
    bad_us = np.array(sorted(int(t.timestamp() * 1_000_000) for t in known_bad), dtype=np.int64)
    untouched_extreme = _stacked_extremes(untouched)
    marked = np.isin(start_us.astype(np.int64), bad_us)
    if untouched_extreme is not None:
        marked |= frequency_excursions(untouched_extreme)
    return Benchmark(
        node=np.stack([c.node for c, _ in cases]).astype(np.float32),
        frequency=np.stack([c.frequency for c, _ in cases]).astype(np.float32),
        loading=np.stack([c.loading for c, _ in cases]).astype(np.float32),
        start_us=start_us,
        labels=[label for _, label in cases],
        seed=spec.seed,
        network=network.name,
        known_bad=marked,
        untouched_node=np.stack([w.node for w in untouched]).astype(np.float32),
        untouched_frequency=np.stack([w.frequency for w in untouched]).astype(np.float32),
        untouched_loading=np.stack([w.loading for w in untouched]).astype(np.float32),
        frequency_extreme=_stacked_extremes([c for c, _ in cases]),
        untouched_frequency_extreme=untouched_extreme,
    )


def frequency_excursions(extreme: np.ndarray) -> np.ndarray:
    """Where the recorded frequency itself left the operational band (a period's farthest sample): an excursion the
    live job alerts on, rightly, whatever the benchmark wrote in, so ``build_benchmark`` marks it with the known bad
    periods (no false alert there; the untouched window keeps it from detecting an event)."""
    return np.abs(np.nan_to_num(extreme, nan=NOMINAL_FREQUENCY_HZ) - NOMINAL_FREQUENCY_HZ) >= FREQUENCY_OPERATIONAL_BAND_HZ


def _stacked_extremes(sequences: list[GridSequence]) -> np.ndarray | None:
    """``(K, L)`` the sequences' frequency extremes, or ``None`` when any lacks them (snapshots stored before)."""
    if any(s.frequency_extreme is None for s in sequences):
        return None
    return np.stack([s.frequency_extreme for s in sequences]).astype(np.float32)
