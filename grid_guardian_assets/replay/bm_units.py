"""Elexon's BM unit list as the Insights API's ``/reference/bmunits/all`` answers it, from the bundled fuel-type file
(``data/power_station_dictionary/BMUFuelType_2021-08-09.csv``, Elexon's BM unit fuel types of 2021-08-09: 378 units,
no interconnector units). Fields the file does not hold (EIC, lead party, unit type, FPN flag) are null, as the API
allows; the fuel types are the file's, upper-cased (it spells one ``Wind``)."""

from functools import cache
from importlib import resources
from pathlib import Path

import polars as pl

SOURCE = "Elexon BM unit fuel types, 2021-08-09 (real), via the Power Station Dictionary"


def bundled_fuel_types() -> Path:
    return Path(str(resources.files("grid_guardian_assets") / "data" / "power_station_dictionary" / "BMUFuelType_2021-08-09.csv"))


@cache
def bm_unit_records() -> tuple[dict, ...]:
    """Every unit of the file as a ``BmUnitData`` record (the API spec's field names)."""
    frame = pl.read_csv(bundled_fuel_types(), infer_schema_length=0, encoding="utf8-lossy")
    frame = frame.rename({c: c.lstrip("\ufeff") for c in frame.columns})
    return tuple(
        {"nationalGridBmUnit": row["NGC_BMU_ID"], "elexonBmUnit": row["SETT_BMU_ID"], "eic": None,
         "fuelType": row["FUEL TYPE"].upper() if row["FUEL TYPE"] else None, "leadPartyName": None, "bmUnitType": None,
         "fpnFlag": None}
        for row in frame.iter_rows(named=True)
    )
