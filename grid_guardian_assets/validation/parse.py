"""Turn Insights API records into typed polars frames, noting (never hiding) anything that does not fit."""

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from grid_guardian_assets.datasets import POLARS_TYPES, DatasetSpec
from grid_guardian_assets.store.raw_archive import RawPartition


@dataclass
class ParsedFrame:
    """A frame with the dataset's fields and types, plus what did not parse.

    Attributes:
        frame: One row per record, columns in the spec's order and types.
        missing_fields: Spec fields that no record carried (schema drift, e.g. a renamed field).
        unexpected_fields: Fields the records carried that the spec does not know.
        type_errors: Rows (``row``, ``column``, ``value``) whose value could not be read as the field's type.
    """

    frame: pl.DataFrame
    missing_fields: list[str] = field(default_factory=list)
    unexpected_fields: list[str] = field(default_factory=list)
    type_errors: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema={"row": pl.Int64, "column": pl.Utf8, "value": pl.Utf8}))


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):  # JSON true/false is never a valid number here
        return str(value).lower()
    return str(value)


def _typed(raw: pl.Expr, kind: str) -> pl.Expr:
    """A text column read as ``kind``; null where it does not parse (``strict=False``)."""
    if kind == "str":
        return raw
    if kind == "int":
        # Accept integral floats only when exact (e.g. "1234" or "1234.0" from some CSV exports).
        as_float = raw.cast(pl.Float64, strict=False)
        return pl.when(as_float.round(0) == as_float).then(as_float).otherwise(None).cast(pl.Int64, strict=False)
    if kind == "float":
        return raw.cast(pl.Float64, strict=False)
    if kind == "date":
        # ISO (the Insights API), or NESO's files' 01-Jan-18.
        return pl.coalesce(raw.str.to_date("%Y-%m-%d", strict=False), raw.str.to_date("%d-%b-%y", strict=False))
    if kind == "datetime":
        return raw.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    raise ValueError(f"unknown field type {kind!r}")


def _text_columns(spec: DatasetSpec, records: list[dict[str, Any]]) -> list[pl.Series]:
    """Every field of the spec as text, one column each (null where a record lacks it or holds null).

    Polars builds the columns from the records (a year's backfill parses about 20 million values: a Python loop per
    value was most of a day's parsing); a value it cannot write as text (a JSON object or list where a field is
    expected, a number too large for it) sends the records through the same conversion in Python, which writes
    anything as text and leaves it to the type check."""
    try:
        return pl.DataFrame(records, schema=dict.fromkeys(spec.fields, pl.Utf8), strict=False).get_columns()
    except (pl.exceptions.ComputeError, OverflowError, TypeError, ValueError):
        return [
            pl.Series(name, [v if type(v) is str else _as_text(v) for v in (r.get(name) for r in records)], dtype=pl.Utf8)
            for name in spec.fields
        ]


def _with_field_names(spec: DatasetSpec, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with the API's names of a field (``spec.aliases``) renamed to the field's; the first alias found wins."""
    renames: dict[str, str] = {}
    for name, aliases in spec.aliases.items():
        for alias in aliases:
            renames.setdefault(alias, name)
    if not renames:
        return records
    out = []
    for record in records:
        renamed: dict[str, Any] = {}
        for key, value in record.items():
            name = renames.get(key, key)
            if name not in renamed or renamed[name] is None:
                renamed[name] = value
        out.append(renamed)
    return out


def frame_from_records(spec: DatasetSpec, records: list[dict[str, Any]]) -> ParsedFrame:
    """Type ``records`` by ``spec``; values that do not parse become nulls listed in ``type_errors``."""
    records = _with_field_names(spec, records)
    seen: set[str] = set().union(*records) - set(spec.ignored_fields)
    errors = []
    # Every column typed, and where its text did not parse, in one polars pass (a pass per column cost more than the
    # typing itself: a day of seven datasets is about fifty columns).
    text = pl.DataFrame(_text_columns(spec, records))
    typed = {name: _typed(pl.col(name), kind).cast(POLARS_TYPES[kind]) for name, kind in spec.fields.items()}
    both = text.select(
        *(expr.alias(name) for name, expr in typed.items()),
        *((pl.col(name).is_not_null() & expr.is_null()).alias(f"bad:{name}") for name, expr in typed.items()),
    )
    for name in spec.fields:
        bad = both[f"bad:{name}"]
        if bad.any():
            rows = pl.Series("row", range(len(bad)), dtype=pl.Int64).filter(bad)
            errors.append(pl.DataFrame({"row": rows, "column": [name] * len(rows), "value": text[name].filter(bad)}))
    frame = both.select(list(spec.fields)) if records else pl.DataFrame(schema=spec.polars_schema())
    type_errors = pl.concat(errors) if errors else ParsedFrame(frame).type_errors
    return ParsedFrame(
        frame=frame,
        missing_fields=[f for f in spec.fields if f not in seen and f != "dataset" and f not in spec.optional_fields] if records else [],
        unexpected_fields=sorted(seen - set(spec.fields)),
        type_errors=type_errors,
    )


def python_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as dicts of Python values, equal to ``frame.iter_rows(named=True)``'s.

    Each distinct date or time of a column becomes a Python object once and its rows share it: a period's readings
    share their times (twenty FUELHH fuel types, say), and building a time-zone-aware ``datetime`` per value was half
    of the conversion."""
    columns = []
    for series in frame.get_columns():
        if series.dtype.is_temporal():
            distinct = series.unique()
            lookup = dict(zip(distinct.to_physical().to_list(), distinct.to_list()))
            columns.append([lookup[v] for v in series.to_physical().to_list()])
        else:
            columns.append(series.to_list())
    return [dict(zip(frame.columns, values)) for values in zip(*columns)]


def frame_from_raw(spec: DatasetSpec, raw: RawPartition) -> ParsedFrame:
    """Parse every archived response of a partition (malformed JSON raises ElexonResponseError)."""
    records: list[dict[str, Any]] = []
    for i, response in enumerate(raw.responses, 1):
        records.extend(response.records(f"{spec.code} partition {raw.day.isoformat()} (response {i}/{len(raw.responses)})"))
    return frame_from_records(spec, records)
