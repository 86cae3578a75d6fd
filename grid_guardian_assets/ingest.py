"""Fetch a dataset's settlement days and archive the raw responses, keeping partial fetches on failure."""

import datetime as dt
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from grid_guardian_assets import gaps
from grid_guardian_assets.datasets import DatasetSpec
from grid_guardian_assets.elexon.responses import ElexonError, RawResponse
from grid_guardian_assets.store.raw_archive import RawArchive, RawPartition

if TYPE_CHECKING:
    from grid_guardian_assets.elexon.client import ElexonClient  # the HTTP stack loads where a client is made


def fetch_partition(client: "ElexonClient", archive: RawArchive, spec: DatasetSpec, day: dt.date) -> RawPartition:
    """Fetch ``spec``'s settlement ``day`` and archive it; a day short of periods is fetched once more.

    Where a complete fetch of a settlement-day dataset leaves cells empty, the day is fetched again: if the second fetch
    leaves exactly the same cells empty, the source has confirmed them (``gaps``) and the second fetch is returned with
    ``confirmed_gaps`` set, so validation stores the day with its gap instead of refusing it for ever. If the second
    fetch differs (a truncated response, or a source still filling the day in) nothing is confirmed: the first fetch is
    returned and validation refuses what it lacks, as for any short day; the second is archived as not complete, with
    why, so that re-validating from the archive takes the first too. A rerun fetches afresh.

    Raises:
        ElexonError: after archiving whatever arrived before the failure (marked incomplete).
    """
    partition = _fetch_once(client, archive, spec, day)
    if not gaps.confirmable(spec):
        return partition
    missing = _missing(spec, day, partition)
    if not missing:
        return partition
    again = _fetch_once(client, archive, spec, day, archive_now=False)
    missing_again = _missing(spec, day, again)
    if missing == missing_again:
        again.confirmed_gaps = missing
        archive.save(again)
        return again
    again.complete = False
    again.error = (f"a second fetch to confirm {len(missing)} missing cells came back with "
                   f"{'unreadable bodies' if missing_again is None else len(missing_again)} instead: not confirmed, not used")
    archive.save(again)
    return partition


def _fetch_once(client: "ElexonClient", archive: RawArchive, spec: DatasetSpec, day: dt.date, *,
                archive_now: bool = True) -> RawPartition:
    responses: list[RawResponse] = []
    try:
        client.fetch_day(spec, day, into=responses)
    except ElexonError as exc:
        partial = RawPartition(spec.code, day, responses, complete=False, error=str(exc))
        archive.save(partial)
        raise
    partition = RawPartition(spec.code, day, responses, complete=True)
    if archive_now:
        archive.save(partition)
    return partition


def _missing(spec: DatasetSpec, day: dt.date, partition: RawPartition) -> frozenset[gaps.Cell] | None:
    """The empty cells of a fetch, or ``None`` when its bodies do not parse (validation reports that)."""
    from grid_guardian_assets.validation.parse import frame_from_records  # polars typing only, no pandera

    try:
        records = [r for i, response in enumerate(partition.responses) for r in response.records(f"{spec.code} {day} ({i})")]
    except ElexonError:
        return None
    return gaps.missing_cells(spec, day, typed_rows(spec, frame_from_records(spec, records).frame))


def typed_rows(spec: DatasetSpec, frame) -> list[dict]:
    """The rows of a parsed frame as ``gaps.missing_cells`` reads them: typed, under the spec's field names (NESO's
    ``SETTLEMENT_DATE`` text ``01-Jan-18`` is ``settlementDate`` 2018-01-01 there)."""
    keep = [c for c in ("settlementDate", "settlementPeriod", *(spec.per_period_group or ())) if c in frame.columns]
    return frame.select(keep).to_dicts()


class Prefetcher:
    """Fetches (day, dataset) pairs in a background thread, in order, a bounded number ahead of their use.

    A backfill validates and stores one day while the next ones download: the wait on the API (or the replay
    server) overlaps the CPU work instead of adding to it. At most ``ahead`` fetches are under way or waiting,
    so memory stays flat however long the range. One thread keeps the requests in order and the rate limiter's
    accounting simple.

    Args:
        clients: The client of each source a planned dataset comes from (``DatasetSpec.source``: the Insights API,
            NESO's Data Portal), used from the background thread only.
        archive: Where every fetch is archived (also a failed one, by ``fetch_partition``).
        plan: The (day, dataset) pairs in the order :meth:`take` will ask for them.
        ahead: How many fetches may run ahead of :meth:`take`.
    """

    def __init__(
        self,
        clients: "Mapping[str, ElexonClient]",
        archive: RawArchive,
        plan: Iterable[tuple[dt.date, DatasetSpec]],
        *,
        ahead: int = 4,
    ):
        self._clients, self._archive = clients, archive
        self._plan: Iterator[tuple[dt.date, DatasetSpec]] = iter(plan)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="elexon-prefetch")
        self._pending: deque[tuple[dt.date, str, Future[RawPartition]]] = deque()
        for _ in range(max(1, ahead)):
            self._submit_next()

    def _submit_next(self) -> None:
        item = next(self._plan, None)
        if item is not None:
            day, spec = item
            client = self._clients[spec.source]
            self._pending.append((day, spec.code, self._pool.submit(fetch_partition, client, self._archive, spec, day)))

    def take(self, day: dt.date, spec: DatasetSpec) -> "Future[RawPartition]":
        """The fetch of ``spec``'s ``day`` (its result raises ``ElexonError`` if it failed); plan order only."""
        if not self._pending:
            raise LookupError(f"{spec.code} {day} was not in the prefetch plan")
        planned_day, planned_code, future = self._pending.popleft()
        if (planned_day, planned_code) != (day, spec.code):
            raise LookupError(f"asked for {spec.code} {day}, but the plan's next fetch is {planned_code} {planned_day}")
        self._submit_next()
        return future

    def close(self) -> None:
        """Cancel what has not started and wait for what has (its archive file is written completely)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
