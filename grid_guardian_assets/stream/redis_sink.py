"""Scores and alerts in Redis: idempotent writes keyed by (node, time), in one transaction per batch.

Layout (the README's "Redis layout"):

* ``anomaly:{node}`` hash: ``score``, ``time``, ``source``, ``model_version``, ``dataset``, ``kafka_*`` of the
  node's latest reading (a late or replayed older reading never overwrites a newer one).
* ``anomaly:timeline`` sorted set: member ``{node}:{time}``, score the anomaly score (the highest source's).
* pub/sub channel ``alerts:anomalies``: each new alert as JSON.
* stream ``alerts`` (XADD, approximate MAXLEN bound): each alert's ``time``, ``dataset``, ``node``, ``source``,
  ``score``, ``model_version``, ``kafka_topic``, ``kafka_partition``, ``kafka_offset``, ``alert_id``, ``detail``.
* ``alerts:ids`` sorted set: alert ids already written (``{node}|{time}|{source}``), so a replayed batch never
  duplicates an alert; trimmed to the newest ``2 × maxlen``.
* ``live:state:{group}``: the job's assembly state, written in the same transaction as the results it led to.

Everything a batch produced is written in one MULTI/EXEC transaction; the job commits Kafka offsets only after it
succeeds. A crash before EXEC leaves nothing half-written; a crash after it replays a batch that changes nothing.
"""

import json
import math
from typing import Any

import redis

from grid_guardian_assets.stream.rules import Finding

TIMELINE_KEY = "anomaly:timeline"
ALERT_STREAM = "alerts"
ALERT_CHANNEL = "alerts:anomalies"
ALERT_IDS_KEY = "alerts:ids"

_WRITE_SCORE = """
local newer = true
local current = redis.call('HGET', KEYS[1], 'time_ms')
if current and tonumber(current) > tonumber(ARGV[2]) then newer = false end
if newer then
  redis.call('HSET', KEYS[1], 'score', ARGV[3], 'time', ARGV[1], 'time_ms', ARGV[2], 'source', ARGV[4],
             'model_version', ARGV[5], 'dataset', ARGV[6], 'kafka_topic', ARGV[7], 'kafka_partition', ARGV[8],
             'kafka_offset', ARGV[9])
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[10])
return 1
"""

_WRITE_ALERT = """
if redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'time', ARGV[4], 'dataset', ARGV[5], 'node', ARGV[6],
           'source', ARGV[7], 'score', ARGV[8], 'model_version', ARGV[9], 'kafka_topic', ARGV[10],
           'kafka_partition', ARGV[11], 'kafka_offset', ARGV[12], 'alert_id', ARGV[2], 'detail', ARGV[13])
redis.call('PUBLISH', KEYS[3], ARGV[14])
local excess = redis.call('ZCARD', KEYS[1]) - 2 * tonumber(ARGV[3])
if excess > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1) end
return 1
"""


def time_text(finding: Finding) -> str:
    """ISO 8601 UTC with a ``Z``, to the second (the readings' own times)."""
    return finding.time.strftime("%Y-%m-%dT%H:%M:%SZ")


def alert_id(finding: Finding) -> str:
    return f"{finding.node}|{time_text(finding)}|{finding.source}"


def alert_json(finding: Finding) -> dict[str, Any]:
    """An alert as the channel publishes it (the stream carries the same fields)."""
    return {
        "alert_id": alert_id(finding),
        "time": time_text(finding),
        "dataset": finding.dataset,
        "node": finding.node,
        "source": finding.source,
        "score": round(finding.score, 4),
        "model_version": str(finding.detail.get("model_version", "none")),
        "kafka_topic": finding.origin.topic,
        "kafka_partition": finding.origin.partition,
        "kafka_offset": finding.origin.offset,
        "detail": {k: v for k, v in finding.detail.items() if k != "model_version"},
    }


def _finite(score: float) -> float:
    return score if math.isfinite(score) else 1e9


class RedisSink:
    """Writes a batch's findings and the job's state to Redis in one transaction.

    Args:
        client: A ``redis.Redis`` (from ``redis.Redis.from_url($REDIS_URL)``).
        state_key: Where the job keeps its assembly state.
        stream_maxlen: Approximate bound of the ``alerts`` stream.
    """

    def __init__(self, client: redis.Redis, state_key: str, stream_maxlen: int = 100_000):
        self.client, self.state_key, self.stream_maxlen = client, state_key, stream_maxlen
        self._score = client.register_script(_WRITE_SCORE)
        self._alert = client.register_script(_WRITE_ALERT)

    def write(self, findings: list[Finding], state: dict[str, Any] | None) -> list[Finding]:
        """Write every finding (and ``state``) atomically; returns the alerts that were new (not replays)."""
        best: dict[tuple[str, str], Finding] = {}
        for finding in findings:
            key = (finding.node, time_text(finding))
            if key not in best or _finite(finding.score) > _finite(best[key].score):
                best[key] = finding
        alerts = [f for f in findings if f.alert]
        pipe = self.client.pipeline(transaction=True)
        for (node, when), finding in best.items():
            self._score(
                keys=[f"anomaly:{node}", TIMELINE_KEY],
                args=[when, int(finding.time.timestamp() * 1000), _finite(finding.score), finding.source,
                      str(finding.detail.get("model_version", "none")), finding.dataset, finding.origin.topic,
                      finding.origin.partition, finding.origin.offset, f"{node}:{when}"],
                client=pipe,
            )
        for finding in alerts:
            body = alert_json(finding)
            self._alert(
                keys=[ALERT_IDS_KEY, ALERT_STREAM, ALERT_CHANNEL],
                args=[int(finding.time.timestamp() * 1000), body["alert_id"], self.stream_maxlen, body["time"],
                      body["dataset"], body["node"], body["source"], body["score"], body["model_version"],
                      body["kafka_topic"], body["kafka_partition"], body["kafka_offset"], json.dumps(body["detail"]),
                      json.dumps(body)],
                client=pipe,
            )
        if state is not None:
            pipe.set(self.state_key, json.dumps(state))
        results = pipe.execute()
        written = results[len(best) : len(best) + len(alerts)]
        return [finding for finding, new in zip(alerts, written) if new == 1]

    def load_state(self) -> dict[str, Any] | None:
        raw = self.client.get(self.state_key)
        return json.loads(raw) if raw else None

