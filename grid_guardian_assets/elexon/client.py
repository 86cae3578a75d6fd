"""HTTP client for the Insights API: request windows, a shared rate limit, retries that honour Retry-After.

Elexon replaced the old BMRS API (api.bmreports.com, shut down 2024-05-31) with the Insights API; this client
keeps what ElexonDataPortal did well (standard dataset names, automatic splitting of date ranges) on the new API.
"""

import datetime as dt
import email.utils
import logging
from pathlib import Path

import httpx
from pyrate_limiter import BucketFullException, Duration, InMemoryBucket, Limiter, LimiterDelayException, Rate, SQLiteBucket
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from grid_guardian_assets.datasets import DatasetSpec
from grid_guardian_assets.elexon.responses import (  # re-exported: the client's callers name them here too
    DEFAULT_BASE_URL,
    DEFAULT_REQUESTS_PER_MINUTE,
    SYNTHETIC_HEADER,
    ElexonError,
    ElexonRequestError,
    ElexonResponseError,
    RawResponse,
)
from grid_guardian_assets.settlement import days_between

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_REQUESTS_PER_MINUTE",
    "SYNTHETIC_HEADER",
    "ElexonClient",
    "ElexonError",
    "ElexonRequestError",
    "ElexonResponseError",
    "RawResponse",
]

log = logging.getLogger(__name__)


class _RetryableStatus(Exception):
    def __init__(self, status: int, retry_after: float | None, body: str):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after
        self.body = body


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


class _WaitRetryAfterOrBackoff:
    """Wait what the server's Retry-After asks (capped), else exponential backoff with full jitter."""

    def __init__(self, backoff_base: float, backoff_max: float):
        self.backoff = wait_random_exponential(multiplier=backoff_base, max=backoff_max)
        self.backoff_max = backoff_max

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        fallback = self.backoff(state)
        if isinstance(exc, _RetryableStatus) and exc.retry_after is not None:
            return min(max(exc.retry_after, fallback), max(self.backoff_max, exc.retry_after))
        return fallback


class ElexonClient:
    """Fetches BMRS datasets from the Insights API (or anything that answers like it).

    Args:
        base_url: API root, e.g. ``https://data.elexon.co.uk/bmrs/api/v1``.
        timeout_s: Per-request timeout.
        max_attempts: Tries per request before a clear :class:`ElexonRequestError`.
        requests_per_minute: Client-side ceiling; with ``limiter_db`` it is shared by every process using that file.
        limiter_db: SQLite file that holds the shared rate-limit bucket; ``None`` limits this process only.
        backoff_base_s: First backoff step; later ones grow exponentially with full jitter.
        backoff_max_s: Longest single wait.
        limiter_max_wait_s: Longest wait for the shared request budget before giving up with an error.
        transport: An httpx transport, for tests that need one.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout_s: float = 30.0,
        max_attempts: int = 5,
        requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE,
        limiter_db: str | Path | None = None,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        limiter_max_wait_s: float = 65.0,
        transport: httpx.BaseTransport | None = None,
    ):
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.base_url = base_url.rstrip("/")
        self.max_attempts = max_attempts
        self._wait = _WaitRetryAfterOrBackoff(backoff_base_s, backoff_max_s)
        rates = [Rate(requests_per_minute, Duration.MINUTE)]
        if limiter_db is not None:
            Path(limiter_db).parent.mkdir(parents=True, exist_ok=True)
            bucket = SQLiteBucket.init_from_file(rates, db_path=str(limiter_db), use_file_lock=True)
        else:
            bucket = InMemoryBucket(rates)
        # Wait (by default a little over the one-minute window) rather than fail when the shared budget is spent.
        self.requests_per_minute = requests_per_minute
        self._limiter = Limiter(bucket, raise_when_fail=True, max_delay=int(limiter_max_wait_s * 1000))
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "grid-guardian/0.1"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ElexonClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, params: dict[str, str], *, context: str) -> RawResponse:
        """GET ``path`` with retries on 429, 5xx and transport errors; ``context`` names the work in errors."""
        url = f"{self.base_url}{path}"
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type((_RetryableStatus, httpx.TransportError)),
            reraise=True,
            before_sleep=lambda s: log.warning(
                "%s: %s (attempt %d/%d), retrying", context, s.outcome.exception(), s.attempt_number, self.max_attempts
            ),
        )
        full_url = str(httpx.URL(url, params=params))
        try:
            return retrying(self._get_once, url, params)
        except _RetryableStatus as exc:
            raise ElexonRequestError(
                f"{context}: GET {full_url} failed after {self.max_attempts} attempts: HTTP {exc.status} "
                f"{exc.body[:200]!r}",
                url=full_url,
                status=exc.status,
                attempts=self.max_attempts,
            ) from None
        except httpx.TransportError as exc:
            raise ElexonRequestError(
                f"{context}: GET {full_url} failed after {self.max_attempts} attempts: {type(exc).__name__}: {exc}",
                url=full_url,
                status=None,
                attempts=self.max_attempts,
            ) from None
        except _RateBudgetExhausted as exc:
            raise ElexonRequestError(
                f"{context}: GET {full_url} not sent: the shared budget of {exc.per_minute} requests a minute "
                f"stayed spent for longer than the limiter may wait ({exc.detail})",
                url=full_url,
                status=None,
                attempts=0,
            ) from None
        except _FatalStatus as exc:
            raise ElexonRequestError(
                f"{context}: GET {full_url} answered HTTP {exc.status} (not retryable): {exc.body[:300]!r}",
                url=full_url,
                status=exc.status,
                attempts=1,
            ) from None

    def _get_once(self, url: str, params: dict[str, str]) -> RawResponse:
        try:
            self._limiter.try_acquire("elexon-insights-api")
        except (BucketFullException, LimiterDelayException) as exc:
            raise _RateBudgetExhausted(self.requests_per_minute, " ".join(str(exc).split())) from None
        response = self._http.get(url, params=params)
        body = response.text
        if response.status_code == 429 or response.status_code >= 500:
            raise _RetryableStatus(response.status_code, _retry_after_seconds(response.headers.get("retry-after")), body)
        if response.status_code >= 400:
            raise _FatalStatus(response.status_code, body)
        return RawResponse(
            url=str(response.request.url),
            params=dict(params),
            status=response.status_code,
            body=body,
            fetched_at=dt.datetime.now(dt.UTC).isoformat(),
            synthetic=response.headers.get(SYNTHETIC_HEADER, "").lower() == "true",
            headers={k: v for k, v in response.headers.items() if k.lower() in ("content-type", SYNTHETIC_HEADER)},
        )

    def fetch_day(self, spec: DatasetSpec, day: dt.date, *, into: list[RawResponse] | None = None) -> list[RawResponse]:
        """Every response that together makes up ``spec``'s settlement ``day``.

        ``into`` receives each response as it arrives, so a caller keeps what was fetched before a failure.
        """
        responses = into if into is not None else []
        try:
            plan = spec.request_plan(day)
        except ValueError as exc:  # a day the API cannot be asked for (NESO: a year without a known resource)
            raise ElexonRequestError(f"{spec.code} partition {day.isoformat()}: {exc}", url=f"{self.base_url}{spec.path}",
                                     status=None, attempts=0) from None
        for i, params in enumerate(plan, 1):
            context = f"{spec.code} partition {day.isoformat()} (request {i}/{len(plan)})"
            responses.append(self.get(spec.path, params, context=context))
        return responses

    def fetch_range(self, spec: DatasetSpec, start: dt.date, end: dt.date) -> dict[dt.date, list[RawResponse]]:
        """Settlement days ``start``..``end`` inclusive, split into the windows the API allows."""
        return {day: self.fetch_day(spec, day) for day in days_between(start, end)}


class _FatalStatus(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


class _RateBudgetExhausted(Exception):
    def __init__(self, per_minute: int, detail: str):
        super().__init__(detail)
        self.per_minute = per_minute
        self.detail = detail
