"""Ranged backfills as a data engineer runs them: the dagster CLI's --partition-range over real HTTP.

One bad settlement day in the middle of a range: the good days are stored and readable, the bad day is not, the
run fails naming it, what was stored before survives, each day's check result is recorded for its partition, and
the printed command reruns just the bad day.
"""

import datetime as dt
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from grid_guardian_assets.datasets import FUELHH
from grid_guardian_assets.defs.daily.assets import rerun_command
from grid_guardian_assets.replay.server import Fault, ReplayServer
from grid_guardian_assets.settlement import days_between
from grid_guardian_assets.store.hdf5 import HDF5Store
from grid_guardian_assets.store.snapshot_store import SnapshotStore
from grid_guardian_tests.conftest import REPO

BIN = Path(sys.executable).parent
BAD_DAY = dt.date(2018, 3, 4)


def _drop_period_7(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["settlementPeriod"] != 7]


def _dagster(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "dagster"), *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


def _materialize(select: str, partition_args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return _dagster(["asset", "materialize", "-m", "grid_guardian_assets.definitions", "--select", select, *partition_args], env)


def _check_history(instance: dg.DagsterInstance, asset: str, check: str) -> dict[str, bool]:
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(asset), check),
        limit=100,
        status={AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED},
    )
    # Newest first: the first record of a partition is its latest verdict.
    verdicts: dict[str, bool] = {}
    for record in records:
        verdicts.setdefault(record.partition, record.status == AssetCheckExecutionRecordStatus.SUCCEEDED)
    return verdicts


@pytest.fixture
def cli_env(replay: ReplayServer, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ELEXON_API_BASE_URL": replay.base_url,
        "GRID_GUARDIAN_DATA_DIR": str(tmp_path / "data"),
        "PYTHONWARNINGS": "ignore",
    }


@pytest.mark.integration
def test_a_bad_day_in_a_range_is_left_out_named_and_rerun_alone(
    replay: ReplayServer, cli_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    store = HDF5Store(data / "hdf5")
    # A day of the same month stored before the backfill: the range's month rewrite must keep it.
    before = _materialize("*fuelhh_store", ["--partition", "2018-03-01"], cli_env)
    assert before.returncode == 0, before.stderr[-3000:]
    kept = store.partition_info(FUELHH, dt.date(2018, 3, 1))["sha256"]

    replay.add_fault(Fault("/datasets/FUELHH", transform=_drop_period_7, query_contains=f"settlementDateFrom={BAD_DAY}&"))
    ranged = _materialize("*grid_snapshots", ["--partition-range", "2018-03-02...2018-03-06"], cli_env)
    assert ranged.returncode != 0
    assert "1 of 5 settlement days failed" in ranged.stderr
    assert f"{BAD_DAY}: FUELHH: FUELHH {BAD_DAY}" in ranged.stderr and "settlement periods missing" in ranged.stderr

    good = [d for d in days_between(dt.date(2018, 3, 2), dt.date(2018, 3, 6)) if d != BAD_DAY]
    assert store.days(FUELHH) == sorted([dt.date(2018, 3, 1), *good])
    assert store.partition_info(FUELHH, dt.date(2018, 3, 1))["sha256"] == kept
    assert store.read_range(FUELHH, good[0], good[-1])["settlementDate"].unique().sort().to_list() == good
    assert SnapshotStore(data / "hdf5").days("gb29") == good

    monkeypatch.setenv("DAGSTER_HOME", cli_env["DAGSTER_HOME"])
    instance = dg.DagsterInstance.get()  # the instance the CLI runs recorded into
    materialized = instance.get_materialized_partitions(dg.AssetKey("fuelhh_store"))
    assert materialized == {"2018-03-01", *(d.isoformat() for d in good)}
    assert instance.get_materialized_partitions(dg.AssetKey("grid_snapshots")) == {d.isoformat() for d in good}
    valid = _check_history(instance, "fuelhh_frames", "valid")
    assert valid[BAD_DAY.isoformat()] is False and all(valid[d.isoformat()] for d in good)
    balance = _check_history(instance, "grid_snapshots", "power_balance")
    assert set(balance) == {d.isoformat() for d in good}

    # The printed command reruns just the bad day (the fault is spent: the API answers properly now).
    match = re.search(r"Rerun just these days:\n(dagster asset materialize [^\n]+)", ranged.stderr)
    assert match, ranged.stderr[-3000:]
    args = shlex.split(match.group(1))
    assert args[args.index("--partition-range") + 1] == f"{BAD_DAY}...{BAD_DAY}"
    rerun = _dagster(args[1:], cli_env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert BAD_DAY in store.days(FUELHH) and BAD_DAY in SnapshotStore(data / "hdf5").days("gb29")
    assert _check_history(instance, "fuelhh_frames", "valid")[BAD_DAY.isoformat()] is True


@pytest.mark.parametrize(
    "bad, expected",
    [
        ([dt.date(2018, 3, 4)], "--partition-range 2018-03-04...2018-03-04"),
        ([dt.date(2018, 3, 5), dt.date(2018, 3, 4)], "--partition-range 2018-03-04...2018-03-05"),
        ([dt.date(2018, 3, 4), dt.date(2018, 3, 9), dt.date(2018, 3, 10)], "for r in 2018-03-04...2018-03-04 2018-03-09...2018-03-10; do"),
    ],
)
def test_the_rerun_command_covers_exactly_the_bad_days(bad: list[dt.date], expected: str) -> None:
    command = rerun_command({dg.AssetKey("fuelhh_raw"), dg.AssetKey("fuelhh_store")}, bad)
    assert expected in command and "--select 'fuelhh_raw,fuelhh_store'" in command
