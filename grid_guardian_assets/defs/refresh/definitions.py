"""The learned half follows the season by itself: ``detector_calibration``, ``branch_limits``, ``anomaly_benchmark``
and ``gnn_verifier`` are refreshed weekly by Dagster's declarative automation, once their stores have new days.

Their windows are relative to the newest stored day by default (``grid_guardian_assets.windows``), so a refresh fits
on the latest weeks. The refreshed verifier is promoted only if it passes its gate (``verifier_quality``); only then
does the checkpoint sensor start a live job on it. Off by default, like the daily schedules: turn on
``learned_refresh_sensor`` in the UI's Automation tab.
"""

import dagster as dg

from grid_guardian_assets.defs.refresh.conditions import REFRESHED_ASSETS

learned_refresh_sensor = dg.AutomationConditionSensorDefinition(
    "learned_refresh_sensor",
    target=dg.AssetSelection.assets(*REFRESHED_ASSETS),
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Weekly (Monday 08:00 London, after the daily stores): refits the detectors and line limits, cuts a new "
    "held-out benchmark and retrains the verifier on the newest stored windows, once their stores have changed.",
)

defs = dg.Definitions(sensors=[learned_refresh_sensor])
