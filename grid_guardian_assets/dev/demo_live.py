"""The demo's live stage: a broker and Redis (running ones, or local ones it starts and stops), a stored day replayed
through Kafka with an incident in it, and the live inference run (``live_anomaly_scores``) that the checkpoint sensor
asks for."""

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import redis
from confluent_kafka import Producer
from rich.console import Console

from grid_guardian_assets.datasets import FREQ, FUELHH, INDO
from grid_guardian_assets.dev.local_servers import LocalBroker, LocalRedis, free_port, port_open
from grid_guardian_assets.grid.physics import TRIP_RECOVERY_S, trip_frequency_dip_hz
from grid_guardian_assets.settlement import day_bounds_utc, to_api_time
from grid_guardian_assets.store.hdf5 import HDF5Store
from grid_guardian_assets.stream.kafka import DEFAULT_BOOTSTRAP, KafkaSettings, ensure_topics
from grid_guardian_assets.stream.producers import publish_records
from grid_guardian_assets.stream.redis_keys import ALERT_STREAM

INCIDENT_PERIOD = 34  # late afternoon
INCIDENT_MW = 1000.0


@dataclass
class LiveServers:
    bootstrap_servers: str
    redis_url: str
    started: list[str] = field(default_factory=list)


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@contextmanager
def live_servers(root: Path, console: Console, bootstrap_servers: str = "", redis_url: str = "") -> Iterator[LiveServers]:
    """``bootstrap_servers`` (empty: 127.0.0.1:9092) and ``redis_url`` when they answer, else a Redis already on 6379
    (database 1, so the demo's keys stay apart), else local servers started here (tansu on 9092 when free) and
    stopped on the way out (even on Ctrl-C)."""
    started = []
    bootstrap = bootstrap_servers or DEFAULT_BOOTSTRAP
    host, _, port = bootstrap.partition(":")
    if not (port.isdigit() and port_open(host, int(port))):
        # On the default port when it is free, so `grid-guardian stream …` finds it without settings.
        broker = LocalBroker(0 if port_open("127.0.0.1", 9092) else 9092).start()
        started.append(broker)
        bootstrap = broker.bootstrap_servers
        console.print(f"Started a local Kafka-protocol broker (tansu, in memory) at [bold]{bootstrap}[/]")
    if not (redis_url and _redis_answers(redis_url)):
        redis_url = "redis://127.0.0.1:6379/1"
        if not _redis_answers(redis_url):
            server = LocalRedis(port=free_port(), directory=root / "redis").start()
            started.append(server)
            redis_url = server.url
            console.print(f"Started redis-server at [bold]{redis_url}[/] (append-only file in {root / 'redis'})")
    try:
        yield LiveServers(bootstrap, redis_url, [type(s).__name__ for s in started])
    finally:
        for server in reversed(started):
            server.stop()


def incident_records(store: HDF5Store, day: dt.date) -> tuple[dict[str, list[dict]], dt.datetime]:
    """The day's stored FUELHH, INDO and FREQ records by dataset code, with an incident written in: a
    1,000 MW nuclear trip at the start of ``INCIDENT_PERIOD`` (CCGT picks the loss up for the next four periods) and
    the frequency dip it causes (``grid.physics.trip_frequency_dip_hz``: 0.45 Hz, recovering with a one-minute time
    constant)."""
    fuel, demand, freq = (store.read_range(spec, day, day).to_dicts() for spec in (FUELHH, INDO, FREQ))
    if not fuel or not demand:
        raise ValueError(f"FUELHH and INDO for {day} are not stored: materialise them first")
    trip = next(r["startTime"] for r in fuel if r["settlementPeriod"] == INCIDENT_PERIOD) + dt.timedelta(minutes=2)
    for r in fuel:
        if INCIDENT_PERIOD <= r["settlementPeriod"] < INCIDENT_PERIOD + 4:
            if r["fuelType"] == "NUCLEAR":
                r["generation"] -= int(INCIDENT_MW)
            elif r["fuelType"] == "CCGT":
                r["generation"] += int(INCIDENT_MW)
    for r in freq:
        after = (r["measurementTime"] - trip).total_seconds()
        if 0 <= after < 10 * TRIP_RECOVERY_S:
            r["frequency"] = round(r["frequency"] - float(trip_frequency_dip_hz(INCIDENT_MW, after)), 3)
    return {"FUELHH": fuel, "INDO": demand, "FREQ": freq}, trip


@dataclass
class LiveOutcome:
    sensor: str
    run_ok: bool
    run_id: str
    published: int
    alerts: list[dict]
    trip: dt.datetime
    metadata: dict
    servers: LiveServers


def run_live_stage(instance: dg.DagsterInstance, resources: dict, store: HDF5Store, day: dt.date,
                   servers: LiveServers, run_config_extra: dict) -> LiveOutcome:
    """Evaluate the checkpoint sensor as the daemon would, replay ``day`` with its incident, run what the sensor
    asked for (in process, into the demo's instance) and read the alerts back from Redis."""
    from grid_guardian_assets.definitions import defs
    from grid_guardian_assets.defs.live.jobs import LIVE_TAG
    from grid_guardian_assets.defs.live.sensors import promoted_checkpoint_sensor

    context = dg.build_sensor_context(instance=instance, resources={"model_store": resources["model_store"]})
    decision = promoted_checkpoint_sensor(context)
    if isinstance(decision, dg.RunRequest):
        sensor, tags = f"RunRequest for checkpoint {decision.tags['grid_guardian/checkpoint']}", decision.tags
    else:
        sensor, tags = f"skipped: {decision.skip_message}", LIVE_TAG
    records, trip = incident_records(store, day)
    settings = KafkaSettings(bootstrap_servers=servers.bootstrap_servers)
    ensure_topics(settings)
    published = publish_records(Producer(settings.producer_config()), records, {s.code: s for s in (FUELHH, INDO, FREQ)}).records
    job = defs.get_job_def("live_inference")
    config = {"max_messages": published, "max_seconds": 300.0, "fuel_settle_s": 1.0, "group_id": f"grid-guardian-demo-{day}"}
    result = job.execute_in_process(run_config={"ops": {"live_anomaly_scores": {"config": config}}, **run_config_extra},
                                    instance=instance, resources=resources, tags=tags, raise_on_error=False)
    metadata = {}
    for event in result.get_asset_materialization_events():
        if event.asset_key == dg.AssetKey("live_anomaly_scores"):
            metadata = {k: v.value for k, v in event.step_materialization_data.materialization.metadata.items()}
    client = redis.Redis.from_url(servers.redis_url)
    start, end = (to_api_time(t) for t in day_bounds_utc(day))
    alerts = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in client.xrange(ALERT_STREAM)]
    alerts = [a for a in alerts if start <= a["time"] < end]
    return LiveOutcome(sensor, result.success, result.run_id, published, alerts, trip, metadata, servers)
