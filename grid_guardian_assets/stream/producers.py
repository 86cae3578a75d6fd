"""Producers of the BMRS topics: a replay of stored HDF5 partitions, and a live poller of the Insights API."""

import datetime as dt
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import polars as pl
from confluent_kafka import Producer

from grid_guardian_assets.datasets import FREQ, FUELHH, INDO, DatasetSpec
from grid_guardian_assets.elexon.client import ElexonClient, ElexonError
from grid_guardian_assets.settlement import LONDON, to_api_time
from grid_guardian_assets.store.hdf5 import HDF5Store
from grid_guardian_assets.stream.messages import encode_record, record_key, topic_for
from grid_guardian_assets.stream.metrics import StreamMetrics

log = logging.getLogger("grid_guardian.stream")

# When a record becomes available to a live consumer, relative to its time field: half-hourly outturn is
# published after its period ends.
_AVAILABLE_AFTER = {"FUELHH": dt.timedelta(minutes=30), "INDO": dt.timedelta(minutes=30), "ITSDO": dt.timedelta(minutes=30)}


def _deliver(producer: Producer, what: str) -> None:
    undelivered = producer.flush(60)
    if undelivered:
        raise RuntimeError(f"{what}: {undelivered} records not acknowledged by the broker within 60 s")


def publication_order(frames: dict[str, pl.DataFrame], specs: dict[str, DatasetSpec]) -> pl.DataFrame:
    """Rows of every dataset's frame ordered by when they would have been published.

    Columns: ``available`` (UTC), ``code`` (dataset), ``index`` (row in that dataset's frame).
    """
    parts = [
        pl.DataFrame({"available": frame[specs[code].time_field] + _AVAILABLE_AFTER.get(code, dt.timedelta(0)),
                      "code": [code] * frame.height, "index": range(frame.height)})
        for code, frame in frames.items()
        if frame.height
    ]
    if not parts:
        return pl.DataFrame(schema={"available": pl.Datetime("us", "UTC"), "code": pl.Utf8, "index": pl.Int64})
    return pl.concat(parts).sort(["available", "code", "index"], maintain_order=True)


@dataclass
class ReplaySummary:
    records: int
    seconds: float
    first: dt.datetime | None
    last: dt.datetime | None


def replay_store(
    store: HDF5Store,
    producer: Producer,
    specs: list[DatasetSpec],
    start: dt.date,
    end: dt.date,
    *,
    speed: float | None = None,
    on_record: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Publish stored partitions to their topics in publication order.

    Args:
        speed: ``1.0`` real time, ``N`` N times real time, ``None`` as fast as the broker takes them.
        on_record: Called with the count so far (progress).
    """
    frames = {spec.code: store.read_range(spec, start, end) for spec in specs}
    by_code = {s.code: s for s in specs}
    order = publication_order(frames, by_code)
    rows = {code: frame.to_dicts() for code, frame in frames.items()}
    began = time.monotonic()
    first = order["available"][0] if order.height else None
    for n, (available, code, index) in enumerate(order.iter_rows(), 1):
        if speed:
            due = began + (available - first).total_seconds() / speed
            pause = due - time.monotonic()
            if pause > 0:
                producer.poll(0)
                time.sleep(pause)
        spec = by_code[code]
        key, value = encode_record(spec, rows[code][index])
        while True:
            try:
                producer.produce(topic_for(spec), key=key, value=value)
                break
            except BufferError:  # the local queue is full: let deliveries drain
                producer.poll(0.1)
        if n % 1000 == 0:
            producer.poll(0)
            if on_record:
                on_record(n)
    _deliver(producer, "replay")
    return ReplaySummary(order.height, time.monotonic() - began, first, order["available"][-1] if order.height else None)


class PublishedKeys:
    """Natural keys the poller has published, in SQLite, so a restart never publishes a record twice."""

    def __init__(self, path: Path, keep: dt.timedelta = dt.timedelta(days=3)):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.keep = keep
        self.db.execute("CREATE TABLE IF NOT EXISTS published (dataset TEXT, key TEXT, at REAL, PRIMARY KEY (dataset, key))")

    def new(self, dataset: str, keys: list[str]) -> set[str]:
        seen = set()
        for chunk in range(0, len(keys), 500):
            part = keys[chunk : chunk + 500]
            marks = ",".join("?" * len(part))
            seen.update(k for (k,) in self.db.execute(f"SELECT key FROM published WHERE dataset = ? AND key IN ({marks})", [dataset, *part]))
        return set(keys) - seen

    def add(self, dataset: str, keys: Iterable[str]) -> None:
        now = time.time()
        with self.db:
            self.db.executemany("INSERT OR IGNORE INTO published VALUES (?, ?, ?)", [(dataset, k, now) for k in keys])
            self.db.execute("DELETE FROM published WHERE at < ?", (now - self.keep.total_seconds(),))

    def close(self) -> None:
        self.db.close()


def _recent_windows(spec: DatasetSpec, now: dt.datetime) -> dict[str, str]:
    """The query of one poll: a window that overlaps the last one (keys deduplicate the overlap)."""
    if spec.code == "FREQ":
        return {"measurementDateTimeFrom": to_api_time(now - dt.timedelta(minutes=10)), "measurementDateTimeTo": to_api_time(now), "format": "json"}
    if spec.code == "FUELHH":
        today = now.astimezone(LONDON).date()
        return {"settlementDateFrom": (today - dt.timedelta(days=1)).isoformat(), "settlementDateTo": today.isoformat(), "format": "json"}
    return {"publishDateTimeFrom": to_api_time(now - dt.timedelta(hours=2)), "publishDateTimeTo": to_api_time(now), "format": "json"}


class LivePoller:
    """Asks the Insights API every ``interval_s`` and publishes only records it has not published before.

    Args:
        client: The Insights API client (rate-limited, retrying).
        producer: Kafka producer.
        keys: The published-keys table.
        specs: Datasets to poll (FREQ, FUELHH, INDO by default).
        clock: Current UTC time (replace it to poll a recording "as of" a past moment).
    """

    def __init__(self, client: ElexonClient, producer: Producer, keys: PublishedKeys,
                 specs: tuple[DatasetSpec, ...] = (FREQ, FUELHH, INDO), clock: Callable[[], dt.datetime] | None = None,
                 metrics: StreamMetrics | None = None, interval_s: float = 30.0):
        self.client, self.producer, self.keys, self.specs = client, producer, keys, specs
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.metrics = metrics or StreamMetrics()
        self.interval_s = interval_s

    def poll_once(self) -> dict[str, int]:
        """One round over the datasets; returns how many new records each published."""
        now = self.clock()
        published = {}
        for spec in self.specs:
            try:
                records = self.client.get(spec.path, _recent_windows(spec, now), context=f"live poll of {spec.code}").records(
                    f"live poll of {spec.code}")
                self.metrics.api_requests.labels(spec.code, "ok").inc()
            except ElexonError as exc:
                self.metrics.api_requests.labels(spec.code, "error").inc()
                log.error("live poll of %s failed (will try again next round): %s", spec.code, exc)
                continue
            by_key = {record_key(spec, record): record for record in records}
            fresh = self.keys.new(spec.code, list(by_key))
            for key in sorted(fresh):
                k, v = encode_record(spec, by_key[key])
                self.producer.produce(topic_for(spec), key=k, value=v)
            _deliver(self.producer, f"live poll of {spec.code}")
            self.keys.add(spec.code, fresh)  # only once the broker has them: a crash before this republishes
            published[spec.code] = len(fresh)
        return published

    def run(self, rounds: int | None = None, stop: Callable[[], bool] = lambda: False) -> None:
        done = 0
        while not stop() and (rounds is None or done < rounds):
            started = time.monotonic()
            log.info("live poll: %s", self.poll_once())
            done += 1
            if rounds is None or done < rounds:
                time.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))
