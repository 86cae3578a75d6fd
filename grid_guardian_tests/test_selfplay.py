"""Self-play: the reward, the physics environment, reproducible rounds, the promotion gate, the Dagster assets."""

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
import torch

from grid_guardian_assets.data_layout import DataLayout
from grid_guardian_assets.definitions import defs
from grid_guardian_assets.defs.resources import resources_for
from grid_guardian_assets.grid.branch_limits import LoadingHistory, load_branch_limits
from grid_guardian_assets.grid.network import reduced_network
from grid_guardian_assets.replay.grid import bundled_snapshot_days
from grid_guardian_assets.selfplay.environment import PhysicsVerifier, installed_capacity
from grid_guardian_assets.selfplay.proposer import ProposerPolicy, buffer_context, learnability_reward, reinforce_step
from grid_guardian_assets.selfplay.round_config import RoundConfig
from grid_guardian_assets.selfplay.rounds import run_round
from grid_guardian_assets.selfplay.scenarios import GEN, Scenario
from grid_guardian_assets.store.snapshot_store import SnapshotStore
from grid_guardian_assets.verifier.anomalies import ANOMALY_TYPES, build_benchmark
from grid_guardian_assets.verifier.benchmark_config import HELD_OUT, VALIDATION, BenchmarkSpec
from grid_guardian_assets.verifier.checkpoints import ModelStore
from grid_guardian_assets.verifier.pipeline import contiguous_sequences, save_checkpoint, train_verifier
from grid_guardian_assets.verifier.sequences import sequence_from_days
from grid_guardian_assets.verifier.train_config import TrainConfig

SMALL = RoundConfig(proposals=8, attempts=2, solver_steps=3, seed=7)


@pytest.mark.parametrize(("p", "reward"), [(0.0, 0.0), (1.0, 0.0), (0.5, 0.5), (0.25, 0.75), (2 / 3, 1 / 3)])
def test_learnability_reward(p: float, reward: float) -> None:
    assert learnability_reward(p) == pytest.approx(reward)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Stored snapshots (March 2018), a promoted checkpoint trained on them, small frozen benchmarks of both splits
    (validation: September, held-out: October), each with its pointer as ``anomaly_benchmark`` writes it."""
    network = reduced_network()
    root = tmp_path_factory.mktemp("selfplay")
    layout = DataLayout(root / "data")
    days = bundled_snapshot_days(network, dt.date(2018, 3, 1), dt.date(2018, 3, 14))
    held = bundled_snapshot_days(network, dt.date(2018, 10, 1), dt.date(2018, 10, 6))
    tuning = bundled_snapshot_days(network, dt.date(2018, 9, 1), dt.date(2018, 9, 4))
    store = SnapshotStore(root / "data" / "hdf5")
    for day in days:
        store.write_day(day)
    trained = train_verifier(network, days, TrainConfig(epochs=2, hidden_channels=16, seed=1), calibration_days=4,
                             device=torch.device("cpu"))
    benchmarks = {}
    for split, split_days in ((HELD_OUT, held), (VALIDATION, tuning)):
        benchmark = build_benchmark(contiguous_sequences(split_days), network, BenchmarkSpec(cases_per_type=2, clean_days=2))
        path = benchmark.save(layout.benchmarks)
        layout.benchmark_pointer(network.name, split).write_text(json.dumps({"version": benchmark.version, "path": str(path)}))
        benchmarks[split] = benchmark
    benchmark = benchmarks[HELD_OUT]
    models = ModelStore(root / "data" / "models")
    first = save_checkpoint(models, trained, network, {}, benchmark.version).version
    models.promote(first)
    limits = LoadingHistory.of(days, network.n_branches).limits()  # as the branch_limits asset measures them
    windows = [s.slice(i, i + 48) for s in contiguous_sequences(days[:-4]) for i in range(0, len(s) - 47, 48)]
    return {"network": network, "root": root, "layout": layout, "days": days, "validation": benchmarks[VALIDATION],
            "held_out": benchmarks[HELD_OUT], "models": models, "first": first,
            "limits": limits, "windows": windows, "calibration": contiguous_sequences(days[-4:])}


@pytest.mark.integration
def test_environment_rejects_the_impossible_and_accepts_a_real_looking_trip(world) -> None:
    network = world["network"]
    verifier = PhysicsVerifier(network, world["limits"])
    window = sequence_from_days(world["days"][:1])
    capacity = installed_capacity(network)
    start = 20
    running = window.node[start][:, GEN].max(axis=1)
    small = int(np.argmin(np.where((capacity.sum(axis=1) <= 1500) & (running >= 100), running, np.inf)))
    assert capacity[small].sum() <= 1500
    verdict, _ = verifier.verify(window, Scenario("unit_trip", small, start, 2, 10_000.0))
    assert not verdict.accepted and verdict.reason == "capacity" and "10000 MW" in verdict.detail

    big = int(np.argmax(running))
    assert running[big] >= 800
    verdict, after = verifier.verify(window, Scenario("unit_trip", big, start, 2, 400.0))
    assert verdict.accepted, verdict
    assert after.frequency[start] < window.frequency[start]  # the swing response to the loss

    too_big = Scenario("unit_trip", big, start, 2, min(float(running[big]), 2500.0))
    if too_big.magnitude > 1800:
        verdict, _ = verifier.verify(window, too_big)
        assert not verdict.accepted and verdict.reason == "frequency"
    verdict, _ = verifier.verify(window, Scenario("demand_shift", big, start, 2, 5.0))  # demand × 6: no balance
    assert not verdict.accepted and verdict.reason in ("balance", "line_limits")
    verdict, _ = verifier.verify(window, Scenario("missing_period", -1, 0, 1, 0.0))
    assert not verdict.accepted and verdict.reason == "shape"


def test_reinforce_moves_mass_toward_rewarded_types() -> None:
    policy = ProposerPolicy(num_buses=5)
    optimiser = torch.optim.Adam(policy.parameters(), lr=0.5)
    context = buffer_context([], [])
    generator = torch.Generator().manual_seed(0)
    before = policy.type_probabilities()[ANOMALY_TYPES.index("stuck_sensor")]
    for _ in range(5):
        actions = torch.stack([policy.sample(context, generator) for _ in range(32)])
        rewards = (actions[:, 0] == ANOMALY_TYPES.index("stuck_sensor")).float() * 0.5
        reinforce_step(policy, optimiser, context.expand(32, -1), actions, rewards, 0.0)
    assert policy.type_probabilities()[ANOMALY_TYPES.index("stuck_sensor")] > before + 0.2


def _round(world, root: Path, config: RoundConfig, number: int = 1, models: ModelStore | None = None):
    return run_round(number, config, root=root, windows=world["windows"], calibration_sequences=world["calibration"],
                     validation=world["validation"], held_out=world["held_out"], network=world["network"], limits=world["limits"],
                     models=models or world["models"])


@pytest.mark.integration
def test_a_round_is_reproducible_from_its_seed(world, tmp_path: Path) -> None:
    models = ModelStore(tmp_path / "models")
    checkpoint = world["models"].load(world["first"])
    models.promote(models.save(checkpoint.tensors, {k: v for k, v in checkpoint.meta.items() if k not in ("version", "sha256")}).version)
    one = _round(world, tmp_path / "a", SMALL, models=models)
    models.promote(models.versions()[0])
    two = _round(world, tmp_path / "b", SMALL, models=models)
    assert one.proposals.equals(two.proposals)
    assert {k: v for k, v in one.metrics.items()} == {k: v for k, v in two.metrics.items()}
    other = _round(world, tmp_path / "c", RoundConfig(**{**vars(SMALL), "seed": 8}), models=models)
    assert not other.proposals.equals(one.proposals)


@pytest.mark.integration
def test_a_regressing_solver_is_not_promoted(world, tmp_path: Path, monkeypatch) -> None:
    from grid_guardian_assets.selfplay.solver import Solver
    from grid_guardian_assets.verifier.scoring import Calibration

    models = ModelStore(tmp_path / "models")
    checkpoint = world["models"].load(world["first"])
    version = models.save(checkpoint.tensors, {k: v for k, v in checkpoint.meta.items() if k not in ("version", "sha256")}).version
    models.promote(version)
    fine_tuned = Solver.fine_tuned

    def deafened(self, *args, **kwargs):  # a real fine-tune, then thresholds no score reaches: it never alarms
        tuned = fine_tuned(self, *args, **kwargs)
        return Solver(tuned.detector, Calibration(1e12, 1e12, tuned.calibration.false_alarm_rate), tuned.centroids)

    monkeypatch.setattr(Solver, "fine_tuned", deafened)
    result = _round(world, tmp_path / "r", SMALL, models=models)
    assert result.metrics["f1_validation_candidate"] == 0.0 < result.metrics["f1_validation_before"]
    assert not result.promoted and models.promoted() == version and result.solver_version == version
    assert result.metrics["f1_validation_carried"] == result.metrics["f1_validation_before"]
    assert models.versions() == [version]  # no checkpoint saved for a regressed solver


def _store_with_the_promoted_checkpoint(world, root: Path) -> ModelStore:
    """A model store of its own holding a copy of the world's checkpoint, promoted: a round may promote over it."""
    models = ModelStore(root)
    checkpoint = world["models"].load(world["first"])
    models.promote(models.save(checkpoint.tensors, {k: v for k, v in checkpoint.meta.items() if k not in ("version", "sha256")}).version)
    return models


@pytest.mark.integration
def test_promotion_is_decided_on_validation_and_held_out_is_only_reported(world, tmp_path: Path, monkeypatch) -> None:
    from grid_guardian_assets.selfplay import rounds

    scored_on = []
    evaluate = rounds.evaluate

    def recording(detector, calibration, benchmark):
        scored_on.append(benchmark.version)
        return evaluate(detector, calibration, benchmark)

    monkeypatch.setattr(rounds, "evaluate", recording)
    models = _store_with_the_promoted_checkpoint(world, tmp_path / "models")
    result = _round(world, tmp_path / "r", SMALL, models=models)
    validation, held_out = world["validation"].version, world["held_out"].version
    assert validation != held_out
    # Current solver, 3-sigma rule, candidate on validation (the decision); then carried solver and 3-sigma on held-out.
    assert scored_on == [validation] * 3 + [held_out] * 2
    assert {"f1_held_out_carried", "f1_held_out_three_sigma"} <= set(result.metrics)
    carried = result.metrics["f1_validation_candidate"] if result.promoted else result.metrics["f1_validation_before"]
    assert result.metrics["f1_validation_carried"] == carried


@pytest.mark.integration
def test_a_candidate_that_beats_the_solver_on_validation_is_saved_promoted_and_reports_both_benchmarks(world, tmp_path: Path,
                                                                                                    monkeypatch) -> None:
    from grid_guardian_assets.selfplay import rounds

    real_f1, scores = rounds._f1, []

    def candidate_wins(detector, calibration, benchmark):  # the real scores, but the candidate's clears both others
        f1, table = real_f1(detector, calibration, benchmark)
        scores.append(max(scores[0], scores[1]) + 0.01 if len(scores) == 2 else f1)
        return scores[-1], table

    monkeypatch.setattr(rounds, "_f1", candidate_wins)
    models = _store_with_the_promoted_checkpoint(world, tmp_path / "models")
    parent = models.promoted()
    result = _round(world, tmp_path / "r", SMALL, models=models)
    assert len(scores) == 5  # solver, 3-sigma, candidate on validation; carried and 3-sigma on held-out
    assert result.promoted and result.solver_version != parent and models.promoted() == result.solver_version
    meta = models.meta(result.solver_version)
    # The new checkpoint reports held-out F1, as gnn_verifier's do, the validation F1 it was chosen on, both benchmarks.
    assert meta["metrics"]["f1_gnn"] == result.metrics["f1_held_out_carried"] == scores[3]
    assert meta["metrics"]["f1_gnn_validation"] == result.metrics["f1_validation_candidate"] == scores[2]
    assert (meta["benchmark_version"], meta["validation_benchmark_version"]) == (world["held_out"].version, world["validation"].version)
    assert meta["parent"] == parent and meta["self_play_round"] == 1


@pytest.mark.integration
def test_a_round_without_the_validation_benchmark_fails_naming_it(world) -> None:
    resources = resources_for("http://127.0.0.1:1", world["root"] / "data")
    pointer = world["layout"].benchmark_pointer(world["network"].name, VALIDATION)
    assert world["layout"].benchmark_pointer(world["network"].name, HELD_OUT).exists()
    aside = pointer.rename(pointer.with_suffix(".aside"))
    try:
        with dg.instance_for_test() as instance:
            result = dg.materialize([*defs.assets], selection=dg.AssetSelection.assets("self_play_round"), partition_key="round-0001",
                                    instance=instance, resources=resources, raise_on_error=False)
    finally:
        aside.rename(pointer)
    assert not result.success
    error = " ".join(str(e.step_failure_data.error) for e in result.all_events if e.is_step_failure)
    assert str(pointer) in error and "anomaly_benchmark with run config split: validation" in error


@pytest.mark.integration
def test_three_rounds_materialise_with_tables_plots_and_a_growing_buffer(world) -> None:
    resources = resources_for("http://127.0.0.1:1", world["root"] / "data")
    config = {"ops": {"self_play_round": {"config": {"proposals": 8, "attempts": 2, "solver_steps": 3, "seed": 3}}}}
    sizes = []
    with dg.instance_for_test() as instance:
        # A round reads the limits the branch_limits asset stored, and refuses to run without them.
        limits_file = world["root"] / "data" / "grid" / "branch_limits_gb29.json"
        limits_file.unlink(missing_ok=True)
        missing = dg.materialize([*defs.assets], selection=dg.AssetSelection.assets("self_play_round"), partition_key="round-0001",
                                 instance=instance, resources=resources, run_config=config, raise_on_error=False)
        assert not missing.success
        assert "materialise the branch_limits asset" in " ".join(str(e.step_failure_data.error) for e in missing.all_events if e.is_step_failure)
        # Measured on the training window (fit and threshold): the world's stored March days.
        windows = {"fit_start": "2018-03-01", "fit_end": "2018-03-10", "threshold_start": "2018-03-11", "threshold_end": "2018-03-14",
                   "held_out_start": "2018-10-01", "held_out_end": "2018-10-06"}
        limits = dg.materialize([*defs.assets], selection=dg.AssetSelection.assets("branch_limits"), instance=instance, resources=resources,
                                run_config={"ops": {"branch_limits": {"config": windows}}})
        assert limits.asset_materializations_for_node("branch_limits")[0].metadata["days"].value == len(world["days"])
        np.testing.assert_array_equal(load_branch_limits(limits_file, world["network"]).limit, world["limits"].limit)
        for key in ("round-0001", "round-0002", "round-0003"):
            result = dg.materialize([*defs.assets], selection=dg.AssetSelection.assets("self_play_round"), partition_key=key,
                                    instance=instance, resources=resources, run_config=config)
            assert result.success
            metadata = result.asset_materializations_for_node("self_play_round")[0].metadata
            assert "| type |" in metadata["by_type"].value and "data:image/png;base64," in metadata["plots"].value
            assert metadata["proposed"].value == 8 and "f1_validation_candidate" in metadata and "f1_held_out_carried" in metadata
            assert metadata["validation_benchmark_version"].value == world["validation"].version
            sizes.append(metadata["buffer_size"].value)
            checks = result.get_asset_check_evaluations()
            assert checks and checks[0].metadata["partition"].value == key
        assert sizes[0] <= sizes[1] <= sizes[2] and sizes[2] > 0
        history = json.loads((world["root"] / "data" / "selfplay" / "round-0003" / "round.json").read_text())["history"]
        assert [h["round"] for h in history] == [1, 2, 3]
        buffer = dg.materialize([*defs.assets], selection=dg.AssetSelection.assets("scenario_buffer"), instance=instance, resources=resources)
        assert buffer.asset_materializations_for_node("scenario_buffer")[0].metadata["scenarios"].value == sizes[2]
        # A round whose predecessor was never materialised says so.
        skipped = dg.materialize([*defs.assets], selection=dg.AssetSelection.assets("self_play_round"), partition_key="round-0009",
                                 instance=instance, resources=resources, run_config=config, raise_on_error=False)
        assert not skipped.success
    buffer_frame = pl.read_parquet(world["root"] / "data" / "selfplay" / "buffer.parquet")
    assert set(buffer_frame["round"].unique().to_list()) <= {1, 2, 3}
