"""Live-path benchmark (not a test): throughput and latency of Kafka -> rules and GNN -> Redis, with baselines
measured in the same run on the same broker.

1. Throughput: a year of bundled FUELHH (2018, about 262k readings) is produced to ``bmrs.FUELHH``; the raw consume
   rate of the broker (a consumer that only reads) is the baseline; the inference job (validation, period assembly,
   DC flow, physics rules, the GNN step per period, one Redis transaction and one offset commit per batch) is timed
   on the same records. Printed: readings per second of each and their ratio.
2. Latency at the live rate: FREQ readings outside the operational band, each more than an incident's gap after the
   one before (so each is an alert of its own), are produced one by one at ``--rate`` per second while the job runs;
   each one's alert is received on the ``alerts:anomalies`` channel. Printed: p50/p99
   of produce -> alert in Redis (target p99 <= 50 ms).

Run: .venv/bin/python bench/bench_stream.py [--days 365] [--latency-readings 300] [--rate 20]
"""

import argparse
import datetime as dt
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import redis
import torch
from confluent_kafka import Consumer, Producer

from grid_guardian_assets.data_layout import DataLayout
from grid_guardian_assets.datasets import FREQ, FUELHH
from grid_guardian_assets.detect.calibration import fit_detectors
from grid_guardian_assets.dev.local_servers import LocalBroker, LocalRedis
from grid_guardian_assets.dev.recorded_store import WINDOWS_2018, recorded_2018
from grid_guardian_assets.grid.branch_limits import LoadingHistory, save_branch_limits
from grid_guardian_assets.grid.network import reduced_network
from grid_guardian_assets.replay import bmrs_history
from grid_guardian_assets.replay.grid import bundled_snapshot_days
from grid_guardian_assets.stream.job import InferenceJob, StreamConfig
from grid_guardian_assets.stream.kafka import KafkaSettings, ensure_topics
from grid_guardian_assets.stream.messages import encode_record
from grid_guardian_assets.stream.producers import produce_record
from grid_guardian_assets.stream.redis_keys import ALERT_CHANNEL
from grid_guardian_assets.stream.redis_sink import SAMPLE_INCIDENT_GAP
from grid_guardian_assets.stream.topics import topic_for
from grid_guardian_assets.verifier.checkpoints import ModelStore
from grid_guardian_assets.verifier.pipeline import save_checkpoint, train_verifier
from grid_guardian_assets.verifier.train import TrainConfig


def promoted_model(work: Path) -> tuple[Path, Path]:
    """A promoted checkpoint trained on three weeks of bundled days, and the branch limits measured on the same days
    (as the ``branch_limits`` asset would store them); returns the model store and the limits file."""
    network = reduced_network()
    days = bundled_snapshot_days(network, dt.date(2018, 1, 1), dt.date(2018, 1, 21))
    trained = train_verifier(network, days, TrainConfig(epochs=2), calibration_days=7, device=torch.device("cpu"))
    store = ModelStore(work / "models")
    store.promote(save_checkpoint(store, trained, network, {}, "bench").version)
    history = LoadingHistory.of(days, network.n_branches)
    layout = DataLayout(work / "data")
    limits = save_branch_limits(layout.branch_limits(network.name), network, history.limits(), history, [d.day for d in days])
    return store.root, limits


def produce_year(settings: KafkaSettings, days: int) -> int:
    producer = Producer({**settings.producer_config(), "linger.ms": 20, "queue.buffering.max.messages": 500_000})
    count = 0
    for day in bmrs_history.history_days()[:days]:
        for record in bmrs_history.fuelhh_records(day):
            produce_record(producer, FUELHH, record)
            count += 1
    assert producer.flush(120) == 0
    return count


def raw_consume_rate(settings: KafkaSettings, expected: int) -> float:
    consumer = Consumer(settings.consumer_config("bench-raw"))
    consumer.subscribe([topic_for(FUELHH)])
    got, started = 0, None
    while got < expected:
        batch = consumer.consume(500, 1.0)
        if batch and started is None:
            started = time.perf_counter()  # excludes the group join, as the job's timing does
        got += sum(1 for m in batch if m.error() is None)
    elapsed = time.perf_counter() - started
    consumer.close()
    return got / elapsed


def job_rate(config: StreamConfig, expected: int) -> tuple[float, dict]:
    job = InferenceJob(config)
    summary = job.run(max_seconds=3600, max_messages=expected)
    # From the first message, as the raw consumer is timed: the group join before it (about half of
    # session.timeout.ms on tansu) is not throughput.
    return summary.readings / (summary.seconds - summary.first_message_s), summary.as_metadata()


def latency(config: StreamConfig, settings: KafkaSettings, redis_url: str, readings: int, rate: float) -> np.ndarray:
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(ALERT_CHANNEL)
    received: dict[str, float] = {}

    def listen() -> None:
        for message in pubsub.listen():
            if message["type"] == "message":
                alert = json.loads(message["data"])
                received.setdefault(alert["time"], time.perf_counter())
                if len(received) >= readings:
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    job = InferenceJob(config)
    runner = threading.Thread(target=lambda: job.run(max_seconds=readings / rate + 30), daemon=True)
    runner.start()
    time.sleep(8)  # group join
    producer = Producer({**settings.producer_config(), "linger.ms": 0})
    sent: dict[str, float] = {}
    start = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)
    # Readings further apart than an incident's gap: each is an incident of its own, so each is published (samples
    # 15 s apart would be one dip, one alert).
    step = SAMPLE_INCIDENT_GAP + dt.timedelta(seconds=15)
    for i in range(readings):
        when = (start + step * i).strftime("%Y-%m-%dT%H:%M:%SZ")
        key, value = encode_record(FREQ, {"measurementTime": when, "frequency": 49.7})
        sent[when] = time.perf_counter()
        producer.produce(topic_for(FREQ), key=key, value=value)
        producer.poll(0)
        time.sleep(1 / rate)
    producer.flush(10)
    listener.join(30)
    job.stop()
    runner.join(30)
    return np.array([(received[t] - sent[t]) * 1000 for t in sent if t in received])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--latency-readings", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="FREQ readings per second in the latency run")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    models, limits = promoted_model(work)
    calibration = work / "detector_calibration.json"
    # What the detector_calibration asset stores with the README's windows: the live job's data-quality checks.
    fit_detectors(recorded_2018(work / "data" / "hdf5"), WINDOWS_2018).save(calibration)
    with LocalBroker() as broker, LocalRedis(directory=work / "redis") as redis_server:
        settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        ensure_topics(settings)
        started = time.perf_counter()
        count = produce_year(settings, args.days)
        print(f"produced {count:,} FUELHH readings ({args.days} days) in {time.perf_counter() - started:.1f} s")
        raw = raw_consume_rate(settings, count)
        config = StreamConfig(branch_limits_file=limits, kafka=settings, redis_url=redis_server.url, model_root=models,
                              fuel_settle_s=1.0, detector_calibration_file=calibration)
        job, meta = job_rate(config, count)
        print(f"raw consume:      {raw:>10,.0f} readings/s (baseline, same broker, same run)")
        print(f"inference job:    {job:>10,.0f} readings/s  ({job / raw:.3f}x of raw consume)  {meta}")
        per_day = {source: round(n / args.days, 2) for source, n in sorted(meta["alerts_by_source"].items())}
        print(f"alerts per day over {args.days} days of normal FUELHH (only FUELHH is produced: the redundancy checks, "
              f"which need ITSDO/AGWS beside it, stay quiet): {per_day}")
        config = StreamConfig(branch_limits_file=limits, kafka=settings, redis_url=redis_server.url, model_root=models,
                              group_id="bench-latency", topics=(topic_for(FREQ),))
        ms = latency(config, settings, redis_server.url, args.latency_readings, args.rate)
        print(f"latency produce -> alert in Redis at {args.rate:.0f} readings/s over {len(ms)} readings: "
              f"p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms (target p99 <= 50 ms)")


if __name__ == "__main__":
    main()
