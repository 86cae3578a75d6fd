"""``grid_topology`` (the static graph), ``grid_snapshots`` (one graph per settlement period, daily) and
``branch_limits`` (the line-overload limits measured on the stored snapshots).

``grid_snapshots`` is a spec computed by the settlement-day multi-asset (``defs/daily``), after the day's BMRS
stores; this module builds one day's snapshots and its events. torch and PyG are imported by ``grid_topology``'s
body only, h5py by the bodies that open the snapshot store: every run process imports this module.
"""

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import polars as pl

from grid_guardian_assets.datasets import FREQ, FUELHH, INDO
from grid_guardian_assets.defs.bmrs.assets import store_key
from grid_guardian_assets.defs.bmrs.partitions import bmrs_daily_partitions
from grid_guardian_assets.defs.refresh.conditions import WEEKLY_REFRESH
from grid_guardian_assets.defs.resources import BmrsStorageResource, ElexonApiResource, GridResource
from grid_guardian_assets.defs.windows_config import WindowsConfig, require_snapshots
from grid_guardian_assets.grid.physics import LOSS_MAX, LOSS_MIN
from grid_guardian_assets.reporting import markdown_table, network_map

if TYPE_CHECKING:
    from grid_guardian_assets.grid.network import GridNetwork
    from grid_guardian_assets.grid.snapshots import SnapshotDay

GRID_SNAPSHOTS = dg.AssetKey("grid_snapshots")
POWER_BALANCE_CHECK = "power_balance"
# The BMRS datasets a day's snapshots are built from (their stores).
SNAPSHOT_INPUTS = (FUELHH, INDO, FREQ)


@dg.asset(
    group_name="grid",
    kinds={"pytorch"},
    # Unpartitioned, but part of every ranged run of `*grid_snapshots` (the CLI's --partition-range needs it).
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec("connected", asset="grid_topology", description="one island: every bus reachable"),
        dg.AssetCheckSpec("expected_size", asset="grid_topology", description="the network's known bus and branch counts"),
    ],
    description="The transmission network as a static PyG graph: bus names, coordinates, branch r/x/b and ratings.",
)
def grid_topology(context: dg.AssetExecutionContext, grid: GridResource, bmrs_storage: BmrsStorageResource):
    import numpy as np
    import torch

    from grid_guardian_assets.grid.network import EXPECTED_SIZE
    from grid_guardian_assets.grid.temporal import topology_data

    network = grid.load()
    data = topology_data(network)
    path = bmrs_storage.layout.topology(network.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Plain tensors and lists: loadable with torch.load(weights_only=True).
    torch.save({k: v for k, v in data.to_dict().items()}, path)
    components = network.components()
    expected = EXPECTED_SIZE.get(network.name)
    return dg.MaterializeResult(
        metadata={
            "network": network.name,
            "buses": network.n_buses,
            "branches": network.n_branches,
            "geography": "WGS84 (real substations)" if network.geographic else "synthetic layout, not geography",
            "file": dg.MetadataValue.path(str(path)),
            "map": dg.MetadataValue.md(
                network_map(network, np.zeros(network.n_branches), np.zeros(network.n_buses), f"{network.name} topology")
            ),
        },
        check_results=[
            dg.AssetCheckResult(check_name="connected", passed=components == 1, metadata={"islands": components}),
            dg.AssetCheckResult(
                check_name="expected_size",
                passed=expected == (network.n_buses, network.n_branches),
                metadata={"buses": network.n_buses, "branches": network.n_branches, "expected": str(expected)},
            ),
        ],
    )


grid_snapshots_spec = dg.AssetSpec(
    GRID_SNAPSHOTS,
    partitions_def=bmrs_daily_partitions,
    group_name="grid",
    deps=["grid_topology", *(store_key(spec) for spec in SNAPSHOT_INPUTS)],
    kinds={"hdf5", "pytorch"},
    skippable=True,
    description="One graph per settlement period: generation by fuel, imports, demand and net injection on buses; "
    "DC power flow, loading and susceptance on branches; system frequency. Built only from stored (validated) data.",
)

power_balance_check_spec = dg.AssetCheckSpec(
    POWER_BALANCE_CHECK,
    asset=GRID_SNAPSHOTS,
    partitions_def=bmrs_daily_partitions,
    description=f"every period: generation + net imports − INDO demand within {LOSS_MIN:.0%}..{LOSS_MAX:.0%} "
    "of supply (transmission losses, station load, pumping and exports, which INDO leaves out)",
)


class SnapshotBuilder:
    """Builds and stores a network's snapshots day by day; the bus mapping and DC flow are made once."""

    def __init__(self, network: "GridNetwork", hdf5_root: Path):
        from grid_guardian_assets.grid.dcflow import DCPowerFlow
        from grid_guardian_assets.grid.mapping import bus_mapping
        from grid_guardian_assets.store.snapshot_store import SnapshotStore

        self.network = network
        self.mapping = bus_mapping(network)
        self.flow = DCPowerFlow(network)
        self.store = SnapshotStore(hdf5_root)

    def build(self, day: dt.date, stored: dict[str, pl.DataFrame], stored_empty: frozenset[str] = frozenset()) -> "SnapshotDay":
        """Snapshots of ``day`` from stored rows by dataset code (they may hold other days too: they are filtered);
        ``stored_empty``: the inputs stored for the day with no rows (a whole day's confirmed gap)."""
        from grid_guardian_assets.grid.snapshots import build_snapshot_day

        fuelhh, indo, freq = (stored[spec.code].filter(spec.of_day(day)) for spec in SNAPSHOT_INPUTS)
        return build_snapshot_day(day, self.mapping, self.flow, fuelhh, indo, freq, stored_empty=stored_empty)

    def store_and_report(self, days: "list[SnapshotDay]", *, plot_day: dt.date) -> list[object]:
        """Store ``days`` (one write for all) and return each day's materialisation and ``power_balance`` result."""
        path = self.store.write_days(days)
        return [event for snapshots in days for event in self._events(snapshots, path, plot=snapshots.day == plot_day)]

    def _events(self, snapshots: "SnapshotDay", path: Path, *, plot: bool) -> list[object]:
        import numpy as np

        from grid_guardian_assets.grid.snapshots import NET_INJECTION

        network, day = self.network, snapshots.day
        known = ~snapshots.masked
        loading = snapshots.edge_features[known, :, 2]
        mean_loading = loading.mean(axis=0) if known.any() else np.zeros(network.n_branches)
        worst = int(np.argmax(mean_loading))
        unbalanced = snapshots.unbalanced_periods()
        metadata: dict[str, object] = {
            "network": network.name,
            "snapshots": len(snapshots.periods),
            "masked_periods": dg.MetadataValue.json([int(p) for p in snapshots.periods[snapshots.masked]]),
            "buses": network.n_buses,
            "branches": network.n_branches,
            "unbalanced_periods": unbalanced.height,
            "overloaded_branch_periods": int(snapshots.overloads.sum()),
            "max_loading": float(loading.max()) if known.any() else None,
            "most_loaded_branch": f"{network.bus_names[network.from_bus[worst]]} – {network.bus_names[network.to_bus[worst]]} "
            f"(mean {mean_loading[worst]:.2f} of {network.rating_mva[worst]:.0f} MVA)",
            "mean_frequency_hz": float(np.nanmean(snapshots.frequency_hz)) if np.isfinite(snapshots.frequency_hz).any() else None,
            "file": dg.MetadataValue.path(str(path)),
        }
        if plot:
            metadata["map"] = dg.MetadataValue.md(
                network_map(
                    network,
                    mean_loading,
                    snapshots.node_features[known, :, NET_INJECTION].mean(axis=0) if known.any() else np.zeros(network.n_buses),
                    f"{network.name} {day}: mean loading and net injection",
                )
            )
        balance = dg.AssetCheckEvaluation(
            asset_key=GRID_SNAPSHOTS,
            check_name=POWER_BALANCE_CHECK,
            passed=unbalanced.height == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            partition=day.isoformat(),
            metadata={
                "partition": day.isoformat(),
                "unbalanced_periods": unbalanced.height,
                "loss_ratio_min": float(np.nanmin(snapshots.loss_ratio)) if known.any() else None,
                "loss_ratio_max": float(np.nanmax(snapshots.loss_ratio)) if known.any() else None,
                **({"periods": dg.MetadataValue.md(markdown_table(unbalanced, limit=60))} if unbalanced.height else {}),
            },
        )
        return [dg.AssetMaterialization(GRID_SNAPSHOTS, partition=day.isoformat(), metadata=metadata), balance]


@dg.asset(
    automation_condition=WEEKLY_REFRESH,
    group_name="grid",
    deps=[GRID_SNAPSHOTS],
    kinds={"json"},
    # Unpartitioned, downstream of daily snapshots: it may be selected with them in a ranged run (as grid_topology).
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="Line-overload limits per branch (data/grid/branch_limits_NETWORK.json), measured on the stored "
    "grid_snapshots of the training window (fit and threshold; run config, relative to the newest stored day by "
    "default): the overload rule judges a branch against its rating, except where the snapshots load it above "
    "its rating in more than 1 % of one season's periods (equivalent branches whose ratings understate their "
    "corridors): such a branch is not judged, and its largest loading seen is kept as the most it is known to carry. "
    "The live rules and self-play's environment read them.",
)
def branch_limits(context: dg.AssetExecutionContext, config: WindowsConfig, grid: GridResource,
                  bmrs_storage: BmrsStorageResource) -> dg.MaterializeResult:
    import numpy as np

    from grid_guardian_assets.grid.branch_limits import LoadingHistory, branch_names, save_branch_limits
    from grid_guardian_assets.store.snapshot_store import SnapshotStore

    network = grid.load()
    store = SnapshotStore(bmrs_storage.layout.hdf5)
    windows = config.resolve(bmrs_storage)
    require_snapshots(windows.training, store, network.name, what="branch_limits' training window (fit and threshold)")
    days = [d for d in store.days(network.name) if d in windows.training]
    history = LoadingHistory.of(store.iter_range(network.name, days[0], days[-1]), network.n_branches)
    limits = history.limits()
    path = save_branch_limits(bmrs_storage.layout.branch_limits(network.name), network, limits, history, days)
    most = int(np.argmax(history.max_loading))
    context.log.info(f"{int(limits.from_history.sum())} of {network.n_branches} branches exceed their rating routinely in "
                     f"{len(days)} stored days: not judged for overload")
    return dg.MaterializeResult(
        metadata={
            "network": network.name,
            "days": len(days),
            "windows": dg.MetadataValue.json(windows.describe()),
            "first_day": days[0].isoformat(),
            "last_day": days[-1].isoformat(),
            "periods": history.total_periods,
            "branches": network.n_branches,
            "limits_from_history": int(limits.from_history.sum()),
            "limits_at_rating": int((~limits.from_history).sum()),
            "max_loading": float(history.max_loading[most]),
            "most_loaded_branch": branch_names(network)[most],
            "from_history": dg.MetadataValue.md("\n".join(f"* {line}" for line in limits.describe(network)) or "none"),
            "file": dg.MetadataValue.path(str(path)),
        }
    )


BM_UNITS_PATH = "/reference/bmunits/all"


@dg.asset(
    group_name="grid",
    kinds={"polars", "parquet"},
    description="Every BM unit of Elexon's list (the Insights API's /reference/bmunits/all: unit ids, fuel types) with its "
    "station and WGS84 coordinates (the Power Station Dictionary, bundled with attribution) and the bus it feeds on the "
    "network: the bus nearest the station by great-circle distance (kept per unit), or an interconnector's landing bus; "
    "a unit without a location has none, and the registry says so. Saved as data/grid/bm_units_NETWORK.parquet.",
)
def bm_units(context: dg.AssetExecutionContext, elexon: ElexonApiResource, grid: GridResource,
             bmrs_storage: BmrsStorageResource) -> dg.MaterializeResult:
    import numpy as np

    from grid_guardian_assets.grid.units import coverage_by_fuel, unit_registry

    network = grid.load()
    with elexon.get_client() as client:
        response = client.get(BM_UNITS_PATH, {}, context="BM unit list")
    listed = response.records(f"BM unit list from {response.url}")
    if not listed:
        raise dg.Failure(description=f"the BM unit list at {response.url} is empty: nothing to place")
    registry = unit_registry(listed, network)
    path = bmrs_storage.layout.bm_units(network.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    registry.write_parquet(path)
    coverage = coverage_by_fuel(registry)
    unplaced = registry.filter(pl.col("bus").is_null())
    per_bus = registry.group_by("bus").len().drop_nulls("bus")
    units_at_bus = np.zeros(network.n_buses)
    for bus, count in per_bus.iter_rows():
        units_at_bus[network.bus_index(bus)] = count
    context.log.info(f"{registry.height - unplaced.height} of {registry.height} BM units placed on {network.name}")
    return dg.MaterializeResult(metadata={
        "network": network.name,
        "units": registry.height,
        "placed": registry.height - unplaced.height,
        "placement": dg.MetadataValue.json(dict(registry["placement"].value_counts().iter_rows())),
        "coverage_by_fuel": dg.MetadataValue.md(markdown_table(coverage, limit=coverage.height)),
        "distance_km_median": registry["distance_km"].median(),  # None where no unit was placed by distance
        "distance_km_max": registry["distance_km"].max(),
        "units_without_bus": dg.MetadataValue.md(markdown_table(
            unplaced.select("elexon_bm_unit", "national_grid_bm_unit", "fuel_type", "placement"), limit=60)),
        "source": response.url,
        "file": dg.MetadataValue.path(str(path)),
        "map": dg.MetadataValue.md(network_map(network, np.zeros(network.n_branches), units_at_bus,
                                               f"{network.name}: BM units per bus")),
    })
