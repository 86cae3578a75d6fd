import dagster as dg

from grid_guardian_assets.defs.daily.assets import settlement_days

defs = dg.Definitions(assets=[settlement_days])
