"""The README's main command, in-process: a small run of the demo into a real persistent Dagster instance."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest
from rich.console import Console

from grid_guardian_assets.datasets import DATASETS
from grid_guardian_assets.demo import DemoPaths, DemoPlan, run_demo
from grid_guardian_assets.store.hdf5 import HDF5Store
from grid_guardian_assets.verifier.checkpoints import ModelStore
from grid_guardian_tests.conftest import REPO


def test_demo_stores_every_dataset_and_records_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DAGSTER_HOME", "GRID_GUARDIAN_DATA_DIR", "ELEXON_API_BASE_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.setenv(name, "")  # restored after the test; run_demo sets them for its own process
    paths = DemoPaths.under(tmp_path / "demo")
    console = Console(record=True, width=200)
    day = dt.date(2018, 10, 28)
    plan = DemoPlan([day], (dt.date(2018, 10, 20), day), (dt.date(2018, 10, 1), dt.date(2018, 10, 2)), epochs=1, calibration_days=3)
    assert run_demo(plan, paths, repo_dagster_yaml=REPO / "dagster.yaml", console=console)
    store = HDF5Store(paths.data_dir / "hdf5")
    assert all(store.days(spec) == [day] for spec in DATASETS.values() if spec.code not in ("FUELHH", "INDO", "FREQ"))
    assert store.days(DATASETS["fuelhh"]) == [dt.date(2018, 10, d) for d in (1, 2, *range(20, 29))]
    assert len(ModelStore(paths.data_dir / "models").versions()) == 1
    with dg.DagsterInstance.from_config(str(paths.dagster_home)) as instance:
        assert "2018-10-28" in instance.get_materialized_partitions(dg.AssetKey("pn_store"))
        assert instance.get_latest_materialization_event(dg.AssetKey("gnn_verifier")) is not None
    text = console.export_text()
    assert "dagster dev -w workspace.yaml" in text and "store read fuelhh" in text and "mlflow ui" in text
    assert "GNN verifier" in text and "3-sigma" in text
    assert (paths.dagster_home / "dagster.yaml").read_text() == (REPO / "dagster.yaml").read_text()
