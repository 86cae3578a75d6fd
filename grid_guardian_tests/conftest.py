import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from grid_guardian_assets.definitions import defs
from grid_guardian_assets.defs.resources import resources_for
from grid_guardian_assets.replay.server import ReplayServer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    """A real replay server on a free loopback port."""
    with ReplayServer() as server:
        yield server


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A real (SQLite-backed, temporary) Dagster instance."""
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def project_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance from the project's own ``dagster.yaml`` (the pooled event log), in a temporary
    DAGSTER_HOME, with Dagster's event batching as the storage sets it (not as an earlier test left it)."""
    shutil.copy(Path(__file__).resolve().parents[1] / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    with dg.DagsterInstance.get() as inst:
        yield inst


def replay_resources(base_url: str, data_dir: Path, *, max_attempts: int = 3) -> dict[str, object]:
    """The code location's resources pointed at a replay server and a temporary data folder, with short backoff."""
    return resources_for(base_url, data_dir, max_attempts=max_attempts, backoff_base_s=0.01, backoff_max_s=0.05)


def materialize_chain(
    dataset: str, day: dt.date, *, base_url: str, data_dir: Path, instance: dg.DagsterInstance, max_attempts: int = 3
) -> dg.ExecuteInProcessResult:
    """Run ``*{dataset}_store`` for one settlement day in-process against ``instance``."""
    return dg.materialize(
        list(defs.assets),
        selection=dg.AssetSelection.assets(f"{dataset}_store").upstream(),
        partition_key=day.isoformat(),
        instance=instance,
        resources=replay_resources(base_url, data_dir, max_attempts=max_attempts),
        raise_on_error=False,
    )
