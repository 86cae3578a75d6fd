"""The learned half learns from what the pipeline stored, on any year: a short window of 2021 backfilled from the
replay server over HTTP, then ``detector_calibration → branch_limits → anomaly_benchmark → gnn_verifier`` with their
default (relative) windows, shortened, all through the Dagster CLI.

The Dagster process runs a copy of the package without the bundled recordings and without ``replay/``: a version that
reads around the asset graph (a bundled file, a module of the replay server) fails here. The replay server runs first,
in its own process, from the checkout, as a user runs it beside Dagster.
"""

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from grid_guardian_assets.datasets import FUELHH, NESO_DEMAND
from grid_guardian_assets.store.hdf5 import HDF5Store
from grid_guardian_tests.conftest import REPO

BIN = Path(sys.executable).parent
PACKAGE = REPO / "grid_guardian_assets"
FIRST, LAST = dt.date(2021, 1, 1), dt.date(2021, 2, 14)
# What the Dagster process may read of the package's data: the network, which is the product's, not a recording.
PRODUCT_DATA = ("gb_reduced_network",)
REPLAY_RATE = '{"resources": {"neso": {"config": {"requests_per_minute": 6000}}}}'


@pytest.fixture(scope="module")
def replay_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``grid-guardian replay serve`` in its own process: (Insights API base URL, NESO Data Portal base URL)."""
    log = tmp_path_factory.mktemp("replay") / "stderr.log"
    with log.open("w") as sink:  # a file, not a pipe: nothing here reads the server's log, which must never block it
        process = subprocess.Popen([str(BIN / "grid-guardian"), "replay", "serve", "--port", "0"], stderr=sink, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not (match := re.search(r"replay at (\S+) .*Data Portal at (\S+) ", log.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield match.group(1), match.group(2)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def package_without_recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package with no bundled recording and no replay module, for ``PYTHONPATH``."""
    root = tmp_path_factory.mktemp("package")
    shutil.copytree(PACKAGE, root / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__", "replay", "data"))
    for name in PRODUCT_DATA:
        shutil.copytree(PACKAGE / "data" / name, root / PACKAGE.name / "data" / name)
    # The checkout is installed in editable mode, whose import hook would find replay/ in the checkout: a deployment has
    # only the copy. (site runs sitecustomize after the .pth files that install the hook.)
    (root / "sitecustomize.py").write_text(
        "import sys\nsys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, '__module__', '').startswith('__editable__')]\n")
    return root


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, replay_urls: tuple[str, str], package_without_recordings: Path) -> dict[str, str]:
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    data = tmp_path_factory.mktemp("data")
    return {**os.environ, "DAGSTER_HOME": str(home), "GRID_GUARDIAN_DATA_DIR": str(data), "ELEXON_API_BASE_URL": replay_urls[0],
            "NESO_API_BASE_URL": replay_urls[1], "MLFLOW_TRACKING_URI": f"sqlite:///{data / 'mlflow.db'}",
            "PYTHONPATH": str(package_without_recordings), "PYTHONWARNINGS": "ignore"}


def _materialize(env: dict[str, str], select: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "dagster"), "asset", "materialize", "-m", "grid_guardian_assets.definitions", "--select", select,
                           *args], capture_output=True, text=True, env=env, cwd=env["DAGSTER_HOME"], timeout=900)


def _metadata(env: dict[str, str], asset: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None, f"{asset} was not materialised"
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_the_dagster_process_cannot_reach_the_recordings(env: dict[str, str]) -> None:
    probe = "import grid_guardian_assets, importlib.util; print(grid_guardian_assets.__file__); " \
            "print(importlib.util.find_spec('grid_guardian_assets.replay'))"
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=env["DAGSTER_HOME"])
    assert shown.returncode == 0, shown.stderr
    location, replay = shown.stdout.splitlines()
    assert location.startswith(env["PYTHONPATH"]) and replay == "None"
    assert sorted(p.name for p in (Path(env["PYTHONPATH"]) / PACKAGE.name / "data").iterdir()) == list(PRODUCT_DATA)


@pytest.mark.integration
def test_the_learned_half_fits_on_a_window_of_2021_that_the_pipeline_stored(env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path: Path) -> None:
    # The datasets the replay serves for 2021 (FUELHH, INDO and ITSDO from Elexon, NESO's demand), and the snapshots.
    # NESO's portal allows 2 requests a minute; the replay is not rate limited, and the run config says so (README).
    backfill = _materialize(env, "*fuelhh_store,*indo_store,*itsdo_store,*neso_demand_store,grid_topology,grid_snapshots",
                            "--partition-range", f"{FIRST}...{LAST}", "--config-json", REPLAY_RATE)
    assert backfill.returncode == 0, backfill.stderr[-3000:]
    store = HDF5Store(Path(env["GRID_GUARDIAN_DATA_DIR"]) / "hdf5")
    assert store.days(FUELHH)[0] == FIRST and store.days(FUELHH)[-1] == LAST and store.days(NESO_DEMAND)[-1] == LAST

    # Relative windows, shortened to what was stored: held out the last week, thresholds the week before, the fit the
    # rest (at least four weeks).
    windows = {"held_out_days": 7, "threshold_days": 7}
    config = {"ops": {
        "detector_calibration": {"config": windows},
        "branch_limits": {"config": windows},
        "anomaly_benchmark": {"config": {**windows, "cases_per_type": 1, "clean_days": 2}},
        "gnn_verifier": {"config": {**windows, "calibration_days": 3, "epochs": 1, "hidden_channels": 8, "batch_chunks": 4}},
    }}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    learned = _materialize(env, "detector_calibration,branch_limits,anomaly_benchmark", "-c", str(tmp_path / "run.yaml"))
    assert learned.returncode == 0, learned.stderr[-3000:]
    verifier = _materialize(env, "gnn_verifier", "-c", str(tmp_path / "run.yaml"))
    # The gate may refuse a one-epoch model (a failed blocking check fails the run): the asset is materialised either way.
    assert "verifier_quality" in verifier.stderr or verifier.returncode == 0, verifier.stderr[-3000:]

    expected = {"fit": "2021-01-01..2021-01-31 (31 days)", "threshold": "2021-02-01..2021-02-07 (7 days)",
                "held_out": "2021-02-08..2021-02-14 (7 days)"}
    calibration = _metadata(env, "detector_calibration", monkeypatch)
    assert calibration["windows"] == expected
    assert calibration["stored_days_by_dataset"] == {"FUELHH": 38, "INDO": 38, "ITSDO": 38, "NESO_DEMAND": 38, "AGWS": 0, "B1610": 0}
    # What is not stored is not fitted, and says so; what is, is.
    assert {"redundancy:balance", "redundancy:demand:INDO", "redundancy:demand:ITSDO"} <= set(calibration["thresholds"])
    assert "AGWS not stored" in calibration["not_fitted"]["redundancy:wind"]
    assert any(name.startswith("redundancy:b1610:") for name in calibration["not_fitted"])
    assert _metadata(env, "branch_limits", monkeypatch)["windows"] == expected
    benchmark = _metadata(env, "anomaly_benchmark", monkeypatch)
    assert benchmark["window"] == expected["held_out"] and benchmark["split"] == "held_out"
    assert benchmark["stored_days_by_dataset"] == {"FUELHH": 7, "INDO": 7, "ITSDO": 7, "NESO_DEMAND": 7, "AGWS": 0, "B1610": 0}
    assert benchmark["known_bad_periods"]["detector_calibration"].startswith("loaded from")
    trained = _metadata(env, "gnn_verifier", monkeypatch)
    assert trained["windows"] == expected
    assert trained["train_days"] == "2021-01-01..2021-02-04" and trained["calibration_days"] == "2021-02-05..2021-02-07"
