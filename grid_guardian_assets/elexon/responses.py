"""The Insights API's light vocabulary: its defaults, errors and the verbatim response record.

Kept apart from ``client.py`` (httpx, pyrate-limiter, tenacity) so that the Dagster code location, the raw
archive and the replay server can name these without importing the HTTP stack.
"""

from dataclasses import dataclass, field
from typing import Any

import orjson

from grid_guardian_assets.settings import ELEXON_API_BASE_URL

DEFAULT_BASE_URL = ELEXON_API_BASE_URL.default
# Elexon's published fair-use ceiling is 5,000 requests a minute; stay under it across every run.
DEFAULT_REQUESTS_PER_MINUTE = 4500
SYNTHETIC_HEADER = "x-grid-guardian-synthetic"


class ElexonError(RuntimeError):
    """Any failure to get usable data from the Insights API."""


class ElexonRequestError(ElexonError):
    """A request failed for good: a non-retryable status, or retries ran out."""

    def __init__(self, message: str, *, url: str, status: int | None, attempts: int):
        super().__init__(message)
        self.url = url
        self.status = status
        self.attempts = attempts


class ElexonResponseError(ElexonError):
    """A response arrived but is not what the API's spec promises (not JSON, no data array, ...)."""


@dataclass
class RawResponse:
    """One HTTP exchange, kept verbatim so that a partition can be re-validated without fetching again."""

    url: str
    params: dict[str, str]
    status: int
    body: str
    fetched_at: str
    synthetic: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RawResponse":
        return cls(**data)

    def records(self, context: str) -> list[dict[str, Any]]:
        """The response's rows, with an error naming ``context`` and the URL when the body is malformed."""
        try:
            payload = orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            snippet = self.body[:120].replace("\n", " ")
            raise ElexonResponseError(
                f"{context}: malformed JSON from {self.url} ({exc.msg} at char {exc.pos}); body starts {snippet!r}"
            ) from None
        # /datasets/X answers {"data": [...]}; the /stream variants answer a bare array; NESO's CKAN datastore_search
        # answers {"success": true, "result": {"records": [...]}}.
        if isinstance(payload, dict) and isinstance(payload.get("result"), dict) and "records" in payload["result"]:
            rows = payload["result"]["records"]
        else:
            rows = payload.get("data") if isinstance(payload, dict) else payload
        if not isinstance(rows, list):
            raise ElexonResponseError(
                f"{context}: response from {self.url} has no 'data' array (top-level keys: "
                f"{sorted(payload) if isinstance(payload, dict) else type(payload).__name__})"
            )
        bad = next((i for i, row in enumerate(rows) if not isinstance(row, dict)), None)
        if bad is not None:
            raise ElexonResponseError(f"{context}: row {bad} from {self.url} is not a JSON object: {rows[bad]!r:.80}")
        return rows
