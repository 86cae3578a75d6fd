"""Grid snapshot benchmark (not a test): a year of snapshots on the 29-bus and the 2,224-bus networks.

For each network, in its own process (so peak memory is that network's alone): build and store every settlement day
of 2018 from validated FUELHH, INDO and FREQ, and print the time and the peak resident memory. The DC power flow is
also timed against its baseline, a fresh dense solve per period (``numpy.linalg.solve`` of the reduced B matrix),
on the same injections in the same run.

Run: .venv/bin/python bench/bench_grid_snapshots.py [--days 364]
"""

import argparse
import datetime as dt
import multiprocessing
import resource
import tempfile
import time

import numpy as np

from grid_guardian_assets.grid.dcflow import DCPowerFlow
from grid_guardian_assets.grid.mapping import bus_mapping
from grid_guardian_assets.grid.network import load_network
from grid_guardian_assets.grid.snapshots import NET_INJECTION, build_snapshot_day
from grid_guardian_assets.replay.grid import bundled_inputs
from grid_guardian_assets.store.snapshot_store import SnapshotStore


def run_network(name: str, days: int, out: multiprocessing.Queue) -> None:
    network = load_network(name)
    mapping, flow = bus_mapping(network), DCPowerFlow(network)
    all_days = [dt.date(2018, 1, 1) + dt.timedelta(days=i) for i in range(days)]
    inputs = {d: bundled_inputs(d) for d in all_days}  # prepared first: the timing below is snapshot work only
    with tempfile.TemporaryDirectory() as tmp:
        store = SnapshotStore(tmp)
        started = time.perf_counter()
        built, periods, sample = 0, 0, None
        for day, parts in inputs.items():
            if parts is None:
                continue
            snapshots = build_snapshot_day(day, mapping, flow, *parts)
            store.write_day(snapshots)
            built += 1
            periods += len(snapshots.periods)
            sample = snapshots
        elapsed = time.perf_counter() - started
        size = store.path(name).stat().st_size
    injections = sample.node_features[:, :, NET_INJECTION].astype(float)
    injections -= injections.mean(axis=1, keepdims=True)
    batched_s = min(_timed(lambda: flow.solve(injections)) for _ in range(3))
    dense_s = min(_timed(lambda: _dense_per_period(network, injections)) for _ in range(3))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put((name, network.n_buses, built, periods, elapsed, peak_mb, size, batched_s, dense_s, len(injections)))


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _dense_per_period(network, injections: np.ndarray) -> None:
    n = network.n_buses
    keep = [i for i in range(n) if i != network.slack_bus]
    for p in injections:  # the naive loop: build and solve a dense system for each period
        a = np.zeros((n, n))
        s = 1 / network.x
        np.add.at(a, (network.from_bus, network.from_bus), s)
        np.add.at(a, (network.to_bus, network.to_bus), s)
        np.add.at(a, (network.from_bus, network.to_bus), -s)
        np.add.at(a, (network.to_bus, network.from_bus), -s)
        np.linalg.solve(a[np.ix_(keep, keep)], p[keep] / 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    for name in ("gb29", "gb2224"):
        queue = ctx.Queue()
        proc = ctx.Process(target=run_network, args=(name, args.days, queue))
        proc.start()
        result = queue.get()
        proc.join()
        name, buses, built, periods, elapsed, peak_mb, size, batched_s, dense_s, t = result
        print(
            f"{name} ({buses} buses): {built} days, {periods:,} snapshots built and stored in {elapsed:.1f} s "
            f"({elapsed / built * 1000:.0f} ms/day); peak RSS {peak_mb:,.0f} MB; HDF5 {size / 1e6:,.0f} MB"
        )
        print(
            f"  DC flow for one day ({t} periods): factorised multi-period solve {batched_s * 1000:.2f} ms vs "
            f"dense solve per period {dense_s * 1000:.1f} ms: ratio {dense_s / batched_s:.0f}x"
        )


if __name__ == "__main__":
    main()
