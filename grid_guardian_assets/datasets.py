"""The BMRS datasets Grid Guardian ingests, described once: endpoint, request windows, fields and keys.

Field names and parameters come from the Elexon Insights API's OpenAPI spec
(``/datasets/{CODE}`` endpoints); everything downstream (validation, HDF5 store, CLI, Kafka messages) uses the
API's own field names so that any Insights API reader can feed or check the pipeline.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from grid_guardian_assets.settlement import day_bounds_utc, settlement_periods, to_api_time

FieldType = Literal["str", "int", "float", "date", "datetime"]

POLARS_TYPES: dict[str, pl.DataType] = {
    "str": pl.Utf8(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us", "UTC"),
}

# The Insights API caps FREQ requests at 24 hours; an autumn settlement day is 25.
FREQ_MAX_WINDOW = dt.timedelta(hours=24)
# INDO, ITSDO and AGWS are filtered by publish time; the last period of a day is published after midnight (INDO and
# ITSDO within minutes, AGWS within the hour that EU Regulation 543/2013 allows).
DEMAND_PUBLISH_MARGIN = dt.timedelta(hours=2)

RequestPlan = Callable[[dt.date], list[dict[str, str]]]
Membership = Literal["settlement_date", "measurement_time"]


@dataclass(frozen=True)
class DatasetSpec:
    """How one BMRS dataset is requested, typed, keyed and checked.

    Attributes:
        code: The Insights API dataset code, e.g. ``FUELHH``.
        path: The endpoint below the API base URL.
        fields: Every field of a record, in API order, with its type.
        required: Fields that must be present and non-null in every row.
        key: The natural key: no two rows of a partition share it.
        time_field: The field that orders rows in time.
        per_period_group: Fields whose groups must each cover every settlement period exactly once
            (``()`` means the whole partition must; ``None`` means periods need only appear at least once).
        membership: How a row is assigned to a settlement day.
        request_plan: The query parameters of each request that together fetch one settlement day.
        publication_lag_days: How long after a settlement day Elexon publishes the dataset.
        description: One line for asset descriptions.
    """

    code: str
    path: str
    fields: dict[str, FieldType]
    required: tuple[str, ...]
    key: tuple[str, ...]
    time_field: str
    per_period_group: tuple[str, ...] | None
    membership: Membership
    request_plan: RequestPlan
    description: str
    publication_lag_days: int = 1
    value_fields: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        """Lower-case name used in asset keys and file names, e.g. ``fuelhh``."""
        return self.code.lower()

    def polars_schema(self) -> dict[str, pl.DataType]:
        return {name: POLARS_TYPES[kind] for name, kind in self.fields.items()}

    def of_day(self, day: dt.date) -> pl.Expr:
        """Rows that belong to settlement ``day`` by the spec's membership; rows without the deciding field are
        kept, so that validation reports them rather than losing them."""
        if self.membership == "measurement_time":
            start, end = day_bounds_utc(day)
            t = pl.col(self.time_field)
            return t.is_null() | ((t >= start) & (t < end))
        return pl.col("settlementDate").is_null() | (pl.col("settlementDate") == day)


def _settlement_date_plan(day: dt.date) -> list[dict[str, str]]:
    return [{"settlementDateFrom": day.isoformat(), "settlementDateTo": day.isoformat(), "format": "json"}]


def _freq_plan(day: dt.date) -> list[dict[str, str]]:
    start, end = day_bounds_utc(day)
    windows = []
    while start < end:
        stop = min(start + FREQ_MAX_WINDOW, end)
        windows.append(
            {"measurementDateTimeFrom": to_api_time(start), "measurementDateTimeTo": to_api_time(stop), "format": "json"}
        )
        start = stop
    return windows


def _publish_time_plan(day: dt.date) -> list[dict[str, str]]:
    start, end = day_bounds_utc(day)
    return [
        {
            "publishDateTimeFrom": to_api_time(start),
            "publishDateTimeTo": to_api_time(end + DEMAND_PUBLISH_MARGIN),
            "format": "json",
        }
    ]


def _per_period_plan(day: dt.date) -> list[dict[str, str]]:
    return [
        {"settlementDate": day.isoformat(), "settlementPeriod": str(p.number), "format": "json"}
        for p in settlement_periods(day)
    ]


_DEMAND_FIELDS: dict[str, FieldType] = {
    "dataset": "str",
    "publishTime": "datetime",
    "startTime": "datetime",
    "settlementDate": "date",
    "settlementPeriod": "int",
    "demand": "int",
}

FUELHH = DatasetSpec(
    code="FUELHH",
    path="/datasets/FUELHH",
    fields={
        "dataset": "str",
        "publishTime": "datetime",
        "startTime": "datetime",
        "settlementDate": "date",
        "settlementPeriod": "int",
        "fuelType": "str",
        "generation": "int",
    },
    required=("startTime", "settlementDate", "settlementPeriod", "fuelType", "generation"),
    key=("settlementDate", "settlementPeriod", "fuelType"),
    time_field="startTime",
    per_period_group=("fuelType",),
    membership="settlement_date",
    request_plan=_settlement_date_plan,
    value_fields=("generation",),
    description="Half-hourly generation outturn by fuel type (MW).",
)

FREQ = DatasetSpec(
    code="FREQ",
    path="/datasets/FREQ",
    fields={"dataset": "str", "measurementTime": "datetime", "frequency": "float"},
    required=("measurementTime", "frequency"),
    key=("measurementTime",),
    time_field="measurementTime",
    per_period_group=None,
    membership="measurement_time",
    request_plan=_freq_plan,
    value_fields=("frequency",),
    description="System frequency spot readings (Hz).",
)

def _demand_spec(code: str, description: str) -> DatasetSpec:
    # INDO and ITSDO share fields, keys and request windows; only what they measure differs.
    return DatasetSpec(
        code=code,
        path=f"/datasets/{code}",
        fields=_DEMAND_FIELDS,
        required=("startTime", "settlementDate", "settlementPeriod", "demand"),
        key=("settlementDate", "settlementPeriod"),
        time_field="startTime",
        per_period_group=(),
        membership="settlement_date",
        request_plan=_publish_time_plan,
        value_fields=("demand",),
        description=description,
    )


INDO = _demand_spec("INDO", "Initial national demand outturn (MW).")
ITSDO = _demand_spec("ITSDO", "Initial transmission system demand outturn (MW).")

B1610 = DatasetSpec(
    code="B1610",
    path="/datasets/B1610",
    fields={
        "dataset": "str",
        "psrType": "str",
        "bmUnit": "str",
        "nationalGridBmUnitId": "str",
        "settlementDate": "date",
        "settlementPeriod": "int",
        "halfHourEndTime": "datetime",
        "quantity": "float",
    },
    required=("bmUnit", "settlementDate", "settlementPeriod", "halfHourEndTime", "quantity"),
    key=("settlementDate", "settlementPeriod", "bmUnit"),
    time_field="halfHourEndTime",
    per_period_group=None,
    membership="settlement_date",
    request_plan=_per_period_plan,
    # Metered volumes come from the Interim Information settlement run, five days after the day.
    publication_lag_days=6,
    value_fields=("quantity",),
    description="Actual metered generation per BM unit (MWh per settlement period).",
)

PN = DatasetSpec(
    code="PN",
    path="/datasets/PN",
    fields={
        "dataset": "str",
        "settlementDate": "date",
        "settlementPeriod": "int",
        "timeFrom": "datetime",
        "timeTo": "datetime",
        "levelFrom": "int",
        "levelTo": "int",
        "nationalGridBmUnit": "str",
        "bmUnit": "str",
    },
    required=("settlementDate", "settlementPeriod", "timeFrom", "timeTo", "levelFrom", "levelTo", "bmUnit"),
    key=("settlementDate", "settlementPeriod", "bmUnit", "timeFrom"),
    time_field="timeFrom",
    per_period_group=None,
    membership="settlement_date",
    request_plan=_per_period_plan,
    value_fields=("levelFrom", "levelTo"),
    description="Physical notifications: expected MW of each BM unit as point values.",
)

# FUELHH fuel types that read either sign as the Insights API serves them: an interconnector (``INT*``) exporting and
# pumped storage (``PS``) pumping read negative. Every other fuel type generates, and reads zero or more.
INTERCONNECTOR_PREFIX = "INT"
PUMPED_STORAGE = "PS"


def bidirectional(fuel_type: str) -> bool:
    """Whether a FUELHH fuel type may read negative (an interconnector, pumped storage)."""
    return fuel_type.startswith(INTERCONNECTOR_PREFIX) or fuel_type == PUMPED_STORAGE


def bidirectional_expr(fuel_type: pl.Expr) -> pl.Expr:
    """:func:`bidirectional` over a column of fuel types."""
    return fuel_type.str.starts_with(INTERCONNECTOR_PREFIX) | (fuel_type == PUMPED_STORAGE)


# The Power System Resource types AGWS reports (EU Regulation 543/2013 fuel categories).
AGWS_PSR_TYPES = ("Solar", "Wind Offshore", "Wind Onshore")

AGWS = DatasetSpec(
    code="AGWS",
    path="/datasets/AGWS",
    fields={
        "dataset": "str",
        "documentId": "str",
        "documentRevisionNumber": "int",
        "publishTime": "datetime",
        "businessType": "str",
        "psrType": "str",
        "quantity": "float",
        "startTime": "datetime",
        "settlementDate": "date",
        "settlementPeriod": "int",
    },
    required=("psrType", "quantity", "startTime", "settlementDate", "settlementPeriod"),
    key=("settlementDate", "settlementPeriod", "psrType"),
    time_field="startTime",
    # Solar, Wind Offshore and Wind Onshore each cover every period once.
    per_period_group=("psrType",),
    membership="settlement_date",
    request_plan=_publish_time_plan,
    value_fields=("quantity",),
    description="Actual or estimated wind and solar generation, B1630 (MW per psrType).",
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (FUELHH, FREQ, INDO, ITSDO, B1610, PN, AGWS)}


def dataset_spec(name: str) -> DatasetSpec:
    """Look a dataset up by code or lower-case name, with an error listing the known ones."""
    try:
        return DATASETS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown BMRS dataset {name!r}; known: {', '.join(s.code for s in DATASETS.values())}") from None
