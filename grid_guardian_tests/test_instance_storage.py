"""The local instance's event log (``defs/instance_storage.py``): Dagster's SQLite files, connections kept open."""

import os
import sqlite3
import threading
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.storage.event_log import SqliteEventLogStorage

from grid_guardian_assets.defs.instance_storage import (
    EVENT_BATCH_SIZE,
    MAX_OPEN_RUN_DATABASES,
    PooledSqliteEventLogStorage,
    settings_for_home,
)

REPO = Path(__file__).resolve().parents[1]


def _materialise(instance: dg.DagsterInstance, partitions: range) -> None:
    for i in partitions:
        instance.report_runless_asset_event(dg.AssetMaterialization("fuelhh_store", partition=f"2018-01-{i:02d}"))


def test_the_project_instance_records_events_through_the_pooled_storage(project_instance: dg.DagsterInstance) -> None:
    assert isinstance(project_instance.event_log_storage, PooledSqliteEventLogStorage)
    _materialise(project_instance, range(1, 6))
    assert project_instance.get_materialized_partitions(dg.AssetKey("fuelhh_store")) == {f"2018-01-0{i}" for i in range(1, 6)}


def test_dagsters_own_storage_reads_what_the_pooled_one_wrote(project_instance: dg.DagsterInstance, tmp_path: Path) -> None:
    _materialise(project_instance, range(1, 4))
    plain = SqliteEventLogStorage(str(tmp_path / "history" / "runs"))
    records = plain.fetch_materializations(dg.AssetKey("fuelhh_store"), limit=10).records
    assert sorted(r.partition_key for r in records) == ["2018-01-01", "2018-01-02", "2018-01-03"]


def test_each_write_reaches_the_runs_database_file_not_only_the_write_ahead_log(tmp_path: Path) -> None:
    """Dagster's run watchers (the webserver's live run logs) watch the run's ``.db`` file: every write must land
    there, as it did when Dagster closed its connection (and so checkpointed the log) after each one."""
    storage = PooledSqliteEventLogStorage(str(tmp_path))
    run_id = "0123456789abcdef0123456789abcdef"
    try:
        for i in range(7):
            storage.store_event(dg.EventLogEntry(error_info=None, level="INFO", user_message=f"event {i}", run_id=run_id,
                                                 timestamp=float(i)))
        # immutable=1 reads the .db file alone, ignoring the write-ahead log.
        with sqlite3.connect(f"file:{tmp_path / run_id}.db?immutable=1", uri=True) as conn:
            assert conn.execute("SELECT COUNT(*) FROM event_logs").fetchone()[0] == 7
    finally:
        storage.dispose()


def test_a_run_watcher_sees_events_as_they_are_stored(tmp_path: Path) -> None:
    """The webserver's live run log: Dagster's watchdog on the run's ``.db`` file fires on each new event."""
    storage = PooledSqliteEventLogStorage(str(tmp_path))
    seen: list[str] = []
    arrived = threading.Event()

    def on_event(entry, _cursor) -> None:
        seen.append(entry.user_message)
        arrived.set()

    run_id = "0123456789abcdef0123456789abcdef"
    storage.store_event(dg.EventLogEntry(error_info=None, level="INFO", user_message="first", run_id=run_id,
                                         timestamp=1.0))
    storage.watch(run_id, None, on_event)
    try:
        storage.store_event(dg.EventLogEntry(error_info=None, level="INFO", user_message="second", run_id=run_id,
                                             timestamp=2.0))
        assert arrived.wait(10), "the watcher never fired: the run's .db file did not change"
        assert "second" in seen
    finally:
        storage.end_watch(run_id, on_event)
        storage.dispose()


def test_without_dagster_home_or_base_dir_the_storage_refuses_to_start_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """``dagster dev`` without DAGSTER_HOME hands a temporary instance to every process it starts; each would pick a
    folder of its own and the event log would be scattered: a clear error instead."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(ValueError, match="DAGSTER_HOME is not set"):
        PooledSqliteEventLogStorage()


def test_a_webserver_reading_many_runs_keeps_only_the_newest_run_databases_open(tmp_path: Path) -> None:
    storage = PooledSqliteEventLogStorage(str(tmp_path))
    try:
        runs = [f"{i:032x}" for i in range(MAX_OPEN_RUN_DATABASES + 5)]
        for run_id in runs:
            storage.store_event(dg.EventLogEntry(error_info=None, level="INFO", user_message=run_id, run_id=run_id,
                                                 timestamp=1.0))
        open_runs = [s for s in storage._engines if s != "index"]
        assert open_runs == runs[-MAX_OPEN_RUN_DATABASES:]
        assert [r.user_message for r in storage.get_logs_for_run(runs[0])] == [runs[0]]  # a closed one reopens
    finally:
        storage.dispose()


def test_an_instance_opened_by_folder_keeps_its_event_log_there_whatever_dagster_home_says(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``DagsterInstance.from_config(home)`` (the demo's way) does not tell a configured storage where ``home`` is:
    ``settings_for_home`` writes it into the settings."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir(), elsewhere.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(elsewhere))
    (home / "dagster.yaml").write_text(settings_for_home((REPO / "dagster.yaml").read_text(), home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        _materialise(instance, range(1, 3))
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
    assert (home / "history" / "runs" / "index.db").exists() and not (elsewhere / "history").exists()
    assert yaml.safe_load((home / "dagster.yaml").read_text())["concurrency"] == yaml.safe_load((REPO / "dagster.yaml").read_text())["concurrency"]


def _materialisation_entry(run_id: str, day: int) -> dg.EventLogEntry:
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData

    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        job_name="settlement_days",
        event_specific_data=StepMaterializationData(dg.AssetMaterialization("fuelhh_store", partition=f"2018-01-{day:02d}")),
    )
    return dg.EventLogEntry(error_info=None, level="DEBUG", user_message="", run_id=run_id, timestamp=float(day),
                            dagster_event=event)


def test_a_batch_is_stored_whole_and_reaches_the_runs_database_file(tmp_path: Path) -> None:
    storage = PooledSqliteEventLogStorage(str(tmp_path))
    run_id = "0123456789abcdef0123456789abcdef"
    try:
        storage.store_event_batch([_materialisation_entry(run_id, day) for day in range(1, 11)])
        assert storage.get_materialized_partitions(dg.AssetKey("fuelhh_store")) == {f"2018-01-{d:02d}" for d in range(1, 11)}
        with sqlite3.connect(f"file:{tmp_path / run_id}.db?immutable=1", uri=True) as conn:
            assert conn.execute("SELECT COUNT(*) FROM event_logs").fetchone()[0] == 10
    finally:
        storage.dispose()


def test_a_batch_that_fails_part_way_stores_nothing_and_the_storage_goes_on(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """All or nothing: Dagster stores a failed batch again one event at a time, so a half-stored batch would be
    stored twice."""
    storage = PooledSqliteEventLogStorage(str(tmp_path))
    run_id = "0123456789abcdef0123456789abcdef"
    calls = []
    original = SqliteEventLogStorage.store_event

    def failing_on_the_fourth(self, entry) -> None:
        calls.append(entry)
        if len(calls) == 4:
            raise OSError("disk full")
        original(self, entry)

    try:
        monkeypatch.setattr(SqliteEventLogStorage, "store_event", failing_on_the_fourth)
        with pytest.raises(OSError, match="disk full"):
            storage.store_event_batch([_materialisation_entry(run_id, day) for day in range(1, 6)])
        monkeypatch.undo()
        assert storage.get_materialized_partitions(dg.AssetKey("fuelhh_store")) == set()
        assert storage.get_logs_for_run(run_id) == []
        storage.store_event(_materialisation_entry(run_id, 7))  # the lock was released, the connections returned
        assert storage.get_materialized_partitions(dg.AssetKey("fuelhh_store")) == {"2018-01-07"}
    finally:
        storage.dispose()


def test_the_storage_turns_on_dagsters_event_batches_unless_the_environment_says_otherwise(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    PooledSqliteEventLogStorage(str(tmp_path / "a")).dispose()
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == str(EVENT_BATCH_SIZE)
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")
    PooledSqliteEventLogStorage(str(tmp_path / "b")).dispose()
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "0"


def test_the_schema_is_asked_once_per_table_and_column_not_per_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    original = SqliteEventLogStorage.has_table

    def counting(self, name: str) -> bool:
        asked.append(name)
        return original(self, name)

    monkeypatch.setattr(SqliteEventLogStorage, "has_table", counting)
    storage = PooledSqliteEventLogStorage(str(tmp_path))
    run_id = "0123456789abcdef0123456789abcdef"
    try:
        storage.store_event_batch([_materialisation_entry(run_id, day) for day in range(1, 6)])
        storage.store_event_batch([_materialisation_entry(run_id, day) for day in range(6, 11)])
        assert storage.has_table("asset_check_executions") and storage.has_table("asset_check_executions")
        assert asked.count("asset_check_executions") <= 1
        assert not storage.has_table("no_such_table") and not storage.has_table("no_such_table")
        assert asked.count("no_such_table") == 2  # a "no" is asked again: a migration may add the table
        assert storage.get_materialized_partitions(dg.AssetKey("fuelhh_store")) == {f"2018-01-{d:02d}" for d in range(1, 11)}
    finally:
        storage.dispose()


def _planned_entry(run_id: str, asset: str, day: int) -> dg.EventLogEntry:
    from dagster._core.events import AssetMaterializationPlannedData, DagsterEvent, DagsterEventType

    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value,
        job_name="settlement_days",
        event_specific_data=AssetMaterializationPlannedData(dg.AssetKey(asset), partition=f"2018-01-{day:02d}"),
    )
    return dg.EventLogEntry(error_info=None, level="DEBUG", user_message="", run_id=run_id, timestamp=float(day),
                            dagster_event=event)


def _asset_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT asset_key, last_materialization, last_run_id, last_materialization_timestamp "
                            "FROM asset_keys ORDER BY asset_key").fetchall()


def test_a_batch_leaves_each_assets_index_row_as_dagsters_event_by_event_writes_do(tmp_path: Path) -> None:
    """A batch writes each asset's row once (its latest event of each type), not once per event: the row must come
    out as Dagster's own storage leaves it after storing the same events one by one."""
    first, second = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
    batches = [
        [*(_planned_entry(first, a, d) for d in range(1, 6) for a in ("fuelhh_store", "indo_store")),
         *(_materialisation_entry(first, d) for d in range(1, 4))],
        # a later run: a type seen again after another (planned, materialised, planned), a new asset
        [_planned_entry(second, "fuelhh_store", 8), _materialisation_entry(second, 8), _planned_entry(second, "fuelhh_store", 9),
         _planned_entry(second, "indo_store", 9), _planned_entry(second, "freq_store", 9)],
    ]
    pooled = PooledSqliteEventLogStorage(str(tmp_path / "pooled"))
    dagsters = SqliteEventLogStorage(str(tmp_path / "dagster"))
    try:
        for batch in batches:
            pooled.store_event_batch(batch)
            for entry in batch:
                dagsters.store_event(entry)
        rows = _asset_rows(tmp_path / "pooled" / "index.db")
        assert [r[0] for r in rows] == ['["freq_store"]', '["fuelhh_store"]', '["indo_store"]']
        assert rows == _asset_rows(tmp_path / "dagster" / "index.db")
        assert pooled.get_latest_materialization_events([dg.AssetKey("fuelhh_store")])[dg.AssetKey("fuelhh_store")].timestamp == 8.0
    finally:
        pooled.dispose()
        dagsters.dispose()


def test_the_storage_was_checked_against_the_installed_dagster() -> None:
    """It overrides Dagster's private event-log methods: another Dagster must be checked first (the module docstring
    says what to compare), not found out by a corrupted event log."""
    import dagster

    from grid_guardian_assets.defs.instance_storage import CHECKED_DAGSTER_VERSION

    assert dagster.__version__ == CHECKED_DAGSTER_VERSION, (
        f"dagster {dagster.__version__} is installed, but PooledSqliteEventLogStorage was checked against "
        f"{CHECKED_DAGSTER_VERSION}: compare the private methods it overrides (defs/instance_storage.py) first")
