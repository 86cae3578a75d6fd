"""``grid_topology`` (the static graph) and ``grid_snapshots`` (one graph per settlement period, daily)."""

import dagster as dg
import numpy as np
import torch

from grid_guardian_assets.datasets import FREQ, FUELHH, INDO
from grid_guardian_assets.defs.bmrs.partitions import bmrs_daily_partitions, partition_day
from grid_guardian_assets.defs.resources import BmrsStorageResource, GridResource
from grid_guardian_assets.grid.dcflow import DCPowerFlow
from grid_guardian_assets.grid.mapping import bus_mapping
from grid_guardian_assets.grid.network import EXPECTED_SIZE
from grid_guardian_assets.grid.snapshots import LOSS_MAX, LOSS_MIN, NET_INJECTION, SnapshotInputError, build_snapshot_day
from grid_guardian_assets.grid.temporal import topology_data
from grid_guardian_assets.reporting import markdown_table, network_map
from grid_guardian_assets.store.snapshots import SnapshotStore


@dg.asset(
    group_name="grid",
    kinds={"pytorch"},
    check_specs=[
        dg.AssetCheckSpec("connected", asset="grid_topology", description="one island: every bus reachable"),
        dg.AssetCheckSpec("expected_size", asset="grid_topology", description="the network's known bus and branch counts"),
    ],
    description="The transmission network as a static PyG graph: bus names, coordinates, branch r/x/b and ratings.",
)
def grid_topology(context: dg.AssetExecutionContext, grid: GridResource, bmrs_storage: BmrsStorageResource):
    network = grid.load()
    data = topology_data(network)
    path = bmrs_storage.root / "grid" / f"topology_{network.name}.pt"
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


@dg.asset(
    partitions_def=bmrs_daily_partitions,
    group_name="grid",
    deps=["grid_topology", "fuelhh_store", "indo_store", "freq_store"],
    kinds={"hdf5", "pytorch"},
    check_specs=[
        dg.AssetCheckSpec(
            "power_balance",
            asset="grid_snapshots",
            description=f"every period: generation + net imports − INDO demand within {LOSS_MIN:.0%}..{LOSS_MAX:.0%} "
            "of supply (transmission losses and station load)",
        )
    ],
    description="One graph per settlement period: generation by fuel, imports, demand and net injection on buses; "
    "DC power flow, loading and susceptance on branches; system frequency. Built only from stored (validated) data.",
)
def grid_snapshots(context: dg.AssetExecutionContext, grid: GridResource, bmrs_storage: BmrsStorageResource):
    day = partition_day(context)
    network = grid.load()
    store = bmrs_storage.hdf5_store()
    try:
        snapshots = build_snapshot_day(
            day,
            bus_mapping(network),
            DCPowerFlow(network),
            store.read_range(FUELHH, day, day),
            store.read_range(INDO, day, day),
            store.read_range(FREQ, day, day),
        )
    except SnapshotInputError as exc:
        raise dg.Failure(description=f"grid_snapshots {day}: {exc}") from None
    path = SnapshotStore(bmrs_storage.root / "hdf5").write_day(snapshots)
    loading = snapshots.edge_features[:, :, 2]
    mean_loading = np.nanmean(loading, axis=0)
    worst = int(np.nanargmax(mean_loading))
    unbalanced = snapshots.unbalanced_periods()
    overloads = snapshots.overloads
    return dg.MaterializeResult(
        metadata={
            "network": network.name,
            "snapshots": len(snapshots.periods),
            "buses": network.n_buses,
            "branches": network.n_branches,
            "unbalanced_periods": unbalanced.height,
            "overloaded_branch_periods": int(overloads.sum()),
            "max_loading": float(np.nanmax(loading)),
            "most_loaded_branch": f"{network.bus_names[network.from_bus[worst]]} – {network.bus_names[network.to_bus[worst]]} "
            f"(mean {mean_loading[worst]:.2f} of {network.rating_mva[worst]:.0f} MVA)",
            "mean_frequency_hz": float(np.nanmean(snapshots.frequency_hz)) if np.isfinite(snapshots.frequency_hz).any() else None,
            "file": dg.MetadataValue.path(str(path)),
            "map": dg.MetadataValue.md(
                network_map(
                    network,
                    mean_loading,
                    snapshots.node_features[:, :, NET_INJECTION].mean(axis=0),
                    f"{network.name} {day}: mean loading and net injection",
                )
            ),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="power_balance",
                passed=unbalanced.height == 0,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "partition": day.isoformat(),
                    "unbalanced_periods": unbalanced.height,
                    "loss_ratio_min": float(snapshots.loss_ratio.min()),
                    "loss_ratio_max": float(snapshots.loss_ratio.max()),
                    **({"periods": dg.MetadataValue.md(markdown_table(unbalanced, limit=60))} if unbalanced.height else {}),
                },
            )
        ],
    )
