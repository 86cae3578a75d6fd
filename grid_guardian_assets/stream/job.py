"""The long-running inference job: Kafka → validation → rules and GNN → Redis, committing only what is stored.

Each loop: consume up to ``batch_size`` messages (whatever has arrived: a batch never waits to fill, so at the live
rate it holds one reading and while a backlog streams in it holds thousands); parse and validate them (failures go
to ``bmrs.dlq`` with the error and the original bytes, and each raises a ``rejected_reading`` alert on its dataset);
turn readings into findings, scoring every period they complete together; write findings (those alerts included)
and the job's state to Redis in one transaction (retried while Redis is away), in a writer thread while the next batch
is consumed and scored; once the write is done, make sure the DLQ records are delivered, then commit the offsets after
the last message of each partition, before the next batch's write starts. Between batches the job picks up a newly
promoted checkpoint.
"""

import copy
import datetime as dt
import gc
import json
import logging
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from tenacity import Retrying, before_sleep_log, retry_if_exception_type, stop_after_delay, wait_exponential

from grid_guardian_assets.detect.calibration import DetectorCalibration, PeriodDetector
from grid_guardian_assets.detect.findings import Finding
from grid_guardian_assets.detect.redundancy import STEP_BASELINE_PERIODS
from grid_guardian_assets.detect.schedules import SCHEDULE_DAYS
from grid_guardian_assets.grid.branch_limits import load_branch_limits
from grid_guardian_assets.grid.dcflow import DCPowerFlow
from grid_guardian_assets.grid.mapping import bus_mapping
from grid_guardian_assets.grid.network import load_network
from grid_guardian_assets.settings import REDIS_URL
from grid_guardian_assets.stream import defaults
from grid_guardian_assets.stream.dead_letters import rejected_reading_finding
from grid_guardian_assets.stream.kafka import ALL_TOPICS, KafkaSettings, ensure_topics
from grid_guardian_assets.stream.messages import Origin, RawMessage, Rejected, parse_messages
from grid_guardian_assets.stream.metrics import StreamMetrics
from grid_guardian_assets.stream.processor import LiveProcessor
from grid_guardian_assets.stream.redis_keys import state_key
from grid_guardian_assets.stream.redis_sink import RedisSink
from grid_guardian_assets.stream.scorer import LiveScorer, single_threaded_torch
from grid_guardian_assets.stream.topics import DLQ_TOPIC, spec_for_topic
from grid_guardian_assets.verifier.checkpoints import CheckpointError, ModelStore
from grid_guardian_assets.verifier.pipeline import load_detector

log = logging.getLogger("grid_guardian.stream")

_REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
T = TypeVar("T")


@dataclass
class StreamConfig:
    """What the job connects to and how it batches.

    Attributes:
        branch_limits_file: The line-overload limits the ``branch_limits`` asset stored for ``network``
            (``DataLayout.branch_limits(network)``); the job refuses to start without them.
        detector_calibration_file: The redundancy checks and per-fuel data-quality limits the
            ``detector_calibration`` asset stored (``DataLayout.detector_calibration``); ``None`` or a missing file
            turns those checks off (logged once at start).
        stores: The daily chains' HDF5 stores (``DataLayout.hdf5``): at start, the usual falls of each fuel type are
            learned from the newest week ``fuelhh_store`` holds (``infeed_loss`` judges a fall beyond the usual one),
            as the batch detectors learn them from the week before a case; ``None`` or no stored FUELHH: from what
            the job consumes, after a week. A state restored from Redis replaces it.
        kafka: Broker settings (``KAFKA_*``).
        redis_url: ``$REDIS_URL`` (``redis://:password@host:port/db``).
        group_id: The consumer group; its committed offsets are the job's progress.
        topics: Topics to read.
        network: Grid model the readings are mapped onto (must match the checkpoint's).
        model_root: The model store whose promoted checkpoint scores periods (``None``: rules only).
        batch_size: Most messages per batch (one Redis transaction, one commit). A batch takes what has arrived and
            never waits to fill, so a large bound costs no latency at the live rate and amortises validation, the
            transaction and the commit over a backlog.
        poll_timeout_s: How long one poll waits for messages.
        fuel_settle_s: Quiet seconds after which a period's FUELHH counts as complete.
        model_check_s: How often the promoted checkpoint is looked up.
        redis_retry_s: How long a batch's Redis write is retried before the job gives up (nothing is committed).
        keep_periods: Scored periods kept for refinement by late data (B1610 arrives about five days late: 288+).
        progress_every_s: Least seconds between two calls of the job's ``on_progress`` callback (it is called only
            when something changed since the last call: an idle job reports nothing).
    """

    branch_limits_file: Path
    detector_calibration_file: Path | None = None
    stores: Path | None = None
    kafka: KafkaSettings = field(default_factory=KafkaSettings.from_env)
    redis_url: str = field(default_factory=REDIS_URL.get)
    group_id: str = defaults.GROUP_ID
    topics: tuple[str, ...] = ALL_TOPICS
    network: str = "gb29"
    model_root: Path | None = None
    batch_size: int = defaults.BATCH_SIZE
    poll_timeout_s: float = 0.1
    fuel_settle_s: float = defaults.FUEL_SETTLE_S
    model_check_s: float = 2.0
    redis_retry_s: float = 120.0
    stream_maxlen: int = 100_000
    keep_periods: int = defaults.KEEP_PERIODS
    progress_every_s: float = defaults.PROGRESS_EVERY_S


def learn_stored_falls(detector: PeriodDetector, stores: Path | None) -> tuple[dt.date, dt.date] | None:
    """Teach ``detector`` the usual falls (``detect.schedules``) from the newest ``SCHEDULE_DAYS`` days ``fuelhh_store``
    holds under ``stores``; returns the first and last day read, or ``None`` when there are none."""
    if stores is None or not stores.exists():
        return None
    from grid_guardian_assets.datasets import FUELHH
    from grid_guardian_assets.detect.measurements import StoredMeasurements
    from grid_guardian_assets.store.hdf5 import HDF5Store

    measurements = StoredMeasurements(HDF5Store(stores), datasets=(FUELHH,))
    week = measurements.stored_days(FUELHH)[-SCHEDULE_DAYS:]
    if not week:
        return None
    detector.learn_schedule(measurements.table(week, b1610_days=()))
    return week[0], week[-1]


@dataclass
class StreamSummary:
    """What one run of the job did (so far, when passed to ``on_progress``).

    Attributes:
        messages, readings, rejected, alerts, batches: Counts over the run (``rejected``: sent to the DLQ).
        model_versions: Every checkpoint that scored during the run, in the order they were taken up.
        model_in_use: The checkpoint scoring now (``none``: physics rules only).
        alerts_by_source: New alerts by rule (or ``model``).
        offsets: ``topic/partition`` → [first, last] offset this run committed.
        consumer_lag: ``topic/partition`` → records not yet committed by the group, at the last batch.
        stopped_by: Why the run ended: ``stop()``, ``SIGTERM``, ``max_seconds`` or ``max_messages`` (empty while it runs).
        seconds: Wall-clock seconds since consumption started.
        first_message_s: Seconds from the start of consumption to the first message (the group join, at the least;
            ``None`` until a message arrives): ``seconds`` less this is the time spent on messages.
    """

    messages: int = 0
    readings: int = 0
    rejected: int = 0
    alerts: int = 0
    batches: int = 0
    model_versions: list[str] = field(default_factory=list)
    model_in_use: str = "none"
    alerts_by_source: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    offsets: dict[str, list[int]] = field(default_factory=dict)
    consumer_lag: dict[str, int] = field(default_factory=dict)
    stopped_by: str = ""
    seconds: float = 0.0
    first_message_s: float | None = None

    def as_metadata(self) -> dict[str, object]:
        return {
            "messages": self.messages, "readings": self.readings, "rejected_to_dlq": self.rejected,
            "alerts": self.alerts, "batches": self.batches, "seconds": round(self.seconds, 1),
            "first_message_s": None if self.first_message_s is None else round(self.first_message_s, 1),
            "model_versions": ", ".join(self.model_versions) or "none (physics rules only)",
            "model_in_use": self.model_in_use,
            "alerts_by_source": dict(self.alerts_by_source),
            "kafka_offsets": {tp: f"{first}..{last}" for tp, (first, last) in sorted(self.offsets.items())},
            "consumer_lag": sum(self.consumer_lag.values()),
            "consumer_lag_by_partition": dict(sorted(self.consumer_lag.items())),
            "stopped_by": self.stopped_by,
        }


# Python's cyclic garbage collector while a backlog streams in: a catch-up batch makes about a million short-lived
# objects (findings, readings, dicts), which reference counting frees; the collector still ran every 700 allocations
# and its full passes walked every object of the loaded model and libraries as well. Turned off, it saved about a
# seventh of a catch-up's time in bench_stream.py. While the job runs, what was alive at its start is frozen out of
# collection and young collections run every GC_YOUNG_THRESHOLD allocations; cycles are still collected.
GC_YOUNG_THRESHOLD = 50_000


@contextmanager
def _collector_tuned_for_batches() -> Iterator[None]:
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


@dataclass
class _PendingWrite:
    """A batch whose results are being written to Redis (in the writer thread), waiting to be committed."""

    write: "Future[list[Finding]]"
    batch: list[Message]
    findings: list[Finding]
    rejected: list[Rejected]
    readings: int


class InferenceJob:
    """Consumes the BMRS topics and keeps Redis's scores and alerts up to date until told to stop.

    Args:
        config: Connections and batching.
        metrics: Prometheus metrics (a fresh registry when omitted).
        after_store: Called with the count of batches stored so far after each batch is written to Redis and
            before its offsets are committed (tests inject a crash there).
        on_progress: Called from the consuming thread with a copy of the run's summary so far, after a committed
            batch or a model swap, at most once every ``config.progress_every_s`` (Dagster records it as an asset
            observation). The final summary is ``run()``'s return value, not a progress call.

    Raises:
        BranchLimitsMissing: ``config.branch_limits_file`` does not exist (materialise ``branch_limits``).
    """

    def __init__(self, config: StreamConfig, metrics: StreamMetrics | None = None,
                 after_store: Callable[[int], None] | None = None,
                 on_progress: Callable[[StreamSummary], None] | None = None):
        self.config = config
        self.metrics = metrics or StreamMetrics()
        self.after_store = after_store
        self.on_progress = on_progress
        self.stop_event = threading.Event()
        self._stop_reason = ""
        network = load_network(config.network)
        self.mapping, self.flow = bus_mapping(network), DCPowerFlow(network)
        self.limits = load_branch_limits(config.branch_limits_file, network)
        self.models = ModelStore(config.model_root) if config.model_root else None
        if self.models is not None:
            single_threaded_torch()
        self.processor = LiveProcessor(self.mapping, self.flow, self.limits, None, self._detectors(),
                                       fuel_settle_s=config.fuel_settle_s, keep_periods=config.keep_periods)
        self.redis = redis.Redis.from_url(config.redis_url, socket_timeout=10, socket_connect_timeout=5)
        self.sink = RedisSink(self.redis, state_key(config.group_id), config.stream_maxlen)
        self._last_model_check = 0.0
        self._consumed_next: dict[tuple[str, int], int] = {}
        self._committed_next: dict[tuple[str, int], int] = {}
        self._last_progress = 0.0
        self._reported: tuple[int, int, str] | None = None  # (messages, batches, model) at the last on_progress

    def _detectors(self) -> PeriodDetector | None:
        path = self.config.detector_calibration_file
        if path is None or not path.exists():
            log.warning("no detector calibration%s: redundancy and data-quality checks are off (materialise "
                        "detector_calibration)", f" at {path}" if path else "")
            return None
        calibration = DetectorCalibration.load(path)
        log.info("redundancy checks %s and %d fuel types' data-quality limits from %s", ", ".join(calibration.relations),
                 len(calibration.fuel_limits), path)
        for name, why in calibration.not_fitted.items():
            log.warning("redundancy check %s is off: not fitted (%s)", name, why)
        # More periods than the book keeps for refinement: the oldest refinable period keeps its step baseline.
        detector = PeriodDetector(calibration, keep_periods=self.config.keep_periods + STEP_BASELINE_PERIODS)
        self._warm_up(detector)
        return detector

    def _warm_up(self, detector: PeriodDetector) -> None:
        learned = learn_stored_falls(detector, self.config.stores)
        if learned is None:
            log.info("no stored FUELHH%s: the usual falls are learned from the stream",
                     f" in {self.config.stores}" if self.config.stores else "")
        else:
            log.info("usual falls learned from the stored FUELHH of %s..%s", *learned)

    # --- model ------------------------------------------------------------------------------------------------
    def _promoted_scorer(self) -> LiveScorer | None:
        if self.models is None:
            return None
        version = self.models.promoted()
        if version is None or (self.processor.scorer and self.processor.scorer.version == version):
            return None
        try:
            detector, calibration = load_detector(self.models.load(version), self.mapping.network)
        except (CheckpointError, ValueError, KeyError) as exc:
            log.error("promoted checkpoint %s cannot be used, keeping %s: %s", version, self.processor.model_version, exc)
            return None
        return LiveScorer(detector, calibration, version)

    def refresh_model(self, force: bool = False) -> bool:
        """Switch to a newly promoted checkpoint (between batches); True when it switched."""
        now = time.monotonic()
        if not force and now - self._last_model_check < self.config.model_check_s:
            return False
        self._last_model_check = now
        scorer = self._promoted_scorer()
        if scorer is None:
            return False
        previous = self.processor.model_version
        self.processor.swap(scorer)
        log.info("scoring with checkpoint %s (was %s)", scorer.version, previous)
        return True

    # --- one batch --------------------------------------------------------------------------------------------
    def _split(self, messages: list[Message]) -> tuple[dict[str, list[RawMessage]], list[Rejected]]:
        by_topic: dict[str, list[RawMessage]] = defaultdict(list)
        rejected = []
        for m in messages:
            topic = m.topic()
            origin = Origin(topic, m.partition(), m.offset())
            raw = RawMessage(origin, m.key(), m.value())
            if spec_for_topic(topic) is None:
                rejected.append(Rejected(origin, raw.key, raw.value, f"topic {topic} is not a BMRS dataset topic"))
            else:
                by_topic[topic].append(raw)
        return by_topic, rejected

    def process(self, messages: list[Message]) -> tuple[list[Finding], list[Rejected], int]:
        """Findings, rejections and the count of readings of one batch (no I/O). Every rejection is also a
        ``rejected_reading`` alert on its dataset, stored with the batch's other findings."""
        by_topic, rejected = self._split(messages)
        readings = []
        for topic, raws in by_topic.items():
            good, bad = parse_messages(spec_for_topic(topic), raws)
            rejected.extend(bad)
            original = {raw.origin: raw for raw in raws}
            for reading in good:
                problem = self.processor.check(reading)
                if problem:
                    raw = original[reading.origin]
                    rejected.append(Rejected(reading.origin, raw.key, raw.value, problem))
                else:
                    readings.append(reading)
        dead = [rejected_reading_finding(r, self.processor.model_version) for r in rejected]
        return self.processor.add(readings) + dead, rejected, len(readings)

    def _with_redis(self, call: Callable[[], T]) -> T:
        """``call()``, retried while Redis is unreachable or loading, for up to ``redis_retry_s``."""
        retrying = Retrying(
            retry=retry_if_exception_type(_REDIS_ERRORS),
            wait=wait_exponential(multiplier=0.2, max=5),
            stop=stop_after_delay(self.config.redis_retry_s),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )
        return retrying(call)

    def _start_write(self, writer: ThreadPoolExecutor, batch: list[Message], findings: list[Finding],
                     rejected: list[Rejected], readings: int) -> _PendingWrite:
        """Write a batch's findings and the processor's state after it to Redis in the writer thread.

        The state is written out now, as text: the next batch changes the processor while the write runs."""
        state = json.dumps(self.processor.state())
        write = writer.submit(self._with_redis, lambda: self.sink.write(findings, state))
        return _PendingWrite(write, batch, findings, rejected, readings)

    def _finish_write(self, pending: _PendingWrite, consumer: Consumer, producer: Producer, summary: StreamSummary) -> None:
        """Wait for a batch's Redis write, then dead-letter its rejections and commit its offsets: a batch is
        committed only once its results are in Redis."""
        alerts = pending.write.result()
        if self.after_store is not None:
            self.after_store(summary.batches + 1)
        self._dead_letter(producer, pending.rejected)
        if pending.batch:
            self._commit(consumer, pending.batch)
        self._account(summary, pending.batch, pending.findings, pending.rejected, pending.readings, alerts)
        self._update_lag(consumer, summary)

    def _dead_letter(self, producer: Producer, rejected: list[Rejected]) -> None:
        for r in rejected:
            log.warning("message %s sent to %s: %s", r.origin, DLQ_TOPIC, r.error)
            producer.produce(DLQ_TOPIC, key=r.key, value=r.dlq_value(),
                             headers=[("error", r.error.encode()[:1000]), ("source", str(r.origin).encode())])
            self.metrics.dlq.labels(r.origin.topic).inc()
        if rejected and producer.flush(30) > 0:
            raise RuntimeError(f"{DLQ_TOPIC}: dead letters not delivered within 30 s; offsets not committed")

    def _commit(self, consumer: Consumer, messages: list[Message]) -> None:
        last: dict[tuple[str, int], int] = {}
        for m in messages:
            last[(m.topic(), m.partition())] = max(last.get((m.topic(), m.partition()), -1), m.offset())
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
        consumer.commit(offsets=offsets, asynchronous=False)
        for (t, p), o in last.items():
            self._committed_next[(t, p)] = o + 1
            self._consumed_next[(t, p)] = max(self._consumed_next.get((t, p), 0), o + 1)

    def _update_lag(self, consumer: Consumer, summary: StreamSummary) -> None:
        for (topic, partition), committed in self._committed_next.items():
            try:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            except KafkaException:
                high = -1
            end = max(high, self._consumed_next.get((topic, partition), committed))
            lag = max(0, end - committed)
            self.metrics.consumer_lag.labels(topic, str(partition)).set(lag)
            summary.consumer_lag[f"{topic}/{partition}"] = lag

    def _report_progress(self, summary: StreamSummary, started: float) -> None:
        """Hand ``on_progress`` a copy of the summary when it changed and ``progress_every_s`` has passed."""
        if self.on_progress is None:
            return
        now = time.monotonic()
        state = (summary.messages, summary.batches, summary.model_in_use)
        if state == self._reported or now - self._last_progress < self.config.progress_every_s:
            return
        self._last_progress, self._reported = now, state
        summary.seconds = now - started
        self.on_progress(copy.deepcopy(summary))

    # --- the loop ---------------------------------------------------------------------------------------------
    def run(self, max_seconds: float | None = None, max_messages: int | None = None, handle_sigterm: bool = True) -> StreamSummary:
        """Consume until ``stop()``, SIGTERM, ``max_seconds`` or ``max_messages``; the last batch is committed first.

        ``handle_sigterm=False`` leaves signals to the host (Dagster's run worker interrupts the op itself; the
        uncommitted batch is then consumed again by the next run, which changes nothing in Redis).
        """
        ensure_topics(self.config.kafka, (*self.config.topics, DLQ_TOPIC))
        state = self._load_state()
        self.refresh_model(force=True)
        if self.processor.scorer is None:
            log.warning("no promoted checkpoint in %s: scoring with physics rules only", self.config.model_root)
        if state:
            self.processor.load_state(state)
        summary = StreamSummary()
        consumer = Consumer(self.config.kafka.consumer_config(self.config.group_id))
        producer = Producer(self.config.kafka.producer_config())
        consumer.subscribe(list(self.config.topics))
        restore = self._install_sigterm() if handle_sigterm else (lambda: None)
        self._if_model_changed(summary)
        # A batch's Redis write runs in the writer thread while the next batch is consumed and scored (Redis's own
        # work on a catch-up batch, the timeline's ZADD of every score, was a tenth of the job's time, spent waiting);
        # the batch is committed once its write is done, before the next write starts. At the live rate the next
        # poll comes back empty after poll_timeout_s and the batch is committed then.
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="redis-writer")
        pending: _PendingWrite | None = None
        consumed = 0  # messages taken from Kafka, the pending batch's included
        with _collector_tuned_for_batches():  # its full collection at the start is not consumption's time
            started = time.monotonic()
            self._last_progress, self._reported = started, None
            try:
                while not self.stop_event.is_set():
                    if max_seconds is not None and time.monotonic() - started >= max_seconds:
                        summary.stopped_by = "max_seconds"
                        break
                    want = self.config.batch_size
                    if max_messages is not None:
                        want = min(want, max_messages - consumed)
                        if want <= 0:
                            summary.stopped_by = "max_messages"
                            break
                    batch = [m for m in self._next_batch(consumer, want) if self._usable(m)]
                    if batch and summary.first_message_s is None:
                        summary.first_message_s = time.monotonic() - started
                    consumed += len(batch)
                    findings, rejected, n_readings = self.process(batch) if batch else ([], [], 0)
                    findings += self.processor.tick()  # wall-clock completion, also while a backlog streams in
                    if pending is not None:
                        self._finish_write(pending, consumer, producer, summary)
                        pending = None
                    if batch or findings:
                        pending = self._start_write(writer, batch, findings, rejected, n_readings)
                    self._if_model_changed(summary)
                    self._report_progress(summary, started)
                else:
                    summary.stopped_by = self._stop_reason or "stop()"
                if pending is not None:  # the last batch is committed before the job stops
                    self._finish_write(pending, consumer, producer, summary)
                    self._if_model_changed(summary)
                    self._report_progress(summary, started)
            finally:
                writer.shutdown(wait=True)  # a write under way ends (its batch uncommitted after an error) first
                restore()
                consumer.close()
                producer.flush(10)
                summary.seconds = time.monotonic() - started
        return summary

    def _next_batch(self, consumer: Consumer, want: int) -> list[Message]:
        # Wait for the first message only, then take what is already fetched: a batch never waits to fill up,
        # so at the live rate each reading is scored as soon as it arrives.
        first = consumer.poll(self.config.poll_timeout_s)
        if first is None:
            return []
        return [first, *consumer.consume(want - 1, 0)] if want > 1 else [first]

    def _if_model_changed(self, summary: StreamSummary) -> None:
        self.refresh_model()
        summary.model_in_use = self.processor.model_version
        if self.processor.scorer and self.processor.model_version not in summary.model_versions:
            summary.model_versions.append(self.processor.model_version)

    def _load_state(self) -> dict | None:
        return self._with_redis(self.sink.load_state)

    @staticmethod
    def _usable(message: Message) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.code() != KafkaError._PARTITION_EOF:
            log.warning("Kafka: %s", error)
        return False

    def _account(self, summary: StreamSummary, batch: list[Message], findings: list[Finding], rejected: list[Rejected],
                 n_readings: int, alerts: list[Finding]) -> None:
        summary.batches += 1
        summary.messages += len(batch)
        summary.readings += n_readings
        summary.rejected += len(rejected)
        summary.alerts += len(alerts)
        if self.processor.scorer is not None:
            for ms in self.processor.scorer.drain_latencies():
                self.metrics.inference_latency_ms.observe(ms)
        for periods in self.processor.drain_periods_per_batch():
            self.metrics.periods_per_batch.observe(periods)
        per_topic: Counter[str] = Counter()  # one metric update per topic and batch, not per message
        for m in batch:
            topic, offset = m.topic(), m.offset()
            per_topic[topic] += 1
            covered = summary.offsets.setdefault(f"{topic}/{m.partition()}", [offset, offset])
            if offset < covered[0]:
                covered[0] = offset
            elif offset > covered[1]:
                covered[1] = offset
        for topic, count in per_topic.items():
            spec = spec_for_topic(topic)
            self.metrics.messages_processed.labels(spec.code if spec else topic).inc(count)
        for f in alerts:
            summary.alerts_by_source[f.source] += 1
            self.metrics.alerts.labels(f.source).inc()
        latest: dict[str, Finding] = {}
        for f in findings:
            if f.node not in latest or f.time >= latest[f.node].time:
                latest[f.node] = f
        for node, f in latest.items():
            self.metrics.anomaly_score.labels(node).set(f.score)

    def _install_sigterm(self):
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum, frame):  # noqa: ARG001
            log.info("SIGTERM: finishing the current batch, then stopping")
            self._stop_reason = "SIGTERM"
            self.stop_event.set()

        signal.signal(signal.SIGTERM, on_sigterm)
        return lambda: signal.signal(signal.SIGTERM, previous)

    def stop(self, reason: str = "stop()") -> None:
        """Finish the current batch (store, commit), then return from ``run()``; ``reason`` becomes ``stopped_by``."""
        self._stop_reason = reason
        self.stop_event.set()
