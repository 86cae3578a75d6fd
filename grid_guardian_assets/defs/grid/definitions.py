import dagster as dg

from grid_guardian_assets.defs.grid.assets import bm_units, branch_limits, grid_topology

# grid_snapshots is computed day by day with its BMRS inputs by the settlement-day multi-asset (defs/daily).
defs = dg.Definitions(assets=[grid_topology, branch_limits, bm_units])
