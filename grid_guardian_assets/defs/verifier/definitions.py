import dagster as dg

from grid_guardian_assets.defs.verifier.assets import anomaly_benchmark, gnn_verifier
from grid_guardian_assets.defs.verifier.resources import ModelStoreResource, mlflow_resource

defs = dg.Definitions(
    assets=[anomaly_benchmark, gnn_verifier],
    resources={"model_store": ModelStoreResource(), "mlflow": mlflow_resource()},
)
