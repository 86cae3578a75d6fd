"""Data-plane benchmark (not a test): prints times and ratios measured in the same run.

1. Materialise a week of every BMRS dataset through Dagster against the local replay server.
2. Read a year of FUELHH from the HDF5 store versus parsing the same days from the raw JSON archive
   (the baseline): the ratio is how many times faster the store is.

Run: .venv/bin/python bench/bench_data_plane.py [--repeats 3]
"""

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import dagster as dg
import polars as pl

from grid_guardian_assets.datasets import DATASETS, FUELHH
from grid_guardian_assets.definitions import defs
from grid_guardian_assets.defs.resources import resources_for
from grid_guardian_assets.elexon import ElexonClient
from grid_guardian_assets.ingest import fetch_partition
from grid_guardian_assets.replay.server import ReplayServer
from grid_guardian_assets.settlement import days_between
from grid_guardian_assets.store.hdf5 import HDF5Store
from grid_guardian_assets.store.raw_archive import RawArchive
from grid_guardian_assets.validation import frame_from_raw, validate_partition


def best_of(repeats: int, fn) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def materialise_week(server: ReplayServer, root: Path) -> float:
    resources = resources_for(server.base_url, root)
    days = days_between(dt.date(2018, 6, 4), dt.date(2018, 6, 10))
    started = time.perf_counter()
    with dg.instance_for_test() as instance:
        for day in days:
            result = dg.materialize(
                list(defs.assets), selection=dg.AssetSelection.groups(*[f"bmrs_{n}" for n in DATASETS]),
                partition_key=day.isoformat(), instance=instance, resources=resources,
                run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            )
            assert result.success
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ReplayServer() as server:
        root = Path(tmp)
        week_s = materialise_week(server, root / "week")
        rows_week = sum(HDF5Store(root / "week" / "hdf5").read_range(s, dt.date(2018, 6, 4), dt.date(2018, 6, 10)).height for s in DATASETS.values())
        print(f"materialise 1 week x {len(DATASETS)} datasets (Dagster, in-process, replay server): {week_s:.1f} s, {rows_week:,} rows stored")

        archive, store = RawArchive(root / "year" / "raw"), HDF5Store(root / "year" / "hdf5")
        year = days_between(dt.date(2018, 1, 1), dt.date(2018, 12, 31))
        stored_days = []
        with ElexonClient(server.base_url) as client:
            for day in year:
                raw = fetch_partition(client, archive, FUELHH, day)
                report = validate_partition(FUELHH, day, frame_from_raw(FUELHH, raw))
                if report.passed:
                    store.write_partition(FUELHH, day, report.frame)
                    stored_days.append(day)
        paths = [archive.fetches("FUELHH", d)[-1] for d in stored_days]

        def parse_raw_json() -> pl.DataFrame:
            frames = [frame_from_raw(FUELHH, RawArchive.load(p)).frame for p in paths]
            return pl.concat(frames)

        def read_hdf5() -> pl.DataFrame:
            return store.read_range(FUELHH, year[0], year[-1])

        json_s, from_json = best_of(args.repeats, parse_raw_json)
        hdf5_s, from_hdf5 = best_of(args.repeats, read_hdf5)
        # Exact duplicates in the raw file are dropped by validation, so the raw side has more rows.
        print(f"year of FUELHH ({len(stored_days)} valid days): raw JSON parse {json_s * 1000:.0f} ms "
              f"({from_json.height:,} rows) | HDF5 range read {hdf5_s * 1000:.0f} ms ({from_hdf5.height:,} rows)")
        print(f"ratio raw-JSON / HDF5: {json_s / hdf5_s:.1f}x (best of {args.repeats})")
        print(f"HDF5 file: {store.path(FUELHH).stat().st_size / 1e6:.1f} MB; raw archive: "
              f"{sum(p.stat().st_size for p in paths) / 1e6:.1f} MB gzip'd JSON")


if __name__ == "__main__":
    main()
