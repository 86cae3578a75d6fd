"""A client for the Elexon Insights API (https://data.elexon.co.uk/bmrs/api/v1), which needs no key."""

from grid_guardian_assets.elexon.client import (
    DEFAULT_BASE_URL,
    ElexonClient,
    ElexonError,
    ElexonRequestError,
    ElexonResponseError,
    RawResponse,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "ElexonClient",
    "ElexonError",
    "ElexonRequestError",
    "ElexonResponseError",
    "RawResponse",
]
