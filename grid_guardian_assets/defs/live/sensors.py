"""Launch the live run when a checkpoint is promoted (a running live job swaps to it by itself).

A promotion is read from the asset events of ``gnn_verifier`` and ``self_play_round`` (their materialisations say
``promoted`` and which checkpoint), and from the model store's ``PROMOTED`` file, which can also change outside
Dagster (``ModelStore.promote`` by hand). The cursor (the last event seen and the last version handled) lives in
the instance, so a daemon restart neither forgets a promotion nor acts on one twice.
"""

import json
from dataclasses import asdict, dataclass

import dagster as dg

from grid_guardian_assets.defs.live.assets import ACTIVE_RUN_STATUSES, LIVE_TAG, live_anomaly_scores
from grid_guardian_assets.defs.live.jobs import live_inference
from grid_guardian_assets.defs.resources import ModelStoreResource

# The assets that can promote a checkpoint, and the metadata entry that names it.
PROMOTING_ASSETS = {dg.AssetKey("gnn_verifier"): "checkpoint", dg.AssetKey("self_play_round"): "solver_checkpoint"}
CHECKPOINT_TAG = "grid_guardian/checkpoint"
EVENTS_PER_EVALUATION = 100


@dataclass
class PromotionCursor:
    """Where the sensor is: the newest promoting asset event it has read, and the last version it acted on."""

    storage_id: int = 0
    version: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def parse(cls, text: str | None) -> "PromotionCursor":
        """The cursor stored by this sensor; a bare version (the file-polling sensor's cursor) carries over."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return cls(version=text)
        return cls(int(data.get("storage_id", 0)), data.get("version"))


@dataclass(frozen=True)
class Promotion:
    storage_id: int
    version: str
    source: str  # e.g. "gnn_verifier run 1a2b3c4d"


def promotions_since(instance: dg.DagsterInstance, storage_id: int) -> tuple[list[Promotion], int]:
    """Promotions recorded by the promoting assets after ``storage_id``, oldest first, and the newest storage id read
    (unpromoted materialisations move it on too)."""
    promotions, newest = [], storage_id
    for key, checkpoint_entry in PROMOTING_ASSETS.items():
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=storage_id), limit=EVENTS_PER_EVALUATION, ascending=True
        ).records
        for record in records:
            newest = max(newest, record.storage_id)
            metadata = record.asset_materialization.metadata
            promoted, checkpoint = metadata.get("promoted"), metadata.get(checkpoint_entry)
            if promoted is not None and promoted.value is True and checkpoint is not None:
                source = f"{key.to_user_string()} run {record.run_id[:8]}" if record.run_id else key.to_user_string()
                promotions.append(Promotion(record.storage_id, str(checkpoint.value), source))
    return sorted(promotions, key=lambda p: p.storage_id), newest


@dg.sensor(job=live_inference, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Requests a live_anomaly_scores run when a checkpoint is promoted (by gnn_verifier, a self-play "
           "round, or in the model folder) unless a live run is already on: that one switches by itself.")
def promoted_checkpoint_sensor(context: dg.SensorEvaluationContext, model_store: ModelStoreResource) -> dg.RunRequest | dg.SkipReason:
    cursor = PromotionCursor.parse(context.cursor)
    promotions, newest = promotions_since(context.instance, cursor.storage_id)
    # The folder is what a live run loads; the events say when and by what it was promoted (and still work where
    # this process cannot see the folder: then the newest promotion event names the version).
    in_folder = model_store.store().promoted()
    version = in_folder or (promotions[-1].version if promotions else cursor.version)
    if version is None:
        context.update_cursor(PromotionCursor(newest, cursor.version).to_json())
        return dg.SkipReason("no checkpoint promoted yet (the live run can still be launched by hand: physics rules only)")
    if not promotions and version == cursor.version:
        context.update_cursor(PromotionCursor(newest, cursor.version).to_json())
        return dg.SkipReason(f"{version} already handled")
    context.update_cursor(PromotionCursor(newest, version).to_json())
    running = context.instance.get_runs(dg.RunsFilter(statuses=ACTIVE_RUN_STATUSES, tags=LIVE_TAG), limit=1)
    if running:
        return dg.SkipReason(f"run {running[0].run_id} is live and switches to {version} between batches")
    promoted_by = promotions[-1].source if promotions else "the model folder"
    return dg.RunRequest(
        run_key=f"live-{version}-{newest}",
        asset_selection=[live_anomaly_scores.key],
        tags={**LIVE_TAG, CHECKPOINT_TAG: version, "grid_guardian/promoted_by": promoted_by},
    )
