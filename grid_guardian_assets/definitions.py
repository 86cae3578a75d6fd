"""The Grid Guardian code location: every stage's definitions plus the shared resources.

Every run imports this module, so nothing heavy may load here (torch, PyG, mlflow and matplotlib are imported by
the asset bodies that use them; a test keeps it so). Runs execute in their own process, step after step: the steps
of this graph are few and light next to a process per step, which would import this module again for each.
"""

import dagster as dg

from grid_guardian_assets.defs.bmrs import definitions as bmrs
from grid_guardian_assets.defs.daily import definitions as daily
from grid_guardian_assets.defs.detect import definitions as detect
from grid_guardian_assets.defs.grid import definitions as grid
from grid_guardian_assets.defs.live import definitions as live
from grid_guardian_assets.defs.refresh import definitions as refresh
from grid_guardian_assets.defs.resources import default_resources
from grid_guardian_assets.defs.selfplay import definitions as selfplay
from grid_guardian_assets.defs.verifier import definitions as verifier

defs = dg.Definitions.merge(
    daily.defs,
    bmrs.defs,
    grid.defs,
    detect.defs,
    verifier.defs,
    selfplay.defs,
    live.defs,
    refresh.defs,
    dg.Definitions(resources=default_resources(), executor=dg.in_process_executor),
)
