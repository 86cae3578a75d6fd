"""Resources shared by every stage: the Elexon Insights API, the data folder, models, Kafka and Redis.

mlflow, dagster-mlflow and torch (through the model store) are imported where a resource is used, not here:
every run and step process imports the code location, and most of them (the BMRS chains) never touch a model.
"""

import os
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from grid_guardian_assets.config import DATA_DIR_ENV, default_data_dir
from grid_guardian_assets.elexon.client import DEFAULT_BASE_URL, DEFAULT_REQUESTS_PER_MINUTE, ElexonClient
from grid_guardian_assets.store.frames import FrameStore
from grid_guardian_assets.store.raw_archive import RawArchive
from grid_guardian_assets.stream.kafka import DEFAULT_BOOTSTRAP, KafkaSettings

if TYPE_CHECKING:
    from grid_guardian_assets.grid.network import GridNetwork
    from grid_guardian_assets.store.hdf5 import HDF5Store
    from grid_guardian_assets.verifier.checkpoints import ModelStore


class ElexonApiResource(dg.ConfigurableResource):
    """The Elexon Insights API, or any server that answers like it (the replay server in tests and the demo).

    ``limiter_db`` holds the rate-limit bucket shared by every run on this machine; empty means the data folder's.
    """

    base_url: str = DEFAULT_BASE_URL
    timeout_s: float = 30.0
    max_attempts: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE
    limiter_db: str = ""

    def get_client(self) -> ElexonClient:
        return ElexonClient(
            self.base_url,
            timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            requests_per_minute=self.requests_per_minute,
            limiter_db=self.limiter_db or default_data_dir() / "elexon_rate_limit.sqlite",
            backoff_base_s=self.backoff_base_s,
            backoff_max_s=self.backoff_max_s,
        )


class BmrsStorageResource(dg.ConfigurableResource):
    """The folder that holds the raw response archive, validated frames and HDF5 stores."""

    data_dir: str = ""

    @property
    def root(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()

    def raw_archive(self) -> RawArchive:
        return RawArchive(self.root / "raw")

    def hdf5_store(self) -> "HDF5Store":
        from grid_guardian_assets.store.hdf5 import HDF5Store  # h5py and pandera: only where a store is opened

        return HDF5Store(self.root / "hdf5")

    def frame_store(self) -> FrameStore:
        return FrameStore(self.root / "frames")


class GridResource(dg.ConfigurableResource):
    """Which transmission network graphs are built on: ``gb29`` (29-bus reduced model, default) or ``gb2224``."""

    network: str = "gb29"

    def load(self) -> "GridNetwork":
        from grid_guardian_assets.grid.network import load_network  # scipy: only where a network is built

        return load_network(self.network)


class ModelStoreResource(dg.ConfigurableResource):
    """Where checkpoints live: a local folder (default ``$GRID_GUARDIAN_DATA_DIR/models``)."""

    root: str = ""

    def store(self) -> "ModelStore":
        from grid_guardian_assets.verifier.checkpoints import ModelStore

        return ModelStore(Path(self.root).expanduser() if self.root else default_data_dir() / "models")


class KafkaResource(dg.ConfigurableResource):
    """The Kafka cluster of the live path (``KAFKA_*`` variables; SASL/SCRAM credentials in production)."""

    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = ""

    def settings(self) -> KafkaSettings:
        return KafkaSettings(self.bootstrap_servers, self.security_protocol, self.sasl_mechanism, self.sasl_username,
                             self.sasl_password)


class RedisResource(dg.ConfigurableResource):
    """Where scores and alerts go (``REDIS_URL``, e.g. ``redis://:password@redis:6379/0``)."""

    url: str = "redis://127.0.0.1:6379/0"


def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else a SQLite store under the Dagster home (or the data folder)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    home = Path(os.environ.get("DAGSTER_HOME") or default_data_dir())
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home.resolve() / 'mlflow.db'}"


# The two fields of dagster-mlflow's config schema that we set; it reads the others with .get() and defaults.
# Written out so that defining the resource does not import mlflow.
_MLFLOW_CONFIG_SCHEMA = {"experiment_name": dg.Field(str), "mlflow_tracking_uri": dg.Field(str)}


@dg.resource(config_schema=_MLFLOW_CONFIG_SCHEMA, description="dagster-mlflow's mlflow_tracking, artifacts beside a SQLite store")
def _mlflow_tracking(context):
    import mlflow
    from dagster_mlflow import mlflow_tracking

    # With a SQLite store MLflow puts artifacts in ./mlruns of whatever folder the process runs in; give the
    # experiment an artifact root beside the database instead (a server store keeps its own root).
    uri, name = context.resource_config["mlflow_tracking_uri"], context.resource_config["experiment_name"]
    if uri.startswith("sqlite:///"):
        client = mlflow.MlflowClient(uri)
        if client.get_experiment_by_name(name) is None:
            root = Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts"
            client.create_experiment(name, artifact_location=root.resolve().as_uri())
    yield from mlflow_tracking.resource_fn(context)


def mlflow_resource(tracking_uri: str | None = None) -> dg.ResourceDefinition:
    """dagster-mlflow's ``mlflow_tracking``, experiment ``grid_guardian_verifier``."""
    return _mlflow_tracking.configured(
        {"experiment_name": "grid_guardian_verifier", "mlflow_tracking_uri": tracking_uri or default_tracking_uri()}
    )


def _env_or(name: str, default: str) -> str | dg.EnvVar:
    # An EnvVar shows in the UI as coming from the environment; an unset variable keeps the default.
    return dg.EnvVar(name) if os.environ.get(name) else default


def default_resources() -> dict[str, object]:
    """The resources of the code location, configured from the environment."""
    data_dir = _env_or(DATA_DIR_ENV, "")
    return {
        "elexon": ElexonApiResource(base_url=_env_or("ELEXON_API_BASE_URL", DEFAULT_BASE_URL)),
        "bmrs_storage": BmrsStorageResource(data_dir=data_dir),
        "grid": GridResource(network=_env_or("GRID_GUARDIAN_NETWORK", "gb29")),
        "model_store": ModelStoreResource(),
        "mlflow": mlflow_resource(),
        "kafka": KafkaResource(
            bootstrap_servers=_env_or("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP),
            security_protocol=_env_or("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
            sasl_mechanism=_env_or("KAFKA_SASL_MECHANISM", ""),
            sasl_username=_env_or("KAFKA_SASL_USERNAME", ""),
            sasl_password=_env_or("KAFKA_SASL_PASSWORD", ""),
        ),
        "redis": RedisResource(url=_env_or("REDIS_URL", "redis://127.0.0.1:6379/0")),
    }


def resources_for(
    base_url: str,
    data_dir: Path,
    *,
    network: str = "gb29",
    tracking_uri: str | None = None,
    kafka_bootstrap: str = DEFAULT_BOOTSTRAP,
    redis_url: str = "redis://127.0.0.1:6379/0",
    **elexon: object,
) -> dict[str, object]:
    """Every resource pointed at one API and one data folder (tests, benchmarks, scripted runs).

    ``elexon`` overrides ``ElexonApiResource`` fields (e.g. short backoffs in tests).
    """
    return {
        "elexon": ElexonApiResource(base_url=base_url, limiter_db=str(data_dir / "limiter.sqlite"), **elexon),
        "bmrs_storage": BmrsStorageResource(data_dir=str(data_dir)),
        "grid": GridResource(network=network),
        "model_store": ModelStoreResource(root=str(data_dir / "models")),
        "mlflow": mlflow_resource(tracking_uri or f"sqlite:///{Path(data_dir).resolve() / 'mlflow.db'}"),
        "kafka": KafkaResource(bootstrap_servers=kafka_bootstrap),
        "redis": RedisResource(url=redis_url),
    }
