"""The live path with real servers: tansu (a Kafka-protocol broker) and redis-server, started per test."""

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import redis
import torch

from grid_guardian_assets.datasets import DEMAND_PUBLISH_MARGIN, FREQ, FUELHH, INDO
from grid_guardian_assets.detect.physics_rules import frequency_findings
from grid_guardian_assets.dev.local_servers import LocalBroker, LocalRedis
from grid_guardian_assets.grid.branch_limits import BranchLimits, BranchLimitsMissing
from grid_guardian_assets.grid.dcflow import DCPowerFlow
from grid_guardian_assets.grid.mapping import bus_mapping
from grid_guardian_assets.grid.network import reduced_network
from grid_guardian_assets.replay import bmrs_history, synthetic
from grid_guardian_assets.replay.grid import bundled_snapshot_days
from grid_guardian_assets.settlement import day_bounds_utc
from grid_guardian_assets.stream.job import GC_YOUNG_THRESHOLD, InferenceJob, StreamConfig, _collector_tuned_for_batches
from grid_guardian_assets.stream.kafka import KafkaSettings, ensure_topics
from grid_guardian_assets.stream.messages import Origin, RawMessage, encode_record, parse_messages
from grid_guardian_assets.stream.processor import LiveProcessor
from grid_guardian_assets.stream.scorer import LiveScorer, PeriodInput
from grid_guardian_assets.verifier.checkpoints import ModelStore
from grid_guardian_assets.verifier.pipeline import load_detector, save_checkpoint, train_verifier
from grid_guardian_assets.verifier.sequences import sequence_from_days
from grid_guardian_assets.verifier.train import TrainConfig
from grid_guardian_tests.stream_helpers import (
    T0,
    assert_every_alarm_recorded_once,
    dlq_records,
    excursion,
    freq_records,
    out_of_band_times,
    produce,
    produce_raw,
    stream_alerts,
    timeline,
    write_branch_limits,
)

REPO = Path(__file__).resolve().parents[1]
TINY = TrainConfig(warmup=4, hidden_channels=8, epochs=1, batch_chunks=4, seed=3)
DAY = dt.date(2018, 3, 6)


@pytest.fixture
def broker():
    with LocalBroker() as b:
        yield b


@pytest.fixture
def redis_server(tmp_path: Path):
    server = LocalRedis(directory=tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def model_root(tmp_path_factory) -> Path:
    """A model store with a promoted tiny checkpoint trained on 2018-03-01..05 (and a second, unpromoted one)."""
    network = reduced_network()
    root = tmp_path_factory.mktemp("models")
    store = ModelStore(root)
    days = bundled_snapshot_days(network, dt.date(2018, 3, 1), dt.date(2018, 3, 5))
    for seed in (3, 4):
        config = TrainConfig(**{**TINY.to_dict(), "seed": seed})
        trained = train_verifier(network, days, config, calibration_days=2, device=torch.device("cpu"))
        checkpoint = save_checkpoint(store, trained, network, {"seed": seed}, "test")
        if seed == 3:
            store.promote(checkpoint.version)
    return root


def config_for(broker: LocalBroker, redis_server: LocalRedis, tmp_path: Path, **kw) -> StreamConfig:
    """The job's config against the test's servers, with branch limits stored in ``tmp_path / "data"``."""
    return StreamConfig(branch_limits_file=write_branch_limits(tmp_path / "data"),
                        kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers), redis_url=redis_server.url, **kw)


def day_records(day: dt.date) -> dict:
    start, end = day_bounds_utc(day)
    return {
        "FUELHH": bmrs_history.fuelhh_records(day),
        "INDO": [r for r in bmrs_history.demand_records("INDO", start, end + DEMAND_PUBLISH_MARGIN) if r["settlementDate"] == day.isoformat()],
        "FREQ": synthetic.freq_records(start, end),
    }


SPECS = {"FUELHH": FUELHH, "INDO": INDO, "FREQ": FREQ}


# --- units: no servers ------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_live_scores_equal_the_batch_detectors_scores(model_root: Path) -> None:
    network = reduced_network()
    store = ModelStore(model_root)
    detector, calibration = load_detector(store.load(store.promoted()), network)
    day = bundled_snapshot_days(network, DAY, DAY)[0]
    sequence = sequence_from_days([day])
    node_batch, _ = calibration.apply(detector.raw_scores(sequence))
    scorer = LiveScorer(detector, calibration, "v")
    live = []
    for t in range(len(sequence)):
        scores = scorer.score(PeriodInput(int(sequence.start_us[t]), sequence.node[t], float(sequence.frequency[t]), sequence.loading[t]))
        live.append(np.full(network.n_buses, np.nan) if scores is None else scores.node)
    np.testing.assert_allclose(np.array(live), node_batch, rtol=1e-4, atol=1e-5, equal_nan=True)
    assert np.isnan(node_batch[: TINY.warmup + 1]).all() and np.isfinite(node_batch[TINY.warmup + 1 :]).all()


@pytest.mark.integration
def test_a_backlog_scored_as_one_batch_equals_period_by_period_scoring(model_root: Path) -> None:
    network = reduced_network()
    mapping, flow = bus_mapping(network), DCPowerFlow(network)
    limits = BranchLimits(np.full(network.n_branches, 0.6), np.zeros(network.n_branches, bool))  # some overloads
    store = ModelStore(model_root)
    checkpoint = store.load(store.promoted())

    def processor() -> LiveProcessor:
        return LiveProcessor(mapping, flow, limits, LiveScorer(*load_detector(checkpoint, network), "v"), fuel_settle_s=5.0)

    by_period: list[list] = []
    offset = 0
    for day in (DAY - dt.timedelta(days=1), DAY):
        records = day_records(day)
        for number in sorted({r["settlementPeriod"] for r in records["FUELHH"]}):
            rows = []
            for spec, code in ((FUELHH, "FUELHH"), (INDO, "INDO")):
                chosen = [r for r in records[code] if r["settlementPeriod"] == number]
                raws = [RawMessage(Origin(f"bmrs.{code}", 0, offset + i), *encode_record(spec, r)) for i, r in enumerate(chosen)]
                offset += len(chosen)
                rows += parse_messages(spec, raws)[0]
            by_period.append(rows)
    live, backlog = processor(), processor()
    one_by_one = [f for i, rows in enumerate(by_period) for f in live.add(rows, now=float(i))] + live.tick(now=1e6)
    batched = backlog.add([r for rows in by_period for r in rows], now=0.0) + backlog.tick(now=1e6)

    def key(f):
        return f.node, f.time, f.source, f.dataset, f.origin
    one_by_one, batched = sorted(one_by_one, key=key), sorted(batched, key=key)
    assert [key(f) for f in batched] == [key(f) for f in one_by_one]
    # The model runs in float32 over batches of different shapes: its scores agree to a few parts in 10^5.
    np.testing.assert_allclose([f.score for f in batched], [f.score for f in one_by_one], rtol=1e-4, atol=1e-6)
    assert [key(f) for f in batched if f.alert] == [key(f) for f in one_by_one if f.alert]
    assert {f.source for f in batched} == {"model", "power_imbalance", "line_overload"}
    assert max(backlog.drain_periods_per_batch()) >= 90 and set(live.drain_periods_per_batch()) <= {1, 2}


@pytest.mark.parametrize(
    ("values", "sources"),
    [
        ([50.0, 50.01], {"frequency_operational", "rocof"}),
        ([50.0, 49.75], {"frequency_operational", "rocof"}),
        ([49.6, 49.4], {"frequency_statutory", "rocof"}),
    ],
)
def test_frequency_rules(values: list[float], sources: set[str]) -> None:
    origin = Origin("bmrs.FREQ", 0, 0)
    previous = (T0, values[0])
    findings = frequency_findings(T0 + dt.timedelta(seconds=1), values[1], origin, previous)
    assert {f.source for f in findings} == sources
    band, rocof = findings
    assert band.score == pytest.approx(abs(values[1] - 50) / 0.2)
    assert rocof.score == pytest.approx(abs(values[1] - values[0]) / 0.125)
    assert band.alert == (abs(values[1] - 50) >= 0.2) and rocof.alert == (abs(values[1] - values[0]) >= 0.125)
    # Samples a long gap apart are not a rate of change.
    assert len(frequency_findings(T0 + dt.timedelta(minutes=5), values[1], origin, previous)) == 1


def test_messages_are_validated_like_partitions() -> None:
    good = [RawMessage(Origin("bmrs.FUELHH", 0, i), *encode_record(FUELHH, r)) for i, r in enumerate(bmrs_history.fuelhh_records(DAY)[:5])]
    bad = [
        RawMessage(Origin("bmrs.FUELHH", 0, 10), b"k", b"\xff\xfe"),
        RawMessage(Origin("bmrs.FUELHH", 0, 11), b"k", b'{"dataset":"FREQ","measurementTime":"2018-03-06T00:00:00Z","frequency":50}'),
        RawMessage(Origin("bmrs.FUELHH", 0, 12), b"k", json.dumps({**bmrs_history.fuelhh_records(DAY)[0], "generation": "lots"}).encode()),
        RawMessage(Origin("bmrs.FUELHH", 0, 13), b"k", json.dumps({**bmrs_history.fuelhh_records(DAY)[0], "generation": 99_999}).encode()),
        RawMessage(Origin("bmrs.FUELHH", 0, 14), b"k", json.dumps({**bmrs_history.fuelhh_records(DAY)[0], "newField": 1}).encode()),
    ]
    readings, rejected = parse_messages(FUELHH, good + bad)
    assert [r.origin.offset for r in readings] == [0, 1, 2, 3, 4]
    reasons = {r.origin.offset: r.error for r in rejected}
    assert "not JSON" in reasons[10] and "arrived on topic bmrs.FUELHH" in reasons[11]
    assert "generation='lots'" in reasons[12] and "in_range" in reasons[13] and "newField" in reasons[14]


def test_a_period_scores_when_fuelhh_completes_and_late_demand_refines_it() -> None:
    network = reduced_network()
    mapping, flow = bus_mapping(network), DCPowerFlow(network)
    limits = BranchLimits(np.full(network.n_branches, 10.0), np.zeros(network.n_branches, bool))
    processor = LiveProcessor(mapping, flow, limits, fuel_settle_s=5.0)
    records = day_records(DAY)
    by_period: dict[int, list] = {}
    for r in records["FUELHH"]:
        by_period.setdefault(r["settlementPeriod"], []).append(r)

    def readings(spec, rows, offset=0):
        raws = [RawMessage(Origin(f"bmrs.{spec.code}", 0, offset + i), *encode_record(spec, r)) for i, r in enumerate(rows)]
        return parse_messages(spec, raws)[0]

    assert processor.add(readings(FUELHH, by_period[1]), now=0.0) == []  # the first period's set of fuels is unknown
    assert processor.tick(now=1.0) == []
    assert processor.tick(now=6.0) == []  # no rules fire: no demand yet, and no overloads under these limits
    assert processor.periods["2018-03-06/01"].scored.endswith("+estimated:0")
    processor.add(readings(FUELHH, by_period[2], 100), now=7.0)  # complete at once: it has every fuel of period 1
    assert processor.periods["2018-03-06/02"].scored is not None
    demand = [r for r in records["INDO"] if r["settlementPeriod"] == 2]
    findings = processor.add(readings(INDO, demand, 200), now=8.0)
    assert [f.source for f in findings] == ["power_imbalance"] and not findings[0].alert
    assert findings[0].detail["demand_source"] == "INDO" and findings[0].origin.offset == 200
    # Redelivery changes nothing; a demand no supply can explain is an imbalance alert.
    assert processor.add(readings(INDO, demand, 200), now=9.0) == []
    wrong = [{**demand[0], "demand": 60_000}]
    assert [f.alert for f in processor.add(readings(INDO, wrong, 300), now=10.0)] == [True]


def test_metered_b1610_refines_a_scored_period_once_it_settles() -> None:
    from grid_guardian_assets.datasets import B1610

    network = reduced_network()
    mapping, flow = bus_mapping(network), DCPowerFlow(network)
    processor = LiveProcessor(mapping, flow, BranchLimits(np.full(network.n_branches, 10.0), np.zeros(network.n_branches, bool)),
                              fuel_settle_s=5.0)
    records = day_records(DAY)

    def readings(spec, rows, offset=0):
        return parse_messages(spec, [RawMessage(Origin(f"bmrs.{spec.code}", 0, offset + i), *encode_record(spec, r)) for i, r in enumerate(rows)])[0]

    processor.add(readings(FUELHH, [r for r in records["FUELHH"] if r["settlementPeriod"] == 10]), now=0.0)
    processor.add(readings(INDO, [r for r in records["INDO"] if r["settlementPeriod"] == 10], 100), now=0.0)
    first = processor.tick(now=6.0)
    assert [f.detail["generation_source"] for f in first] == ["FUELHH"]
    metered = synthetic.b1610_records(DAY, 10)
    assert processor.add(readings(B1610, metered[:40], 200), now=7.0) == []  # a partial set never replaces FUELHH
    assert processor.add(readings(B1610, metered[40:], 300), now=8.0) == []
    assert processor.tick(now=10.0) == []  # not yet quiet for fuel_settle_s
    refined = processor.tick(now=13.5)
    assert [f.source for f in refined] == ["power_imbalance"] and refined[0].detail["generation_source"] == "B1610 metered"
    # The synthetic units' volumes add up to their fuel types' FUELHH: the metered supply agrees.
    assert refined[0].detail["supply_mw"] == pytest.approx(first[0].detail["supply_mw"], rel=0.01)
    assert processor.tick(now=20.0) == []  # settled once, scored once


def test_line_overload_fires_above_a_credible_rating_only_and_names_the_branch() -> None:
    network = reduced_network()
    mapping, flow = bus_mapping(network), DCPowerFlow(network)
    tight = np.full(network.n_branches, 1e6)
    tight[[0, 1]] = 1e-3  # branches 0 and 1 are past these limits at any flow at all
    not_credible = np.arange(network.n_branches) == 1  # branch 1's rating is routinely exceeded: it is not judged
    processor = LiveProcessor(mapping, flow, BranchLimits(tight, not_credible), fuel_settle_s=0.0)
    rows = [r for r in day_records(DAY)["FUELHH"] if r["settlementPeriod"] == 1]
    raws = [RawMessage(Origin("bmrs.FUELHH", 0, i), *encode_record(FUELHH, r)) for i, r in enumerate(rows)]
    processor.add(parse_messages(FUELHH, raws)[0], now=0.0)
    findings = processor.tick(now=1.0)
    overloads = [f for f in findings if f.source == "line_overload"]
    assert len(overloads) == 1 and overloads[0].alert
    assert overloads[0].node == f"branch:0:{network.bus_names[network.from_bus[0]]}-{network.bus_names[network.to_bus[0]]}"
    assert overloads[0].detail["loading"] > 0 and overloads[0].origin.topic == "bmrs.FUELHH"


def test_the_job_refuses_to_start_without_stored_branch_limits(tmp_path: Path) -> None:
    missing = tmp_path / "data" / "grid" / "branch_limits_gb29.json"
    with pytest.raises(BranchLimitsMissing, match=re.escape(f"{missing}: materialise the branch_limits asset")):
        InferenceJob(StreamConfig(branch_limits_file=missing, kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"),
                                  redis_url="redis://127.0.0.1:9/0"))


@pytest.mark.integration
def test_clients_from_the_environment_authenticate_with_scram_against_a_broker_that_requires_it(monkeypatch) -> None:
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "grid-guardian")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "not-a-real-secret")
    with LocalBroker(authentication=True) as secured:
        settings = KafkaSettings.from_env(secured.bootstrap_servers)
        config = settings.consumer_config("g")
        assert (config["security.protocol"], config["sasl.mechanism"], config["sasl.username"], config["sasl.password"]) == (
            "SASL_PLAINTEXT", "SCRAM-SHA-512", "grid-guardian", "not-a-real-secret")
        assert "not-a-real-secret" not in repr(settings)
        errors: list = []
        admin = AdminClient({**settings.client_config(), "error_cb": errors.append})
        with pytest.raises(KafkaException):
            admin.list_topics(timeout=5)
        deadline = time.monotonic() + 10
        while not errors and time.monotonic() < deadline:
            admin.poll(0.5)  # serves error_cb
        # The client ran the SCRAM-SHA-512 exchange with these credentials, and the broker checked them (this
        # tansu build cannot hold a user while authentication is on, so it knows none: see LocalBroker).
        assert any(e.code() == KafkaError._AUTHENTICATION and "SCRAM" in e.str() for e in errors), errors
        plain: list = []
        unauthenticated = AdminClient({"bootstrap.servers": secured.bootstrap_servers, "error_cb": plain.append})
        with pytest.raises(KafkaException):
            unauthenticated.list_topics(timeout=5)  # no SASL: no metadata


@pytest.mark.integration
def test_replay_producer_publishes_stored_days_in_publication_order(broker, tmp_path: Path) -> None:
    from confluent_kafka import Consumer, Producer

    from grid_guardian_assets.replay.grid import bundled_inputs
    from grid_guardian_assets.store.hdf5 import HDF5Store
    from grid_guardian_assets.stream.producers import publication_order, replay_store

    store = HDF5Store(tmp_path / "hdf5")
    frames = dict(zip(("FUELHH", "INDO", "FREQ"), bundled_inputs(DAY)))
    for code, frame in frames.items():
        store.write_partition(SPECS[code], DAY, frame)
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
    ensure_topics(settings)
    summary = replay_store(store, Producer(settings.producer_config()), list(SPECS.values()), DAY, DAY)
    assert summary.records == sum(f.height for f in frames.values())
    consumer = Consumer(settings.consumer_config("replay-check"))
    consumer.subscribe(["bmrs.FUELHH", "bmrs.INDO", "bmrs.FREQ"])
    got, deadline = [], time.monotonic() + 30
    while len(got) < summary.records and time.monotonic() < deadline:
        got += [json.loads(m.value()) for m in consumer.consume(1000, 0.5) if m.error() is None]
    consumer.close()
    assert len(got) == summary.records
    assert {r["dataset"] for r in got} == {"FUELHH", "INDO", "FREQ"}
    # FUELHH and INDO of a period are published at its end: after every FREQ sample of that period.
    order = publication_order({code: frame.to_dicts() for code, frame in frames.items()}, SPECS)
    codes = [code for _, code, _ in order]
    first_fuel = codes.index("FUELHH")
    start, _ = day_bounds_utc(DAY)
    assert order[first_fuel][0] == start + dt.timedelta(minutes=30)
    # 30 minutes of 15-s samples, and the one at the period's end, published at the same instant.
    assert codes[:first_fuel] == ["FREQ"] * first_fuel and first_fuel == 121


# --- with a real broker and Redis ---------------------------------------------------------------------------------
@pytest.mark.integration
def test_frequency_excursion_leaves_alerts_stamped_with_reading_times(broker, redis_server, tmp_path: Path) -> None:
    values = excursion()
    produce(broker.bootstrap_servers, FREQ, freq_records(T0, values))
    run = _stream_cli(broker, redis_server, tmp_path, "--max-seconds", "12")  # as an operator runs it
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    summary = json.loads(out)
    client = redis.Redis.from_url(redis_server.url)
    alerts = stream_alerts(client)
    # The dip's out-of-band samples lie within two minutes of each other: one incident, one alert, whatever order the
    # partitions deliver them in; each sample is still recorded.
    assert len(alerts) == 1 and alerts[0]["time"] in out_of_band_times(T0, values)
    assert_every_alarm_recorded_once(client, T0, values, dips=1)
    assert all(a["node"] == "system" and a["source"] == "frequency_operational" and a["model_version"] == "none" for a in alerts)
    assert all(a["dataset"] == "FREQ" and a["kafka_topic"] == "bmrs.FREQ" and int(a["kafka_offset"]) >= 0 for a in alerts)
    assert len(timeline(client)) == len(values) == summary["readings"] and summary["model_versions"].startswith("none")
    latest = client.hgetall("anomaly:system")
    assert latest[b"time"].decode() == (T0 + dt.timedelta(seconds=15 * (len(values) - 1))).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.integration
def test_poison_messages_go_to_the_dlq_and_consumption_continues(broker, redis_server, tmp_path: Path) -> None:
    produce(broker.bootstrap_servers, FREQ, freq_records(T0, [50.0] * 5))
    produce_raw(broker.bootstrap_servers, "bmrs.FREQ", [b"{not json", b'{"dataset":"FREQ","measurementTime":"2024-01-15T13:00:00Z","frequency":99}'])
    produce(broker.bootstrap_servers, FREQ, freq_records(T0 + dt.timedelta(hours=1), [49.7] * 3))
    drifted = {**bmrs_history.fuelhh_records(DAY)[0], "fuelType": "INTXYZ"}  # valid schema, but no bus to land on
    produce(broker.bootstrap_servers, FUELHH, [drifted])
    job = InferenceJob(config_for(broker, redis_server, tmp_path))
    summary = job.run(max_seconds=15, max_messages=11)
    # The 3 out-of-band samples are one dip (1 alert); the 3 rejected readings are 2 alerts: FREQ's two bad messages
    # arrive together (one incident).
    assert (summary.readings, summary.rejected, summary.alerts) == (8, 3, 3)
    assert 0 < summary.first_message_s < summary.seconds  # the group join comes first
    sample = job.metrics.registry.get_sample_value
    assert sample("dlq_total", {"topic": "bmrs.FREQ"}) == 2 and sample("messages_processed_total", {"dataset": "FREQ"}) == 10
    assert sample("dlq_total", {"topic": "bmrs.FUELHH"}) == 1
    assert sample("alerts_total", {"source": "frequency_operational"}) == 1
    assert sample("alerts_total", {"source": "rejected_reading"}) == 2
    # Dead letters raise an alert on their dataset, written like the others, at the record's own time when it has one.
    rejected = [a for a in stream_alerts(redis.Redis.from_url(redis_server.url)) if a["source"] == "rejected_reading"]
    assert sorted((a["node"], a["dataset"], a["kafka_topic"]) for a in rejected) == [
        ("FREQ", "FREQ", "bmrs.FREQ"), ("FUELHH", "FUELHH", "bmrs.FUELHH")]
    assert len({a["alert_id"] for a in rejected}) == 2 and all(float(a["score"]) >= 1 for a in rejected)
    assert drifted["startTime"] in {a["time"] for a in rejected}
    assert redis.Redis.from_url(redis_server.url).zcard("alerts:ids") == 3 + 3  # every rejected message is recorded
    assert any("INTXYZ" in json.loads(a["detail"])["error"] for a in rejected)
    assert sample("kafka_consumer_lag", {"topic": "bmrs.FREQ", "partition": "0"}) is not None
    dead = dlq_records(broker.bootstrap_servers, 3)
    freq_dead = [d for d in dead if d["topic"] == "bmrs.FREQ"]
    poison = '{"dataset":"FREQ","measurementTime":"2024-01-15T13:00:00Z","frequency":99}'
    assert sorted(d["value_text"] for d in freq_dead) == sorted(["{not json", poison])
    (fuel_dead,) = [d for d in dead if d["topic"] == "bmrs.FUELHH"]
    assert "INTXYZ" in fuel_dead["error"] and '"fuelType":"INTXYZ"' in fuel_dead["value_text"]
    assert all(d["error"] for d in dead)


def _stream_cli(broker, redis_server, tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    write_branch_limits(tmp_path / "data")
    environment = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "REDIS_URL": redis_server.url,
        "GRID_GUARDIAN_DATA_DIR": str(tmp_path / "data"),
        **(env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "grid_guardian_assets.cli", "stream", "run", *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


@pytest.mark.integration
def test_a_crash_between_store_and_commit_loses_nothing_and_duplicates_nothing(broker, redis_server, tmp_path: Path) -> None:
    values = excursion(normal=300, low=20) * 3
    produce(broker.bootstrap_servers, FREQ, freq_records(T0, values))
    # The job as the CLI runs it (config from the environment), crashing hard once the 3rd batch is stored in Redis
    # and before its offsets are committed.
    crash = (
        "import os, sys; from pathlib import Path; from grid_guardian_assets.stream.job import InferenceJob, StreamConfig; "
        "job = InferenceJob(StreamConfig(branch_limits_file=Path(sys.argv[1]), batch_size=100), "
        "after_store=lambda stored: stored >= 3 and os._exit(99)); job.run(max_seconds=60)"
    )
    environment = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "REDIS_URL": redis_server.url}
    crashed = subprocess.Popen(
        [sys.executable, "-c", crash, str(write_branch_limits(tmp_path / "data"))],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert crashed.wait(120) == 99, crashed.stderr.read()
    client = redis.Redis.from_url(redis_server.url)
    assert 0 < len(timeline(client)) < len(values)
    # 20 s: the crashed member stays in the group until its session times out (6 s), and the new one's join waits on
    # it; with 8 s a loaded CI machine once finished the run before the rebalance did.
    resumed = _stream_cli(broker, redis_server, tmp_path, "--batch-size", "100", "--max-seconds", "20")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert 0 < json.loads(out)["messages"] <= len(values) - 200  # resumed from the last committed batch, not the start
    assert len(timeline(client)) == len(values)
    assert_every_alarm_recorded_once(client, T0, values, dips=3)


@pytest.mark.integration
def test_sigkill_mid_stream_then_restart_scores_every_reading_exactly_once(broker, redis_server, tmp_path: Path) -> None:
    values = excursion(normal=2000, low=50) * 4
    produce(broker.bootstrap_servers, FREQ, freq_records(T0, values))
    client = redis.Redis.from_url(redis_server.url)
    job = _stream_cli(broker, redis_server, tmp_path, "--batch-size", "50", "--max-seconds", "120")
    deadline = time.monotonic() + 60
    while len(timeline(client)) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    job.send_signal(signal.SIGKILL)
    job.wait(30)
    assert len(timeline(client)) < len(values), "the job finished before it could be killed: make the stream longer"
    # 20 s, as after the crash above: the killed member holds the group until its session times out.
    resumed = _stream_cli(broker, redis_server, tmp_path, "--max-seconds", "20")
    assert resumed.wait(120) == 0, resumed.stderr.read()
    assert len(timeline(client)) == len(values)
    assert_every_alarm_recorded_once(client, T0, values, dips=4)


@pytest.mark.integration
def test_sigterm_stops_after_committing_what_was_stored(broker, redis_server, tmp_path: Path) -> None:
    produce(broker.bootstrap_servers, FREQ, freq_records(T0, [50.0] * 100))
    job = _stream_cli(broker, redis_server, tmp_path)
    client = redis.Redis.from_url(redis_server.url)
    deadline = time.monotonic() + 60
    while len(timeline(client)) < 100 and time.monotonic() < deadline:
        time.sleep(0.05)
    job.send_signal(signal.SIGTERM)
    out, err = job.communicate(timeout=30)
    assert job.returncode == 0, err
    assert json.loads(out)["messages"] == 100
    again = _stream_cli(broker, redis_server, tmp_path, "--max-seconds", "6")
    out, _ = again.communicate(timeout=60)
    assert json.loads(out)["messages"] == 0  # everything stored was committed


@pytest.mark.integration
def test_redis_restart_during_consumption_loses_nothing(broker, redis_server, tmp_path: Path) -> None:
    values = excursion(normal=1500, low=30) * 4
    produce(broker.bootstrap_servers, FREQ, freq_records(T0, values))
    job = InferenceJob(config_for(broker, redis_server, tmp_path, batch_size=50))
    result = {}
    thread = threading.Thread(target=lambda: result.update(summary=job.run(max_seconds=90, max_messages=len(values))))
    thread.start()
    client = redis.Redis.from_url(redis_server.url)
    deadline = time.monotonic() + 60
    while len(timeline(client)) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(timeline(client)) < len(values)
    redis_server.stop()
    time.sleep(1.0)
    redis_server.start()
    thread.join(120)
    assert result["summary"].messages == len(values)
    client = redis.Redis.from_url(redis_server.url)
    assert len(timeline(client)) == len(values)
    assert_every_alarm_recorded_once(client, T0, values, dips=4)


@pytest.mark.integration
def test_a_replayed_day_is_scored_by_rules_and_model_and_swaps_checkpoints(broker, redis_server, tmp_path: Path, model_root: Path) -> None:
    records = day_records(DAY)
    store = ModelStore(model_root)
    first, second = store.versions()[0], store.versions()[1]
    store.promote(first)
    for code, rows in records.items():
        produce(broker.bootstrap_servers, SPECS[code], [r for r in rows if _period_of(code, r) <= 24])
    job = InferenceJob(config_for(broker, redis_server, tmp_path, model_root=model_root, fuel_settle_s=1.0))
    job.run(max_seconds=10)
    store.promote(second)
    for code, rows in records.items():
        produce(broker.bootstrap_servers, SPECS[code], [r for r in rows if _period_of(code, r) > 24])
    summary = job.run(max_seconds=12)
    store.promote(first)
    client = redis.Redis.from_url(redis_server.url)
    network = reduced_network()
    members = timeline(client)
    start, _ = day_bounds_utc(DAY)
    bus_times = {m.rsplit(":", 3)[0] for m in members if not m.startswith(("system", "national", "branch"))}
    assert bus_times == set(network.bus_names)
    scored_periods = {m.split(":", 1)[1] for m in members if m.startswith(network.bus_names[0] + ":")}
    expected_periods = {(start + dt.timedelta(minutes=30 * p)).strftime("%Y-%m-%dT%H:%M:%SZ") for p in range(TINY.warmup + 1, 48)}
    assert scored_periods == expected_periods  # the model's warm-up, then every period once
    latest = client.hgetall(f"anomaly:{network.bus_names[0]}")
    assert latest[b"model_version"].decode() == second and latest[b"source"] == b"model"
    assert latest[b"time"].decode() == (start + dt.timedelta(minutes=30 * 47)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert summary.model_versions == [second]
    national = client.hgetall("anomaly:national")
    assert national[b"dataset"] in (b"INDO", b"FUELHH")


def _period_of(code: str, record: dict) -> int:
    if code == "FREQ":
        t = dt.datetime.fromisoformat(record["measurementTime"].replace("Z", "+00:00"))
        return int((t - day_bounds_utc(DAY)[0]).total_seconds() // 1800) + 1
    return record["settlementPeriod"]


# --- Dagster: the sensor and the live asset ------------------------------------------------------------------------
LIVE_SCORES_KEY = "live_anomaly_scores"


def _evaluate_sensor(instance, model_store_root: Path, cursor: str | None):
    """One evaluation of the promotion sensor as the daemon runs it: from the stored cursor, against the instance."""
    import dagster as dg

    from grid_guardian_assets.defs.live.sensors import promoted_checkpoint_sensor
    from grid_guardian_assets.defs.resources import ModelStoreResource

    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"model_store": ModelStoreResource(root=str(model_store_root))})
    return promoted_checkpoint_sensor(context), context.cursor


def _promotion_event(asset: str, version: str, promoted: bool = True):
    import dagster as dg

    if asset == "self_play_round":
        return dg.AssetMaterialization(asset, partition="round-0001", metadata={"promoted": promoted, "solver_checkpoint": version})
    return dg.AssetMaterialization(asset, metadata={"promoted": promoted, "checkpoint": version})


def test_the_sensor_reacts_to_promotion_events_and_the_model_folder_once_each_and_never_beside_a_live_run(tmp_path: Path) -> None:
    import dagster as dg

    from grid_guardian_assets.definitions import defs
    from grid_guardian_assets.defs.live.jobs import LIVE_TAG

    folder = tmp_path / "models"  # nothing promoted in it: this daemon may not see the trainer's folder
    with dg.instance_for_test() as instance:
        skip, cursor = _evaluate_sensor(instance, folder, None)
        assert isinstance(skip, dg.SkipReason) and "no checkpoint promoted" in skip.skip_message
        instance.report_runless_asset_event(_promotion_event("gnn_verifier", "v-trained", promoted=False))
        skip, cursor = _evaluate_sensor(instance, folder, cursor)
        assert isinstance(skip, dg.SkipReason)  # a checkpoint that failed its gate is no promotion

        instance.report_runless_asset_event(_promotion_event("gnn_verifier", "v-verifier"))
        request, cursor = _evaluate_sensor(instance, folder, cursor)
        assert isinstance(request, dg.RunRequest) and request.asset_selection == [dg.AssetKey(LIVE_SCORES_KEY)]
        assert request.tags["grid_guardian/checkpoint"] == "v-verifier" and request.tags["grid_guardian/live"] == "inference"
        assert request.tags["grid_guardian/promoted_by"].startswith("gnn_verifier")
        again, cursor = _evaluate_sensor(instance, folder, cursor)  # a restarted daemon starts from the stored cursor
        assert isinstance(again, dg.SkipReason) and "already handled" in again.skip_message

        # Promoted by hand, outside Dagster: the folder says so.
        folder.mkdir()
        (folder / "PROMOTED").write_text("v-by-hand\n")
        request, cursor = _evaluate_sensor(instance, folder, cursor)
        assert isinstance(request, dg.RunRequest) and request.tags["grid_guardian/checkpoint"] == "v-by-hand"
        assert request.tags["grid_guardian/promoted_by"] == "the model folder"
        assert isinstance(_evaluate_sensor(instance, folder, cursor)[0], dg.SkipReason)

        # A live run is on (queued or running): a self-play promotion starts no second one.
        instance.create_run_for_job(job_def=defs.get_job_def("live_inference"), tags=LIVE_TAG, status=dg.DagsterRunStatus.STARTED)
        (folder / "PROMOTED").write_text("v-self-play\n")
        instance.report_runless_asset_event(_promotion_event("self_play_round", "v-self-play"))
        skip, cursor = _evaluate_sensor(instance, folder, cursor)
        assert isinstance(skip, dg.SkipReason) and "switches to v-self-play" in skip.skip_message
        assert isinstance(_evaluate_sensor(instance, folder, cursor)[0], dg.SkipReason)


def test_metrics_settings_are_read_when_the_run_starts_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    from grid_guardian_assets.defs.live.assets import LiveInferenceConfig
    from grid_guardian_assets.stream.metrics import metrics_endpoint

    monkeypatch.setenv("GRID_GUARDIAN_METRICS_PORT", "9108")
    monkeypatch.setenv("GRID_GUARDIAN_METRICS_ADDR", "0.0.0.0")
    config = LiveInferenceConfig()  # the module was imported before these were set
    assert metrics_endpoint(config.metrics_port, config.metrics_addr) == (9108, "0.0.0.0")
    assert metrics_endpoint(0, "127.0.0.1") == (0, "127.0.0.1")  # run config wins
    monkeypatch.setenv("GRID_GUARDIAN_METRICS_PORT", "")
    monkeypatch.delenv("GRID_GUARDIAN_METRICS_ADDR")
    assert metrics_endpoint() == (0, "127.0.0.1")
    monkeypatch.setenv("GRID_GUARDIAN_METRICS_PORT", "nine")
    with pytest.raises(ValueError, match="GRID_GUARDIAN_METRICS_PORT"):
        metrics_endpoint()


def _latest_observation(instance, key) -> dict | None:
    records = instance.fetch_observations(key, limit=1).records
    return {k: v.value for k, v in records[0].asset_observation.metadata.items()} if records else None


def _wait_for(condition, timeout_s: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.integration
def test_a_promotion_launches_the_live_asset_which_records_progress_and_swaps_on_the_next_promotion(
    broker, redis_server, tmp_path: Path, model_root: Path
) -> None:
    import dagster as dg

    from grid_guardian_assets.definitions import defs
    from grid_guardian_assets.defs.resources import ModelStoreResource, resources_for

    store = ModelStore(model_root)
    first, second = store.versions()[:2]
    store.promote(first)
    write_branch_limits(tmp_path / "data")  # what the branch_limits asset stores
    resources = resources_for("http://127.0.0.1:1", tmp_path / "data", kafka_bootstrap=broker.bootstrap_servers, redis_url=redis_server.url)
    resources["model_store"] = ModelStoreResource(root=str(model_root))
    scores = dg.AssetKey(LIVE_SCORES_KEY)
    fuel = [r for r in bmrs_history.fuelhh_records(DAY) if r["settlementPeriod"] <= 4]
    produce(broker.bootstrap_servers, FUELHH, fuel)
    produce(broker.bootstrap_servers, FREQ, freq_records(T0, excursion()))
    total = len(fuel) + 2 * len(excursion())
    errors: list[BaseException] = []
    during: dict = {}
    try:
        with dg.instance_for_test() as instance:
            instance.report_runless_asset_event(_promotion_event("gnn_verifier", first))
            request, cursor = _evaluate_sensor(instance, model_root, None)
            assert isinstance(request, dg.RunRequest) and request.tags["grid_guardian/checkpoint"] == first

            def second_promotion_while_live() -> None:
                try:
                    _wait_for(lambda: (_latest_observation(instance, scores) or {}).get("readings", 0) >= len(fuel) + len(excursion()),
                              what="progress of the first records")
                    during["progress"] = _latest_observation(instance, scores)
                    store.promote(second)
                    instance.report_runless_asset_event(_promotion_event("self_play_round", second))
                    during["sensor"], during["cursor"] = _evaluate_sensor(instance, model_root, cursor)
                    _wait_for(lambda: (_latest_observation(instance, scores) or {}).get("model_in_use") == second, what="the swap")
                    produce(broker.bootstrap_servers, FREQ, freq_records(T0 + dt.timedelta(hours=1), excursion()))
                except BaseException as exc:  # noqa: BLE001 (reported by the test's thread)
                    errors.append(exc)

            helper = threading.Thread(target=second_promotion_while_live)
            helper.start()
            config = {"max_seconds": 90.0, "max_messages": total, "progress_every_s": 0.2, "fuel_settle_s": 1.0}
            result = defs.get_job_def("live_inference").execute_in_process(
                run_config={"ops": {LIVE_SCORES_KEY: {"config": config}}}, instance=instance, resources=resources, tags=request.tags,
            )
            helper.join(60)
            assert not errors, errors
            assert result.success

            # The progress the UI shows while it ran: readings, alerts, lag, checkpoint in use, offsets covered.
            progress = during["progress"]
            assert progress["model_in_use"] == first and progress["alerts"] == 1  # the dip: one incident
            assert {tp.split("/")[0] for tp in progress["kafka_offsets"]} == {"bmrs.FUELHH", "bmrs.FREQ"} and "consumer_lag" in progress
            observations = instance.fetch_observations(scores, limit=1000).records
            assert all(o.run_id == result.run_id for o in observations)
            assert {o.asset_observation.metadata["model_in_use"].value for o in observations} == {first, second}

            # The second promotion switched the running job: no second run.
            assert isinstance(during["sensor"], dg.SkipReason) and f"switches to {second}" in during["sensor"].skip_message
            runs = instance.get_runs(dg.RunsFilter(job_name="live_inference"))
            assert [r.run_id for r in runs] == [result.run_id] and runs[0].tags["grid_guardian/checkpoint"] == first

            # The final materialisation: the run's summary.
            final = instance.get_latest_materialization_event(scores)
            assert final.run_id == result.run_id
            metadata = {k: v.value for k, v in final.asset_materialization.metadata.items()}
            assert metadata["model_versions"] == f"{first}, {second}" and metadata["model_in_use"] == second
            assert metadata["messages"] == total and metadata["readings"] == total and metadata["alerts"] == 2  # two dips an hour apart
            covered = {}  # topic -> offsets covered, over its partitions (the producers' topics auto-create several)
            for tp, span in metadata["kafka_offsets"].items():
                first_offset, last_offset = (int(o) for o in span.split(".."))
                covered[tp.split("/")[0]] = covered.get(tp.split("/")[0], 0) + last_offset - first_offset + 1
            assert covered == {"bmrs.FREQ": 2 * len(excursion()), "bmrs.FUELHH": len(fuel)}
            assert metadata["stopped_by"] == "max_messages" and metadata["consumer_lag"] == 0
            client = redis.Redis.from_url(redis_server.url)
            assert {a["model_version"] for a in stream_alerts(client)} == {first, second}
            redis_event = instance.get_latest_materialization_event(dg.AssetKey("redis_alerts"))
            assert redis_event.run_id == result.run_id
            assert redis_event.asset_materialization.metadata["alert_stream_length"].value == 2

            # Nothing new since: no run. A promotion once the live run is over: a new run.
            assert isinstance(_evaluate_sensor(instance, model_root, during["cursor"])[0], dg.SkipReason)
            store.promote(first)
            instance.report_runless_asset_event(_promotion_event("gnn_verifier", first))
            request, _ = _evaluate_sensor(instance, model_root, during["cursor"])
            assert isinstance(request, dg.RunRequest) and request.tags["grid_guardian/checkpoint"] == first
    finally:
        store.promote(first)


@pytest.mark.integration
def test_terminating_the_live_run_commits_and_records_its_final_materialisation(broker, redis_server, tmp_path: Path) -> None:
    import dagster as dg

    from grid_guardian_assets.definitions import defs
    from grid_guardian_assets.defs.live.jobs import LIVE_TAG
    from grid_guardian_assets.defs.resources import resources_for

    write_branch_limits(tmp_path / "data")  # what the branch_limits asset stores
    resources = resources_for("http://127.0.0.1:1", tmp_path / "data", kafka_bootstrap=broker.bootstrap_servers, redis_url=redis_server.url)
    produce(broker.bootstrap_servers, FREQ, freq_records(T0, [50.0] * 100))
    scores = dg.AssetKey(LIVE_SCORES_KEY)
    errors: list[BaseException] = []
    with dg.instance_for_test() as instance:

        def terminate_once_consumed() -> None:
            # What the UI's Terminate does to the run worker (the launcher interrupts it; SIGTERM maps to the same).
            try:
                _wait_for(lambda: (_latest_observation(instance, scores) or {}).get("readings") == 100, what="progress")
                time.sleep(1.0)
                assert instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
                os.kill(os.getpid(), signal.SIGINT)
            except BaseException as exc:  # noqa: BLE001 (reported by the test's thread)
                errors.append(exc)

        helper = threading.Thread(target=terminate_once_consumed)
        helper.start()
        result = defs.get_job_def("live_inference").execute_in_process(
            run_config={"ops": {LIVE_SCORES_KEY: {"config": {"progress_every_s": 0.2}}}}, instance=instance, resources=resources,
            tags=LIVE_TAG,
        )
        helper.join(30)
        assert not errors, errors
        assert result.success
        final = instance.get_latest_materialization_event(scores)
        metadata = {k: v.value for k, v in final.asset_materialization.metadata.items()}
        assert final.run_id == result.run_id and metadata["stopped_by"] == "run terminated" and metadata["messages"] == 100
        assert metadata["physics_rules_only"] is True
    # The offsets were committed before the run ended: the group has nothing left to read.
    again = InferenceJob(config_for(broker, redis_server, tmp_path, group_id="grid-guardian-live"))
    nothing = again.run(max_seconds=6)
    assert nothing.messages == 0 and nothing.first_message_s is None


@pytest.mark.integration
def test_live_poller_publishes_each_record_once_across_restarts(broker, tmp_path: Path) -> None:
    from confluent_kafka import Consumer, Producer

    from grid_guardian_assets.elexon.client import ElexonClient
    from grid_guardian_assets.replay.server import ReplayServer
    from grid_guardian_assets.stream.metrics import StreamMetrics
    from grid_guardian_assets.stream.producers import LivePoller, PublishedKeys

    settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
    now = [dt.datetime(2018, 3, 6, 12, 5, tzinfo=dt.UTC)]
    metrics = StreamMetrics()
    with ReplayServer() as replay:
        for run in range(2):  # the second poller is a restart: same key table, new process state
            client = ElexonClient(replay.base_url, limiter_db=tmp_path / "limiter.sqlite")
            keys = PublishedKeys(tmp_path / "keys.sqlite")
            poller = LivePoller(client, Producer(settings.producer_config()), keys, clock=lambda: now[0], metrics=metrics)
            first = poller.poll_once()
            now[0] += dt.timedelta(seconds=30)
            second = poller.poll_once()
            keys.close()
            client.close()
            if run == 0:
                assert first["FREQ"] == 40 and first["FUELHH"] > 0 and first["INDO"] > 0
                assert second == {"FREQ": 2, "FUELHH": 0, "INDO": 0}  # only the two samples of the new 30 s
            else:  # the restart asks for the same window first: nothing is published again
                assert first == {"FREQ": 0, "FUELHH": 0, "INDO": 0} and second == {"FREQ": 2, "FUELHH": 0, "INDO": 0}
    assert metrics.registry.get_sample_value("bmrs_api_requests_total", {"dataset": "FREQ", "outcome": "ok"}) == 4
    # Everything the pollers published, read back: no key twice.
    consumer = Consumer(settings.consumer_config("poller-check"))
    consumer.subscribe(["bmrs.FREQ", "bmrs.FUELHH", "bmrs.INDO"])
    keys_seen: list[tuple[str, bytes]] = []
    deadline, idle = time.monotonic() + 30, 0
    while time.monotonic() < deadline and idle < 4:
        batch = [m for m in consumer.consume(500, 0.5) if m.error() is None]
        keys_seen.extend((m.topic(), m.key()) for m in batch)
        idle = idle + 1 if keys_seen and not batch else 0
    consumer.close()
    assert len(keys_seen) == len(set(keys_seen)) and sum(t == "bmrs.FREQ" for t, _ in keys_seen) == 44


@pytest.mark.integration
def test_an_incident_over_adjacent_periods_is_one_alert_and_a_frequency_dip_is_one_in_any_order(redis_server) -> None:
    """A line overload lasting three settlement periods (written over two batches) is one alert in ``alerts`` and on
    the channel; the same branch overloaded again two hours later is a second; a replayed batch adds nothing. A
    frequency dip's samples are one alert whatever order they arrive in (FREQ keyed by time spreads over partitions):
    newest first, an older one inside the span, or the two ends first and the middle after (two alerts, then one
    span); a dip three minutes after the last is a new incident."""
    from grid_guardian_assets.detect.findings import Finding
    from grid_guardian_assets.stream.redis_sink import RedisSink

    client = redis.Redis.from_url(redis_server.url)
    sink = RedisSink(client, "live:state:test")
    origin = Origin("bmrs.FUELHH", 0, 1)

    def overload(period: int) -> Finding:
        return Finding("branch-7", T0 + dt.timedelta(minutes=30 * period), 1.2, "line_overload", "FUELHH", origin)

    first = [overload(0), overload(1)]
    assert sink.write(first, None) == [first[0]]
    assert sink.write([overload(2)], None) == []  # the same incident, one period on
    assert sink.write(first, None) == []  # a replay
    assert sink.write([overload(6)], None) == [overload(6)]  # two hours after the last alarming period: a new incident
    assert sink.write([overload(3)], None) == []  # late, but within a period of the first incident's span

    def sample(second: int) -> Finding:
        return frequency_findings(T0 + dt.timedelta(seconds=second), 49.7, Origin("bmrs.FREQ", 0, second), None)[0]

    assert sink.write([sample(60)], None) == [sample(60)]
    assert sink.write([sample(45), sample(30)], None) == []  # older, arriving after: the same dip
    assert sink.write([sample(0)], None) == []  # older than the newest by a minute, but within the span's gap
    assert sink.write([sample(75), sample(90)], None) == []
    later = [sample(300), sample(530)]  # two dips' samples, more than two minutes from the first span and each other
    assert sink.write(later, None) == later
    assert sink.write([sample(415)], None) == []  # joins both: one span from 300 to 530 s
    assert sink.write([sample(640)], None) == []  # within two minutes of the joined span's end
    alerts = stream_alerts(client)
    assert [(a["source"], a["time"]) for a in alerts if a["source"] == "line_overload"] == [
        ("line_overload", overload(0).time.strftime("%Y-%m-%dT%H:%M:%SZ")), ("line_overload", overload(6).time.strftime("%Y-%m-%dT%H:%M:%SZ"))]
    assert [a["time"] for a in alerts if a["source"].startswith("frequency")] == [
        sample(60).time.strftime("%Y-%m-%dT%H:%M:%SZ"), sample(300).time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        sample(530).time.strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert client.zcard("alerts:ids") == 5 + 10  # every alarming period and sample is recorded, merged or not
    spans = client.zrange("alerts:incident:frequency_operational|system", 0, -1)
    start = int(T0.timestamp() * 1000)
    assert spans == [f"{start}:{start + 90_000}".encode(), f"{start + 300_000}:{start + 640_000}".encode()]


@pytest.mark.integration
def test_a_burst_of_rejected_readings_is_one_alert_per_dataset(redis_server) -> None:
    """A broken feed sends hundreds of bad messages in seconds: one alert on the dataset, not one per message, whatever
    times the messages carry (their records' own, or none); a second dataset's, or the same dataset's an hour later,
    is another. A replayed burst adds nothing."""
    from grid_guardian_assets.stream.dead_letters import rejected_reading_finding
    from grid_guardian_assets.stream.messages import Rejected
    from grid_guardian_assets.stream.redis_sink import RedisSink

    client = redis.Redis.from_url(redis_server.url)
    now = [T0.timestamp()]
    sink = RedisSink(client, "live:state:test", clock=lambda: now[0])

    def burst(topic: str, first_offset: int) -> list:
        # Half the messages carry a 2018 record time, half none (arrival time stands in): one burst all the same.
        stamped = {"dataset": "FREQ", "measurementTime": "2018-03-01T00:00:00Z", "frequency": 99}
        return [rejected_reading_finding(Rejected(Origin(topic, 0, first_offset + i), None,
                                                  json.dumps(stamped).encode() if i % 2 else b"{not json", "bad"),
                                         now=dt.datetime.fromtimestamp(now[0], dt.UTC)) for i in range(50)]

    fuelhh, freq = burst("bmrs.FUELHH", 0), burst("bmrs.FREQ", 0)
    assert {f.time for f in freq} == {T0, dt.datetime(2018, 3, 1, tzinfo=dt.UTC)}
    assert sink.write(fuelhh + freq, None) == [fuelhh[0], freq[0]]
    assert sink.write(fuelhh, None) == []
    now[0] += 3600
    later = burst("bmrs.FUELHH", 50)
    assert sink.write(later, None) == [later[0]]
    alerts = [a for a in stream_alerts(client) if a["source"] == "rejected_reading"]
    assert sorted((a["node"], a["kafka_offset"]) for a in alerts) == [("FREQ", "0"), ("FUELHH", "0"), ("FUELHH", "50")]
    assert client.zcard("alerts:ids") == 150  # every rejected message is recorded, merged or not


def test_while_the_job_runs_startup_objects_are_frozen_out_of_collection_and_the_collector_is_restored_after() -> None:
    import gc

    before = gc.get_threshold()
    with _collector_tuned_for_batches():
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD and gc.get_freeze_count() > 0
        cycle: list = []
        cycle.append(cycle)  # a cycle made during a batch is still collected
        del cycle
        assert gc.collect() >= 1
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
