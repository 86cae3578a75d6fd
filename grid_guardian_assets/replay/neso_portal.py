"""NESO's Data Portal (a CKAN ``datastore_search`` API) answering from the bundled historic demand files.

``GET {base}/datastore_search?resource_id=…&filters={"SETTLEMENT_DATE": "01-Jan-18"}&limit=…&offset=…`` answers as
CKAN does: ``{"help", "success", "result": {"resource_id", "fields", "records", "filters", "limit", "offset",
"total", "_links"}}``, each record the file's row with its ``_id`` (its 1-based row in the year's resource) and its
values as the file holds them (``SETTLEMENT_DATE`` as ``01-Jan-18``, MW as integers, an empty cell as ``null``).
An unknown resource is CKAN's 404; a filter on a field the resource lacks is CKAN's 409. The resources are NESO's
historic demand data, one a year (``datasets.NESO_DEMAND_RESOURCES``): 2018 and 2021 are bundled (see
data/neso_demand_2018 and data/neso_demand_2021); another year's resource is CKAN's 404, naming the bundled years, so
a backfill of it fails clearly instead of storing empty days.
"""

import json
from functools import cache
from typing import Any

import polars as pl

from grid_guardian_assets.datasets import NESO_DEMAND_RESOURCES
from grid_guardian_assets.replay import neso

SOURCE = "NESO historic demand data (real); supported by National Grid ESO Open Data"
HELP = "https://api.neso.energy/api/3/action/help_show?name=datastore_search"
MAX_LIMIT = 32_000  # CKAN's ceiling on one page


class CkanError(ValueError):
    """A request CKAN refuses: ``status`` and CKAN's error object."""

    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind = status, kind

    def body(self) -> dict[str, Any]:
        return {"help": HELP, "success": False, "error": {"__type": self.kind, "message": str(self)}}


@cache
def _resource_rows(year: int) -> pl.DataFrame:
    """The year's resource as the portal holds it: the file's columns, with ``_id`` first."""
    frame = neso.neso_year_file(year)
    return frame.with_row_index("_id", offset=1).with_columns(pl.col("_id").cast(pl.Int64))


def _year_of(resource_id: str) -> int:
    for year, known in NESO_DEMAND_RESOURCES.items():
        if known == resource_id and year in neso.BUNDLED_YEARS:
            return year
        if known == resource_id:
            raise CkanError(404, "Not Found Error", f'Not found: Resource "{resource_id}" (NESO historic demand {year}) is not in '
                            f"this replay, which holds {', '.join(map(str, neso.BUNDLED_YEARS))}.")
    raise CkanError(404, "Not Found Error", f'Not found: Resource "{resource_id}" was not found.')


def datastore_search(params: dict[str, list[str]], base_url: str) -> dict[str, Any]:
    """The ``datastore_search`` answer to a request's query parameters (CKAN's shape; see the module docstring)."""
    resource_id = (params.get("resource_id") or params.get("id") or [""])[0]
    if not resource_id:
        raise CkanError(409, "Validation Error", "resource_id: Missing value")
    year = _year_of(resource_id)
    try:
        filters = json.loads((params.get("filters") or ["{}"])[0])
        limit = min(int((params.get("limit") or ["100"])[0]), MAX_LIMIT)
        offset = int((params.get("offset") or ["0"])[0])
    except (ValueError, json.JSONDecodeError) as exc:
        raise CkanError(409, "Validation Error", f"bad query parameter: {exc}") from None
    if not isinstance(filters, dict):
        raise CkanError(409, "Validation Error", "filters: must be a JSON object")
    rows = _resource_rows(year)
    for field, value in filters.items():
        if field not in rows.columns:
            raise CkanError(409, "Validation Error", f'filters: field "{field}" not in resource')
        wanted = value if isinstance(value, list) else [value]
        rows = rows.filter(pl.col(field).cast(pl.Utf8).is_in([str(v) for v in wanted]))
    page = rows.slice(offset, limit)
    query = f"resource_id={resource_id}&limit={limit}"
    return {
        "help": HELP,
        "success": True,
        "result": {
            "include_total": True,
            "resource_id": resource_id,
            "fields": [{"id": c, "type": "int" if rows[c].dtype.is_integer() else "text"} for c in rows.columns],
            "records_format": "objects",
            "records": page.to_dicts(),
            "filters": filters,
            "limit": limit,
            "offset": offset,
            "total": rows.height,
            "_links": {"start": f"{base_url}/datastore_search?{query}",
                       "next": f"{base_url}/datastore_search?{query}&offset={offset + limit}"},
        },
    }
