"""When the learned assets refresh: one condition, which their definitions carry and ``learned_refresh_sensor``
evaluates (``definitions.py``)."""

import dagster as dg

# Monday 08:00 London: after the daily schedules (06:30) have stored the week's last days.
REFRESH_CRON = "0 8 * * 1"
REFRESH_TIMEZONE = "Europe/London"
# On the weekly tick, once every dependency (the stores, the earlier learned assets) has been updated since the last tick.
WEEKLY_REFRESH = dg.AutomationCondition.on_cron(REFRESH_CRON, REFRESH_TIMEZONE)
REFRESHED_ASSETS = ("detector_calibration", "branch_limits", "anomaly_benchmark", "gnn_verifier")
