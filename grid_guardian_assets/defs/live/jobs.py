"""The long-running inference job: a thin Dagster wrapper around ``stream.job.InferenceJob``."""

import os
from pathlib import Path

import dagster as dg

from grid_guardian_assets.config import default_data_dir
from grid_guardian_assets.defs.resources import GridResource, KafkaResource, ModelStoreResource, RedisResource
from grid_guardian_assets.stream.metrics import METRICS_PORT_ENV

# dagster.yaml limits runs with this tag to one: at most one live job consumes at a time.
LIVE_TAG = {"grid_guardian/live": "inference"}


class LiveInferenceConfig(dg.Config):
    """How long to run (the defaults run until the run is terminated) and how to batch."""

    max_seconds: float | None = None
    max_messages: int | None = None
    batch_size: int = 500
    group_id: str = "grid-guardian-live"
    fuel_settle_s: float = 5.0
    # Serve Prometheus /metrics on this port (0: off). Defaults to $GRID_GUARDIAN_METRICS_PORT.
    metrics_port: int = int(os.environ.get(METRICS_PORT_ENV, "0") or 0)
    metrics_addr: str = os.environ.get("GRID_GUARDIAN_METRICS_ADDR", "127.0.0.1")


@dg.op(description="Consume bmrs.* topics, score with physics rules and the promoted checkpoint, write Redis, commit.")
def run_live_inference(
    context: dg.OpExecutionContext,
    config: LiveInferenceConfig,
    kafka: KafkaResource,
    redis: RedisResource,
    model_store: ModelStoreResource,
    grid: GridResource,
) -> dg.Output[None]:
    # The stream job loads torch and the verifier: imported here, not by the code location.
    from grid_guardian_assets.stream.job import InferenceJob, StreamConfig
    from grid_guardian_assets.stream.metrics import StreamMetrics

    store = model_store.store()
    promoted = store.promoted()
    if promoted is None:
        context.log.warning(f"no promoted checkpoint in {store.root}: scoring with physics rules only")
    else:
        context.log.info(f"starting with promoted checkpoint {promoted}; a newer promotion is picked up between batches")
    stream_config = StreamConfig(
        kafka=kafka.settings(),
        redis_url=redis.url,
        group_id=config.group_id,
        network=grid.network,
        model_root=Path(store.root),
        cache_dir=default_data_dir() / "cache",
        batch_size=config.batch_size,
        fuel_settle_s=config.fuel_settle_s,
    )
    metrics = StreamMetrics()
    if config.metrics_port:
        metrics.serve(config.metrics_port, config.metrics_addr)
        context.log.info(f"Prometheus metrics on {config.metrics_addr}:{config.metrics_port}/metrics")
    summary = InferenceJob(stream_config, metrics).run(max_seconds=config.max_seconds, max_messages=config.max_messages,
                                              handle_sigterm=False)
    metadata = summary.as_metadata()
    metadata["physics_rules_only"] = not summary.model_versions
    context.log.info(f"live inference stopped: {metadata}")
    return dg.Output(None, metadata=metadata)


@dg.job(tags=LIVE_TAG, description="The live path: Kafka → GNN verifier and physics rules → Redis (long-running).")
def live_inference():
    run_live_inference()
