"""Validated frames as Parquet, one file per dataset and settlement day: ``{root}/{asset}/{day}.parquet``.

The ``*_frames`` assets keep their output here so that a later run can store a day again (or an analyst can read
it) without fetching or validating it a second time.
"""

import datetime as dt
from pathlib import Path

import polars as pl


class FrameStore:
    """Parquet files of validated frames under ``root``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, asset: str, day: dt.date) -> Path:
        return self.root / asset / f"{day.isoformat()}.parquet"

    def write(self, asset: str, day: dt.date, frame: pl.DataFrame) -> Path:
        """Replace the day's file atomically (a reader never sees half a file)."""
        path = self.path(asset, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        frame.write_parquet(tmp)
        tmp.replace(path)
        return path

    def read(self, asset: str, day: dt.date) -> pl.DataFrame:
        path = self.path(asset, day)
        if not path.exists():
            raise FileNotFoundError(f"no validated frame for {asset} {day.isoformat()} at {path}; materialise {asset} first")
        return pl.read_parquet(path)
