import dagster as dg

from grid_guardian_assets.defs.live.jobs import live_inference
from grid_guardian_assets.defs.live.sensors import promoted_checkpoint_sensor

defs = dg.Definitions(jobs=[live_inference], sensors=[promoted_checkpoint_sensor])
