"""Launch the live job when a checkpoint is promoted (a running job swaps to it by itself)."""

import dagster as dg

from grid_guardian_assets.defs.live.jobs import LIVE_TAG, live_inference
from grid_guardian_assets.defs.resources import ModelStoreResource

_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dg.sensor(job=live_inference, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Starts the live inference run for a newly promoted checkpoint unless one is already running.")
def promoted_checkpoint_sensor(context: dg.SensorEvaluationContext, model_store: ModelStoreResource):
    version = model_store.store().promoted()
    if version is None:
        return dg.SkipReason("no checkpoint promoted yet (the live job can still be launched by hand: physics rules only)")
    if version == context.cursor:
        return dg.SkipReason(f"{version} already handled")
    running = context.instance.get_runs(
        dg.RunsFilter(job_name=live_inference.name, statuses=_ACTIVE, tags=LIVE_TAG), limit=1
    )
    context.update_cursor(version)
    if running:
        return dg.SkipReason(f"run {running[0].run_id} is live and switches to {version} between batches")
    return dg.RunRequest(run_key=f"live-{version}", tags={**LIVE_TAG, "grid_guardian/checkpoint": version})
