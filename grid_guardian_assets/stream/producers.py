"""Producers of the BMRS topics: a replay of stored HDF5 partitions, and a live poller of the Insights API."""

import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Producer

from grid_guardian_assets.datasets import FREQ, FUELHH, INDO, DatasetSpec
from grid_guardian_assets.elexon.client import ElexonClient, ElexonError
from grid_guardian_assets.settlement import LONDON, to_api_time
from grid_guardian_assets.store.hdf5 import HDF5Store
from grid_guardian_assets.stream.messages import encode_record, record_key
from grid_guardian_assets.stream.metrics import StreamMetrics
from grid_guardian_assets.stream.topics import topic_for

log = logging.getLogger("grid_guardian.stream")

# When a record becomes available to a live consumer, relative to its time field: half-hourly outturn is
# published after its period ends.
_AVAILABLE_AFTER = {"FUELHH": dt.timedelta(minutes=30), "INDO": dt.timedelta(minutes=30), "ITSDO": dt.timedelta(minutes=30)}


def _deliver(producer: Producer, what: str) -> None:
    undelivered = producer.flush(60)
    if undelivered:
        raise RuntimeError(f"{what}: {undelivered} records not acknowledged by the broker within 60 s")


def produce_record(producer: Producer, spec: DatasetSpec, record: dict) -> None:
    """Queue ``record`` for its dataset's topic, letting deliveries drain while the local queue is full."""
    key, value = encode_record(spec, record)
    while True:
        try:
            producer.produce(topic_for(spec), key=key, value=value)
            return
        except BufferError:
            producer.poll(0.1)


def publication_order(records: dict[str, list[dict]], specs: dict[str, DatasetSpec]) -> list[tuple[dt.datetime, str, int]]:
    """``(available, code, index)`` of every record, in the order they would have been published (FUELHH, INDO and
    ITSDO at the end of their period); ties go by dataset code, then by position."""
    order = [
        (row[specs[code].time_field] + _AVAILABLE_AFTER.get(code, dt.timedelta(0)), code, i)
        for code, rows in records.items()
        for i, row in enumerate(rows)
    ]
    order.sort()
    return order


@dataclass
class ReplaySummary:
    records: int
    seconds: float
    first: dt.datetime | None
    last: dt.datetime | None


def publish_records(
    producer: Producer,
    records: dict[str, list[dict]],
    specs: dict[str, DatasetSpec],
    *,
    speed: float | None = None,
    on_record: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Publish ``{code: records}`` to their topics in publication order and wait until the broker has them all.

    Args:
        speed: ``1.0`` real time, ``N`` N times real time, ``None`` as fast as the broker takes them.
        on_record: Called with the count so far (progress).
    """
    order = publication_order(records, specs)
    began = time.monotonic()
    first = order[0][0] if order else None
    for n, (available, code, index) in enumerate(order, 1):
        if speed:
            pause = began + (available - first).total_seconds() / speed - time.monotonic()
            if pause > 0:
                producer.poll(0)
                time.sleep(pause)
        produce_record(producer, specs[code], records[code][index])
        if n % 1000 == 0:
            producer.poll(0)
            if on_record:
                on_record(n)
    _deliver(producer, "replay")
    return ReplaySummary(len(order), time.monotonic() - began, first, order[-1][0] if order else None)


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
    """Publish the stored partitions of ``specs`` for days ``start..end`` (see ``publish_records``)."""
    records = {spec.code: store.read_range(spec, start, end).to_dicts() for spec in specs}
    return publish_records(producer, records, {s.code: s for s in specs}, speed=speed, on_record=on_record)


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
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
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
