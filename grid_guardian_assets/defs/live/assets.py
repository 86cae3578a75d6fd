"""The live path in the asset graph: the ``bmrs.*`` Kafka topics, the long-running inference, and its Redis outputs.

The topics and Redis are external assets (``AssetSpec``): the live poller and the replay producer write the topics
outside Dagster, and the inference writes Redis. ``live_anomaly_scores`` is materialised by a run that lasts until
it is terminated (or hits a configured limit): while it runs it records asset observations with its progress, when
it stops it records the final materialisation with the run's summary, and a materialisation of ``redis_alerts``.
"""

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from pydantic import Field

from grid_guardian_assets.datasets import DATASETS, FUELHH
from grid_guardian_assets.defs.resources import BmrsStorageResource, GridResource, KafkaResource, ModelStoreResource, RedisResource
from grid_guardian_assets.defs.windows_config import stored_deps
from grid_guardian_assets.stream import defaults as stream_defaults
from grid_guardian_assets.stream import redis_keys
from grid_guardian_assets.stream.topics import DLQ_TOPIC, topic_for

# dagster.yaml limits runs with this tag to one: at most one live run consumes at a time.
LIVE_TAG = {"grid_guardian/live": "inference"}
LIVE_GROUP = "live"
ACTIVE_RUN_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]

TOPIC_KEY_PREFIX = "kafka"


def topic_asset_key(topic: str) -> dg.AssetKey:
    """``kafka/bmrs.FUELHH`` for topic ``bmrs.FUELHH``."""
    return dg.AssetKey([TOPIC_KEY_PREFIX, topic])


BMRS_TOPICS = [
    dg.AssetSpec(
        key=topic_asset_key(topic_for(spec)),
        group_name=LIVE_GROUP,
        kinds={"kafka"},
        description=f"Kafka topic {topic_for(spec)}: one Insights API {spec.code} record per message (the API's own "
        "field names), keyed by the record's natural key. Written outside Dagster by the live poller "
        "(`grid-guardian stream poll`, the Insights API every 30 s) or the replay producer (`grid-guardian stream replay`).",
        metadata={"topic": topic_for(spec), "dataset": spec.code},
    )
    for spec in DATASETS.values()
]

REDIS_ALERTS = dg.AssetSpec(
    key="redis_alerts",
    group_name=LIVE_GROUP,
    deps=["live_anomaly_scores"],
    kinds={"redis"},
    description="What the live inference writes to Redis: the `alerts` stream and `alerts:anomalies` channel (each "
    "alert with its rule or model, score, checkpoint and Kafka topic/partition/offset), the latest score per node "
    "(`anomaly:{node}` hashes) and `anomaly:timeline`. Materialised by each live run when it stops.",
    metadata={"keys": ", ".join(redis_keys.ALL_KEYS)},
)

DEAD_LETTERS = dg.AssetSpec(
    key=topic_asset_key(DLQ_TOPIC),
    group_name=LIVE_GROUP,
    deps=["live_anomaly_scores"],
    kinds={"kafka"},
    description=f"Kafka topic {DLQ_TOPIC}: messages the live inference rejected (not JSON, schema or range "
    "failures, no bus to land on), each with the error, its topic/partition/offset and the original bytes.",
    metadata={"topic": DLQ_TOPIC},
)


class LiveInferenceConfig(dg.Config):
    """How long to run (the defaults run until the run is terminated), how to batch and how often to report."""

    max_seconds: float | None = Field(default=None, description="Stop after this many seconds (default: until terminated).")
    max_messages: int | None = Field(default=None, description="Stop after this many Kafka messages.")
    batch_size: int = Field(default=stream_defaults.BATCH_SIZE, description="Most messages per batch (one Redis transaction, one commit).")
    group_id: str = Field(default=stream_defaults.GROUP_ID, description="Kafka consumer group: its committed offsets are the progress.")
    fuel_settle_s: float = Field(default=stream_defaults.FUEL_SETTLE_S, description="Quiet seconds after which a period's FUELHH counts as complete.")
    progress_every_s: float = Field(default=stream_defaults.PROGRESS_EVERY_S, description="Least seconds between two progress observations.")
    metrics_port: int | None = Field(
        default=None, description="Serve Prometheus /metrics on this port (0: off); unset: $GRID_GUARDIAN_METRICS_PORT."
    )
    metrics_addr: str | None = Field(
        default=None, description="Address the metrics server binds; unset: $GRID_GUARDIAN_METRICS_ADDR, else 127.0.0.1."
    )


def _has_live_tag(tags: dict[str, str]) -> bool:
    return all(tags.get(k) == v for k, v in LIVE_TAG.items())


def _refuse_a_second_live_run(context: dg.AssetExecutionContext) -> None:
    """A run launched without the live tag (the UI's Materialize button uses the implicit asset job) slipped past
    the run coordinator's limit: tag it, so later runs queue behind it, and refuse it while another live run is on."""
    if _has_live_tag(context.run.tags):
        return  # queued with the tag: the coordinator's tag limit already held
    context.instance.add_run_tags(context.run_id, LIVE_TAG)
    others = [r for r in context.instance.get_runs(dg.RunsFilter(statuses=ACTIVE_RUN_STATUSES, tags=LIVE_TAG))
              if r.run_id != context.run_id]
    if others:
        raise dg.Failure(
            description=f"live run {others[0].run_id} is already consuming; it takes up newly promoted checkpoints by "
            "itself (terminate it first to restart the live path)",
            allow_retries=False,
        )


def _progress_metadata(summary_metadata: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in summary_metadata.items() if k != "stopped_by"}


@dg.asset(
    group_name=LIVE_GROUP,
    # The stores: the week of FUELHH the job learns the usual falls from at start (stream.job.learn_stored_falls).
    deps=["gnn_verifier", "self_play_round", "branch_limits", "detector_calibration", *stored_deps(FUELHH), *BMRS_TOPICS],
    kinds={"kafka", "redis", "pytorch"},
    description="The live path: consumes the bmrs.* topics, scores readings with the physics rules and the promoted "
    "checkpoint (gnn_verifier's, or a self-play round's), writes scores and alerts to Redis and then commits. "
    "Line overloads are judged on the branches with credible ratings that branch_limits stored (the run fails without "
    "them); the redundancy checks and per-fuel data-quality detectors run with detector_calibration's file when it is "
    "stored. Long-running: "
    "progress is recorded as observations (readings, alerts, consumer lag, checkpoint in use, offsets covered); "
    "terminating the run finishes the batch, commits, and records the final materialisation.",
)
def live_anomaly_scores(
    context: dg.AssetExecutionContext,
    config: LiveInferenceConfig,
    kafka: KafkaResource,
    redis: RedisResource,
    model_store: ModelStoreResource,
    grid: GridResource,
    bmrs_storage: BmrsStorageResource,
) -> Iterator[dg.AssetObservation | dg.AssetMaterialization | dg.MaterializeResult]:
    # The stream job loads torch and the verifier: imported here, not by the code location.
    from redis import RedisError

    from grid_guardian_assets.grid.branch_limits import BranchLimitsMissing
    from grid_guardian_assets.stream.job import InferenceJob, StreamConfig, StreamSummary
    from grid_guardian_assets.stream.metrics import StreamMetrics, metrics_endpoint

    _refuse_a_second_live_run(context)
    store = model_store.store()
    promoted = store.promoted()
    if promoted is None:
        context.log.warning(f"no promoted checkpoint in {store.root}: scoring with physics rules only")
    else:
        context.log.info(f"starting with promoted checkpoint {promoted}; a newer promotion is picked up between batches")
    stream_config = StreamConfig(
        branch_limits_file=bmrs_storage.layout.branch_limits(grid.network),
        detector_calibration_file=bmrs_storage.layout.detector_calibration,
        stores=bmrs_storage.layout.hdf5,
        kafka=kafka.settings(),
        redis_url=redis.url,
        group_id=config.group_id,
        network=grid.network,
        model_root=Path(store.root),
        batch_size=config.batch_size,
        fuel_settle_s=config.fuel_settle_s,
        progress_every_s=config.progress_every_s,
    )
    metrics = StreamMetrics()
    progress: queue.Queue[StreamSummary] = queue.Queue()
    try:
        job = InferenceJob(stream_config, metrics, on_progress=progress.put)
    except BranchLimitsMissing as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    port, addr = metrics_endpoint(config.metrics_port, config.metrics_addr)
    if port:
        metrics.serve(port, addr)
        context.log.info(f"Prometheus metrics on {addr}:{port}/metrics")

    # The loop runs in a worker thread so that Dagster's interrupt (the UI's Terminate sends SIGINT to the run
    # worker; SIGTERM is mapped to it) lands here, in the step's thread, between batches of events: the worker is
    # asked to stop, finishes its batch and commits, and the final materialisation is still recorded.
    outcome: dict[str, object] = {}

    def consume() -> None:
        try:
            outcome["summary"] = job.run(max_seconds=config.max_seconds, max_messages=config.max_messages,
                                         handle_sigterm=False)
        except BaseException as exc:  # noqa: BLE001 (handed to the step's thread, which raises it)
            outcome["error"] = exc

    worker = threading.Thread(target=consume, name="live-inference", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            try:
                snapshot = progress.get(timeout=0.5)
            except queue.Empty:
                continue
            yield dg.AssetObservation(asset_key=context.asset_key, metadata=_progress_metadata(snapshot.as_metadata()))
    except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt):
        context.log.info("run terminated: finishing the current batch and committing its offsets")
        job.stop("run terminated")
        worker.join()
    finally:
        # Dagster closes this generator if the interrupt lands in its own frames: never leave a consumer behind.
        if worker.is_alive():
            job.stop("run terminated")
            worker.join(timeout=60)
    if "error" in outcome:
        raise outcome["error"]
    summary: StreamSummary = outcome["summary"]
    metadata = summary.as_metadata()
    metadata["physics_rules_only"] = not summary.model_versions
    context.log.info(f"live inference stopped ({summary.stopped_by}): {metadata}")
    if summary.messages:
        redis_metadata: dict[str, object] = {"alerts_written": summary.alerts, "alerts_by_source": dict(summary.alerts_by_source),
                                             "model_versions": metadata["model_versions"]}
        try:
            redis_metadata.update(
                alert_stream_length=job.redis.xlen(redis_keys.ALERT_STREAM),
                timeline_entries=job.redis.zcard(redis_keys.TIMELINE_KEY),
            )
        except RedisError as exc:  # everything was stored and committed; the sizes are only for the record
            context.log.warning(f"Redis sizes not read: {exc}")
        yield dg.AssetMaterialization(asset_key=REDIS_ALERTS.key, metadata=redis_metadata)
    yield dg.MaterializeResult(metadata=metadata)
