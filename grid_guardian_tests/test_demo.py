"""The README's main command, in-process: a small run of the demo into a real persistent Dagster instance."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest
import redis
from rich.console import Console

from grid_guardian_assets.datasets import DATASETS, NESO_DEMAND
from grid_guardian_assets.defs.instance_storage import settings_for_home
from grid_guardian_assets.dev.demo import DemoPaths, DemoPlan, run_demo
from grid_guardian_assets.dev.local_servers import LocalRedis
from grid_guardian_assets.store.hdf5 import HDF5Store
from grid_guardian_assets.verifier.checkpoints import ModelStore
from grid_guardian_tests.conftest import REPO

pytestmark = pytest.mark.integration  # the whole demo


def test_demo_stores_every_dataset_and_records_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DAGSTER_HOME", "GRID_GUARDIAN_DATA_DIR", "ELEXON_API_BASE_URL", "MLFLOW_TRACKING_URI", "KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"):
        monkeypatch.setenv(name, "")  # the demo must not depend on them: what it uses is passed in
    redis_server = LocalRedis(directory=tmp_path / "redis").start()  # the demo's own, so earlier runs cannot answer for it
    paths = DemoPaths.under(tmp_path / "demo")
    console = Console(record=True, width=200)
    day = dt.date(2018, 10, 26)
    # Short windows: a four-day fit, three threshold days (the validation cases), two held-out days: two clean days each.
    plan = DemoPlan([day], (dt.date(2018, 10, 20), dt.date(2018, 10, 23)), (dt.date(2018, 10, 24), day),
                    (dt.date(2018, 10, 4), dt.date(2018, 10, 5)), epochs=1, calibration_days=3, cases_per_type=2, clean_days=2)
    try:
        assert run_demo(plan, paths, dagster_yaml=REPO / "dagster.yaml", redis_url=redis_server.url, console=console)
        client = redis.Redis.from_url(redis_server.url)
        alerts = [{k.decode(): v.decode() for k, v in f.items()} for _, f in client.xrange("alerts")]
        alarms = [m.decode().split("|") for m in client.zrange("alerts:ids", 0, -1)]  # every alarm, merged or not
    finally:
        redis_server.stop()
    store = HDF5Store(paths.data_dir / "hdf5")
    windows = [dt.date(2018, 10, d) for d in (4, 5, *range(20, 27))]
    assert all(store.days(spec) == [day] for spec in DATASETS.values() if spec.code in ("B1610", "PN"))
    assert all(store.days(DATASETS[name]) == windows for name in ("fuelhh", "indo", "itsdo", "agws", "freq"))
    assert store.days(NESO_DEMAND) == windows
    models = ModelStore(paths.data_dir / "models")
    assert 1 <= len(models.versions()) <= 2  # the verifier's, and self-play's when its round was promoted
    with dg.DagsterInstance.from_config(str(paths.dagster_home)) as instance:
        assert "2018-10-26" in instance.get_materialized_partitions(dg.AssetKey("pn_store"))
        assert instance.get_latest_materialization_event(dg.AssetKey("gnn_verifier")) is not None
    text = console.export_text()
    assert "dagster dev -w workspace.yaml" in text and "store read fuelhh" in text and "mlflow ui" in text
    assert "GNN verifier" in text and "3-sigma" in text
    assert (paths.dagster_home / "dagster.yaml").read_text() == settings_for_home((REPO / "dagster.yaml").read_text(), paths.dagster_home)
    assert (paths.dagster_home / "history" / "runs" / "index.db").exists()  # the event log lives in the demo's home
    # The live path ran into the same instance. Self-play and model-scored alerts follow only a promoted checkpoint:
    # on real demand the demo's short training does not beat the 3-sigma rule (README, "What the demo does").
    promoted = models.promoted()
    with dg.DagsterInstance.from_config(str(paths.dagster_home)) as instance:
        rounds = instance.get_materialized_partitions(dg.AssetKey("self_play_round"))
        live_runs = instance.get_runs(dg.RunsFilter(job_name="live_inference"))
        assert len(live_runs) == 1 and live_runs[0].tags["grid_guardian/live"] == "inference"
        assert live_runs[0].status == dg.DagsterRunStatus.SUCCESS
    if promoted is not None:
        assert "round-0001" in rounds and "Self-play proposed" in text
        assert "Live path sensor: RunRequest for checkpoint" in text
    else:
        assert "not promoted (verifier_quality failed)" in text and not rounds
        assert "Live path sensor: skipped: no checkpoint promoted yet" in text
    incident = [line for line in text.splitlines() if "frequency_operational" in line and "bmrs.FREQ/" in line]
    assert incident and all(line.strip().startswith("2018-10-26T") for line in incident)
    in_incident = [a for a in alerts if a["source"].startswith("frequency") and "2018-10-26T15:32:00Z" <= a["time"] <= "2018-10-26T15:42:00Z"]
    # The dip stays below 49.8 Hz for several 15-s samples: each is recorded, and the dip is one alert.
    assert sum(source == "frequency_operational" and "2018-10-26T15:32:00Z" <= time <= "2018-10-26T15:42:00Z"
               for _, time, source, *_ in alarms) >= 3
    # One alert per rule: the operational band's, and the statutory band's when the nadir and noise cross 49.5 Hz.
    sources = [a["source"] for a in in_incident]
    assert "frequency_operational" in sources and len(sources) == len(set(sources)), sources
    # Only the incident leaves the statutory band (the synthetic day's own noise can touch 49.8/50.2 Hz, never 49.5).
    assert all(a in in_incident for a in alerts if a["source"] == "frequency_statutory")
    assert {a["model_version"] for a in alerts} == {promoted or "none"}
