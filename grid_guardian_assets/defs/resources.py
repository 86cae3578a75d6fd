"""Resources shared by every stage: the Elexon Insights API, the data folder, models, Kafka and Redis.

Every setting a resource takes from the environment is an empty field by default and is read where it is used
(``grid_guardian_assets.settings``): the code location is imported by the code server and by every run worker,
and a value read at import would be whichever environment imported it first. A field set in code or in run config
pins the value instead (tests, benchmarks, the demo). Not ``dg.EnvVar``: an ``EnvVar`` whose variable is unset fails
the run at launch, and most of these variables are optional.

mlflow, dagster-mlflow and torch (through the model store) are imported where a resource is used, not here:
every run and step process imports the code location, and most of them (the BMRS chains) never touch a model.
"""

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from grid_guardian_assets import settings as env
from grid_guardian_assets.data_layout import DataLayout
from grid_guardian_assets.elexon.responses import DEFAULT_REQUESTS_PER_MINUTE
from grid_guardian_assets.store.frames import FrameStore
from grid_guardian_assets.store.raw_archive import RawArchive
from grid_guardian_assets.stream.kafka import KafkaSettings

if TYPE_CHECKING:
    from grid_guardian_assets.elexon.client import ElexonClient
    from grid_guardian_assets.grid.network import GridNetwork
    from grid_guardian_assets.store.hdf5 import HDF5Store
    from grid_guardian_assets.verifier.checkpoints import ModelStore


class _JsonApiResource(dg.ConfigurableResource):
    """A JSON HTTP API read with retries that honour Retry-After and a request budget shared on this machine."""

    base_url_override: str = Field("", description="Empty: the API's environment variable, else its public URL.")
    timeout_s: float = 30.0
    max_attempts: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE
    limiter_db: str = Field("", description="The rate-limit bucket shared by every run on this machine; empty: the data folder's.")

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    def _default_limiter_db(self) -> Path:
        raise NotImplementedError

    def get_client(self) -> "ElexonClient":
        from grid_guardian_assets.elexon.client import ElexonClient  # httpx and the limiter: only where one is made

        return ElexonClient(
            self.base_url,
            timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            requests_per_minute=self.requests_per_minute,
            limiter_db=self.limiter_db or self._default_limiter_db(),
            backoff_base_s=self.backoff_base_s,
            backoff_max_s=self.backoff_max_s,
        )


class ElexonApiResource(_JsonApiResource):
    """The Elexon Insights API, or any server that answers like it (the replay server in tests and the demo)."""

    base_url_override: str = Field("", description=f"Empty: ${env.ELEXON_API_BASE_URL.name}, else {env.ELEXON_API_BASE_URL.default}.")

    @property
    def base_url(self) -> str:
        return env.ELEXON_API_BASE_URL.get(self.base_url_override)

    def _default_limiter_db(self) -> Path:
        return DataLayout.at().elexon_rate_limit_db


class NesoApiResource(_JsonApiResource):
    """NESO's Data Portal (a CKAN datastore API), or any server that answers like it (the replay server).

    NESO asks datastore queries to keep to a couple a minute; a day is one query, so a year's backfill of NESO's demand
    takes hours against the real portal (``requests_per_minute``)."""

    base_url_override: str = Field("", description=f"Empty: ${env.NESO_API_BASE_URL.name}, else {env.NESO_API_BASE_URL.default}.")
    requests_per_minute: int = 2

    @property
    def base_url(self) -> str:
        return env.NESO_API_BASE_URL.get(self.base_url_override)

    def _default_limiter_db(self) -> Path:
        return DataLayout.at().neso_rate_limit_db


class BmrsStorageResource(dg.ConfigurableResource):
    """The data folder: raw response archive, validated frames, HDF5 stores and what the later stages write."""

    data_dir: str = Field("", description=f"Empty: ${env.DATA_DIR.name}, else {env.DATA_DIR.default}.")

    @property
    def layout(self) -> DataLayout:
        return DataLayout.at(self.data_dir)

    @property
    def root(self) -> Path:
        return self.layout.root

    def raw_archive(self) -> RawArchive:
        return RawArchive(self.layout.raw)

    def hdf5_store(self) -> "HDF5Store":
        from grid_guardian_assets.store.hdf5 import HDF5Store  # h5py and pandera: only where a store is opened

        return HDF5Store(self.layout.hdf5)

    def frame_store(self) -> FrameStore:
        return FrameStore(self.layout.frames)


class GridResource(dg.ConfigurableResource):
    """Which transmission network graphs are built on: ``gb29`` (29-bus reduced model) or ``gb2224``."""

    network_override: str = Field("", description=f"gb29 or gb2224; empty: ${env.NETWORK.name}, else {env.NETWORK.default}.")

    @property
    def network(self) -> str:
        return env.NETWORK.get(self.network_override)

    def load(self) -> "GridNetwork":
        from grid_guardian_assets.grid.network import load_network  # scipy: only where a network is built

        return load_network(self.network)


class ModelStoreResource(dg.ConfigurableResource):
    """Where checkpoints live: a local folder."""

    root: str = Field("", description="Empty: the data folder's models/.")

    def store(self) -> "ModelStore":
        from grid_guardian_assets.verifier.checkpoints import ModelStore

        return ModelStore(Path(self.root).expanduser() if self.root else DataLayout.at().models)


class KafkaResource(dg.ConfigurableResource):
    """The Kafka cluster of the live path; each empty field is read from its ``KAFKA_*`` variable when used
    (SASL/SCRAM credentials in production)."""

    bootstrap_servers: str = Field("", description=f"Empty: ${env.KAFKA_BOOTSTRAP_SERVERS.name}, else {env.KAFKA_BOOTSTRAP_SERVERS.default}.")
    security_protocol: str = Field("", description=f"Empty: ${env.KAFKA_SECURITY_PROTOCOL.name}, else {env.KAFKA_SECURITY_PROTOCOL.default}.")
    sasl_mechanism: str = Field("", description=f"Empty: ${env.KAFKA_SASL_MECHANISM.name}.")
    sasl_username: str = Field("", description=f"Empty: ${env.KAFKA_SASL_USERNAME.name}.")
    sasl_password: str = Field("", description=f"Empty: ${env.KAFKA_SASL_PASSWORD.name} (keep it there, not in config).")

    def settings(self) -> KafkaSettings:
        return KafkaSettings.from_env(self.bootstrap_servers, self.security_protocol, self.sasl_mechanism,
                                      self.sasl_username, self.sasl_password)


class RedisResource(dg.ConfigurableResource):
    """Where scores and alerts go (e.g. ``redis://:password@redis:6379/0``)."""

    url_override: str = Field("", description=f"Empty: ${env.REDIS_URL.name}, else {env.REDIS_URL.default}.")

    @property
    def url(self) -> str:
        return env.REDIS_URL.get(self.url_override)


def sqlite_tracking_uri(db: Path) -> str:
    """An MLflow store in the SQLite file ``db``."""
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db.resolve()}"


def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else a SQLite store in the Dagster home (beside the runs it records), else in the data
    folder; read now."""
    home = env.DAGSTER_HOME.get()
    return env.MLFLOW_TRACKING_URI.get() or sqlite_tracking_uri(Path(home) / "mlflow.db" if home else DataLayout.at().mlflow_db)


# The two fields of dagster-mlflow's config schema that we set; it reads the others with .get() and defaults.
# Written out so that defining the resource does not import mlflow.
_MLFLOW_CONFIG_SCHEMA = {
    "experiment_name": dg.Field(str),
    "mlflow_tracking_uri": dg.Field(str, default_value="", description="Empty: $MLFLOW_TRACKING_URI, else SQLite beside the Dagster instance."),
}


@dg.resource(config_schema=_MLFLOW_CONFIG_SCHEMA, description="dagster-mlflow's mlflow_tracking, artifacts beside a SQLite store")
def _mlflow_tracking(context):
    import mlflow
    from dagster_mlflow import mlflow_tracking

    uri = context.resource_config["mlflow_tracking_uri"] or default_tracking_uri()
    name = context.resource_config["experiment_name"]
    # With a SQLite store MLflow puts artifacts in ./mlruns of whatever folder the process runs in; give the
    # experiment an artifact root beside the database instead (a server store keeps its own root).
    if uri.startswith("sqlite:///"):
        client = mlflow.MlflowClient(uri)
        if client.get_experiment_by_name(name) is None:
            root = Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts"
            client.create_experiment(name, artifact_location=root.resolve().as_uri())
    yield from mlflow_tracking.resource_fn(context.replace_config({**context.resource_config, "mlflow_tracking_uri": uri}))


def mlflow_resource(tracking_uri: str = "") -> dg.ResourceDefinition:
    """dagster-mlflow's ``mlflow_tracking``, experiment ``grid_guardian_verifier``; an empty URI is resolved when a
    run starts (``default_tracking_uri``)."""
    return _mlflow_tracking.configured({"experiment_name": "grid_guardian_verifier", "mlflow_tracking_uri": tracking_uri})


def default_resources() -> dict[str, object]:
    """The resources of the code location: every setting from the environment, read when a run uses it."""
    return {
        "elexon": ElexonApiResource(),
        "neso": NesoApiResource(),
        "bmrs_storage": BmrsStorageResource(),
        "grid": GridResource(),
        "model_store": ModelStoreResource(),
        "mlflow": mlflow_resource(),
        "kafka": KafkaResource(),
        "redis": RedisResource(),
    }


def replay_neso_url(base_url: str) -> str:
    """The replay server's NESO portal beside its Insights API at ``base_url`` (``{root}/bmrs/api/v1``), or "" when
    ``base_url`` is not a replay server on this machine."""
    from urllib.parse import urlsplit

    suffix = "/bmrs/api/v1"
    host = urlsplit(base_url).hostname or ""
    if not base_url.rstrip("/").endswith(suffix) or host not in ("127.0.0.1", "localhost", "::1"):
        return ""
    return base_url.rstrip("/")[: -len(suffix)] + "/neso/api/3/action"


def resources_for(
    base_url: str,
    data_dir: Path,
    *,
    network: str = "",
    tracking_uri: str = "",
    kafka_bootstrap: str = "",
    redis_url: str = "",
    neso_base_url: str = "",
    **elexon: object,
) -> dict[str, object]:
    """Every resource pointed at one API and one data folder (tests, benchmarks, the demo); an empty argument
    leaves that setting to the environment.

    The MLflow store defaults to the data folder's. ``elexon`` overrides ``ElexonApiResource`` fields (e.g. short
    backoffs in tests, and NESO's too). NESO's portal is the replay server's when ``base_url`` is one
    (``replay_neso_url``) and ``neso_base_url`` is empty; the replay is not rate limited as NESO is.
    """
    layout = DataLayout(Path(data_dir))
    neso_url = neso_base_url or replay_neso_url(base_url)
    neso_limit = {"requests_per_minute": elexon.get("requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE)} if neso_url else {}
    return {
        "elexon": ElexonApiResource(base_url_override=base_url, limiter_db=str(layout.elexon_rate_limit_db), **elexon),
        "neso": NesoApiResource(base_url_override=neso_url, limiter_db=str(layout.neso_rate_limit_db),
                                **{**{k: v for k, v in elexon.items() if k != "requests_per_minute"}, **neso_limit}),
        "bmrs_storage": BmrsStorageResource(data_dir=str(layout.root)),
        "grid": GridResource(network_override=network),
        "model_store": ModelStoreResource(root=str(layout.models)),
        "mlflow": mlflow_resource(tracking_uri or sqlite_tracking_uri(layout.mlflow_db)),
        "kafka": KafkaResource(bootstrap_servers=kafka_bootstrap),
        "redis": RedisResource(url_override=redis_url),
    }
