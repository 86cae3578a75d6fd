"""Real per-unit physical notifications of 2021-06-30 … 07-10, served as the Insights API's PN and stored by the PN
chain; the synthetic PN stays 2018's, marked; no PN is served where no per-unit data exist."""

import datetime as dt
import json
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from grid_guardian_assets.datasets import PN
from grid_guardian_assets.definitions import defs
from grid_guardian_assets.replay.server import ReplayServer
from grid_guardian_assets.store.hdf5 import HDF5Store
from grid_guardian_assets.validation import frame_from_records, validate_partition
from grid_guardian_tests.conftest import replay_resources


def _pn(server: ReplayServer, day: str, period: int) -> tuple[dict, str]:
    with urllib.request.urlopen(f"{server.base_url}/datasets/PN?settlementDate={day}&settlementPeriod={period}") as response:
        return json.loads(response.read()), response.headers["X-Grid-Guardian-Synthetic"]


def test_a_period_of_2021_is_every_units_real_notification_in_the_apis_shape(replay: ReplayServer) -> None:
    body, synthetic = _pn(replay, "2021-07-01", 20)
    assert synthetic == "false" and body["metadata"]["synthetic"] is False and "resampled" in body["metadata"]["source"]
    units = {r["bmUnit"]: r for r in body["data"]}
    assert len(units) == len(body["data"]) > 1300  # one segment per unit and period
    drax = units["T_DRAXX-1"]
    assert drax["timeFrom"] == "2021-07-01T08:30:00Z" and drax["timeTo"] == "2021-07-01T09:00:00Z"
    assert drax["nationalGridBmUnit"] == "DRAXX-1" and 0 < drax["levelFrom"] <= 700
    assert any(u.startswith("I_") for u in units) and any(u.startswith("2__") for u in units)
    # Parsed and validated as the chain does: the real shape fits the PN spec.
    frame = frame_from_records(PN, body["data"])
    assert frame.type_errors.height == 0 and frame.missing_fields == []


@pytest.mark.parametrize(("day", "synthetic", "served"), [("2018-03-01", "true", True), ("2021-08-01", "false", False)])
def test_pn_is_synthetic_only_in_2018_and_absent_where_no_unit_data_exist(replay: ReplayServer, day: str, synthetic: str,
                                                                         served: bool) -> None:
    body, header = _pn(replay, day, 20)
    assert header == synthetic and bool(body["data"]) is served
    assert all(r["bmUnit"].startswith("T_SYN-") for r in body["data"])  # the synthetic units say so in their names


@pytest.mark.integration
def test_the_pn_chain_stores_a_real_day_of_2021(replay: ReplayServer, data_dir: Path, instance: dg.DagsterInstance) -> None:
    result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets("pn_store").upstream(), partition_key="2021-07-01",
                            instance=instance, resources=replay_resources(replay.base_url, data_dir))
    assert result.success
    stored = HDF5Store(data_dir / "hdf5").read_range(PN, dt.date(2021, 7, 1), dt.date(2021, 7, 1))
    assert stored["settlementPeriod"].n_unique() == 48 and stored["bmUnit"].n_unique() > 1300
    raw = instance.get_latest_materialization_event(dg.AssetKey("pn_raw")).asset_materialization.metadata
    assert raw["synthetic"].value is False
    report = validate_partition(PN, dt.date(2021, 7, 1), frame_from_records(PN, stored.to_dicts()))
    assert report.passed
