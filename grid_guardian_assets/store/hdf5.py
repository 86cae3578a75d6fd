"""HDF5 stores of validated BMRS frames: one file per dataset, one group per calendar month of settlement days.

Layout of ``{root}/{dataset}.h5``::

    /months/2018-03/<field>          one chunked, gzip-compressed 1-D dataset per field, rows sorted by day then time
    /months/2018-03/<field>.valid    present only when the field has nulls
    /months/2018-03/_day             the settlement day of each row (days since 1970-01-01)
    /months/2018-03/days/*           per stored day: date, rows, sha256, written_at, writer

Months rather than days keep a year's range read to a few dozen dataset reads. Writing a settlement day rewrites
its month with exactly that day replaced: the new month is written beside the old one under a temporary name and
swapped in only when complete, under a file lock, so a failed or concurrent write never leaves a half-written or
duplicated day behind.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandera.errors
import polars as pl
from filelock import FileLock

from grid_guardian_assets import gaps
from grid_guardian_assets.datasets import DatasetSpec
from grid_guardian_assets.store.h5atomic import committed, replace_group
from grid_guardian_assets.validation.schemas import schema_for

_EPOCH_DATE = dt.date(1970, 1, 1)


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


def _refuse_invalid(spec: DatasetSpec, day: dt.date, frame: pl.DataFrame, *, schema: bool = True) -> None:
    """Last line of defence: whatever path a frame took, one that breaks its schema or keys is not stored."""
    try:
        if schema:
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


_DAY = "_day"
_DAY_FIELDS = {"date": "int32", "rows": "int64", "sha256": "S64", "written_at": "S40", "writer": "S64"}
# Per stored day, the cells the source confirmed it does not have (``gaps``), as JSON; "" for a whole day. Months
# written before gaps were recorded have no such dataset: their days are whole.
_GAPS = "gaps"
_DAY_SCHEMA = {"date": pl.Int32, "rows": pl.Int64, "sha256": pl.Utf8, "written_at": pl.Utf8, "writer": pl.Utf8, _GAPS: pl.Utf8}


def _month_key(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _day_number(day: dt.date) -> int:
    return (day - _EPOCH_DATE).days


def _write_column(group: h5py.Group, name: str, series: pl.Series) -> None:
    values, tag = _encode(series)
    n = len(values)
    ds = group.create_dataset(
        name,
        data=values,
        chunks=(min(n, 65_536),) if n else None,
        compression="gzip" if n else None,
        compression_opts=4 if n else None,
        shuffle=bool(n),
    )
    ds.attrs["encoding"] = tag
    nulls = series.is_null()
    if nulls.any():
        group.create_dataset(name + ".valid", data=(~nulls).to_numpy(), compression="gzip")


def _read_columns(group: h5py.Group, names: list[str], rows: slice = slice(None)) -> pl.DataFrame:
    columns = []
    for name in names:
        ds = group[name]
        valid = group[name + ".valid"][rows] if name + ".valid" in group else None
        columns.append(_decode(name, ds[rows], ds.attrs["encoding"], valid))
    return pl.DataFrame(columns)


def _read_days(group: h5py.Group) -> pl.DataFrame:
    days = group["days"]
    dates = days["date"][()].astype(np.int32)
    return pl.DataFrame(
        [
            pl.Series("date", dates),
            pl.Series("rows", days["rows"][()].astype(np.int64)),
            *(_decode(name, days[name][()], "str", None) for name in ("sha256", "written_at", "writer")),
            _decode(_GAPS, days[_GAPS][()], "str", None) if _GAPS in days else pl.Series(_GAPS, [""] * len(dates), dtype=pl.Utf8),
        ]
    )


class HDF5Store:
    """Per-dataset HDF5 files of validated settlement days under ``root``.

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

    def write_partition(self, spec: DatasetSpec, day: dt.date, frame: pl.DataFrame, *, writer: str = "",
                        gap: frozenset[gaps.Cell] = frozenset()) -> StoredPartition:
        """Replace settlement ``day`` of ``spec`` with ``frame`` (validated rows, in the spec's fields)."""
        return self.write_partitions(spec, {day: frame}, writer=writer, gaps_of={day: gap})[0]

    def write_partitions(
        self, spec: DatasetSpec, frames: Mapping[dt.date, pl.DataFrame], *, writer: str = "", schema_validated: bool = False,
        gaps_of: Mapping[dt.date, frozenset[gaps.Cell]] | None = None,
    ) -> list[StoredPartition]:
        """Replace each settlement day of ``frames`` with its frame, rewriting every month touched once.

        A ranged backfill hands over a month of days at a time: each month group is rewritten once rather than once
        per day (which grows with the square of the days in the month). Every frame is checked before anything is
        written, so one bad frame leaves the store as it was. ``schema_validated``: the caller has just run the
        dataset's pandera schema on these very frames (the ranged backfill's ``validate_partition``), so the schema is
        not run a second time (about 3 % of a year's backfill); fields and keys are still checked.

        ``gaps_of``: per day, the cells its source confirmed it does not have (validation's ``gaps``), kept with the day
        and read back by :meth:`recorded_gaps`; a day not named is whole.

        Returns:
            One :class:`StoredPartition` per day, in day order.
        """
        gaps_of = gaps_of or {}
        checked: dict[dt.date, pl.DataFrame] = {}
        for day in sorted(frames):
            frame = frames[day]
            missing = [f for f in spec.fields if f not in frame.columns]
            if missing:
                raise ValueError(f"{spec.code} {day}: frame lacks fields {missing}; refusing to store it")
            frame = frame.select(list(spec.fields))
            _refuse_invalid(spec, day, frame, schema=not schema_validated)
            checked[day] = frame
        by_month: dict[str, dict[dt.date, pl.DataFrame]] = {}
        for day, frame in checked.items():
            by_month.setdefault(_month_key(day), {})[day] = frame
        self.root.mkdir(parents=True, exist_ok=True)
        written: list[tuple[dt.date, int, str, bool]] = []
        with self._lock(spec), h5py.File(self.path(spec), "a") as h5:
            months = h5.require_group("months")
            for key, month_frames in by_month.items():
                written.extend(self._rewrite_month(spec, months, key, month_frames, writer, gaps_of))
            h5.flush()
        size = self.path(spec).stat().st_size
        return [StoredPartition(spec.code, day, rows, self.path(spec), size, sha, replaced) for day, rows, sha, replaced in written]

    def _rewrite_month(
        self, spec: DatasetSpec, months: h5py.Group, key: str, frames: Mapping[dt.date, pl.DataFrame], writer: str,
        gaps_of: Mapping[dt.date, frozenset[gaps.Cell]],
    ) -> list[tuple[dt.date, int, str, bool]]:
        fields = list(spec.fields)
        numbers = {day: _day_number(day) for day in frames}
        old = months.get(key)
        if old is not None:
            kept = _read_columns(old, [*fields, _DAY]).filter(~pl.col(_DAY).is_in(list(numbers.values())))
            days = _read_days(old)
            previous = set(days["date"].to_list())
            days = days.filter(~pl.col("date").is_in(list(numbers.values())))
        else:
            previous = set()
            kept = pl.DataFrame(schema={**spec.polars_schema(), _DAY: pl.Int64})
            days = pl.DataFrame(schema=_DAY_SCHEMA)
        new = [frame.with_columns(pl.lit(numbers[day], dtype=pl.Int64).alias(_DAY)) for day, frame in frames.items()]
        month = pl.concat([kept, *new]).sort([_DAY, spec.time_field, *spec.key], nulls_last=True, maintain_order=True)
        now = dt.datetime.now(dt.UTC).isoformat()
        written = [(day, frame.height, frame_sha256(frame), numbers[day] in previous) for day, frame in frames.items()]
        info = pl.DataFrame(
            {
                "date": [numbers[day] for day, *_ in written],
                "rows": [rows for _, rows, _, _ in written],
                "sha256": [sha for _, _, sha, _ in written],
                "written_at": [now] * len(written),
                "writer": [writer[:64]] * len(written),
                _GAPS: [json.dumps(gaps.to_json(gaps_of[day])) if gaps_of.get(day) else "" for day, *_ in written],
            },
            schema=days.schema,
        )
        days = pl.concat([days, info]).sort("date")

        def fill(group: h5py.Group) -> None:
            for name in [*fields, _DAY]:
                _write_column(group, name, month[name])
            day_group = group.create_group("days")
            for name, dtype in _DAY_FIELDS.items():
                values = days[name].to_numpy() if not dtype.startswith("S") else np.array([v.encode() for v in days[name].to_list()])
                day_group.create_dataset(name, data=values.astype(dtype))
            day_group.create_dataset(_GAPS, data=np.array([v.encode() for v in days[_GAPS].to_list()], dtype=bytes))
            group.attrs["fields"] = json.dumps(fields)

        replace_group(months, key, fill)
        return written

    def _day_tables(self, spec: DatasetSpec) -> pl.DataFrame:
        frames = []
        if self.path(spec).exists():
            with h5py.File(self.path(spec), "r") as h5:
                months = h5.get("months")
                for name in committed(sorted(months)) if months is not None else []:
                    frames.append(_read_days(months[name]))
        return pl.concat(frames) if frames else pl.DataFrame(schema={"date": pl.Int32})

    def days(self, spec: DatasetSpec) -> list[dt.date]:
        """Settlement days held for ``spec``, in order."""
        return [_EPOCH_DATE + dt.timedelta(days=int(n)) for n in sorted(self._day_tables(spec)["date"].to_list())]

    def partition_info(self, spec: DatasetSpec, day: dt.date) -> dict[str, object] | None:
        """rows, sha256, written_at and writer of a stored day, or None."""
        table = self._day_tables(spec)
        if "rows" not in table.columns:
            return None
        hit = table.filter(pl.col("date") == _day_number(day))
        return hit.drop("date").row(0, named=True) if hit.height else None

    def recorded_gaps(self, spec: DatasetSpec, start: dt.date, end: dt.date) -> dict[dt.date, frozenset[gaps.Cell]]:
        """Stored days of ``start``..``end`` with a recorded gap: day → the cells its source does not have."""
        table = self._day_tables(spec)
        if _GAPS not in table.columns:
            return {}
        hit = table.filter(pl.col("date").is_between(_day_number(start), _day_number(end)) & (pl.col(_GAPS) != ""))
        return {_EPOCH_DATE + dt.timedelta(days=int(n)): gaps.from_json(json.loads(text)) or frozenset()
                for n, text in zip(hit["date"].to_list(), hit[_GAPS].to_list())}

    def read_range(self, spec: DatasetSpec, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Validated rows of settlement days ``start``..``end`` inclusive, sorted by day, then time, then key."""
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        frames = []
        fields = list(spec.fields)
        lo, hi = _day_number(start), _day_number(end)
        if self.path(spec).exists():
            with h5py.File(self.path(spec), "r") as h5:
                months = h5.get("months")
                wanted = sorted({_month_key(start + dt.timedelta(days=i)) for i in range((end - start).days + 1)})
                for key in wanted:
                    group = months.get(key) if months is not None else None
                    if group is None:
                        continue
                    day_of_row = group[_DAY][()]
                    if day_of_row.size == 0:
                        continue
                    if lo <= day_of_row[0] and day_of_row[-1] <= hi:  # the whole month is in range
                        frames.append(_read_columns(group, fields))
                    else:  # rows are sorted by day: slice instead of reading the month and filtering
                        first, last = np.searchsorted(day_of_row, [lo, hi + 1])
                        if last > first:
                            frames.append(_read_columns(group, fields, slice(int(first), int(last))))
        if not frames:
            return pl.DataFrame(schema=spec.polars_schema())
        return pl.concat(frames)

