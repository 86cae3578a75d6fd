"""Shared pieces of the live-path tests: real brokers and Redis servers, records, and reading the results."""

import datetime as dt
import json
from functools import cache
from pathlib import Path

import redis
from confluent_kafka import Producer

from grid_guardian_assets.data_layout import DataLayout
from grid_guardian_assets.datasets import DatasetSpec
from grid_guardian_assets.grid.branch_limits import LoadingHistory, save_branch_limits
from grid_guardian_assets.grid.network import reduced_network
from grid_guardian_assets.replay.grid import bundled_snapshot_days
from grid_guardian_assets.stream.kafka import KafkaSettings
from grid_guardian_assets.stream.messages import encode_record
from grid_guardian_assets.stream.topics import topic_for

T0 = dt.datetime(2024, 1, 15, 12, 0, tzinfo=dt.UTC)
# The bundled days the live tests' branch limits are measured on (the days they replay are among them).
LIMIT_DAYS = (dt.date(2018, 3, 1), dt.date(2018, 3, 7))


@cache
def _bundled_loading() -> tuple[LoadingHistory, tuple[dt.date, ...]]:
    network = reduced_network()
    days = bundled_snapshot_days(network, *LIMIT_DAYS)
    return LoadingHistory.of(days, network.n_branches), tuple(d.day for d in days)


def write_branch_limits(data_dir: Path) -> Path:
    """Store ``gb29``'s branch limits in ``data_dir`` as the ``branch_limits`` asset would after snapshots of
    ``LIMIT_DAYS``; the live job refuses to start without them. Returns the file."""
    history, days = _bundled_loading()
    return save_branch_limits(DataLayout(data_dir).branch_limits("gb29"), reduced_network(), history.limits(), history, list(days))


def freq_records(start: dt.datetime, values: list[float], step_s: int = 15) -> list[dict]:
    return [
        {"dataset": "FREQ", "measurementTime": (start + dt.timedelta(seconds=i * step_s)).strftime("%Y-%m-%dT%H:%M:%SZ"), "frequency": v}
        for i, v in enumerate(values)
    ]


def excursion(normal: int = 40, low: int = 6) -> list[float]:
    """``normal`` calm samples, then a dip below 49.8 Hz (not below 49.5), then recovery, ramping slowly."""
    calm = [50.0 + 0.02 * ((i % 5) - 2) for i in range(normal)]
    dip = [49.95, 49.9, 49.85, *([49.7] * low), 49.75, 49.85, 49.95]
    return calm + dip


def produce(bootstrap: str, spec: DatasetSpec, records: list[dict]) -> None:
    producer = Producer(KafkaSettings(bootstrap_servers=bootstrap).producer_config())
    for record in records:
        key, value = encode_record(spec, record)
        producer.produce(topic_for(spec), key=key, value=value)
    assert producer.flush(30) == 0


def produce_raw(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer(KafkaSettings(bootstrap_servers=bootstrap).producer_config())
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(30) == 0


def stream_alerts(client: redis.Redis) -> list[dict]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in client.xrange("alerts")]


def timeline(client: redis.Redis) -> dict[str, float]:
    return {m.decode(): s for m, s in client.zrange("anomaly:timeline", 0, -1, withscores=True)}


def out_of_band_times(start: dt.datetime, values: list[float]) -> list[str]:
    """The times of the 15-s FREQ samples ``values`` from ``start`` that leave the operational band."""
    return [(start + dt.timedelta(seconds=15 * i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i, v in enumerate(values) if abs(v - 50) >= 0.2]


def assert_every_alarm_recorded_once(client: redis.Redis, start: dt.datetime, values: list[float], dips: int) -> None:
    """Every out-of-band sample of ``values`` is recorded once in ``alerts:ids``, merged into its dip's incident or
    not; each of the ``dips`` is alerted, no alert twice, and fewer alerts than alarming samples (the dips merge)."""
    expected = out_of_band_times(start, values)
    recorded = [m.decode().split("|")[1] for m in client.zrange("alerts:ids", 0, -1)]
    assert sorted(recorded) == sorted(expected)
    alerts = stream_alerts(client)
    assert len({a["alert_id"] for a in alerts}) == len(alerts) and {a["time"] for a in alerts} <= set(expected)
    assert dips <= len(alerts) < len(expected)



def dlq_records(bootstrap: str, expect: int, timeout_s: float = 20.0) -> list[dict]:
    from confluent_kafka import Consumer

    consumer = Consumer({**KafkaSettings(bootstrap_servers=bootstrap).consumer_config("dlq-reader")})
    consumer.subscribe(["bmrs.dlq"])
    out = []
    deadline = dt.datetime.now() + dt.timedelta(seconds=timeout_s)
    while len(out) < expect and dt.datetime.now() < deadline:
        for m in consumer.consume(10, 0.5):
            if m.error() is None:
                out.append(json.loads(m.value()))
    consumer.close()
    return out
