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
* ``alerts:incident:{incident}`` sorted set, one per incident (``{source}|{node}``, plus ``|{model_version}`` for
  model alerts): the spans (``{first_ms}:{last_ms}``, scored by the last) of its alarms. An alarm within the incident
  gap of a span (``incident_gap``: a settlement period for readings of periods, two minutes for frequency samples)
  continues it: its id is recorded and its score kept, but it is not added to ``alerts`` or published, so a fault
  that lasts five periods, or a frequency dip that lasts a minute of 15-s samples, is one alert. Spans merge in any
  order: messages keyed by their time spread over a topic's partitions and arrive out of time order, and an older
  alarm inside a span continues it as a newer one does. Only alarms that arrive before the ones joining them to a
  span (two ends of one dip read from two partitions first) are reported apart. Rejected readings of one dataset
  merge the same way (a burst of bad messages is one alert on the dataset: the 705 unreadable rows of the recording's
  2018-12-31 are one, not 705; every message still lies in ``bmrs.dlq`` and counts in ``dlq_total``); they are merged
  by when they are written, since a rejected message's own time may be missing (its arrival time stands in) or
  unreadable. Spans that ended more than ``INCIDENT_MEMORY`` before the incident's newest are forgotten.
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

from grid_guardian_assets.detect.findings import Finding
from grid_guardian_assets.settlement import PERIOD, to_api_time
from grid_guardian_assets.stream.dead_letters import REJECTED_READING
from grid_guardian_assets.stream.redis_keys import (
    ALERT_CHANNEL,
    ALERT_IDS_KEY,
    ALERT_STREAM,
    INCIDENT_KEY_PREFIX,
    NODE_KEY_PREFIX,
    TIMELINE_KEY,
)

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
local incident_prefix = ARGV[6]
local incident_memory_ms = tonumber(ARGV[7])
local written = {}
for i, a in ipairs(alerts) do
  written[i] = 0
  if redis.call('ZADD', KEYS[2], 'NX', a.time_ms, a.alert_id) == 1 then
    local continues = false
    -- The incident's spans: members 'first:last' scored by last, more than a gap apart from each other, so those
    -- ending at or after t - gap, in order of their ends, start in order too. Every span within a gap of t joins t
    -- into one: the alarm continues an incident whatever order its alarms arrive in.
    local key, t, gap = incident_prefix .. a.incident, a.incident_ms, a.gap_ms
    local first, last = t, t
    for _, span in ipairs(redis.call('ZRANGEBYSCORE', key, t - gap, '+inf')) do
      local s, e = string.match(span, '^(%-?%d+):(%-?%d+)$')
      s, e = tonumber(s), tonumber(e)
      if s > t + gap then break end
      continues = true
      first, last = math.min(first, s), math.max(last, e)
      redis.call('ZREM', key, span)
    end
    redis.call('ZADD', key, last, string.format('%.0f:%.0f', first, last))
    local newest = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. string.format('%.0f', newest - incident_memory_ms))
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


# Two alarms of one source and node this close together belong to one incident: a settlement period for readings of
# periods (a fault lasting five periods is one alert), two minutes for frequency samples, which are seconds apart: a
# dip that stays outside the band is one incident however many 15-s samples it lasts, and a second one after two
# minutes back inside the band is reported again (a second loss, or a recovery that did not hold).
PERIOD_INCIDENT_GAP = PERIOD
SAMPLE_INCIDENT_GAP = dt.timedelta(minutes=2)
# How long an incident's spans are remembered after its newest alarm: an alarm arriving later than this after the
# incident's newest one (a replay from days back) opens an incident of its own.
INCIDENT_MEMORY = dt.timedelta(days=1)

# Frequency is judged per sample: its incidents merge over the sample gap, not a period's.
_PER_SAMPLE_SOURCES = ("frequency_", "rocof")


def incident_key(finding: Finding) -> str:
    """Which incident an alert belongs to: ``{source}|{node}``, plus the checkpoint for model alerts (a new
    checkpoint's verdicts open new incidents); a rejected reading's node is its dataset."""
    base = f"{finding.source}|{finding.node}"
    return f"{base}|{finding.model_version}" if finding.source == "model" else base


def incident_gap(finding: Finding) -> dt.timedelta:
    """How close to an incident's alarms ``finding`` must lie to continue it (see ``PERIOD_INCIDENT_GAP``)."""
    return SAMPLE_INCIDENT_GAP if finding.source.startswith(_PER_SAMPLE_SOURCES) else PERIOD_INCIDENT_GAP


def _ms(span: dt.timedelta) -> int:
    return int(span.total_seconds() * 1000)


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
        # A rejected message's time is its record's when it has one, else its arrival: within one burst the two mix,
        # so rejected readings join an incident by when they are written, not by the times they carry.
        written_ms = int(self.clock() * 1000)

        def incident_ms(finding: Finding) -> int:
            return written_ms if finding.source == REJECTED_READING else int(finding.time.timestamp() * 1000)

        # The cheap test first: most findings are not alerts. In incident time order, so that a batch joins its own
        # alarms to their incidents whatever order its messages came in.
        alerts = sorted((f for f in findings if f.score >= 1.0 and f.alert), key=incident_ms)
        payload = []
        for finding in alerts:
            body = alert_json(finding)
            payload.append({**body, "time_ms": int(finding.time.timestamp() * 1000), "incident_ms": incident_ms(finding),
                            "score": f"{body['score']:.6g}", "gap_ms": _ms(incident_gap(finding)),
                            "detail": json.dumps(body["detail"]), "json": json.dumps(body), "incident": incident_key(finding)})
        pipe = self.client.pipeline(transaction=True)
        self._write(keys=[TIMELINE_KEY, ALERT_IDS_KEY, ALERT_STREAM, ALERT_CHANNEL],
                    args=[orjson.dumps(list(latest.values())), orjson.dumps(timeline), json.dumps(payload), self.stream_maxlen,
                          NODE_KEY_PREFIX, INCIDENT_KEY_PREFIX, _ms(INCIDENT_MEMORY)], client=pipe)
        if state is not None:
            pipe.set(self.state_key, state)
        written = pipe.execute()[0] or []
        return [finding for finding, new in zip(alerts, written) if new == 1]

    def load_state(self) -> dict[str, Any] | None:
        raw = self.client.get(self.state_key)
        return json.loads(raw) if raw else None

