"""A client for the Elexon Insights API (https://data.elexon.co.uk/bmrs/api/v1), which needs no key.

``ElexonClient`` loads the HTTP stack (httpx, pyrate-limiter, tenacity) on first use, so that naming the errors or
``RawResponse`` (``elexon.responses``) stays cheap for the Dagster code location.
"""

from typing import TYPE_CHECKING, Any

from grid_guardian_assets.elexon.responses import (
    DEFAULT_BASE_URL,
    ElexonError,
    ElexonRequestError,
    ElexonResponseError,
    RawResponse,
)

if TYPE_CHECKING:
    from grid_guardian_assets.elexon.client import ElexonClient


def __getattr__(name: str) -> Any:
    if name == "ElexonClient":
        from grid_guardian_assets.elexon.client import ElexonClient

        return ElexonClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_BASE_URL",
    "ElexonClient",
    "ElexonError",
    "ElexonRequestError",
    "ElexonResponseError",
    "RawResponse",
]
