"""The alert for a message sent to the dead-letter topic: a dead-letter queue nobody watches hides a broken meter."""

import datetime as dt
import json

from grid_guardian_assets.datasets import DatasetSpec
from grid_guardian_assets.detect.findings import Finding
from grid_guardian_assets.settlement import UTC
from grid_guardian_assets.stream.messages import Rejected
from grid_guardian_assets.stream.topics import spec_for_topic

REJECTED_READING = "rejected_reading"
# A rejected reading is a fact, not a degree: it alarms exactly at the threshold.
REJECTED_SCORE = 1.0


def _record_time(spec: DatasetSpec | None, value: bytes | None) -> dt.datetime | None:
    """The record's own time (``spec.time_field``) when the message is a JSON record that has one."""
    if spec is None or value is None:
        return None
    try:
        text = json.loads(value).get(spec.time_field)
        when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def rejected_reading_finding(rejected: Rejected, model_version: str = "none", now: dt.datetime | None = None) -> Finding:
    """The alert for a message sent to the dead-letter topic: node and dataset the dataset (or the topic, if the
    message came from a topic that is not a BMRS dataset's), time the record's own when it has one, else ``now``.

    Redis keys such an alert by its Kafka origin (``stream.redis_sink.alert_id``), so a replayed batch never repeats
    one; rejected readings of one dataset within a settlement period of each other are one incident
    (``stream.redis_sink.incident_key``): a broken feed raises one alert, not one per message.
    """
    spec = spec_for_topic(rejected.origin.topic)
    dataset = spec.code if spec is not None else rejected.origin.topic
    when = _record_time(spec, rejected.value) or now or dt.datetime.now(UTC)
    detail: dict[str, float | str] = {"error": rejected.error[:500], "kafka_origin": str(rejected.origin)}
    return Finding(dataset, when, REJECTED_SCORE, REJECTED_READING, dataset, rejected.origin, detail, model_version)

