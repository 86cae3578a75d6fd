"""The BMRS datasets Grid Guardian ingests, described once: endpoint, request windows, fields and keys.

Field names and parameters come from the Elexon Insights API's OpenAPI spec
(``/datasets/{CODE}`` endpoints); everything downstream (validation, HDF5 store, CLI, Kafka messages) uses the
API's own field names so that any Insights API reader can feed or check the pipeline.
"""

import datetime as dt
import json
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
# Which API serves a dataset: Elexon's Insights API, or NESO's Data Portal (CKAN).
Source = Literal["elexon", "neso"]


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
        publication_lag_days: How long after a settlement day its publisher publishes the dataset.
        description: One line for asset descriptions.
        source: The API that serves it (``elexon``: the Insights API; ``neso``: NESO's Data Portal).
        aliases: Field → the names the API gives it, first found wins (NESO's ``SETTLEMENT_DATE`` is
            ``settlementDate`` here, so that every dataset is keyed alike; its French flow was renamed ``IFA_FLOW``).
        optional_fields: Fields a response may lack altogether (a column a year's file does not have): no drift.
        ignored_fields: Fields the API sends that are not kept and not drift (CKAN's row number ``_id``).
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
    source: Source = "elexon"
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    optional_fields: tuple[str, ...] = ()
    ignored_fields: tuple[str, ...] = ()

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

# NESO's historic demand data (dataset 8f2fe0af-871c-488d-8bad-960426f24601 on api.neso.energy): one datastore
# resource a year.
NESO_DEMAND_RESOURCES: dict[int, str] = {
    2016: "3bb75a28-ab44-4a0b-9b1c-9be9715d3c44",
    2017: "2f0f75b8-39c5-46ff-a914-ae38088ed022",
    2018: "fcb12133-0db0-4f27-a4a5-1669fd9f6d33",
    2019: "dd9de980-d724-415a-b344-d8ae11321432",
    2020: "33ba6857-2a55-479f-9308-e5c4c53d4381",
    2021: "18c69c42-f20d-46f0-84e9-e279045befc6",
    2022: "bb44a1b5-75b1-4db2-8491-257f23385006",
    2023: "bf5ab335-9b40-4ea4-b93a-ab4af7bce003",
    2024: "f6d02c0f-957b-48cb-82ee-09003f2ba759",
    2025: "b2bde559-3455-4021-b179-dfe60c0337b0",
}
# A settlement day has at most 50 rows; one page holds it.
NESO_PAGE_LIMIT = 100


def neso_date_text(day: dt.date) -> str:
    """A settlement day as NESO's historic demand resources hold it (``01-Jan-18``)."""
    return day.strftime("%d-%b-%y")


def _neso_demand_plan(day: dt.date) -> list[dict[str, str]]:
    resource = NESO_DEMAND_RESOURCES.get(day.year)
    if resource is None:
        known = f"{min(NESO_DEMAND_RESOURCES)}-{max(NESO_DEMAND_RESOURCES)}"
        raise ValueError(f"no NESO historic demand resource is known for {day.year} (known: {known}); add it to NESO_DEMAND_RESOURCES")
    return [{"resource_id": resource, "filters": json.dumps({"SETTLEMENT_DATE": neso_date_text(day)}),
             "limit": str(NESO_PAGE_LIMIT)}]


# NESO's interconnector flows: its 2018 files call IFA's flow FRENCH_FLOW, later ones IFA_FLOW.
NESO_FLOW_FIELDS = ("IFA_FLOW", "IFA2_FLOW", "BRITNED_FLOW", "MOYLE_FLOW", "EAST_WEST_FLOW", "NEMO_FLOW", "NSL_FLOW",
                    "ELECLINK_FLOW")
_NESO_OPTIONAL = ("ENGLAND_WALES_DEMAND", "GEN_DEM", "EMBEDDED_WIND_GENERATION", "EMBEDDED_WIND_CAPACITY",
                  "EMBEDDED_SOLAR_GENERATION", "EMBEDDED_SOLAR_CAPACITY", "NON_BM_STOR", "PUMP_STORAGE_PUMPING",
                  *NESO_FLOW_FIELDS)

NESO_DEMAND = DatasetSpec(
    code="NESO_DEMAND",
    path="/datastore_search",
    fields={"settlementDate": "date", "settlementPeriod": "int", "ND": "int", "TSD": "int", **dict.fromkeys(_NESO_OPTIONAL, "int")},
    required=("settlementDate", "settlementPeriod", "ND", "TSD"),
    key=("settlementDate", "settlementPeriod"),
    time_field="settlementPeriod",
    per_period_group=(),
    membership="settlement_date",
    request_plan=_neso_demand_plan,
    # NESO's Demand Data Update refreshes the historic file daily, before midday.
    publication_lag_days=1,
    value_fields=("ND", "TSD"),
    description="NESO historic demand: national (ND) and transmission system (TSD) demand, embedded wind and solar, "
    "pumping and interconnector flows (MW, imports positive).",
    source="neso",
    aliases={"settlementDate": ("SETTLEMENT_DATE",), "settlementPeriod": ("SETTLEMENT_PERIOD",), "IFA_FLOW": ("IFA_FLOW", "FRENCH_FLOW")},
    optional_fields=_NESO_OPTIONAL,
    ignored_fields=("_id",),
)

# The datasets streamed live (Kafka topics) are the Insights API's; the daily chains store NESO's demand beside them.
DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (FUELHH, FREQ, INDO, ITSDO, B1610, PN, AGWS)}
STORED_DATASETS: dict[str, DatasetSpec] = {**DATASETS, NESO_DEMAND.name: NESO_DEMAND}


def dataset_spec(name: str) -> DatasetSpec:
    """Look a dataset up by code or lower-case name, with an error listing the known ones."""
    try:
        return STORED_DATASETS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(s.code for s in STORED_DATASETS.values())}") from None
