"""Where each BM unit is on the network: its station, the station's coordinates, and the bus it feeds.

Elexon's unit list (``/reference/bmunits/all``: unit ids and fuel types) is joined to the Power Station Dictionary
(``data/power_station_dictionary``: which station each unit id belongs to, and the station's WGS84 coordinates).

* A located unit feeds the bus nearest its station: the great-circle (haversine) distance on a sphere of the Earth's
  mean radius, between the station's and the buses' WGS84 coordinates (``buses_wgs84.csv``). The reduced network's
  buses stand for whole regions, so the nearest bus is the one whose region the station is most likely in; the
  distance is kept so that a far one can be questioned.
* An interconnector unit (fuel type ``INT*``) sits at its link's landing bus (``mapping.INTERCONNECTOR_BUSES``, which
  follows ``links.csv``).
* A unit without a location, or on a network without geography (``gb2224``'s layout is synthetic), has no bus; the
  registry says why (``placement``) rather than guess.
"""

from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from grid_guardian_assets.grid.mapping import INTERCONNECTOR_BUSES

if TYPE_CHECKING:
    from grid_guardian_assets.grid.network import GridNetwork

# IUGG mean Earth radius (km): the haversine distance's sphere.
EARTH_RADIUS_KM = 6371.0088
NEAREST_BUS, LANDING_BUS, NO_LOCATION, NO_GEOGRAPHY = "nearest bus", "landing bus", "no location", "network has no geography"
REGISTRY_SCHEMA = {
    "elexon_bm_unit": pl.Utf8, "national_grid_bm_unit": pl.Utf8, "fuel_type": pl.Utf8, "station": pl.Utf8,
    "dictionary_id": pl.Int64, "longitude": pl.Float64, "latitude": pl.Float64, "bus": pl.Utf8, "distance_km": pl.Float64,
    "placement": pl.Utf8,
}


def _dictionary(name: str) -> Path:
    return Path(str(resources.files("grid_guardian_assets") / "data" / "power_station_dictionary" / name))


def _ids(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


@cache
def station_of_unit() -> pl.DataFrame:
    """Every BM unit id the dictionary knows (settlement and National Grid ids alike) → its station and coordinates:
    ``unit``, ``dictionary_id``, ``station``, ``longitude``, ``latitude`` (null where the station has no location)."""
    ids = pl.read_csv(_dictionary("ids.csv"), infer_schema_length=0)
    locations = pl.read_csv(_dictionary("plant-locations.csv"), schema_overrides={"dictionary_id": pl.Utf8})
    rows = [(unit, row["dictionary_id"], row["name"])
            for row in ids.iter_rows(named=True) for unit in {*_ids(row["sett_bmu_id"]), *_ids(row["ngc_bmu_id"])}]
    units = pl.DataFrame(rows, schema={"unit": pl.Utf8, "dictionary_id": pl.Utf8, "station": pl.Utf8}, orient="row")
    located = units.join(locations.select("dictionary_id", pl.col("longitude").cast(pl.Float64), pl.col("latitude").cast(pl.Float64)),
                         on="dictionary_id", how="left")
    # A unit id listed by two stations is ambiguous: the first listing wins, deterministically.
    return located.sort("dictionary_id", "unit").unique("unit", keep="first", maintain_order=True).with_columns(
        pl.col("dictionary_id").cast(pl.Int64))


def haversine_km(lon: np.ndarray, lat: np.ndarray, bus_lon: np.ndarray, bus_lat: np.ndarray) -> np.ndarray:
    """``(units, buses)`` great-circle distances (km) between WGS84 points (degrees)."""
    lon, lat, bus_lon, bus_lat = (np.radians(np.asarray(a, dtype=float)) for a in (lon, lat, bus_lon, bus_lat))
    dlat = lat[:, None] - bus_lat[None, :]
    dlon = lon[:, None] - bus_lon[None, :]
    a = np.sin(dlat / 2) ** 2 + np.cos(lat)[:, None] * np.cos(bus_lat)[None, :] * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def unit_registry(units: list[dict[str, Any]], network: "GridNetwork") -> pl.DataFrame:
    """Every unit of Elexon's list (``BmUnitData`` records) with its station, coordinates and bus on ``network``.

    Returns:
        One row per unit (``REGISTRY_SCHEMA``), in the list's order; ``placement`` says how its bus was found, or why
        it has none.
    """
    listed = pl.DataFrame(
        [(u.get("elexonBmUnit"), u.get("nationalGridBmUnit"), (u.get("fuelType") or "").upper() or None) for u in units],
        schema={"elexon_bm_unit": pl.Utf8, "national_grid_bm_unit": pl.Utf8, "fuel_type": pl.Utf8}, orient="row",
    ).with_row_index("order")
    stations = station_of_unit()
    # The settlement id finds the station where the dictionary lists it, else the National Grid id.
    by_elexon = listed.join(stations, left_on="elexon_bm_unit", right_on="unit", how="left", maintain_order="left")
    by_grid = listed.join(stations, left_on="national_grid_bm_unit", right_on="unit", how="left", maintain_order="left")
    located = by_elexon.with_columns(
        *(pl.coalesce(pl.col(c), by_grid[c]).alias(c) for c in ("dictionary_id", "station", "longitude", "latitude")))
    bus: list[str | None] = [None] * located.height
    distance: list[float | None] = [None] * located.height
    placement = [NO_LOCATION] * located.height
    lon, lat = located["longitude"].to_numpy(), located["latitude"].to_numpy()
    has_location = np.isfinite(lon.astype(float)) & np.isfinite(lat.astype(float))
    if network.geographic and has_location.any():
        km = haversine_km(lon[has_location], lat[has_location], network.coords[:, 0], network.coords[:, 1])
        nearest = km.argmin(axis=1)
        for row, b, d in zip(np.flatnonzero(has_location), nearest, km[np.arange(len(nearest)), nearest]):
            bus[row], distance[row], placement[row] = network.bus_names[b], float(d), NEAREST_BUS
    elif not network.geographic:
        placement = [NO_GEOGRAPHY if located else NO_LOCATION for located in has_location]
    for row, fuel in enumerate(located["fuel_type"].to_list()):
        landing = INTERCONNECTOR_BUSES.get(fuel or "")
        if landing is not None and landing in network.bus_names:
            bus[row], distance[row], placement[row] = landing, None, LANDING_BUS
    return located.sort("order").select(
        "elexon_bm_unit", "national_grid_bm_unit", "fuel_type", "station", "dictionary_id", "longitude", "latitude",
        pl.Series("bus", bus, dtype=pl.Utf8), pl.Series("distance_km", distance, dtype=pl.Float64),
        pl.Series("placement", placement, dtype=pl.Utf8))


def coverage_by_fuel(registry: pl.DataFrame) -> pl.DataFrame:
    """Per fuel type: units listed, units with a bus, and the share placed."""
    return (registry.group_by("fuel_type").agg(units=pl.len(), placed=pl.col("bus").is_not_null().sum())
            .with_columns(share_placed=(pl.col("placed") / pl.col("units")).round(3)).sort("fuel_type", nulls_last=True))
