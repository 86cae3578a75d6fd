import os
from pathlib import Path

import dagster as dg
from dagster_mlflow import mlflow_tracking

from grid_guardian_assets.config import default_data_dir
from grid_guardian_assets.verifier.checkpoints import ModelStore


class ModelStoreResource(dg.ConfigurableResource):
    """Where checkpoints live: a local folder (default ``$GRID_GUARDIAN_DATA_DIR/models``)."""

    root: str = ""

    def store(self) -> ModelStore:
        return ModelStore(Path(self.root).expanduser() if self.root else default_data_dir() / "models")


def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else a SQLite store under the Dagster home (or the data folder)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    home = Path(os.environ.get("DAGSTER_HOME") or default_data_dir())
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home.resolve() / 'mlflow.db'}"


def mlflow_resource(tracking_uri: str | None = None) -> dg.ResourceDefinition:
    return mlflow_tracking.configured(
        {"experiment_name": "grid_guardian_verifier", "mlflow_tracking_uri": tracking_uri or default_tracking_uri()}
    )
