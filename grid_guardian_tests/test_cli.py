"""The console path an analyst takes: materialise with the dagster CLI, then read with grid-guardian."""

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grid_guardian_assets.replay import bmrs_history
from grid_guardian_assets.replay.server import ReplayServer
from grid_guardian_tests.conftest import REPO

pytestmark = pytest.mark.integration  # CLI processes that materialise through Dagster

BIN = Path(sys.executable).parent


def run(args: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO, timeout=300, **kwargs)


@pytest.fixture
def cli_env(replay: ReplayServer, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"  # a fresh instance with the project's settings, as the README has it
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.update(ELEXON_API_BASE_URL=replay.base_url, GRID_GUARDIAN_DATA_DIR=str(tmp_path / "data"))
    return env


def test_materialise_then_read_gives_the_days_rows_exactly_as_served(cli_env: dict[str, str]) -> None:
    result = run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "grid_guardian_assets.definitions",
         "--select", "*fuelhh_store", "--partition", "2018-03-01"],
        cli_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    read = run([str(BIN / "grid-guardian"), "store", "read", "fuelhh", "--start", "2018-03-01", "--end", "2018-03-01", "--format", "csv"], cli_env)
    assert read.returncode == 0, read.stderr
    rows = list(csv.DictReader(io.StringIO(read.stdout)))
    assert list(rows[0]) == ["startTime", "settlementDate", "settlementPeriod", "fuelType", "generation"]
    assert len(rows) == 48 * 14
    served = {
        (r["startTime"], r["settlementDate"], str(r["settlementPeriod"]), r["fuelType"], str(r["generation"]))
        for r in bmrs_history.fuelhh_records(dt.date(2018, 3, 1))
    }
    got = [tuple(r.values()) for r in rows]
    assert set(got) == served and len(set(got)) == len(got)
    assert [r["startTime"] for r in rows] == sorted(r["startTime"] for r in rows)


def test_read_formats_and_errors(cli_env: dict[str, str]) -> None:
    gg = str(BIN / "grid-guardian")
    empty = run([gg, "store", "read", "freq", "--start", "2018-03-01", "--end", "2018-03-02", "--format", "json"], cli_env)
    assert empty.returncode == 0 and empty.stdout == "" and "no stored FREQ rows" in empty.stderr
    bad = run([gg, "store", "read", "sysdem", "--start", "2018-03-01", "--end", "2018-03-01"], cli_env)
    assert bad.returncode == 2 and "unknown dataset 'sysdem'" in bad.stderr
    backwards = run([gg, "store", "read", "fuelhh", "--start", "2018-03-02", "--end", "2018-03-01"], cli_env)
    assert backwards.returncode == 2 and "before --start" in backwards.stderr
    fmt = run([gg, "store", "read", "fuelhh", "--start", "2018-03-01", "--end", "2018-03-01", "--format", "xml"], cli_env)
    assert fmt.returncode == 2 and "--format must be csv or json" in fmt.stderr


def test_json_lines_output(cli_env: dict[str, str], replay: ReplayServer, tmp_path: Path) -> None:
    from grid_guardian_assets.datasets import INDO
    from grid_guardian_assets.elexon import ElexonClient
    from grid_guardian_assets.store.hdf5 import HDF5Store
    from grid_guardian_assets.store.raw_archive import RawPartition
    from grid_guardian_assets.validation import frame_from_raw, validate_partition

    day = dt.date(2018, 3, 1)
    with ElexonClient(replay.base_url) as client:
        raw = RawPartition("INDO", day, client.fetch_day(INDO, day), complete=True)
    report = validate_partition(INDO, day, frame_from_raw(INDO, raw))
    HDF5Store(tmp_path / "data" / "hdf5").write_partition(INDO, day, report.frame)
    out = run([str(BIN / "grid-guardian"), "store", "read", "indo", "--start", "2018-03-01", "--end", "2018-03-01", "--format", "json"], cli_env)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 48 and lines[0]["startTime"] == "2018-03-01T00:00:00Z" and set(lines[0]) == {
        "startTime", "settlementDate", "settlementPeriod", "demand"
    }
