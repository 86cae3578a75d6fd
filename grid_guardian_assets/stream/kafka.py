"""Kafka client settings from the environment, and the topics of the live path."""

from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from grid_guardian_assets import settings as env
from grid_guardian_assets.datasets import DATASETS
from grid_guardian_assets.stream.topics import DLQ_TOPIC, topic_for

DEFAULT_BOOTSTRAP = env.KAFKA_BOOTSTRAP_SERVERS.default
ALL_TOPICS = tuple(topic_for(spec) for spec in DATASETS.values())


@dataclass(frozen=True)
class KafkaSettings:
    """Where the broker is and how to authenticate (``KAFKA_*`` variables; SASL/SCRAM in production).

    Attributes:
        bootstrap_servers: ``host:port[,host:port]``.
        security_protocol: ``PLAINTEXT``, ``SASL_PLAINTEXT`` or ``SASL_SSL``.
        sasl_mechanism: e.g. ``SCRAM-SHA-512`` (ignored for PLAINTEXT).
        sasl_username, sasl_password: SASL credentials.
        extra: Any further librdkafka properties.
    """

    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, bootstrap_servers: str = "", security_protocol: str = "", sasl_mechanism: str = "",
                 sasl_username: str = "", sasl_password: str = "") -> "KafkaSettings":
        """The ``KAFKA_*`` variables, read now; a non-empty argument pins that value instead."""
        return cls(
            bootstrap_servers=env.KAFKA_BOOTSTRAP_SERVERS.get(bootstrap_servers),
            security_protocol=env.KAFKA_SECURITY_PROTOCOL.get(security_protocol),
            sasl_mechanism=env.KAFKA_SASL_MECHANISM.get(sasl_mechanism),
            sasl_username=env.KAFKA_SASL_USERNAME.get(sasl_username),
            sasl_password=env.KAFKA_SASL_PASSWORD.get(sasl_password),
        )

    def client_config(self) -> dict[str, str]:
        config = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security_protocol}
        if self.security_protocol.upper().startswith("SASL"):
            config.update(
                {"sasl.mechanism": self.sasl_mechanism or "SCRAM-SHA-512", "sasl.username": self.sasl_username,
                 "sasl.password": self.sasl_password}
            )
        return {**config, **self.extra}

    def consumer_config(self, group_id: str) -> dict[str, object]:
        return {
            **self.client_config(),
            "group.id": group_id,
            "enable.auto.commit": False,  # offsets are committed only after results are stored
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",  # a new group reads everything retained
            "session.timeout.ms": 6000,  # a group join waits about half of this
            "fetch.wait.max.ms": 10,  # latency is about half of this
            "max.poll.interval.ms": 300_000,
        }

    def producer_config(self) -> dict[str, object]:
        return {**self.client_config(), "acks": "all", "linger.ms": 5}


def ensure_topics(settings: KafkaSettings, topics: tuple[str, ...] = (*ALL_TOPICS, DLQ_TOPIC), partitions: int = 1,
                  timeout_s: float = 15.0) -> None:
    """Create the live path's topics where missing (an existing topic is left as it is)."""
    admin = AdminClient(settings.client_config())
    futures = admin.create_topics([NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics],
                                  request_timeout=timeout_s)
    for topic, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"cannot create Kafka topic {topic} on {settings.bootstrap_servers}: {exc}") from None
