"""Pandera (polars backend) schemas: types, nullability and the physical ranges a grid engineer expects."""

import pandera.polars as pa
import polars as pl

from grid_guardian_assets.datasets import AGWS_PSR_TYPES, POLARS_TYPES, DatasetSpec, bidirectional_expr

# Largest plausible magnitudes. GB peak demand is ~60 GW and the largest single fuel output (CCGT) has stayed
# below 30 GW; the biggest BM units are ~1.3 GW (MWh per half hour is half of that).
MAX_FUEL_MW = 40_000
MAX_DEMAND_MW = 70_000
MAX_UNIT_MWH = 1_500
MAX_UNIT_MW = 3_000
# GB's installed wind (~21 GW) and solar (~13 GW) in 2018; a psrType's output above this is not a reading.
MAX_WIND_SOLAR_MW = 30_000
FREQ_MIN_HZ, FREQ_MAX_HZ = 45.0, 55.0
MAX_PERIOD = 50  # the autumn clock-change day


_RANGE_CHECKS: dict[str, dict[str, list[pa.Check]]] = {
    "FUELHH": {
        "generation": [pa.Check.in_range(-MAX_FUEL_MW, MAX_FUEL_MW)],
        "fuelType": [pa.Check.str_matches(r"^[A-Z0-9]+$")],
    },
    "FREQ": {"frequency": [pa.Check.in_range(FREQ_MIN_HZ, FREQ_MAX_HZ)]},
    "INDO": {"demand": [pa.Check.in_range(0, MAX_DEMAND_MW)]},
    "ITSDO": {"demand": [pa.Check.in_range(0, MAX_DEMAND_MW)]},
    "B1610": {"quantity": [pa.Check.in_range(-MAX_UNIT_MWH, MAX_UNIT_MWH)]},
    "AGWS": {
        "quantity": [pa.Check.in_range(0, MAX_WIND_SOLAR_MW)],
        "psrType": [pa.Check.isin(list(AGWS_PSR_TYPES))],
    },
    "PN": {
        "levelFrom": [pa.Check.in_range(-MAX_UNIT_MW, MAX_UNIT_MW)],
        "levelTo": [pa.Check.in_range(-MAX_UNIT_MW, MAX_UNIT_MW)],
    },
}


def _frame_checks(spec: DatasetSpec) -> list[pa.Check]:
    checks = []
    if spec.code == "FUELHH":
        checks.append(
            pa.Check(
                lambda data: data.lazyframe.select(
                    (pl.col("generation") >= 0) | bidirectional_expr(pl.col("fuelType")) | pl.col("generation").is_null()
                ),
                name="generation_non_negative_except_interconnectors_and_pumped_storage",
                error="generation < 0 for a fuel type that is neither an interconnector (INT*) nor pumped storage (PS)",
            )
        )
    if spec.code == "PN":
        checks.append(
            pa.Check(
                lambda data: data.lazyframe.select(pl.col("timeTo") >= pl.col("timeFrom")),
                name="time_to_not_before_time_from",
            )
        )
    return checks


def schema_for(spec: DatasetSpec) -> pa.DataFrameSchema:
    """The pandera schema of one dataset's validated frame."""
    columns = {}
    for name, kind in spec.fields.items():
        checks = list(_RANGE_CHECKS.get(spec.code, {}).get(name, []))
        if name == "settlementPeriod":
            checks.append(pa.Check.in_range(1, MAX_PERIOD))
        columns[name] = pa.Column(POLARS_TYPES[kind], checks=checks, nullable=name not in spec.required)
    return pa.DataFrameSchema(columns, checks=_frame_checks(spec), strict=True, ordered=False, name=f"{spec.code} partition")
