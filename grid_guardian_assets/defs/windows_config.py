"""The learned assets' day windows as run config: explicit dates, or (the default) spans ending at the newest stored day.

``detector_calibration``, ``branch_limits``, ``anomaly_benchmark`` and ``gnn_verifier`` take the same fields, so one
run config (the README's 2018 windows, say) sets all four alike. Their meaning and defaults are
``grid_guardian_assets.windows``'; the days are anchored on what ``fuelhh_store`` holds, the one store every learned
asset needs, so that the four agree on the windows.
"""

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from grid_guardian_assets.datasets import AGWS, FUELHH, INDO, ITSDO, DatasetSpec
from grid_guardian_assets.defs.bmrs.assets import store_key
from grid_guardian_assets.defs.resources import BmrsStorageResource
from grid_guardian_assets.windows import (
    FIT_DAYS,
    HELD_OUT_DAYS,
    MIN_FIT_DAYS,
    THRESHOLD_DAYS,
    DayWindow,
    WindowNotStored,
    WindowPlan,
    Windows,
    require_stored,
)

if TYPE_CHECKING:  # h5py loads where a store is opened
    from grid_guardian_assets.store.snapshot_store import SnapshotStore

# The store whose days place the relative windows: the one every learned asset needs.
ANCHOR = FUELHH
# The stores a benchmark case's readings come from beside its snapshots (``verifier.observation``): what the live job
# has while an event lasts.
TIMELY_INPUTS = (FUELHH, INDO, ITSDO, AGWS)


def _window(first: str, last: str, name: str) -> DayWindow | None:
    if not first and not last:
        return None
    if not (first and last):
        raise dg.Failure(description=f"the {name} window needs both {name}_start and {name}_end (or neither: relative)")
    try:
        return DayWindow.parse(first, last)
    except ValueError as exc:
        raise dg.Failure(description=f"the {name} window: {exc}") from None


class WindowsConfig(dg.Config):
    """Which stored days the asset learns and measures on (``grid_guardian_assets.windows``). Empty dates: relative to
    the newest day of fuelhh_store."""

    fit_start: str = Field(default="", description="First day of the fit window (empty: relative).")
    fit_end: str = Field(default="", description="Last day of the fit window (empty: relative).")
    threshold_start: str = Field(default="", description="First day of the threshold window (empty: relative).")
    threshold_end: str = Field(default="", description="Last day of the threshold window (empty: relative).")
    held_out_start: str = Field(default="", description="First day of the held-out window (empty: relative).")
    held_out_end: str = Field(default="", description="Last day of the held-out window (empty: relative).")
    held_out_days: int = Field(default=HELD_OUT_DAYS, description="Relative held-out window: the newest stored days.")
    threshold_days: int = Field(default=THRESHOLD_DAYS, description="Relative threshold window: the days before held out.")
    fit_days: int = Field(default=FIT_DAYS, description="Relative fit window: at most this many stored days before the "
                          "threshold window.")

    def plan(self) -> WindowPlan:
        return WindowPlan(
            fit=_window(self.fit_start, self.fit_end, "fit"),
            threshold=_window(self.threshold_start, self.threshold_end, "threshold"),
            held_out=_window(self.held_out_start, self.held_out_end, "held_out"),
            held_out_days=self.held_out_days, threshold_days=self.threshold_days, fit_days=self.fit_days,
            min_fit_days=MIN_FIT_DAYS,
        )

    def resolve(self, storage: BmrsStorageResource) -> Windows:
        """The windows over ``fuelhh_store``'s stored days.

        Raises:
            dagster.Failure: the windows cannot be placed (too few stored days, overlapping dates).
        """
        try:
            return self.plan().resolve(set(storage.hdf5_store().days(ANCHOR)))
        except WindowNotStored as exc:
            raise dg.Failure(description=f"{exc} (backfill {store_key(ANCHOR).to_user_string()} and its chain)",
                             metadata={"missing_days": len(exc.missing)}) from None
        except ValueError as exc:
            raise dg.Failure(description=str(exc)) from None


def stored_deps(*specs: DatasetSpec) -> list[dg.AssetDep]:
    """Dependencies on daily stores from an unpartitioned asset: every stored day feeds it."""
    return [dg.AssetDep(store_key(spec), partition_mapping=dg.AllPartitionMapping()) for spec in specs]


def require_window(window: DayWindow, stored: Iterable[dt.date], *, what: str, asset: str, select: str) -> None:
    """``windows.require_stored`` as a Dagster failure whose metadata holds the backfill command."""
    try:
        require_stored(window, set(stored), what=what, asset=asset, select=select)
    except WindowNotStored as exc:
        raise dg.Failure(description=str(exc), metadata={"missing_days": len(exc.missing),
                                                         "backfill_command": dg.MetadataValue.text(exc.command)}) from None


def require_snapshots(window: DayWindow, snapshots: "SnapshotStore", network: str, *, what: str) -> None:
    """``require_window`` on the days ``grid_snapshots`` holds for ``network``: the learned assets that read snapshots."""
    require_window(window, snapshots.days(network), what=what, asset="grid_snapshots", select="*grid_snapshots")
