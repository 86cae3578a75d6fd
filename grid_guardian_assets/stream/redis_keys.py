"""The Redis keys the live path writes (layout in ``redis_sink``), light enough for the code location to import."""

TIMELINE_KEY = "anomaly:timeline"
ALERT_STREAM = "alerts"
ALERT_CHANNEL = "alerts:anomalies"
ALERT_IDS_KEY = "alerts:ids"
INCIDENT_KEY_PREFIX = "alerts:incident:"
NODE_KEY_PREFIX = "anomaly:"
STATE_KEY_PREFIX = "live:state:"


def node_key(node: str) -> str:
    """The hash with the latest score of ``node``."""
    return f"{NODE_KEY_PREFIX}{node}"


def incident_spans_key(incident: str) -> str:
    """The sorted set of ``incident``'s alarm spans (``redis_sink.incident_key`` names incidents)."""
    return f"{INCIDENT_KEY_PREFIX}{incident}"


def state_key(group_id: str) -> str:
    """The job's assembly state for Kafka consumer group ``group_id``."""
    return f"{STATE_KEY_PREFIX}{group_id}"


ALL_KEYS = (ALERT_STREAM, ALERT_CHANNEL, ALERT_IDS_KEY, incident_spans_key("{incident}"), node_key("{node}"), TIMELINE_KEY, state_key("{group}"))
