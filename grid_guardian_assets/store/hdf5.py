"""HDF5 stores of validated BMRS frames: one file per dataset, one group per settlement day.

Layout of ``{root}/{dataset}.h5``::

    /partitions/2018-03-01/<column>   one chunked, gzip-compressed 1-D dataset per field
    /partitions/2018-03-01.attrs      rows, time range, sha256 of the content, writer, written_at

Writing a partition replaces exactly that settlement day: the new group is written beside the old one under a
temporary name and swapped in only when complete, under a file lock, so a failed or concurrent write never
leaves a half-written or duplicated day behind.
"""

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandera.errors
import polars as pl
from filelock import FileLock

from grid_guardian_assets.datasets import DatasetSpec
from grid_guardian_assets.settlement import days_between
from grid_guardian_assets.validation.schemas import schema_for

_EPOCH_DATE = dt.date(1970, 1, 1)
_TMP_SUFFIX = ".incoming"


@dataclass(frozen=True)
class StoredPartition:
    """What a write left in the store."""

    dataset: str
    day: dt.date
    rows: int
    path: Path
    file_bytes: int
    sha256: str
    replaced: bool


def _encode(series: pl.Series) -> tuple[np.ndarray, str]:
    """A numpy array HDF5 can hold, and the tag that tells how to decode it."""
    dtype = series.dtype
    if dtype == pl.Utf8:
        encoded = [s.encode("utf-8") for s in series.fill_null("").to_list()]
        width = max((len(b) for b in encoded), default=1) or 1
        return np.array(encoded, dtype=f"S{width}"), "str"
    if dtype == pl.Date:
        return series.cast(pl.Int32).fill_null(0).to_numpy(), "date"
    if isinstance(dtype, pl.Datetime):
        return series.dt.cast_time_unit("us").cast(pl.Int64).fill_null(0).to_numpy(), "datetime_us_utc"
    if dtype.is_integer():
        return series.cast(pl.Int64).fill_null(0).to_numpy(), "int"
    if dtype.is_float():
        return series.cast(pl.Float64).to_numpy(), "float"
    raise TypeError(f"column {series.name!r} has a type the HDF5 store cannot hold: {dtype}")


def _decode(name: str, values: np.ndarray, tag: str, valid: np.ndarray | None) -> pl.Series:
    if tag == "str":
        series = pl.Series(name, values).cast(pl.Binary).cast(pl.Utf8)  # bytes -> str without a Python loop
    elif tag == "date":
        series = pl.Series(name, values, dtype=pl.Int32).cast(pl.Date)
    elif tag == "datetime_us_utc":
        series = pl.Series(name, values, dtype=pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    elif tag == "int":
        series = pl.Series(name, values, dtype=pl.Int64)
    elif tag == "float":
        series = pl.Series(name, values, dtype=pl.Float64)
    else:
        raise ValueError(f"unknown column encoding {tag!r} for {name!r}")
    if valid is not None:
        series = pl.select(pl.when(pl.Series(valid)).then(series).otherwise(None)).to_series().rename(name)
    return series


def frame_sha256(frame: pl.DataFrame) -> str:
    """A content hash of a frame, stable across writes (used to show that a rewrite changed nothing)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(frame.columns).encode())
    for column in frame.columns:
        digest.update(frame[column].cast(pl.Utf8).fill_null("\x00null").str.join("\x1f").item().encode())
    return digest.hexdigest()


def _refuse_invalid(spec: DatasetSpec, day: dt.date, frame: pl.DataFrame) -> None:
    """Last line of defence: whatever path a frame took, one that breaks its schema or keys is not stored."""
    try:
        schema_for(spec).validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        first = exc.failure_cases.row(0, named=True)
        raise ValueError(
            f"{spec.code} {day}: refusing to store a frame that fails its schema "
            f"({exc.failure_cases.height} problems; first: {first['column']} {first['check']} {first['failure_case']!r})"
        ) from None
    duplicated = frame.select(pl.struct(list(spec.key)).is_duplicated().sum()).item()
    if duplicated:
        raise ValueError(f"{spec.code} {day}: refusing to store a frame with {duplicated} rows sharing a key {spec.key}")


class HDF5Store:
    """Per-dataset HDF5 files of validated partitions under ``root``.

    Args:
        root: Folder of the ``{dataset}.h5`` files (and their ``.lock`` files).
        lock_timeout_s: How long a writer waits for another writer before giving up with an error.
    """

    def __init__(self, root: str | Path, *, lock_timeout_s: float = 120.0):
        self.root = Path(root)
        self.lock_timeout_s = lock_timeout_s

    def path(self, spec: DatasetSpec) -> Path:
        return self.root / f"{spec.name}.h5"

    def _lock(self, spec: DatasetSpec) -> FileLock:
        return FileLock(str(self.path(spec)) + ".lock", timeout=self.lock_timeout_s)

    def write_partition(self, spec: DatasetSpec, day: dt.date, frame: pl.DataFrame, *, writer: str = "") -> StoredPartition:
        """Replace settlement ``day`` of ``spec`` with ``frame`` (validated rows, in the spec's fields)."""
        missing = [f for f in spec.fields if f not in frame.columns]
        if missing:
            raise ValueError(f"{spec.code} {day}: frame lacks fields {missing}; refusing to store it")
        frame = frame.select(list(spec.fields))
        _refuse_invalid(spec, day, frame)
        self.root.mkdir(parents=True, exist_ok=True)
        key = day.isoformat()
        sha = frame_sha256(frame)
        with self._lock(spec), h5py.File(self.path(spec), "a") as h5:
            parts = h5.require_group("partitions")
            tmp_name = key + _TMP_SUFFIX
            if tmp_name in parts:  # left by a writer that died mid-write
                del parts[tmp_name]
            group = parts.create_group(tmp_name)
            for column in frame.columns:
                values, tag = _encode(frame[column])
                ds = group.create_dataset(
                    column,
                    data=values,
                    chunks=(min(max(len(values), 1), 65_536),) if len(values) else None,
                    compression="gzip" if len(values) else None,
                    compression_opts=4 if len(values) else None,
                    shuffle=bool(len(values)),
                    maxshape=(None,),
                )
                ds.attrs["encoding"] = tag
                nulls = frame[column].is_null()
                if nulls.any():
                    group.create_dataset(column + ".valid", data=(~nulls).to_numpy(), compression="gzip")
            time_col = frame[spec.time_field].drop_nulls()
            group.attrs.update(
                {
                    "rows": frame.height,
                    "sha256": sha,
                    "writer": writer,
                    "written_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                    "time_min": time_col.min().isoformat() if time_col.len() else "",
                    "time_max": time_col.max().isoformat() if time_col.len() else "",
                    "columns": json.dumps(frame.columns),
                }
            )
            replaced = key in parts
            if replaced:
                del parts[key]
            parts.move(tmp_name, key)
            h5.flush()
        return StoredPartition(spec.code, day, frame.height, self.path(spec), self.path(spec).stat().st_size, sha, replaced)

    def days(self, spec: DatasetSpec) -> list[dt.date]:
        """Settlement days held for ``spec``, in order."""
        if not self.path(spec).exists():
            return []
        with h5py.File(self.path(spec), "r") as h5:
            names = list(h5["partitions"]) if "partitions" in h5 else []
        return sorted(dt.date.fromisoformat(n) for n in names if not n.endswith(_TMP_SUFFIX))

    def partition_info(self, spec: DatasetSpec, day: dt.date) -> dict[str, object] | None:
        if not self.path(spec).exists():
            return None
        with h5py.File(self.path(spec), "r") as h5:
            group = h5.get(f"partitions/{day.isoformat()}")
            return dict(group.attrs) if group is not None else None

    def read_range(self, spec: DatasetSpec, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Validated rows of settlement days ``start``..``end`` inclusive, sorted by time then key."""
        frames = []
        if self.path(spec).exists():
            with h5py.File(self.path(spec), "r") as h5:
                parts = h5.get("partitions")
                for day in days_between(start, end):
                    group = parts.get(day.isoformat()) if parts is not None else None
                    if group is not None:
                        frames.append(self._read_group(spec, group))
        if not frames:
            return pl.DataFrame(schema=spec.polars_schema())
        return pl.concat(frames).sort([spec.time_field, *spec.key], nulls_last=True)

    @staticmethod
    def _read_group(spec: DatasetSpec, group: h5py.Group) -> pl.DataFrame:
        columns = []
        for name in spec.fields:
            ds = group[name]
            valid = group[name + ".valid"][()] if name + ".valid" in group else None
            columns.append(_decode(name, ds[()], ds.attrs["encoding"], valid))
        return pl.DataFrame(columns)
