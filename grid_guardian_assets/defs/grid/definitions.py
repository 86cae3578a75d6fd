import dagster as dg

from grid_guardian_assets.defs.grid.assets import grid_snapshots, grid_topology

defs = dg.Definitions(assets=[grid_topology, grid_snapshots])
