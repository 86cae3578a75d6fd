"""A step's own events logged as one batch (``defs/event_batches.py``): they land as if yielded one by one."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqliteEventLogStorage

from grid_guardian_assets.defs.event_batches import batched_events
from grid_guardian_assets.defs.instance_storage import PooledSqliteEventLogStorage

DAYS = dg.DailyPartitionsDefinition(start_date="2018-01-01", end_date="2018-02-01")
DAY_KEYS = ["2018-01-02", "2018-01-03", "2018-01-04"]


def _days_asset(failing_day: str | None = None) -> dg.AssetsDefinition:
    @dg.multi_asset(
        specs=[dg.AssetSpec("days", skippable=True)],
        check_specs=[dg.AssetCheckSpec("valid", asset="days", blocking=True, partitions_def=DAYS)],
        partitions_def=DAYS,
        can_subset=True,  # as settlement_days: its outputs are optional, the step records days itself
    )
    def days(context: dg.AssetExecutionContext) -> Iterator[object]:
        events: list[object] = []
        for key in DAY_KEYS:
            passed = key != failing_day
            events.append(dg.AssetCheckEvaluation(asset_key=dg.AssetKey("days"), check_name="valid", passed=passed,
                                                  partition=key, blocking=True, severity=dg.AssetCheckSeverity.ERROR))
            if passed:
                events.append(dg.AssetMaterialization("days", partition=key, metadata={"day": key}))
        yield from batched_events(context, events)

    return days


def _verdicts(instance: dg.DagsterInstance) -> dict[str, bool]:
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("days"), "valid"), limit=10,
        status={AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED},
    )
    return {r.partition: r.status == AssetCheckExecutionRecordStatus.SUCCEEDED for r in records}


def test_a_batch_of_a_steps_events_lands_as_if_yielded_in_one_write(project_instance: dg.DagsterInstance,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[int] = []
    original = PooledSqliteEventLogStorage.store_event_batch

    def counting(self, events) -> None:
        batches.append(len(events))
        original(self, events)

    monkeypatch.setattr(PooledSqliteEventLogStorage, "store_event_batch", counting)
    result = dg.materialize([_days_asset()], partition_key="2018-01-02", instance=project_instance)
    assert result.success
    assert project_instance.get_materialized_partitions(dg.AssetKey("days")) == set(DAY_KEYS)
    assert _verdicts(project_instance) == dict.fromkeys(DAY_KEYS, True)
    latest = project_instance.get_latest_materialization_event(dg.AssetKey("days"))
    assert latest.asset_materialization.metadata["day"].value == DAY_KEYS[-1]
    assert 6 in batches  # the step's three check results and three materialisations: one write
    # Dagster's own storage reads them (same files, same rows).
    plain = SqliteEventLogStorage(str(Path(project_instance.root_directory) / "history" / "runs"))
    assert {r.partition_key for r in plain.fetch_materializations(dg.AssetKey("days"), limit=10).records} == set(DAY_KEYS)


def test_a_failing_blocking_check_still_fails_the_step_and_the_good_days_land(project_instance: dg.DagsterInstance) -> None:
    result = dg.materialize([_days_asset(failing_day="2018-01-03")], partition_key="2018-01-02",
                            instance=project_instance, raise_on_error=False)
    assert not result.success  # the failing blocking check reached the executor as a check result
    assert project_instance.get_materialized_partitions(dg.AssetKey("days")) == {"2018-01-02", "2018-01-04"}
    assert _verdicts(project_instance) == {"2018-01-02": True, "2018-01-03": False, "2018-01-04": True}
