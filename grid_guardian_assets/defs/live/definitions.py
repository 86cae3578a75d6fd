"""Live inference: the Kafka topics, the long-running inference asset and its Redis outputs, the job that runs it,
and the sensor that launches it on a promotion."""
import dagster as dg

from grid_guardian_assets.defs.live.assets import BMRS_TOPICS, DEAD_LETTERS, REDIS_ALERTS, live_anomaly_scores
from grid_guardian_assets.defs.live.jobs import live_inference
from grid_guardian_assets.defs.live.sensors import promoted_checkpoint_sensor

defs = dg.Definitions(
    assets=[*BMRS_TOPICS, live_anomaly_scores, REDIS_ALERTS, DEAD_LETTERS],
    jobs=[live_inference],
    sensors=[promoted_checkpoint_sensor],
)
