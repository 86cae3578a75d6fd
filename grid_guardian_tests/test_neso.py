"""NESO's historic demand as its own dataset: the replay's CKAN datastore_search, parsing, the Dagster chain, and the
redundancy checks of BMRS's demand against it."""

import datetime as dt
import json
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import dagster as dg
import polars as pl
import pytest

from grid_guardian_assets.datasets import NESO_DEMAND, NESO_DEMAND_RESOURCES, neso_date_text
from grid_guardian_assets.definitions import defs
from grid_guardian_assets.detect.measurements import StoredMeasurements
from grid_guardian_assets.replay import neso
from grid_guardian_assets.replay.server import Fault, ReplayServer
from grid_guardian_assets.store.hdf5 import HDF5Store
from grid_guardian_assets.validation import frame_from_records, validate_partition
from grid_guardian_tests.conftest import replay_resources


def search(server: ReplayServer, day: dt.date, resource: str | None = None) -> dict:
    query = urlencode({"resource_id": resource or NESO_DEMAND_RESOURCES[day.year],
                       "filters": json.dumps({"SETTLEMENT_DATE": neso_date_text(day)}), "limit": 100})
    with urllib.request.urlopen(f"{server.neso_base_url}/datastore_search?{query}", timeout=10) as response:
        return json.load(response)


@pytest.mark.parametrize("day, flow", [(dt.date(2018, 3, 1), "FRENCH_FLOW"), (dt.date(2021, 7, 1), "IFA_FLOW")])
def test_the_replay_answers_as_ckan_from_the_real_files(replay: ReplayServer, day: dt.date, flow: str) -> None:
    body = search(replay, day)
    assert body["success"] is True and body["result"]["total"] == 48
    records = body["result"]["records"]
    assert [r["SETTLEMENT_PERIOD"] for r in records] == list(range(1, 49))
    assert records[0]["SETTLEMENT_DATE"] == neso_date_text(day) and isinstance(records[0]["_id"], int)
    source = neso.neso_year_file(day.year).filter(pl.col("SETTLEMENT_DATE") == neso_date_text(day))
    assert [r["ND"] for r in records] == source["ND"].to_list() and [r[flow] for r in records] == source[flow].to_list()
    report = validate_partition(NESO_DEMAND, day, frame_from_records(NESO_DEMAND, records))
    assert report.passed, report.summary()
    assert report.unexpected_fields == []  # CKAN's _id is known and not kept
    # IFA's flow is one field whatever the year's file calls it.
    assert report.frame["IFA_FLOW"].to_list() == source[flow].to_list()


def test_an_unknown_or_missing_resource_is_ckans_404(replay: ReplayServer) -> None:
    for resource, says in (("nope", "was not found"), (NESO_DEMAND_RESOURCES[2019], "holds 2018, 2021")):
        with pytest.raises(urllib.error.HTTPError) as caught:
            search(replay, dt.date(2019, 6, 1), resource)
        assert caught.value.code == 404
        error = json.loads(caught.value.read())
        assert error["success"] is False and says in error["error"]["message"]


def test_a_year_without_a_known_resource_is_refused_by_the_plan() -> None:
    with pytest.raises(ValueError, match="no NESO historic demand resource is known for 2009"):
        NESO_DEMAND.request_plan(dt.date(2009, 1, 1))


def test_the_redundancy_checks_pair_bmrs_demand_with_neso(recorded_2018: StoredMeasurements) -> None:
    table = recorded_2018.table([dt.date(2018, 3, 1)], b1610_days=())
    assert {"NESO:ND", "NESO:TSD", "NESO:IFA_FLOW"} <= set(table.columns)
    # Two publishers of one quantity: BMRS's initial national demand and NESO's settled one differ by tens of MW.
    difference = (table["INDO"] - table["NESO:ND"]).abs()
    assert 0 < difference.median() < 200


@pytest.mark.integration
def test_the_neso_chain_stores_days_through_dagster(replay: ReplayServer, data_dir: Path, instance: dg.DagsterInstance) -> None:
    resources = replay_resources(replay.base_url, data_dir)
    chain = dg.AssetSelection.assets("neso_demand_store").upstream()
    for day in ("2018-03-01", "2021-07-01"):
        result = dg.materialize(list(defs.assets), selection=chain, partition_key=day, instance=instance, resources=resources)
        assert result.success
    store = HDF5Store(data_dir / "hdf5")
    assert store.days(NESO_DEMAND) == [dt.date(2018, 3, 1), dt.date(2021, 7, 1)]
    # What the redundancy checks read: NESO's columns beside BMRS's demand, from the stores alone.
    assert dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets("indo_store").upstream(), partition_key="2021-07-01",
                          instance=instance, resources=resources).success
    table = StoredMeasurements(store).table([dt.date(2021, 7, 1)])
    assert {"INDO", "NESO:ND", "NESO:TSD", "NESO:IFA_FLOW", "NESO:IFA2_FLOW"} <= set(table.columns)
    assert table["INDO"].null_count() == 0 and 0 < (table["INDO"] - table["NESO:ND"]).abs().median() < 300
    stored = store.read_range(NESO_DEMAND, dt.date(2021, 7, 1), dt.date(2021, 7, 1))
    assert stored.height == 48 and stored["IFA_FLOW"].null_count() == 0 and stored["ND"].min() > 15_000
    meta = instance.get_latest_materialization_event(dg.AssetKey("neso_demand_raw")).asset_materialization.metadata
    assert meta["base_url"].value == replay.neso_base_url and meta["synthetic"].value is False
    # A period NESO's portal lacks on both fetches is the day's recorded gap; a year the portal does not hold fails clearly.
    replay.add_fault(Fault("/neso/", transform=lambda rows: [r for r in rows if r["SETTLEMENT_PERIOD"] != 7], times=2))
    assert dg.materialize(list(defs.assets), selection=chain, partition_key="2018-03-02", instance=instance, resources=resources).success
    assert store.recorded_gaps(NESO_DEMAND, dt.date(2018, 3, 2), dt.date(2018, 3, 2)) == {dt.date(2018, 3, 2): frozenset({("", 7)})}
    failed = dg.materialize(list(defs.assets), selection=chain, partition_key="2019-06-01", instance=instance, resources=resources,
                            raise_on_error=False)
    assert not failed.success
    message = " ".join(str(e.step_failure_data.error) for e in failed.all_events if e.is_step_failure)
    assert "NESO_DEMAND partition 2019-06-01" in message and "HTTP 404" in message
