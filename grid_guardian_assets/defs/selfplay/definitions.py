import dagster as dg

from grid_guardian_assets.defs.selfplay.assets import scenario_buffer, self_play_round

defs = dg.Definitions(assets=[self_play_round, scenario_buffer])
