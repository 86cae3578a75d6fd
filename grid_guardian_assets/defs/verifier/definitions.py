import dagster as dg

from grid_guardian_assets.defs.verifier.assets import anomaly_benchmark, gnn_verifier

defs = dg.Definitions(assets=[anomaly_benchmark, gnn_verifier])
