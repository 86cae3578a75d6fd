import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from grid_guardian_assets.data_layout import DataLayout
from grid_guardian_assets.datasets import AGWS, B1610, FUELHH, INDO, ITSDO, NESO_DEMAND
from grid_guardian_assets.definitions import defs
from grid_guardian_assets.defs.resources import resources_for
from grid_guardian_assets.detect.measurements import StoredMeasurements
from grid_guardian_assets.dev.recorded_store import store_recordings
from grid_guardian_assets.replay.server import ReplayServer
from grid_guardian_assets.settlement import days_between
from grid_guardian_assets.store.hdf5 import HDF5Store

REPO = Path(__file__).resolve().parents[1]
# The days the recorded 2018 stores hold: FUELHH, INDO, ITSDO, AGWS and NESO for the year; B1610 (synthetic, 48
# requests a day through the API) for every seventh day and the days the detector tests write B1610 faults into.
RECORDED_2018 = days_between(dt.date(2018, 1, 1), dt.date(2018, 12, 31))
B1610_DAYS_2018 = sorted({*RECORDED_2018[::7], dt.date(2018, 9, 23), dt.date(2018, 10, 21)})


@pytest.fixture(scope="session")
def recorded_2018(tmp_path_factory: pytest.TempPathFactory) -> StoredMeasurements:
    """Stores holding the replay's 2018 recordings (``dev.recorded_store``: the pipeline's validation and HDF5 store,
    without HTTP or Dagster; about 30 s once per session), as the detectors read them, in a data folder's layout
    (``DataLayout``: the folder is ``recorded_2018.store.root.parent``)."""
    store = HDF5Store(DataLayout(tmp_path_factory.mktemp("recorded_2018") / "data").hdf5)
    refused = store_recordings(store, (FUELHH, INDO, ITSDO, AGWS, NESO_DEMAND), RECORDED_2018)
    refused.update(store_recordings(store, (B1610,), B1610_DAYS_2018))
    assert not any(refused.values()), refused
    return StoredMeasurements(store)


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
