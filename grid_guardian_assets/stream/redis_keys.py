"""The Redis keys the live path writes (layout in ``redis_sink``), light enough for the code location to import."""

TIMELINE_KEY = "anomaly:timeline"
ALERT_STREAM = "alerts"
ALERT_CHANNEL = "alerts:anomalies"
ALERT_IDS_KEY = "alerts:ids"
INCIDENTS_KEY = "alerts:incidents"
NODE_KEY_PREFIX = "anomaly:"
STATE_KEY_PREFIX = "live:state:"


def node_key(node: str) -> str:
    """The hash with the latest score of ``node``."""
    return f"{NODE_KEY_PREFIX}{node}"


def state_key(group_id: str) -> str:
    """The job's assembly state for Kafka consumer group ``group_id``."""
    return f"{STATE_KEY_PREFIX}{group_id}"


ALL_KEYS = (ALERT_STREAM, ALERT_CHANNEL, ALERT_IDS_KEY, INCIDENTS_KEY, node_key("{node}"), TIMELINE_KEY, state_key("{group}"))
