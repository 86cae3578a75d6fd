"""The environment variables Grid Guardian reads, each with its default: the one home of both.

A value is read when it is used (``EnvSetting.get``), never at import. The code location is imported by the code
server, by every run worker and by tools, each with its own environment; a value captured at import would be the
importing process's, and a resource's config would show it as a literal instead of "from the environment".
"""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class EnvSetting:
    """One environment variable and the value used when it is unset or empty."""

    name: str
    default: str

    def get(self, pinned: str = "") -> str:
        """``pinned`` when not empty (a resource's config, a command-line option), else ``$name``, else the default."""
        return pinned or os.environ.get(self.name) or self.default

    def set_value(self) -> str:
        """``$name``, or empty when it is unset: for a caller whose fallback is not the default (the demo probes)."""
        return os.environ.get(self.name, "")


DATA_DIR = EnvSetting("GRID_GUARDIAN_DATA_DIR", "~/.grid_guardian")
ELEXON_API_BASE_URL = EnvSetting("ELEXON_API_BASE_URL", "https://data.elexon.co.uk/bmrs/api/v1")
NESO_API_BASE_URL = EnvSetting("NESO_API_BASE_URL", "https://api.neso.energy/api/3/action")
NETWORK = EnvSetting("GRID_GUARDIAN_NETWORK", "gb29")
KAFKA_BOOTSTRAP_SERVERS = EnvSetting("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
KAFKA_SECURITY_PROTOCOL = EnvSetting("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
KAFKA_SASL_MECHANISM = EnvSetting("KAFKA_SASL_MECHANISM", "")
KAFKA_SASL_USERNAME = EnvSetting("KAFKA_SASL_USERNAME", "")
KAFKA_SASL_PASSWORD = EnvSetting("KAFKA_SASL_PASSWORD", "")
REDIS_URL = EnvSetting("REDIS_URL", "redis://127.0.0.1:6379/0")
# Empty: a SQLite store beside the Dagster instance (see defs.resources.default_tracking_uri).
MLFLOW_TRACKING_URI = EnvSetting("MLFLOW_TRACKING_URI", "")
# Dagster's own variable; read here only to put the default MLflow store beside the instance.
DAGSTER_HOME = EnvSetting("DAGSTER_HOME", "")
