"""Fetch one dataset's settlement day and archive the raw responses, keeping partial fetches on failure."""

import datetime as dt

from grid_guardian_assets.datasets import DatasetSpec
from grid_guardian_assets.elexon.client import ElexonClient, ElexonError, RawResponse
from grid_guardian_assets.store.raw_archive import RawArchive, RawPartition


def fetch_partition(client: ElexonClient, archive: RawArchive, spec: DatasetSpec, day: dt.date) -> RawPartition:
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
