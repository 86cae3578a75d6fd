"""Fetch a dataset's settlement days and archive the raw responses, keeping partial fetches on failure."""

import datetime as dt
import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grid_guardian_assets.datasets import DatasetSpec
from grid_guardian_assets.elexon.responses import ElexonError, RawResponse
from grid_guardian_assets.store.raw_archive import RawArchive, RawPartition

if TYPE_CHECKING:
    from grid_guardian_assets.elexon.client import ElexonClient  # the HTTP stack loads where a client is made
    from grid_guardian_assets.validation import ParsedFrame


def fetch_partition(client: "ElexonClient", archive: RawArchive, spec: DatasetSpec, day: dt.date) -> RawPartition:
    """Fetch ``spec``'s settlement ``day`` and archive it.

    Raises:
        ElexonError: after archiving whatever arrived before the failure (marked incomplete).
    """
    responses: list[RawResponse] = []
    try:
        client.fetch_day(spec, day, into=responses)
    except ElexonError as exc:
        partial = RawPartition(spec.code, day, responses, complete=False, error=str(exc))
        archive.save(partial)
        raise
    partition = RawPartition(spec.code, day, responses, complete=True)
    archive.save(partition)
    return partition


@dataclass
class FetchedDay:
    """One dataset's settlement day as a fetch hands it over: where its responses were archived and, when asked, the
    parsed responses (``ParsedFrame``) or why they did not parse; ``error`` when the fetch itself failed. Small and
    picklable: a worker process returns it instead of the responses."""

    dataset: str
    day: dt.date
    path: Path | None = None
    requests: int = 0
    byte_count: int = 0
    synthetic: bool = False
    error: str | None = None
    parsed: "ParsedFrame | None" = None
    parse_error: str | None = None


def fetch_day(client: "ElexonClient", archive: RawArchive, spec: DatasetSpec, day: dt.date, parse: bool) -> FetchedDay:
    """Fetch and archive ``spec``'s ``day`` (``fetch_partition``) and, with ``parse``, parse it (``frame_from_raw``);
    failures come back in the result, not raised."""
    out = FetchedDay(spec.code, day)
    try:
        raw = fetch_partition(client, archive, spec, day)
    except ElexonError as exc:
        out.error = str(exc)
        return out
    out.path, out.requests, out.byte_count, out.synthetic = raw.path, len(raw.responses), raw.byte_count, raw.synthetic
    if parse:
        from grid_guardian_assets.validation import frame_from_raw  # polars and pandera: where a day is parsed

        try:
            out.parsed = frame_from_raw(spec, raw)
        except (ValueError, ElexonError) as exc:
            out.parse_error = str(exc)
    return out


_WORKER_CLIENTS: dict[tuple, "ElexonClient"] = {}


def _fetch_day_in_worker(client_settings: dict[str, Any], archive_root: Path, code: str, day: dt.date,
                         parse: bool) -> FetchedDay:
    from grid_guardian_assets.datasets import DATASETS
    from grid_guardian_assets.elexon.client import ElexonClient

    key = tuple(sorted(client_settings.items()))
    client = _WORKER_CLIENTS.get(key) or _WORKER_CLIENTS.setdefault(key, ElexonClient(**client_settings))
    return fetch_day(client, RawArchive(archive_root), DATASETS[code.lower()], day, parse)


class Prefetcher:
    """Fetches (day, dataset) pairs in the background, in order, a bounded number ahead of their use.

    A backfill validates and stores one day while the next ones download: the wait on the API (or the replay
    server) overlaps the CPU work instead of adding to it. At most ``ahead`` fetches are under way or waiting,
    so memory stays flat however long the range. One worker keeps the requests in order and the rate limiter's
    accounting simple.

    The worker is a thread, or with ``client_settings`` a process of its own (``forkserver``: a fresh interpreter,
    never a fork of a Dagster run's threads), which then also parses the days (``parse``): fetching and parsing take
    the interpreter about as long as the validation and storing that follow, so a long range runs them on the second
    core. A process costs about a second to start: short ranges use the thread.

    Args:
        client: The Insights API client (thread mode; used from the background thread only).
        archive: Where every fetch is archived (also a failed one, by ``fetch_partition``).
        plan: The (day, dataset) pairs in the order :meth:`take` will ask for them.
        ahead: How many fetches may run ahead of :meth:`take`.
        parse: Which datasets (codes) to parse as well as fetch.
        client_settings: ``ElexonClient`` keyword arguments: fetch (and parse) in a worker process.
    """

    def __init__(
        self,
        client: "ElexonClient | None",
        archive: RawArchive,
        plan: Iterable[tuple[dt.date, DatasetSpec]],
        *,
        ahead: int = 4,
        parse: Iterable[str] = (),
        client_settings: dict[str, Any] | None = None,
    ):
        self._client, self._archive, self._parse = client, archive, set(parse)
        self._settings = client_settings
        self._plan: Iterator[tuple[dt.date, DatasetSpec]] = iter(plan)
        if client_settings is None:
            if client is None:
                raise ValueError("Prefetcher needs a client (thread) or client_settings (process)")
            self._pool: Executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="elexon-prefetch")
        else:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("forkserver"))
        self._pending: deque[tuple[dt.date, str, Future[FetchedDay]]] = deque()
        for _ in range(max(1, ahead)):
            self._submit_next()

    def _submit_next(self) -> None:
        item = next(self._plan, None)
        if item is not None:
            day, spec = item
            parse = spec.code in self._parse
            if self._settings is None:
                future = self._pool.submit(fetch_day, self._client, self._archive, spec, day, parse)
            else:
                future = self._pool.submit(_fetch_day_in_worker, self._settings, self._archive.root, spec.code, day, parse)
            self._pending.append((day, spec.code, future))

    def take(self, day: dt.date, spec: DatasetSpec) -> FetchedDay:
        """The fetch of ``spec``'s ``day`` (waiting for it if need be); plan order only."""
        if not self._pending:
            raise LookupError(f"{spec.code} {day} was not in the prefetch plan")
        planned_day, planned_code, future = self._pending.popleft()
        if (planned_day, planned_code) != (day, spec.code):
            raise LookupError(f"asked for {spec.code} {day}, but the plan's next fetch is {planned_code} {planned_day}")
        self._submit_next()
        return future.result()

    def close(self) -> None:
        """Cancel what has not started and wait for what has (its archive file is written completely)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
