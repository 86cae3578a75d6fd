"""Kafka topic names of the live path: ``bmrs.{CODE}`` per dataset and ``bmrs.dlq`` for rejected messages."""

import functools

from grid_guardian_assets.datasets import DATASETS, DatasetSpec

TOPIC_PREFIX = "bmrs."
DLQ_TOPIC = "bmrs.dlq"


def topic_for(spec: DatasetSpec) -> str:
    return f"{TOPIC_PREFIX}{spec.code}"


@functools.cache  # asked for every consumed message; a consumer reads a handful of topics
def spec_for_topic(topic: str) -> DatasetSpec | None:
    if not topic.startswith(TOPIC_PREFIX):
        return None
    return DATASETS.get(topic[len(TOPIC_PREFIX) :].lower())
