"""The live inference job: materialises ``live_anomaly_scores`` under the live tag (one such run at a time)."""

import dagster as dg

from grid_guardian_assets.defs.live.assets import LIVE_TAG, live_anomaly_scores

__all__ = ["LIVE_TAG", "live_inference"]

live_inference = dg.define_asset_job(
    "live_inference",
    selection=[live_anomaly_scores],
    tags=LIVE_TAG,
    description="The live path: Kafka → GNN verifier and physics rules → Redis (long-running; terminate it to stop).",
)
