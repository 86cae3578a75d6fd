"""Line-overload limits per branch, measured on the loadings of stored grid snapshots.

A branch alarms above its rating (limit 1.0) unless history shows the model routinely loading it past its rating:
equivalent branches of the reduced ``gb29`` model, whose ratings understate their corridors', carry more than their
rating in a large share of normal periods. Such a rating is not credible, and the overload rule does not judge the
branch (``BranchLimits.alarm_limit``): a flow past an understated rating is no evidence of an overload, and the
largest flow seen so far is no limit either, since the corridors' flows follow the wind and grow from one season to
the next (limits taken at January to September's largest loading alarmed in many normal autumn periods). The largest
loading seen stays the branch's ``limit``: self-play's environment reads it as the most a corridor is known to carry.

A rating is judged season by season (meteorological seasons): a branch that exceeds its rating only in winter, when
demand and wind are high, is as routinely past it as one that does so all year, though over a whole year the winter
share is diluted below the threshold.

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
from grid_guardian_assets.settlement import PERIODS_PER_DAY

# A rating exceeded in more than this share of one season's measured periods is unreliable: the branch is not judged.
UNRELIABLE_RATING_SHARE = 0.01
# A season seen for fewer periods (two weeks) counts as this many, so one overload on a day or two of it does not
# condemn a rating.
SEASON_MIN_PERIODS = 14 * PERIODS_PER_DAY
# Meteorological seasons, in which a rating's reliability is judged; GB's transmission owners rate lines by season too.
SEASONS = ("winter", "spring", "summer", "autumn")  # DJF, MAM, JJA, SON


def season_of(day: dt.date) -> int:
    """The index in ``SEASONS`` of ``day``'s meteorological season."""
    return (day.month % 12) // 3


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
    """What a run of periods says about each branch, per season: how many periods, how many above rating, and the
    largest loading.

    Filled one day at a time (``add``), so memory does not grow with the number of days.
    """

    periods: np.ndarray  # (S,) periods measured per season
    over_rating: np.ndarray  # (S, E) periods in which the branch was loaded above its rating, per season
    max_loading: np.ndarray  # (E,) largest loading (|flow| / rating) seen

    @classmethod
    def empty(cls, n_branches: int) -> "LoadingHistory":
        return cls(np.zeros(len(SEASONS), dtype=np.int64), np.zeros((len(SEASONS), n_branches), dtype=np.int64),
                   np.zeros(n_branches))

    @classmethod
    def of(cls, days: Iterable[SnapshotDay], n_branches: int) -> "LoadingHistory":
        """The loadings of snapshot ``days`` (an iterator is read one day at a time)."""
        history = cls.empty(n_branches)
        for snapshots in days:
            history.add(snapshots.edge_features[:, :, EDGE_FEATURES.index("loading")], snapshots.day)
        return history

    def add(self, loading: np.ndarray, day: dt.date) -> None:
        """Count ``(T, E)`` loadings of ``day``; NaN (an unrated branch) counts as unloaded."""
        loading = np.nan_to_num(np.atleast_2d(np.asarray(loading, dtype=float)), nan=0.0)
        if loading.shape[1] != self.max_loading.shape[0]:
            raise ValueError(f"loadings of {loading.shape[1]} branches; this history counts {self.max_loading.shape[0]}")
        season = season_of(day)
        self.periods[season] += loading.shape[0]
        self.over_rating[season] += (loading > 1.0).sum(axis=0)
        self.max_loading = np.maximum(self.max_loading, loading.max(axis=0, initial=0.0))

    @property
    def total_periods(self) -> int:
        return int(self.periods.sum())

    @property
    def share_over_rating(self) -> np.ndarray:
        """``(S, E)`` share of each season's periods in which each branch was loaded above its rating (a season seen
        for fewer than ``SEASON_MIN_PERIODS`` counts as that many; an unseen one reads 0)."""
        return self.over_rating / np.maximum(self.periods, SEASON_MIN_PERIODS)[:, None]

    def limits(self) -> "BranchLimits":
        """The limits these periods imply: each branch's rating, or, where the rating is exceeded in more than
        ``UNRELIABLE_RATING_SHARE`` of some season's periods, its largest loading, marked as coming from history."""
        unreliable = self.share_over_rating.max(axis=0) > UNRELIABLE_RATING_SHARE
        return BranchLimits(np.where(unreliable, np.maximum(self.max_loading, 1.0), 1.0), unreliable)


@dataclass(frozen=True)
class BranchLimits:
    """Each branch's limit (1.0 = its rating), and which limits come from history because the rating is not credible.

    ``limit`` is the most the branch is known to carry (its rating, or the largest loading seen); ``alarm_limit`` is
    what the overload rule judges against.
    """

    limit: np.ndarray  # (E,)
    from_history: np.ndarray  # (E,) bool

    @property
    def alarm_limit(self) -> np.ndarray:
        """``(E,)`` loading at which the overload rule alarms: the rating where it is credible, infinity where history
        shows it understated (the rule cannot tell an overload of such a branch; see the module docstring)."""
        return np.where(self.from_history, np.inf, self.limit)

    def describe(self, network: GridNetwork) -> list[str]:
        names = branch_names(network)
        return [f"{names[i]}: rating exceeded routinely, not judged for overload; largest loading seen {self.limit[i]:.2f}× rating"
                for i in np.flatnonzero(self.from_history)]


def save_branch_limits(path: Path, network: GridNetwork, limits: BranchLimits, history: LoadingHistory,
                       days: list[dt.date]) -> Path:
    """Write ``limits`` of ``network`` as JSON (replacing the file whole), with what they were measured on."""
    payload = {
        "network": network.name,
        "days": [d.isoformat() for d in days],
        "periods": history.total_periods,
        "periods_by_season": dict(zip(SEASONS, history.periods.tolist())),
        "unreliable_rating_share": UNRELIABLE_RATING_SHARE,
        "branches": [
            {"name": name, "limit": float(limit), "from_history": bool(hist), "max_loading": float(peak),
             "share_over_rating": dict(zip(SEASONS, (round(float(x), 5) for x in share)))}
            for name, limit, hist, peak, share in zip(
                branch_names(network), limits.limit, limits.from_history, history.max_loading, history.share_over_rating.T
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
