"""Line-overload limits per branch, measured on the loadings of stored grid snapshots.

A branch alarms above its rating (limit 1.0) unless history shows the model routinely loading it past its rating:
equivalent branches of the reduced ``gb29`` model, whose ratings understate their corridors', carry more than their
rating in a large share of normal periods. Such a branch's limit is the largest loading seen on it, so the overload
rule fires on flows beyond anything seen in normal operation rather than in half of all periods.

The ``branch_limits`` asset measures them over the stored snapshots and writes them to
``DataLayout.branch_limits(network)``; the live job and self-play read that file with ``load_branch_limits``.
"""

import datetime as dt
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grid_guardian_assets.grid.network import GridNetwork
from grid_guardian_assets.grid.snapshots import EDGE_FEATURES, SnapshotDay

# A rating exceeded in more than this share of the measured periods is unreliable: the limit comes from history.
UNRELIABLE_RATING_SHARE = 0.01


class BranchLimitsMissing(FileNotFoundError):
    """No branch limits are stored for the network: the ``branch_limits`` asset has not been materialised."""


def branch_names(network: GridNetwork) -> list[str]:
    """``branch:{index}:{from}-{to}``: the index keeps parallel circuits apart."""
    return [
        f"branch:{i}:{network.bus_names[a]}-{network.bus_names[b]}"
        for i, (a, b) in enumerate(zip(network.from_bus, network.to_bus))
    ]


@dataclass
class LoadingHistory:
    """What a run of periods says about each branch: how many periods, how many above rating, the largest loading.

    Filled one day at a time (``add``), so memory does not grow with the number of days.
    """

    periods: int
    over_rating: np.ndarray  # (E,) periods in which the branch was loaded above its rating
    max_loading: np.ndarray  # (E,) largest loading (|flow| / rating) seen

    @classmethod
    def empty(cls, n_branches: int) -> "LoadingHistory":
        return cls(0, np.zeros(n_branches, dtype=np.int64), np.zeros(n_branches))

    @classmethod
    def of(cls, days: Iterable[SnapshotDay], n_branches: int) -> "LoadingHistory":
        """The loadings of snapshot ``days`` (an iterator is read one day at a time)."""
        history = cls.empty(n_branches)
        for snapshots in days:
            history.add(snapshots.edge_features[:, :, EDGE_FEATURES.index("loading")])
        return history

    def add(self, loading: np.ndarray) -> None:
        """Count ``(T, E)`` loadings; NaN (an unrated branch) counts as unloaded."""
        loading = np.nan_to_num(np.atleast_2d(np.asarray(loading, dtype=float)), nan=0.0)
        if loading.shape[1] != self.max_loading.shape[0]:
            raise ValueError(f"loadings of {loading.shape[1]} branches; this history counts {self.max_loading.shape[0]}")
        self.periods += loading.shape[0]
        self.over_rating += (loading > 1.0).sum(axis=0)
        self.max_loading = np.maximum(self.max_loading, loading.max(axis=0, initial=0.0))

    @property
    def share_over_rating(self) -> np.ndarray:
        """``(E,)`` share of the periods in which each branch was loaded above its rating."""
        return self.over_rating / max(self.periods, 1)

    def limits(self) -> "BranchLimits":
        """The limits these periods imply: each branch's rating, or its largest loading where the rating is exceeded
        in more than ``UNRELIABLE_RATING_SHARE`` of them."""
        unreliable = self.share_over_rating > UNRELIABLE_RATING_SHARE
        return BranchLimits(np.where(unreliable, np.maximum(self.max_loading, 1.0), 1.0), unreliable)


@dataclass(frozen=True)
class BranchLimits:
    """Loading above which each branch alarms (1.0 = its rating), and which limits come from history."""

    limit: np.ndarray  # (E,)
    from_history: np.ndarray  # (E,) bool

    def describe(self, network: GridNetwork) -> list[str]:
        names = branch_names(network)
        return [f"{names[i]} limit {self.limit[i]:.2f}× rating (largest loading seen)" for i in np.flatnonzero(self.from_history)]


def save_branch_limits(path: Path, network: GridNetwork, limits: BranchLimits, history: LoadingHistory,
                       days: list[dt.date]) -> Path:
    """Write ``limits`` of ``network`` as JSON (replacing the file whole), with what they were measured on."""
    payload = {
        "network": network.name,
        "days": [d.isoformat() for d in days],
        "periods": history.periods,
        "unreliable_rating_share": UNRELIABLE_RATING_SHARE,
        "branches": [
            {"name": name, "limit": float(limit), "from_history": bool(hist), "max_loading": float(peak),
             "share_over_rating": float(share)}
            for name, limit, hist, peak, share in zip(
                branch_names(network), limits.limit, limits.from_history, history.max_loading, history.share_over_rating
            )
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(payload, indent=1))
    os.replace(partial, path)  # a reader never sees half a file
    return path


def load_branch_limits(path: Path, network: GridNetwork) -> BranchLimits:
    """The limits the ``branch_limits`` asset stored for ``network`` at ``path``.

    Raises:
        BranchLimitsMissing: Nothing is stored at ``path``.
        ValueError: The file holds another network's limits, or branches that are not ``network``'s.
    """
    if not path.exists():
        raise BranchLimitsMissing(
            f"no branch limits for {network.name} at {path}: materialise the branch_limits asset (it measures them on "
            "the stored grid_snapshots)"
        )
    stored = json.loads(path.read_text())
    names = [b["name"] for b in stored["branches"]]
    if stored["network"] != network.name or names != branch_names(network):
        raise ValueError(f"{path} holds branch limits of {stored['network']} ({len(names)} branches), not of "
                         f"{network.name} ({network.n_branches}): materialise branch_limits again")
    return BranchLimits(np.array([b["limit"] for b in stored["branches"]], dtype=float),
                        np.array([b["from_history"] for b in stored["branches"]], dtype=bool))
