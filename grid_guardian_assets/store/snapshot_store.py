"""HDF5 store of grid snapshots: ``{root}/grid_snapshots_{network}.h5``, one group per settlement day.

``/days/2018-03-01/{node_features (T,N,F), edge_features (T,E,3), periods, start_us, frequency_hz,
frequency_extreme_hz, supply_mw, demand_mw}``, the feature arrays gzip-compressed in one chunk per day; a rewrite replaces the day whole (see
``h5atomic``). Readers take a day whole, and a chunk per period (96 chunks of about 1.5 kB a day) cost twice the
time to write and a fifth more space; files written with per-period chunks read the same. Days written before
``frequency_extreme_hz`` was kept read it as NaN (no sample known): materialise ``grid_snapshots`` again to have it.
"""

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
from filelock import FileLock

from grid_guardian_assets.grid.snapshots import EDGE_FEATURES, NODE_FEATURES, SnapshotDay
from grid_guardian_assets.settlement import days_between
from grid_guardian_assets.store.h5atomic import committed, replace_group

_ARRAYS = ("periods", "start_us", "node_features", "edge_features", "frequency_hz", "frequency_extreme_hz", "supply_mw",
           "demand_mw")
_ADDED_LATER = {"frequency_extreme_hz": "frequency_hz"}  # array -> the array whose shape it takes, NaN, when absent


def _fill(group: h5py.Group, snapshots: SnapshotDay) -> None:
    for name in _ARRAYS:
        values = getattr(snapshots, name)
        if values.ndim == 3 and values.size:  # an empty array cannot be chunked
            group.create_dataset(name, data=values, chunks=values.shape, compression="gzip", compression_opts=4)
        else:
            group.create_dataset(name, data=values)


class SnapshotStore:
    """Grid snapshots per network under ``root``."""

    def __init__(self, root: str | Path, *, lock_timeout_s: float = 120.0):
        self.root = Path(root)
        self.lock_timeout_s = lock_timeout_s

    def path(self, network: str) -> Path:
        return self.root / f"grid_snapshots_{network}.h5"

    def write_day(self, snapshots: SnapshotDay) -> Path:
        """Replace the stored day of ``snapshots.network`` with ``snapshots``."""
        return self.write_days([snapshots])

    def write_days(self, days: list[SnapshotDay]) -> Path:
        """Replace each of ``days`` (all of one network), opening and locking the file once for all of them."""
        if not days:
            return self.root
        networks = {d.network for d in days}
        if len(networks) != 1:
            raise ValueError(f"write_days takes days of one network, got {sorted(networks)}")
        (network,) = networks
        path = self.path(network)
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock", timeout=self.lock_timeout_s), h5py.File(path, "a") as h5:
            h5.attrs.update({"network": network, "node_features": json.dumps(NODE_FEATURES), "edge_features": json.dumps(EDGE_FEATURES)})
            groups = h5.require_group("days")
            for snapshots in days:
                replace_group(groups, snapshots.day.isoformat(), lambda group, s=snapshots: _fill(group, s))
        return path

    def days(self, network: str) -> list[dt.date]:
        if not self.path(network).exists():
            return []
        with h5py.File(self.path(network), "r") as h5:
            return sorted(dt.date.fromisoformat(n) for n in committed(list(h5.get("days", {}))))

    def read_range(self, network: str, start: dt.date, end: dt.date, *, with_gaps: bool = False) -> list[SnapshotDay]:
        """Stored days ``start``..``end`` inclusive, in order (days not stored are skipped, and so are days with masked
        periods, a source's recorded gap, unless ``with_gaps``: nothing learns from or scores a period that never was)."""
        return list(self.iter_range(network, start, end, with_gaps=with_gaps))

    def iter_range(self, network: str, start: dt.date, end: dt.date, *, with_gaps: bool = False) -> Iterator[SnapshotDay]:
        """``read_range`` one day at a time: memory holds one day however long the range (the file stays open
        until the iteration ends)."""
        if not self.path(network).exists():
            return
        with h5py.File(self.path(network), "r") as h5:
            days = h5.get("days")
            for day in days_between(start, end):
                group = days.get(day.isoformat()) if days is not None else None
                if group is not None:
                    arrays = {name: group[name][()] for name in _ARRAYS if name in group}
                    for name, like in _ADDED_LATER.items():
                        arrays.setdefault(name, np.full(arrays[like].shape, np.nan))
                    snapshots = SnapshotDay(day=day, network=network, **arrays)
                    if with_gaps or snapshots.whole:
                        yield snapshots

    def read_day(self, network: str, day: dt.date) -> SnapshotDay:
        found = self.read_range(network, day, day, with_gaps=True)
        if not found:
            raise FileNotFoundError(f"no {network} snapshots for {day} in {self.path(network)}")
        return found[0]
