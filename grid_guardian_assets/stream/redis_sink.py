"""Scores and alerts in Redis: idempotent writes keyed by (node, time), in one transaction per batch.

Layout (the README's "Redis layout"):

* ``anomaly:{node}`` hash: ``score``, ``time``, ``source``, ``model_version``, ``dataset``, ``kafka_*`` of the
  node's latest reading (a late or replayed older reading never overwrites a newer one).
* ``anomaly:timeline`` sorted set: member ``{node}:{time}``, score the anomaly score (the highest source's).
* pub/sub channel ``alerts:anomalies``: each new alert as JSON.
* stream ``alerts`` (XADD, approximate MAXLEN bound): each alert's ``time``, ``dataset``, ``node``, ``source``,
  ``score``, ``model_version``, ``kafka_topic``, ``kafka_partition``, ``kafka_offset``, ``alert_id``, ``detail``.
* ``alerts:ids`` sorted set: alert ids already written (``{node}|{time}|{source}``, plus ``|{model_version}`` for
  model alerts and ``|{topic}/{partition}@{offset}`` for rejected readings), so a replayed batch never duplicates an
  alert; trimmed to the newest ``2 × maxlen``.
* ``alerts:incidents`` hash: per incident key (``{source}|{node}``, plus ``|{model_version}`` for model alerts) the
  time of its latest alarming period. A settlement-period alarm within one period of that time continues the incident:
  its id is recorded and its score kept, but it is not added to ``alerts`` or published, so a fault that lasts five
  periods is one alert, not five. Rejected readings of one dataset merge the same way (a burst of bad messages is one
  alert on the dataset: the 705 unreadable rows of the recording's 2018-12-31 are one, not 705; every message still
  lies in ``bmrs.dlq`` and counts in ``dlq_total``); they are merged by when they are written, since a rejected
  message's own time may be missing (its arrival time stands in) or unreadable. Frequency samples are each their own
  alert.
* ``live:state:{group}``: the job's assembly state, written in the same transaction as the results it led to.

Everything a batch produced is written in one MULTI/EXEC transaction; the job commits Kafka offsets only after it
succeeds. A crash before EXEC leaves nothing half-written; a crash after it replays a batch that changes nothing.
"""

import datetime as dt
import json
import math
import time
from collections.abc import Callable
from typing import Any

import orjson
import redis

from grid_guardian_assets.detect.data_quality import REJECTED_READING
from grid_guardian_assets.settlement import PERIOD, to_api_time
from grid_guardian_assets.stream.redis_keys import (
    ALERT_CHANNEL,
    ALERT_IDS_KEY,
    ALERT_STREAM,
    INCIDENTS_KEY,
    NODE_KEY_PREFIX,
    TIMELINE_KEY,
)
from grid_guardian_assets.stream.rules import Finding

# One script call per batch: the entries travel as JSON arguments (packing thousands of small EVALSHA calls cost
# more than the scoring itself). Each node's hash is written once per batch, with the batch's newest reading of that
# node (the client picks it), and the timeline takes its members in variadic ZADDs: per-entry commands inside the
# script were most of a catch-up batch's time. Keys are built inside the script, so this needs a single Redis, not a
# Cluster.
_WRITE_BATCH = """
local latest = cjson.decode(ARGV[1])
local timeline = cjson.decode(ARGV[2])
local alerts = cjson.decode(ARGV[3])
local maxlen = tonumber(ARGV[4])
local node_prefix = ARGV[5]
for _, e in ipairs(latest) do
  local key = node_prefix .. e[1]
  local current = redis.call('HGET', key, 'time_ms')
  if (not current) or tonumber(current) <= e[3] then
    redis.call('HSET', key, 'score', e[4], 'time', e[2], 'time_ms', e[3], 'source', e[5], 'model_version', e[6],
               'dataset', e[7], 'kafka_topic', e[8], 'kafka_partition', e[9], 'kafka_offset', e[10])
  end
end
for i = 1, #timeline, 2000 do  -- score, member pairs; 2,000 arguments per call stays well inside Lua's stack
  redis.call('ZADD', KEYS[1], unpack(timeline, i, math.min(i + 1999, #timeline)))
end
local incident_gap_ms = tonumber(ARGV[6])
local written = {}
for i, a in ipairs(alerts) do
  written[i] = 0
  if redis.call('ZADD', KEYS[2], 'NX', a.time_ms, a.alert_id) == 1 then
    local continues = false
    if a.incident ~= '' then
      local last = tonumber(redis.call('HGET', KEYS[5], a.incident) or '')
      continues = last ~= nil and math.abs(a.incident_ms - last) <= incident_gap_ms
      if (not last) or a.incident_ms > last then redis.call('HSET', KEYS[5], a.incident, a.incident_ms) end
    end
    if continues then
      written[i] = 2
    else
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*', 'time', a.time, 'dataset', a.dataset, 'node', a.node,
                 'source', a.source, 'score', a.score, 'model_version', a.model_version, 'kafka_topic', a.kafka_topic,
                 'kafka_partition', a.kafka_partition, 'kafka_offset', a.kafka_offset, 'alert_id', a.alert_id,
                 'detail', a.detail)
      redis.call('PUBLISH', KEYS[4], a.json)
      written[i] = 1
    end
  end
end
local excess = redis.call('ZCARD', KEYS[2]) - 2 * maxlen
if excess > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1) end
return written
"""


def time_text(finding: Finding) -> str:
    """ISO 8601 UTC with a ``Z``, to the second (the readings' own times)."""
    return to_api_time(finding.time)


def alert_id(finding: Finding) -> str:
    """``{node}|{time}|{source}``; a model alert adds ``|{model_version}``: another checkpoint's verdict on the same
    reading (a backtest with a newer model) is another alert, the same checkpoint's replayed verdict is not. A
    rejected reading adds its Kafka origin: two bad messages of one dataset and time are two alerts, a replayed one
    is not."""
    base = f"{finding.node}|{time_text(finding)}|{finding.source}"
    if finding.source == "model":
        return f"{base}|{finding.model_version}"
    return f"{base}|{finding.origin}" if finding.source == REJECTED_READING else base


def alert_json(finding: Finding) -> dict[str, Any]:
    """An alert as the channel publishes it (the stream carries the same fields)."""
    return {
        "alert_id": alert_id(finding),
        "time": time_text(finding),
        "dataset": finding.dataset,
        "node": finding.node,
        "source": finding.source,
        "score": round(finding.score, 4),
        "model_version": finding.model_version,
        "kafka_topic": finding.origin.topic,
        "kafka_partition": finding.origin.partition,
        "kafka_offset": finding.origin.offset,
        "detail": dict(finding.detail),
    }


PERIOD_MS = int(PERIOD.total_seconds() * 1000)  # alarms this close to an incident's latest one continue it

# Frequency is judged per sample, seconds apart: each out-of-band sample is its own alert.
_PER_READING_SOURCES = ("frequency_", "rocof")


def incident_key(finding: Finding) -> str:
    """Which incident an alert belongs to (``{source}|{node}``, plus the checkpoint for model alerts: a new
    checkpoint's verdicts open new incidents; a rejected reading's node is its dataset); ``""`` for frequency
    samples, which are never merged."""
    if finding.source.startswith(_PER_READING_SOURCES):
        return ""
    base = f"{finding.source}|{finding.node}"
    return f"{base}|{finding.model_version}" if finding.source == "model" else base


def _finite(score: float) -> float:
    return score if math.isfinite(score) else 1e9


class RedisSink:
    """Writes a batch's findings and the job's state to Redis in one transaction.

    Args:
        client: A ``redis.Redis`` (from ``redis.Redis.from_url($REDIS_URL)``).
        state_key: Where the job keeps its assembly state.
        stream_maxlen: Approximate bound of the ``alerts`` stream.
        clock: Seconds since the epoch now (what rejected readings are merged by; a test passes its own).
    """

    def __init__(self, client: redis.Redis, state_key: str, stream_maxlen: int = 100_000,
                 clock: Callable[[], float] = time.time):
        self.client, self.state_key, self.stream_maxlen, self.clock = client, state_key, stream_maxlen, clock
        self._write = client.register_script(_WRITE_BATCH)

    def write(self, findings: list[Finding], state: str | None) -> list[Finding]:
        """Write every finding (and ``state``, the job's state as JSON text) atomically; returns the alerts that were
        new: not replays, and not the continuation of an incident already alerted (see ``alerts:incidents`` above)."""
        # A catch-up batch holds about fifty findings per period (a score per bus and check): this loop touches each
        # once, and a period's time is formatted once.
        best: dict[tuple[str, str], Finding] = {}
        stamps: dict[dt.datetime, tuple[str, int]] = {}  # time -> (its text, its epoch milliseconds)
        for finding in findings:
            stamp = stamps.get(finding.time)
            if stamp is None:
                stamp = stamps[finding.time] = (time_text(finding), int(finding.time.timestamp() * 1000))
            key = (finding.node, stamp[0])
            held = best.get(key)
            if held is None or _finite(finding.score) > _finite(held.score):
                best[key] = finding
        # Scores travel as text: Lua would print a float with 17 digits (1.8300000000000001).
        latest: dict[str, list[Any]] = {}  # node -> its newest entry in the batch (the last of equal times)
        timeline: list[str] = []
        for (node, when), f in best.items():
            score, time_ms = f"{_finite(f.score):.6g}", stamps[f.time][1]
            entry = latest.get(node)
            if entry is None or entry[2] <= time_ms:
                latest[node] = [node, when, time_ms, score, f.source, f.model_version, f.dataset, f.origin.topic,
                                f.origin.partition, f.origin.offset]
            timeline += (score, f"{node}:{when}")
        alerts = [f for f in findings if f.score >= 1.0 and f.alert]  # the cheap test first: most findings are not
        # A rejected message's time is its record's when it has one, else its arrival: within one burst the two mix,
        # so rejected readings join an incident by when they are written, not by the times they carry.
        written_ms = int(self.clock() * 1000)
        payload = []
        for finding in alerts:
            body = alert_json(finding)
            time_ms = int(finding.time.timestamp() * 1000)
            payload.append({**body, "time_ms": time_ms, "incident_ms": written_ms if finding.source == REJECTED_READING else time_ms,
                            "score": f"{body['score']:.6g}",
                            "detail": json.dumps(body["detail"]), "json": json.dumps(body), "incident": incident_key(finding)})
        pipe = self.client.pipeline(transaction=True)
        self._write(keys=[TIMELINE_KEY, ALERT_IDS_KEY, ALERT_STREAM, ALERT_CHANNEL, INCIDENTS_KEY],
                    args=[orjson.dumps(list(latest.values())), orjson.dumps(timeline), json.dumps(payload), self.stream_maxlen,
                          NODE_KEY_PREFIX, PERIOD_MS], client=pipe)
        if state is not None:
            pipe.set(self.state_key, state)
        written = pipe.execute()[0] or []
        return [finding for finding, new in zip(alerts, written) if new == 1]

    def load_state(self) -> dict[str, Any] | None:
        raw = self.client.get(self.state_key)
        return json.loads(raw) if raw else None

