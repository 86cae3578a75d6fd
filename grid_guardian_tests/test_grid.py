"""Grid graphs: networks, the BMRS-to-bus mapping, DC power flow against pandapower, snapshots and their assets."""

import datetime as dt
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
import torch

from grid_guardian_assets.definitions import defs
from grid_guardian_assets.grid.branch_limits import (
    UNRELIABLE_RATING_SHARE,
    BranchLimitsMissing,
    LoadingHistory,
    branch_names,
    load_branch_limits,
    save_branch_limits,
)
from grid_guardian_assets.grid.dcflow import DCPowerFlow
from grid_guardian_assets.grid.mapping import GENERATION_FUELS, INTERCONNECTOR_BUSES, UnknownFuelTypeError, bus_mapping
from grid_guardian_assets.grid.network import GridNetwork, load_network, network_from_pandapower, reduced_network
from grid_guardian_assets.grid.snapshots import NET_INJECTION, NODE_FEATURES, SnapshotInputError, build_snapshot_day
from grid_guardian_assets.grid.temporal import snapshot_data, temporal_signal, topology_data
from grid_guardian_assets.replay import bmrs_history
from grid_guardian_assets.replay.grid import bundled_inputs
from grid_guardian_assets.replay.server import Fault, ReplayServer
from grid_guardian_assets.store.snapshot_store import SnapshotStore
from grid_guardian_tests.conftest import replay_resources

DAY = dt.date(2018, 3, 1)


def inputs(day: dt.date) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    frames = bundled_inputs(day)
    assert frames is not None, f"bundled {day} fails validation"
    return tuple(frames)


def snapshots_for(day: dt.date, network_name: str = "gb29"):
    network = load_network(network_name)
    return network, build_snapshot_day(day, bus_mapping(network), DCPowerFlow(network), *inputs(day))


def test_reduced_network_has_its_named_substations_and_lines() -> None:
    network = reduced_network()
    assert (network.n_buses, network.n_branches) == (29, 99)
    assert network.components() == 1
    assert network.geographic and {"Beauly", "London", "Sellindge", "Deeside"} <= set(network.bus_names)
    lon, lat = network.coords[network.bus_index("London")]
    assert -1.0 < lon < 0.5 and 51.2 < lat < 51.8
    assert network.demand_weights.sum() == pytest.approx(1.0)


def test_pandapower_bus_order_matches() -> None:
    """Bus i of the bundled network is bus i of pandapower's GBreducednetwork, read from what joins the buses.

    pandapower names its buses 0..28 and lays them out on a synthetic plane, so order shows in the branches: 96 of
    the 99 join the same bus indices with the same reactance (0.01 p.u.); the PyPSA-GB and pandapower editions differ
    in the other three. Swapping any two buses leaves at most 92 agreeing.
    """
    from collections import Counter

    import pandapower.networks as pn

    def branches(network: GridNetwork) -> Counter:
        return Counter((min(a, b), max(a, b), round(float(x), 2)) for a, b, x in zip(network.from_bus.tolist(), network.to_bus.tolist(), network.x))

    ours, theirs = reduced_network(), network_from_pandapower(pn.GBreducednetwork(), "pp29")
    assert ours.n_buses == theirs.n_buses and ours.n_branches == theirs.n_branches
    assert (branches(ours) - branches(theirs)).total() == 3, branches(ours) - branches(theirs)


def test_unknown_network_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown grid network 'gb9'; known: gb29, gb2224"):
        load_network("gb9")


def test_dc_flow_matches_pandapower_on_the_reduced_network() -> None:
    """Our factorised solve against pandapower's rundcpp on pandapower's own GBreducednetwork branch data.

    Tolerance: 1e-6 MW per branch (both solve the same linear system; observed ~1e-11). Transformer phase shifts
    (2 degrees on four branches in pandapower's model) are zeroed, as this DC model has none.
    """
    import pandapower as pp
    import pandapower.networks as pn

    net = pn.GBreducednetwork()
    net.trafo["shift_degree"] = 0.0
    network = network_from_pandapower(net, "pp29")
    rng = np.random.default_rng(7)
    injection = rng.normal(0, 800, network.n_buses)
    injection -= injection.mean()
    for element in ("gen", "sgen", "load"):
        net[element]["in_service"] = False
    for bus, p in enumerate(injection):
        pp.create_sgen(net, bus, p_mw=float(p))
    pp.rundcpp(net, numba=False)
    theirs = np.r_[net.res_line.p_from_mw.to_numpy(), net.res_trafo.p_hv_mw.to_numpy()]
    ours = DCPowerFlow(network).solve(injection).flow_mw[0]
    assert np.abs(ours - theirs).max() < 1e-6


def test_dc_flow_refuses_unbalanced_injections_and_islands() -> None:
    flow = DCPowerFlow(reduced_network())
    with pytest.raises(ValueError, match="do not sum to zero"):
        flow.solve(np.ones(29))
    import dataclasses

    full = reduced_network()
    keep = (full.from_bus != 0) & (full.to_bus != 0)  # every branch at Beauly removed: Beauly is an island
    cut = dataclasses.replace(
        full, from_bus=full.from_bus[keep], to_bus=full.to_bus[keep], r=full.r[keep], x=full.x[keep], b=full.b[keep],
        rating_mva=full.rating_mva[keep],
    )
    with pytest.raises(ValueError, match="split into 2 islands"):
        DCPowerFlow(cut)


def test_every_fuel_type_of_2018_lands_on_a_bus() -> None:
    mapping = bus_mapping(reduced_network())
    fuels = {r["fuelType"] for r in bmrs_history.fuelhh_records(DAY)}
    assert fuels <= set(GENERATION_FUELS) | set(INTERCONNECTOR_BUSES)
    for fuel in fuels:
        weights = mapping.weights(fuel)
        assert weights.sum() == pytest.approx(1.0) and (weights > 0).any()
    assert mapping.landing_buses("INTFR") == ["Sellindge"]
    assert mapping.landing_buses("INTIRL") == ["Neilston"]
    assert mapping.landing_buses("INTEW") == ["Deeside"]
    assert mapping.landing_buses("INTNED") == ["Kemsley"]
    assert mapping.landing_buses("INTIFA2") == ["Lovedean"]
    assert "Torness" in mapping.landing_buses("NUCLEAR")


def test_an_unknown_fuel_type_is_a_clear_error_not_a_drop() -> None:
    fuelhh, indo, freq = inputs(DAY)
    network = reduced_network()
    odd = fuelhh.with_columns(pl.when(pl.col("fuelType") == "OTHER").then(pl.lit("HYDROGEN")).otherwise(pl.col("fuelType")).alias("fuelType"))
    with pytest.raises(UnknownFuelTypeError, match="fuel type 'HYDROGEN' has no bus mapping on network gb29"):
        build_snapshot_day(DAY, bus_mapping(network), DCPowerFlow(network), odd, indo, freq)


def test_period_36_flows_sum_at_every_bus_to_its_net_injection() -> None:
    network, day = snapshots_for(DAY)
    t = list(day.periods).index(36)
    injection = day.node_features[t, :, NET_INJECTION].astype(float)
    outflow = DCPowerFlow(network).bus_balance(day.edge_features[t, :, 1].astype(float))[0]
    assert np.abs(outflow - injection).max() < 0.5  # MW; float32 storage of flows of up to a few GW
    assert abs(injection.sum()) < 1.0


def test_generation_and_demand_keep_their_national_totals() -> None:
    network, day = snapshots_for(DAY)
    fuelhh, indo, _ = inputs(DAY)
    gen_cols = [NODE_FEATURES.index(f"gen_{f.lower()}") for f in GENERATION_FUELS]
    national_gen = (
        fuelhh.filter(~pl.col("fuelType").str.starts_with("INT"))
        .group_by("settlementPeriod")
        .agg(pl.col("generation").sum())
        .sort("settlementPeriod")
    )
    np.testing.assert_allclose(day.node_features[:, :, gen_cols].sum(axis=(1, 2)), national_gen["generation"].to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(
        day.node_features[:, :, NODE_FEATURES.index("demand")].sum(axis=1), indo.sort("settlementPeriod")["demand"].to_numpy(), rtol=1e-5
    )
    assert np.all(np.abs(day.frequency_hz - 50) < 0.5)


def test_each_period_keeps_its_farthest_frequency_sample() -> None:
    """The period's extreme is one of its FREQ samples, the one farthest from 50 Hz; a dip written into one sample
    becomes that period's extreme and moves its mean by a 120th of the dip."""
    network = reduced_network()
    fuelhh, indo, freq = inputs(DAY)
    day = build_snapshot_day(DAY, bus_mapping(network), DCPowerFlow(network), fuelhh, indo, freq)
    first = freq.filter(pl.col("measurementTime") < freq["measurementTime"].min() + dt.timedelta(minutes=30))["frequency"]
    assert day.frequency_extreme_hz[0] in first.to_list()
    assert abs(day.frequency_extreme_hz[0] - 50) == pytest.approx((first - 50).abs().max())
    assert np.all(np.abs(day.frequency_extreme_hz - 50) >= np.abs(day.frequency_hz - 50) - 1e-9)
    dipped = freq.with_columns(pl.when(pl.int_range(pl.len()) == 200).then(49.4).otherwise(pl.col("frequency")).alias("frequency"))
    after = build_snapshot_day(DAY, bus_mapping(network), DCPowerFlow(network), fuelhh, indo, dipped)
    assert after.frequency_extreme_hz[1] == 49.4  # sample 200 lies in the second period (120 samples each)
    assert after.frequency_hz[1] == pytest.approx(day.frequency_hz[1] - (freq["frequency"][200] - 49.4) / 120)


def test_power_balance_flags_periods_that_do_not_balance() -> None:
    network = reduced_network()
    fuelhh, indo, freq = inputs(DAY)
    assert build_snapshot_day(DAY, bus_mapping(network), DCPowerFlow(network), fuelhh, indo, freq).balanced.all()
    heavy = indo.with_columns(
        pl.when(pl.col("settlementPeriod").is_in([10, 11])).then(pl.col("demand") * 1.3).otherwise(pl.col("demand")).cast(pl.Int64)
    )
    day = build_snapshot_day(DAY, bus_mapping(network), DCPowerFlow(network), fuelhh, heavy, freq)
    assert day.unbalanced_periods()["settlementPeriod"].to_list() == [10, 11]


@pytest.mark.parametrize("day, periods, masked", [(dt.date(2018, 3, 25), 46, [46]), (dt.date(2018, 10, 28), 50, [48, 50]),
                                                  (dt.date(2023, 3, 26), 46, []), (dt.date(2023, 10, 29), 50, [])])
def test_clock_change_days_give_46_and_50_snapshots(day: dt.date, periods: int, masked: list[int]) -> None:
    """2018's files never held the spring day's 46th period, nor the autumn day's 48th FUELHH and 50th INDO: those
    periods are masked (NaN), the rest built; 2023's are whole."""
    _, snapshots = snapshots_for(day)
    assert snapshots.node_features.shape[0] == periods == len(snapshots.periods)
    assert np.all(np.diff(snapshots.start_us) == 1_800_000_000)
    assert snapshots.periods[snapshots.masked].tolist() == masked and snapshots.whole is (not masked)
    assert np.isnan(snapshots.node_features[snapshots.masked]).all() and np.isfinite(snapshots.node_features[~snapshots.masked]).all()
    assert not set(snapshots.unbalanced_periods()["settlementPeriod"].to_list()) & set(masked)  # masked is not unbalanced


def test_missing_inputs_are_refused_clearly() -> None:
    network = reduced_network()
    fuelhh, indo, freq = inputs(DAY)
    with pytest.raises(SnapshotInputError, match="FUELHH for 2018-03-01 is not in the store"):
        build_snapshot_day(DAY, bus_mapping(network), DCPowerFlow(network), fuelhh.clear(), indo, freq)
    with pytest.raises(SnapshotInputError, match="INDO for 2018-03-01 is not in the store"):
        build_snapshot_day(DAY, bus_mapping(network), DCPowerFlow(network), fuelhh, indo.clear(), freq)
    # A period the store lacks (a recorded gap) is masked, not invented; the others are as they would be.
    gappy = build_snapshot_day(DAY, bus_mapping(network), DCPowerFlow(network), fuelhh, indo.filter(pl.col("settlementPeriod") != 5), freq)
    whole = build_snapshot_day(DAY, bus_mapping(network), DCPowerFlow(network), fuelhh, indo, freq)
    assert gappy.periods[gappy.masked].tolist() == [5]
    # A day whose source confirmed it has no INDO at all (2018-11-09) is stored empty: every period masked.
    empty = build_snapshot_day(DAY, bus_mapping(network), DCPowerFlow(network), fuelhh, indo.clear(), freq, stored_empty=frozenset({"INDO"}))
    assert empty.masked.all() and not empty.whole and np.isnan(empty.edge_features).all()
    keep = np.arange(48) != 4
    np.testing.assert_allclose(gappy.node_features[keep], whole.node_features[keep], rtol=1e-6)


def test_snapshot_store_round_trip_and_rewrite(tmp_path: Path) -> None:
    network, day = snapshots_for(DAY)
    store = SnapshotStore(tmp_path)
    store.write_day(day)
    store.write_day(day)
    back = store.read_day("gb29", DAY)
    np.testing.assert_array_equal(back.node_features, day.node_features)
    np.testing.assert_array_equal(back.periods, day.periods)
    np.testing.assert_array_equal(back.frequency_extreme_hz, day.frequency_extreme_hz)
    assert store.days("gb29") == [DAY]


def test_a_day_stored_before_the_farthest_sample_was_kept_reads_it_as_unknown(tmp_path: Path) -> None:
    import h5py

    _, day = snapshots_for(DAY)
    store = SnapshotStore(tmp_path)
    store.write_day(day)
    with h5py.File(store.path("gb29"), "a") as h5:
        del h5[f"days/{DAY.isoformat()}/frequency_extreme_hz"]
    back = store.read_day("gb29", DAY)
    assert back.frequency_extreme_hz.shape == day.frequency_hz.shape and np.isnan(back.frequency_extreme_hz).all()
    np.testing.assert_array_equal(back.frequency_hz, day.frequency_hz)


def test_branch_limits_judge_only_ratings_that_no_season_routinely_exceeds(tmp_path: Path) -> None:
    network = reduced_network()
    history = LoadingHistory.empty(network.n_branches)
    winter, summer = [DAY.replace(month=1, day=d) for d in range(1, 16)], [DAY.replace(month=7, day=d) for d in range(1, 16)]
    for k, day in enumerate(winter + summer):  # fabricated loadings of 15 winter and 15 summer days, day by day
        loading = np.full((48, network.n_branches), 0.5)
        loading[::10, 0] = 1.5 + 0.01 * k  # above rating in 5 of 48 periods (10 %) all year: its rating understates it
        loading[0, 1] = 1.3 if k == 0 else 0.5  # above rating once in 720 winter periods: an overload, not the norm
        loading[:, 2] = np.nan  # unrated
        if day.month == 1 and k % 2 == 0:  # above rating in 8 of 720 winter periods (1.1 %), never in summer
            loading[20, 3] = 1.2
        history.add(loading, day)
    limits = history.limits()
    assert history.total_periods == 1440 and history.max_loading[0] == pytest.approx(1.79) and history.max_loading[1] == pytest.approx(1.3)
    # Over the whole year branch 3 is above rating in 8 of 1,440 periods (0.6 %), yet in winter it is past it routinely.
    assert history.over_rating[:, 3].sum() / history.total_periods < UNRELIABLE_RATING_SHARE
    assert limits.from_history.tolist()[:4] == [True, False, False, True] and limits.from_history.sum() == 2
    assert limits.limit[0] == pytest.approx(1.79) and limits.limit[3] == pytest.approx(1.2)
    assert limits.limit[1] == 1.0 and limits.limit[2] == 1.0
    np.testing.assert_array_equal(limits.alarm_limit[:4], [np.inf, 1.0, 1.0, np.inf])  # the rule judges credible ratings only
    assert limits.describe(network)[0] == (f"{branch_names(network)[0]}: rating exceeded routinely, not judged for overload; "
                                           "largest loading seen 1.79× rating")

    one_day = LoadingHistory.empty(network.n_branches)  # a season seen for a day: one overload does not condemn a rating
    one_day.add(np.where(np.arange(48)[:, None] == 0, 1.3, 0.5) * np.ones((1, network.n_branches)), DAY)
    assert not one_day.limits().from_history.any()

    path = save_branch_limits(tmp_path / "grid" / "branch_limits_gb29.json", network, limits, history, [DAY, DAY + dt.timedelta(days=1)])
    back = load_branch_limits(path, network)
    np.testing.assert_array_equal(back.limit, limits.limit)
    np.testing.assert_array_equal(back.from_history, limits.from_history)
    with pytest.raises(BranchLimitsMissing, match="materialise the branch_limits asset"):
        load_branch_limits(tmp_path / "none.json", network)
    with pytest.raises(ValueError, match="not of gb2224"):
        load_branch_limits(path, load_network("gb2224"))


def test_pyg_views() -> None:
    network, day = snapshots_for(DAY)
    topology = topology_data(network)
    assert topology.num_nodes == 29 and topology.edge_index.shape == (2, 198) and topology.bus_names[0] == "Beauly"
    data = snapshot_data(network, day, 35)
    assert data.x.shape == (29, len(NODE_FEATURES)) and data.edge_attr.shape == (198, 3) and data.period == 36
    torch.testing.assert_close(data.edge_attr[:99, 1], -data.edge_attr[99:, 1])
    _, next_day = snapshots_for(dt.date(2018, 3, 2))
    signal = temporal_signal(network, [day, next_day])
    assert signal.snapshot_count == 95
    first = signal[0]
    assert first.x.shape == (29, len(NODE_FEATURES)) and first.y.shape == (29, len(NODE_FEATURES))
    torch.testing.assert_close(first.y, torch.as_tensor(day.node_features[1]))


def test_a_tgcn_runs_over_the_signal() -> None:
    from torch_geometric_temporal.nn.recurrent import TGCN

    network, day = snapshots_for(DAY)
    signal = temporal_signal(network, [day])
    model = TGCN(len(NODE_FEATURES), 16)
    hidden = None
    for snapshot in list(signal)[:3]:
        hidden = model(snapshot.x / 1000, snapshot.edge_index, snapshot.edge_attr, hidden)
    assert hidden.shape == (29, 16) and torch.isfinite(hidden).all()


def test_the_2224_bus_network_builds_snapshots() -> None:
    network, day = snapshots_for(DAY, "gb2224")
    assert (network.n_buses, network.n_branches) == (2224, 3207) and not network.geographic
    assert day.node_features.shape == (48, 2224, len(NODE_FEATURES))
    t = 35
    outflow = DCPowerFlow(network).bus_balance(day.edge_features[t, :, 1].astype(float))[0]
    assert np.abs(outflow - day.node_features[t, :, NET_INJECTION]).max() < 1.0


@pytest.mark.integration
def test_grid_assets_in_dagster(replay: ReplayServer, data_dir: Path, instance: dg.DagsterInstance) -> None:
    resources = replay_resources(replay.base_url, data_dir)
    assert dg.materialize(list(defs.assets), selection=["grid_topology"], instance=instance, resources=resources).success
    topology = instance.get_latest_materialization_event(dg.AssetKey("grid_topology")).asset_materialization.metadata
    assert topology["buses"].value == 29 and "data:image/png;base64," in topology["map"].value
    saved = torch.load(data_dir / "grid" / "topology_gb29.pt", weights_only=True)
    assert saved["bus_names"][0] == "Beauly"
    chain = dg.AssetSelection.assets("grid_snapshots").upstream() - dg.AssetSelection.assets("grid_topology")
    result = dg.materialize(list(defs.assets), selection=chain, partition_key=DAY.isoformat(), instance=instance, resources=resources)
    assert result.success
    meta = instance.get_latest_materialization_event(dg.AssetKey("grid_snapshots")).asset_materialization.metadata
    following = (DAY + dt.timedelta(days=1)).isoformat()
    assert dg.materialize(list(defs.assets), selection=chain, partition_key=following, instance=instance, resources=resources).success
    assert meta["snapshots"].value == 48 and meta["unbalanced_periods"].value == 0 and "map" in meta
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "power_balance"]
    assert evaluation.passed
    assert SnapshotStore(data_dir / "hdf5").days("gb29") == [DAY, DAY + dt.timedelta(days=1)]

    # The limits are measured on the training window (fit and threshold): here the two stored days.
    windows = {"fit_start": DAY.isoformat(), "fit_end": DAY.isoformat(), "threshold_start": following, "threshold_end": following,
               "held_out_start": "2018-12-01", "held_out_end": "2018-12-31"}
    assert dg.materialize(list(defs.assets), selection=["branch_limits"], instance=instance, resources=resources,
                          run_config={"ops": {"branch_limits": {"config": windows}}}).success
    limits = instance.get_latest_materialization_event(dg.AssetKey("branch_limits")).asset_materialization.metadata
    assert (limits["days"].value, limits["first_day"].value, limits["periods"].value) == (2, DAY.isoformat(), 96)
    assert limits["limits_from_history"].value + limits["limits_at_rating"].value == 99 and limits["max_loading"].value > 0
    stored = load_branch_limits(data_dir / "grid" / "branch_limits_gb29.json", reduced_network())
    assert int(stored.from_history.sum()) == limits["limits_from_history"].value


@pytest.mark.integration
def test_no_snapshot_from_a_partition_that_failed_validation(replay: ReplayServer, data_dir: Path, instance: dg.DagsterInstance) -> None:
    day = dt.date(2018, 12, 31)
    # Conflicting copies of a FUELHH row: the day fails its check and is never stored.
    replay.add_fault(Fault("/datasets/FUELHH", transform=lambda rows: rows + [dict(rows[0], generation=rows[0]["generation"] + 1)], times=10))
    resources = replay_resources(replay.base_url, data_dir)
    chain = dg.AssetSelection.assets("grid_snapshots").upstream() - dg.AssetSelection.assets("grid_topology")
    result = dg.materialize(
        list(defs.assets), selection=chain, partition_key=day.isoformat(), instance=instance, resources=resources, raise_on_error=False
    )
    assert not result.success
    alone = dg.materialize(
        list(defs.assets), selection=["grid_snapshots"], partition_key=day.isoformat(), instance=instance, resources=resources, raise_on_error=False
    )
    assert not alone.success
    message = " ".join(str(e.step_failure_data.error) for e in alone.all_events if e.is_step_failure)
    assert "FUELHH for 2018-12-31 is not in the store" in message
    assert SnapshotStore(data_dir / "hdf5").days("gb29") == []
    # Nothing stored: branch_limits has no window to measure on and says what to backfill.
    limits = dg.materialize(list(defs.assets), selection=["branch_limits"], instance=instance, resources=resources, raise_on_error=False)
    assert not limits.success
    failure = next(e for e in limits.all_events if e.is_step_failure).step_failure_data.user_failure_data
    assert "no stored days: backfill the daily stores first" in failure.description and "fuelhh_store" in failure.description
