"""The BMRS chains run through a real Dagster instance against the replay server over HTTP."""

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from grid_guardian_assets.datasets import DATASETS, FUELHH
from grid_guardian_assets.definitions import defs
from grid_guardian_assets.replay.server import Fault, ReplayServer
from grid_guardian_assets.store.hdf5 import HDF5Store
from grid_guardian_assets.store.raw_archive import RawArchive
from grid_guardian_tests.conftest import materialize_chain, replay_resources

pytestmark = pytest.mark.integration  # Dagster instance runs against a replay server

DAY = dt.date(2018, 3, 1)


def check_evaluation(instance: dg.DagsterInstance, dataset: str) -> dg.AssetCheckEvaluation:
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(f"{dataset}_frames"), "valid"), limit=1
    )
    assert records, f"no check evaluation recorded for {dataset}_frames"
    return records[0].event.dagster_event.event_specific_data


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    return " ".join(e.message or "" for e in result.all_events if e.is_step_failure) + " ".join(
        str(e.step_failure_data.error) for e in result.all_events if e.is_step_failure
    )


def test_definitions_load_with_a_chain_and_a_blocking_check_per_dataset() -> None:
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    for name in DATASETS:
        assert {f"{name}_raw", f"{name}_frames", f"{name}_store"} <= keys
        frames = defs.get_assets_def(f"{name}_frames")
        (spec,) = [s for s in frames.check_specs if s.asset_key == dg.AssetKey(f"{name}_frames")]
        assert spec.blocking and spec.name == "valid"
        # Recorded per settlement day, not per asset.
        assert spec.partitions_def == frames.partitions_def
        assert dg.AssetKey(f"{name}_raw") in repo.asset_graph.get(dg.AssetKey(f"{name}_frames")).parent_keys
        raw = defs.get_assets_def(f"{name}_raw")
        assert raw.partitions_def.timezone == "Europe/London"
        assert raw.op.pool == "elexon_api"
        # A range of days is one run (the CLI's --partition-range and the UI's backfills).
        assert raw.backfill_policy == dg.BackfillPolicy.single_run()


@pytest.mark.parametrize("schedule, partition", [("bmrs_lag1_daily", "2018-03-31"), ("bmrs_lag6_daily", "2018-03-26")])
def test_daily_schedules_ask_for_the_published_settlement_day(schedule: str, partition: str) -> None:
    repo = defs.get_repository_def()
    sched = repo.get_schedule_def(schedule)
    when = dt.datetime(2018, 4, 1, 6, 30, tzinfo=dt.UTC)
    with dg.build_schedule_context(scheduled_execution_time=when, repository_def=repo) as context:
        (request,) = sched.evaluate_tick(context).run_requests
    assert request.partition_key == partition


def test_the_daily_job_builds_snapshots_after_their_inputs() -> None:
    selected = {k.to_user_string() for k in defs.get_job_def("bmrs_lag1_job").asset_layer.selected_asset_keys}
    assert {"fuelhh_store", "indo_store", "freq_store", "grid_snapshots"} <= selected
    assert "b1610_store" not in selected and "grid_topology" not in selected


def test_fuelhh_chain_stores_the_real_day(replay: ReplayServer, data_dir: Path, instance: dg.DagsterInstance) -> None:
    result = materialize_chain("fuelhh", DAY, base_url=replay.base_url, data_dir=data_dir, instance=instance)
    assert result.success
    evaluation = check_evaluation(instance, "fuelhh")
    assert evaluation.passed and evaluation.metadata["partition"].value == "2018-03-01"
    stored = HDF5Store(data_dir / "hdf5").read_range(FUELHH, DAY, DAY)
    assert stored.height == 48 * 14
    assert stored.filter((pl.col("fuelType") == "PS") & (pl.col("generation") < 0)).height > 0  # pumping, signed as served
    store_mat = instance.get_latest_materialization_event(dg.AssetKey("fuelhh_store")).asset_materialization
    meta = store_mat.metadata
    assert meta["rows"].value == 672 and "plot" in meta and meta["file_bytes"].value > 0
    frames_meta = instance.get_latest_materialization_event(dg.AssetKey("fuelhh_frames")).asset_materialization.metadata
    assert frames_meta["synthetic"].value is False and "preview" in frames_meta


@pytest.mark.parametrize("day, periods, gaps", [
    (dt.date(2018, 3, 25), 46, {"fuelhh": [46], "indo": [46], "itsdo": [46], "b1610": [46], "pn": [46]}),
    (dt.date(2018, 10, 28), 50, {"fuelhh": [48], "indo": [50], "itsdo": [50], "b1610": [48], "pn": [48]}),
])
def test_every_dataset_on_clock_change_days(replay: ReplayServer, data_dir: Path, instance: dg.DagsterInstance, day, periods,
                                           gaps: dict[str, list[int]]) -> None:
    """Every dataset of 2018's clock-change days is stored; the periods the files never held (the spring day's 46th,
    the autumn day's 48th FUELHH and 50th demand, and the synthetic B1610 and PN built on FUELHH) are confirmed by a
    second fetch and recorded as the day's gap, which the ``complete`` check reports."""
    result = dg.materialize(
        list(defs.assets),
        selection=dg.AssetSelection.groups(*[f"bmrs_{n}" for n in DATASETS]),
        partition_key=day.isoformat(),
        instance=instance,
        resources=replay_resources(replay.base_url, data_dir),
    )
    assert result.success
    store = HDF5Store(data_dir / "hdf5")
    for spec in DATASETS.values():
        frame = store.read_range(spec, day, day)
        assert frame.height > 0, spec.code
        if "settlementPeriod" in frame.columns:
            present = set(frame["settlementPeriod"].to_list())
            assert sorted(set(range(1, periods + 1)) - present) == gaps.get(spec.name, []), spec.code
        recorded = store.recorded_gaps(spec, day, day)
        assert sorted({p for _, p in recorded.get(day, ())}) == gaps.get(spec.name, []), spec.code
        complete = [e for e in instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey(f"{spec.name}_store"), "complete")]).values()]
        assert complete and (complete[0].event.asset_check_evaluation.passed is (spec.name not in gaps)), spec.code


def test_rematerialising_a_day_leaves_no_duplicates(replay: ReplayServer, data_dir: Path, instance: dg.DagsterInstance) -> None:
    for _ in range(2):
        assert materialize_chain("fuelhh", DAY, base_url=replay.base_url, data_dir=data_dir, instance=instance).success
    assert HDF5Store(data_dir / "hdf5").read_range(FUELHH, DAY, DAY).height == 672
    assert len(RawArchive(data_dir / "raw").fetches("FUELHH", DAY)) == 2  # both fetches kept


def _store_good_day(replay: ReplayServer, data_dir: Path, instance: dg.DagsterInstance) -> str:
    assert materialize_chain("fuelhh", DAY, base_url=replay.base_url, data_dir=data_dir, instance=instance).success
    return HDF5Store(data_dir / "hdf5").partition_info(FUELHH, DAY)["sha256"]


def _duplicate_conflict(rows: list[dict]) -> list[dict]:
    return rows + [dict(rows[0], generation=rows[0]["generation"] + 1)]


def _drop_period_7(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["settlementPeriod"] != 7]


def _rename_generation(rows: list[dict]) -> list[dict]:
    return [{("quantity" if k == "generation" else k): v for k, v in r.items()} for r in rows]


@pytest.mark.parametrize(
    "transform, check, reason",
    [
        (_duplicate_conflict, "conflicting_duplicates", "share the key"),
        (_drop_period_7, "completeness", "settlement periods missing for fuelType=BIOMASS: 7"),
        (_rename_generation, "schema_drift", "field 'generation' is missing"),
        (lambda rows: [], "completeness", "no FUELHH rows for settlement day 2018-03-01"),
    ],
    ids=["conflicting-duplicates", "missing-period", "renamed-field", "empty-day"],
)
def test_a_bad_partition_fails_its_check_and_never_reaches_the_store(
    replay: ReplayServer, data_dir: Path, instance: dg.DagsterInstance, transform, check: str, reason: str
) -> None:
    """A truncated response (missing periods, an empty day) is fetched again to confirm the gap; the second fetch is
    whole, so nothing is confirmed and the truncated day is refused (and archived, both fetches)."""
    before = _store_good_day(replay, data_dir, instance)
    replay.add_fault(Fault("/datasets/FUELHH", transform=transform))
    result = materialize_chain("fuelhh", DAY, base_url=replay.base_url, data_dir=data_dir, instance=instance)
    assert not result.success
    evaluation = check_evaluation(instance, "fuelhh")
    assert not evaluation.passed
    assert check in evaluation.metadata["failures_by_check"].value
    assert reason in evaluation.metadata["failing_rows"].value
    assert f"{check}:" in failure_message(result)  # the run failure names the failed check
    assert not any(e.asset_key == dg.AssetKey("fuelhh_store") for e in result.get_asset_materialization_events())
    assert HDF5Store(data_dir / "hdf5").partition_info(FUELHH, DAY)["sha256"] == before
    # The bad fetch is archived for inspection, beside the good one (and the second fetch that did not confirm it).
    assert len(RawArchive(data_dir / "raw").fetches("FUELHH", DAY)) == (3 if check == "completeness" else 2)


def test_a_day_elexon_never_completed_is_stored_with_its_gap_and_read_back(replay: ReplayServer, data_dir: Path,
                                                                         instance: dg.DagsterInstance) -> None:
    """2018-01-23 (``known_gaps.csv``: 44 of 48) lacks FUELHH periods 21, 23, 25 and 26 for good: a second fetch
    returns the same, so the day is stored with its gap, which the frame's and store's metadata name and the
    non-blocking ``complete`` check reports; the store reads the gap back."""
    day = dt.date(2018, 1, 23)
    requests_before = len(replay.requests)
    result = materialize_chain("fuelhh", day, base_url=replay.base_url, data_dir=data_dir, instance=instance)
    assert result.success
    assert len(replay.requests) - requests_before == 2  # the fetch and the one that confirmed its gap
    store = HDF5Store(data_dir / "hdf5")
    stored = store.read_range(FUELHH, day, day)
    assert stored["settlementPeriod"].n_unique() == 44 and stored.height == 44 * 14
    missing = store.recorded_gaps(FUELHH, day, day)[day]
    assert {p for _, p in missing} == {21, 23, 25, 26} and len(missing) == 4 * 14
    assert check_evaluation(instance, "fuelhh").passed  # valid: the gap is confirmed, not a failure
    meta = instance.get_latest_materialization_event(dg.AssetKey("fuelhh_store")).asset_materialization.metadata
    assert meta["missing_cells"].value == 56 and meta["missing_periods"].value["CCGT"] == "21, 23, 25-26"
    (complete,) = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("fuelhh_store"), "complete")]).values()
    evaluation = complete.event.asset_check_evaluation
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN and evaluation.partition == "2018-01-23"


def test_exact_duplicate_rows_are_stored_once_with_the_count(replay: ReplayServer, data_dir: Path, instance: dg.DagsterInstance) -> None:
    replay.add_fault(Fault("/datasets/FUELHH", transform=lambda rows: rows + rows[:30]))
    assert materialize_chain("fuelhh", DAY, base_url=replay.base_url, data_dir=data_dir, instance=instance).success
    evaluation = check_evaluation(instance, "fuelhh")
    assert evaluation.passed and evaluation.metadata["exact_duplicates_dropped"].value == 30
    assert HDF5Store(data_dir / "hdf5").read_range(FUELHH, DAY, DAY).height == 672


def test_429_then_success_through_dagster(replay: ReplayServer, data_dir: Path, instance: dg.DagsterInstance) -> None:
    replay.add_fault(Fault("/datasets/FUELHH", status=429, retry_after=0.2))
    assert materialize_chain("fuelhh", DAY, base_url=replay.base_url, data_dir=data_dir, instance=instance).success
    assert len(replay.requests) == 2


def test_repeated_500_fails_the_run_clearly_and_keeps_the_store(replay: ReplayServer, data_dir: Path, instance: dg.DagsterInstance) -> None:
    before = _store_good_day(replay, data_dir, instance)
    replay.add_fault(Fault("/datasets/FUELHH", status=500, times=50))
    result = materialize_chain("fuelhh", DAY, base_url=replay.base_url, data_dir=data_dir, instance=instance)
    assert not result.success
    message = failure_message(result)
    assert "FUELHH partition 2018-03-01" in message and "HTTP 500" in message and "/datasets/FUELHH?" in message
    assert HDF5Store(data_dir / "hdf5").partition_info(FUELHH, DAY)["sha256"] == before


def test_malformed_json_fails_the_frames_step_and_keeps_the_raw_body(replay: ReplayServer, data_dir: Path, instance: dg.DagsterInstance) -> None:
    replay.add_fault(Fault("/datasets/FUELHH", body="<html>gateway error</html>"))
    result = materialize_chain("fuelhh", DAY, base_url=replay.base_url, data_dir=data_dir, instance=instance)
    assert not result.success
    assert "malformed JSON" in failure_message(result)
    raw = RawArchive(data_dir / "raw").latest("FUELHH", DAY)
    assert raw.responses[0].body == "<html>gateway error</html>"
    assert HDF5Store(data_dir / "hdf5").days(FUELHH) == []


def test_a_bad_partition_revalidated_from_the_archive_without_fetching(replay: ReplayServer, data_dir: Path, instance: dg.DagsterInstance) -> None:
    assert materialize_chain("fuelhh", DAY, base_url=replay.base_url, data_dir=data_dir, instance=instance).success
    n = len(replay.requests)
    result = dg.materialize(
        list(defs.assets),
        selection=dg.AssetSelection.assets("fuelhh_frames", "fuelhh_store"),
        partition_key=DAY.isoformat(),
        instance=instance,
        resources=replay_resources(replay.base_url, data_dir),
    )
    assert result.success and len(replay.requests) == n
    assert pl.read_parquet(next((data_dir / "frames" / "fuelhh_frames").glob("*.parquet"))).height == 672
