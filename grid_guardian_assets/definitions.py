"""The Grid Guardian code location: every stage's definitions plus the shared resources."""

import dagster as dg

from grid_guardian_assets.defs.bmrs import definitions as bmrs
from grid_guardian_assets.defs.grid import definitions as grid
from grid_guardian_assets.defs.live import definitions as live
from grid_guardian_assets.defs.selfplay import definitions as selfplay
from grid_guardian_assets.defs.verifier import definitions as verifier
from grid_guardian_assets.defs.resources import default_resources

defs = dg.Definitions.merge(bmrs.defs, grid.defs, verifier.defs, selfplay.defs, live.defs, dg.Definitions(resources=default_resources()))
