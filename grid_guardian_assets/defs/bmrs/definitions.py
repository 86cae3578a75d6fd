import dagster as dg

from grid_guardian_assets.defs.bmrs.schedules import bmrs_jobs, bmrs_schedules

# The chains' assets are specs of the settlement-day multi-asset (defs/daily); the daily jobs select them.
defs = dg.Definitions(jobs=bmrs_jobs, schedules=bmrs_schedules)
