"""Kafka messages of the live path: one Insights API record per message, with the API's own field names.

Topics are ``bmrs.{CODE}`` (``bmrs.FREQ``, ``bmrs.FUELHH``, …); a message's key is the record's natural key (the
dataset's key fields joined by ``|``), its value the record as JSON. Anything that reads the Insights API can feed
the live path. Messages that cannot be parsed or validated go to ``bmrs.dlq`` with the error and the original bytes.
"""

import base64
import contextlib
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
import pandera.errors
import polars as pl

from grid_guardian_assets.datasets import DatasetSpec
from grid_guardian_assets.detect.findings import Origin
from grid_guardian_assets.settlement import to_api_time
from grid_guardian_assets.validation.parse import frame_from_records, python_rows
from grid_guardian_assets.validation.schemas import schema_for


def _text(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return to_api_time(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def record_key(spec: DatasetSpec, record: dict[str, Any]) -> str:
    """The natural key of a record, e.g. ``2018-03-01|36|CCGT`` (FUELHH) or ``2024-01-15T12:00:15Z`` (FREQ).

    A missing key field leaves its place empty: such a record is still published, and the job dead-letters it.
    """
    return "|".join("" if record.get(name) is None else str(_text(record[name])) for name in spec.key)


def encode_record(spec: DatasetSpec, record: dict[str, Any]) -> tuple[bytes, bytes]:
    """``(key, value)`` bytes of a record (typed or API text); times become the API's ``…Z`` text."""
    body = {"dataset": spec.code, **{k: _text(v) for k, v in record.items() if k != "dataset" and v is not None}}
    return record_key(spec, body).encode(), json.dumps(body, separators=(",", ":")).encode()


class Reading(NamedTuple):
    """One validated record from Kafka: typed values under the API's field names."""

    spec: DatasetSpec
    values: dict[str, Any]
    origin: Origin

    @property
    def key(self) -> str:
        return record_key(self.spec, self.values)


@dataclass(frozen=True)
class Rejected:
    """A message that cannot be used, with why."""

    origin: Origin
    key: bytes | None
    value: bytes | None
    error: str

    def dlq_value(self) -> bytes:
        """The DLQ record: the error, where the message came from, and its original bytes (base64, and as text)."""
        text = None
        if self.value is not None:
            with contextlib.suppress(UnicodeDecodeError):  # not text: the base64 copy carries it
                text = self.value.decode("utf-8")
        return json.dumps(
            {
                "error": self.error,
                "topic": self.origin.topic,
                "partition": self.origin.partition,
                "offset": self.origin.offset,
                "key_base64": base64.b64encode(self.key).decode() if self.key is not None else None,
                "value_base64": base64.b64encode(self.value).decode() if self.value is not None else None,
                "value_text": text,
                "rejected_at": dt.datetime.now(dt.UTC).isoformat(),
            }
        ).encode()


class RawMessage(NamedTuple):
    origin: Origin
    key: bytes | None
    value: bytes | None


def _decode_json(message: RawMessage, spec: DatasetSpec) -> dict[str, Any] | str:
    """The record, or the reason it is unusable."""
    if message.value is None:
        return "empty message (no value)"
    try:
        record = orjson.loads(message.value)  # strict JSON: NaN and Infinity are not JSON, as RFC 8259 says
    except orjson.JSONDecodeError as exc:
        return f"value is not JSON: {exc}"
    if not isinstance(record, dict):
        return f"value is JSON {type(record).__name__}, expected one Insights API record (an object)"
    dataset = record.get("dataset", spec.code)
    if dataset != spec.code:
        return f"record says dataset {dataset!r} but arrived on topic {message.origin.topic}"
    # The usual case is tested without building anything (every message of a catch-up passes here); the lists are
    # made only for the error.
    if not record.keys() <= spec.fields.keys():
        unknown = sorted(record.keys() - spec.fields.keys())
        return f"fields not in the {spec.code} schema: {', '.join(unknown)} (schema drift?)"
    if None in map(record.get, spec.required):
        missing = [f for f in spec.required if record.get(f) is None]
        return f"required {spec.code} fields missing or null: {', '.join(missing)}"
    record["dataset"] = spec.code  # absent or equal (checked above)
    return record


def _schema_error(spec: DatasetSpec, frame: pl.DataFrame) -> str | None:
    try:
        schema_for(spec).validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        parts = [f"{row['column'] or 'row'} failed {row['check']} (value {row['failure_case']})" for row in cases.head(3).iter_rows(named=True)]
        return f"{spec.code} schema: " + "; ".join(parts)
    return None


def parse_messages(spec: DatasetSpec, messages: list[RawMessage]) -> tuple[list[Reading], list[Rejected]]:
    """Parse and validate one topic's messages with the same pandera schema as the batch path.

    The batch is validated at once; only when it fails is each message validated alone, so one poison message
    costs its own rejection and nothing else.
    """
    records: list[dict[str, Any]] = []
    kept: list[RawMessage] = []
    rejected: list[Rejected] = []
    for message in messages:
        record = _decode_json(message, spec)
        if isinstance(record, str):
            rejected.append(Rejected(message.origin, message.key, message.value, record))
        else:
            records.append(record)
            kept.append(message)
    if not records:
        return [], rejected
    parsed = frame_from_records(spec, records)
    bad_type: dict[int, str] = {}
    for row in parsed.type_errors.iter_rows(named=True):
        bad_type.setdefault(row["row"], f"{row['column']}={row['value']!r} is not a valid {spec.fields[row['column']]}")
    frame = parsed.frame
    batch_ok = not bad_type and _schema_error(spec, frame) is None
    readings = []
    for i, (message, row) in enumerate(zip(kept, python_rows(frame))):
        error = bad_type.get(i)
        if error is None and not batch_ok:
            error = _schema_error(spec, frame.slice(i, 1))
        if error is not None:
            rejected.append(Rejected(message.origin, message.key, message.value, error))
        else:
            readings.append(Reading(spec, row, message.origin))
    return readings, rejected
