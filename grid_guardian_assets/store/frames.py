"""Validated frames as Parquet, one file per dataset and settlement day: ``{root}/{asset}/{day}.parquet``.

The ``*_frames`` assets keep their output here so that a later run can store a day again (or an analyst can read
it) without fetching or validating it a second time.
"""

import datetime as dt
import json
from pathlib import Path

import polars as pl

from grid_guardian_assets import gaps as _gaps

# Parquet key-value metadata: the day's recorded gap (``gaps``), as JSON.
GAPS_KEY = "grid_guardian.gaps"


class FrameStore:
    """Parquet files of validated frames under ``root``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, asset: str, day: dt.date) -> Path:
        return self.root / asset / f"{day.isoformat()}.parquet"

    def write(self, asset: str, day: dt.date, frame: pl.DataFrame, *, gaps: "frozenset[_gaps.Cell]" = frozenset()) -> Path:
        """Replace the day's file atomically (a reader never sees half a file), with its recorded gap if any."""
        path = self.path(asset, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        frame.write_parquet(tmp, metadata={GAPS_KEY: json.dumps(_gaps.to_json(gaps))} if gaps else None)
        tmp.replace(path)
        return path

    def read(self, asset: str, day: dt.date) -> pl.DataFrame:
        path = self.path(asset, day)
        if not path.exists():
            raise FileNotFoundError(f"no validated frame for {asset} {day.isoformat()} at {path}; materialise {asset} first")
        return pl.read_parquet(path)

    def read_gaps(self, asset: str, day: dt.date) -> "frozenset[_gaps.Cell]":
        """The day's recorded gap (empty when the day is whole)."""
        text = pl.read_parquet_metadata(self.path(asset, day)).get(GAPS_KEY)
        return (_gaps.from_json(json.loads(text)) or frozenset()) if text else frozenset()
