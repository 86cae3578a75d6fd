import dagster as dg

from grid_guardian_assets.defs.bmrs.assets import bmrs_assets
from grid_guardian_assets.defs.bmrs.schedules import bmrs_jobs, bmrs_schedules

defs = dg.Definitions(assets=bmrs_assets, jobs=bmrs_jobs, schedules=bmrs_schedules)
