import dagster as dg

from grid_guardian_assets.defs.detect.assets import detector_calibration

defs = dg.Definitions(assets=[detector_calibration])
