"""The BM unit registry: Elexon's unit list from the replay's /reference/bmunits/all, the Power Station Dictionary's
stations and coordinates, and each unit's bus on the network."""

import json
import urllib.request
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from grid_guardian_assets.definitions import defs
from grid_guardian_assets.grid.network import reduced_network
from grid_guardian_assets.grid.units import LANDING_BUS, NEAREST_BUS, NO_GEOGRAPHY, NO_LOCATION, haversine_km, unit_registry
from grid_guardian_assets.replay.server import ReplayServer
from grid_guardian_tests.conftest import replay_resources


def test_the_replay_answers_the_unit_list_in_the_apis_shape(replay: ReplayServer) -> None:
    with urllib.request.urlopen(f"{replay.base_url}/reference/bmunits/all") as response:
        units = json.loads(response.read())
    assert isinstance(units, list) and len(units) == 378  # a bare array, as the API answers; the file's 378 units
    drax = next(u for u in units if u["elexonBmUnit"] == "T_DRAXX-1")
    assert drax == {"nationalGridBmUnit": "DRAXX-1", "elexonBmUnit": "T_DRAXX-1", "eic": None, "fuelType": "BIOMASS",
                    "leadPartyName": None, "bmUnitType": None, "fpnFlag": None}
    assert {u["fuelType"] for u in units} <= {"BIOMASS", "CCGT", "COAL", "NPSHYD", "NUCLEAR", "OCGT", "OTHER", "PS", "WIND"}


@pytest.mark.parametrize(("unit", "station", "bus"), [
    ("T_DRAXX-1", "Drax", "Thornton/Drax/Eggborough"),
    ("T_RATS-1", "Ratcliffe on Soar", "Ratcliffe"),
])
def test_a_known_station_lands_at_its_bus(unit: str, station: str, bus: str) -> None:
    registry = unit_registry([{"elexonBmUnit": unit, "nationalGridBmUnit": unit.removeprefix("T_"), "fuelType": "COAL"}],
                             reduced_network())
    row = registry.row(0, named=True)
    assert (row["station"], row["bus"], row["placement"]) == (station, bus, NEAREST_BUS)
    assert 0 < row["distance_km"] < 30


def test_an_interconnector_unit_sits_at_its_landing_bus_and_an_unknown_unit_has_none() -> None:
    registry = unit_registry([{"elexonBmUnit": "I_IFD-EDFT1", "nationalGridBmUnit": None, "fuelType": "INTFR"},
                              {"elexonBmUnit": "T_NOSUCH-1", "nationalGridBmUnit": "NOSUCH-1", "fuelType": "CCGT"},
                              {"elexonBmUnit": None, "nationalGridBmUnit": "DRAXX-1", "fuelType": "coal"}], reduced_network())
    assert registry["bus"].to_list() == ["Sellindge", None, "Thornton/Drax/Eggborough"]
    assert registry["placement"].to_list() == [LANDING_BUS, NO_LOCATION, NEAREST_BUS]
    assert registry["fuel_type"].to_list() == ["INTFR", "CCGT", "COAL"]  # found by its National Grid id alone


def test_on_a_network_without_geography_no_unit_is_placed_by_distance() -> None:
    from grid_guardian_assets.grid.network import GridNetwork

    gb29 = reduced_network()
    layout_only = GridNetwork(**{**{f: getattr(gb29, f) for f in GridNetwork.__dataclass_fields__}, "geographic": False})
    registry = unit_registry([{"elexonBmUnit": "T_DRAXX-1", "nationalGridBmUnit": "DRAXX-1", "fuelType": "COAL"}], layout_only)
    assert registry.row(0, named=True)["placement"] == NO_GEOGRAPHY and registry["bus"][0] is None


def test_haversine_distances_are_great_circle_kilometres() -> None:
    # London (-0.1278, 51.5074) to Edinburgh (-3.1883, 55.9533): 534 km along the great circle.
    km = haversine_km(np.array([-0.1278]), np.array([51.5074]), np.array([-3.1883, -0.1278]), np.array([55.9533, 51.5074]))
    assert km.shape == (1, 2) and km[0, 0] == pytest.approx(534, abs=2) and km[0, 1] == 0


@pytest.mark.integration
def test_the_bm_units_asset_places_the_units_from_the_replays_list(replay: ReplayServer, data_dir: Path,
                                                                  instance: dg.DagsterInstance) -> None:
    result = dg.materialize(list(defs.assets), selection=["bm_units"], instance=instance,
                            resources=replay_resources(replay.base_url, data_dir))
    assert result.success
    meta = result.asset_materializations_for_node("bm_units")[0].metadata
    registry = pl.read_parquet(data_dir / "grid" / "bm_units_gb29.parquet")
    assert meta["units"].value == registry.height == 378
    assert meta["placed"].value == registry["bus"].is_not_null().sum() > 300
    assert "NUCLEAR" in meta["coverage_by_fuel"].value and "data:image/png;base64," in meta["map"].value
    assert meta["source"].value.endswith("/reference/bmunits/all")
    assert set(registry.filter(pl.col("bus").is_null())["placement"].to_list()) == {NO_LOCATION}
