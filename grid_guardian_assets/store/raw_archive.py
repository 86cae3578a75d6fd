"""A compressed archive of raw Insights API responses, one file per fetch of a partition.

Nothing fetched is thrown away: every fetch (complete or cut short by an error) gets its own gzip'd JSON file,
so a partition that fails validation can be inspected and re-validated later without calling the API again.
"""

import datetime as dt
import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import orjson

from grid_guardian_assets import gaps
from grid_guardian_assets.elexon.responses import RawResponse


@dataclass
class RawPartition:
    """The responses of one fetch of one dataset's settlement day."""

    dataset: str
    day: dt.date
    responses: list[RawResponse]
    complete: bool
    path: Path | None = None
    error: str | None = None
    # Cells (group, settlement period) the source confirmed it does not have: missing from two fetches alike
    # (``gaps``). ``None``: not confirmed (a whole day, or a fetch that was not repeated).
    confirmed_gaps: frozenset[gaps.Cell] | None = None

    @property
    def synthetic(self) -> bool:
        return any(r.synthetic for r in self.responses)

    @property
    def byte_count(self) -> int:
        return sum(len(r.body.encode()) for r in self.responses)


class RawArchive:
    """Gzip'd JSON files under ``root/{dataset}/{day}/{fetched-at}.json.gz``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _day_dir(self, dataset: str, day: dt.date) -> Path:
        return self.root / dataset.lower() / day.isoformat()

    def save(self, partition: RawPartition) -> Path:
        """Write ``partition`` as a new file (never overwriting an earlier fetch) and return its path."""
        folder = self._day_dir(partition.dataset, partition.day)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = folder / f"{stamp}.json.gz"
        document = {
            "dataset": partition.dataset,
            "day": partition.day.isoformat(),
            "complete": partition.complete,
            "error": partition.error,
            "confirmed_gaps": None if partition.confirmed_gaps is None else gaps.to_json(partition.confirmed_gaps),
            "responses": [r.to_json() for r in partition.responses],
        }
        tmp = path.with_suffix(".tmp")
        # One encode and one compress: json.dump into a gzip text stream writes thousands of small pieces. orjson
        # encodes the bodies (JSON inside a JSON string: every quote escaped) several times faster than json, and
        # this runs in a backfill's fetch thread, beside the validation thread that needs the same interpreter lock.
        tmp.write_bytes(gzip.compress(orjson.dumps(document), compresslevel=6))
        tmp.replace(path)  # a reader never sees half a file
        partition.path = path
        return path

    def fetches(self, dataset: str, day: dt.date) -> list[Path]:
        """Every archived fetch of the partition, oldest first."""
        folder = self._day_dir(dataset, day)
        return sorted(folder.glob("*.json.gz")) if folder.exists() else []

    def latest(self, dataset: str, day: dt.date, *, complete_only: bool = True) -> RawPartition:
        """The newest archived fetch (by default the newest complete one), with an error if there is none."""
        for path in reversed(self.fetches(dataset, day)):
            partition = self.load(path)
            if partition.complete or not complete_only:
                return partition
        raise FileNotFoundError(
            f"no {'complete ' if complete_only else ''}raw fetch of {dataset.upper()} {day.isoformat()} "
            f"under {self._day_dir(dataset, day)}"
        )

    @staticmethod
    def load(path: str | Path) -> RawPartition:
        path = Path(path)
        try:
            document = orjson.loads(gzip.decompress(path.read_bytes()))
        except (OSError, EOFError, zlib.error, orjson.JSONDecodeError) as exc:
            raise ValueError(f"raw archive file {path} is unreadable: {exc}") from exc
        return RawPartition(
            dataset=document["dataset"],
            day=dt.date.fromisoformat(document["day"]),
            responses=[RawResponse.from_json(r) for r in document["responses"]],
            complete=document["complete"],
            path=path,
            error=document.get("error"),
            confirmed_gaps=gaps.from_json(document.get("confirmed_gaps")),
        )
