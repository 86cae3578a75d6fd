"""Alerts a person would read each morning: a span of real days through the live job, every dataset it consumes.

The target: alerts that a person could read every morning, counted per day, on days the calibration never saw (a
month of 2019, say: ``--start 2019-03-01 --days 31``). ``bench_stream.py`` produces FUELHH alone, so its count leaves
out every check that needs a second dataset. Here each day's FUELHH (signed), BMRS's INDO and ITSDO, and for 2018
AGWS (B1630) and the replay's FREQ (synthetic: no series is public offline; 5,760 samples a day) are produced to their
topics in the order they were published (``publishTime``; FREQ by its time), and the inference job consumes them as
it would live: rules, redundancy checks against INDO and AGWS, per-fuel detectors, frequency band and RoCoF on every sample,
one alert per incident (``stream.redis_sink``). No model is promoted, as the held-out gate decides (the live job then
runs the rules alone); the detectors are fitted on the stored 2018 recordings with the README's windows
(``WINDOWS_2018``: January to September) and the line limits are
measured on the same months' snapshots, as ``gnn_verifier`` measures them. B1610 and PN are not produced: B1610
arrives days later and refines national totals already judged, and PN are plans.

Two ways in, on a fresh broker and Redis each:

* **live order**: a day is produced, the job consumes it, then the next day: the data reach the job as they would
  live (within a day the topics are still read in whatever order the consumer fetches them). This is the count the
  issue asks for.
* **catch-up**: the whole year is produced first and the job consumes the backlog, as after an outage. The consumer
  fetches each topic in its own chunks, so the rare references (ITSDO, 48 a day) are read months ahead of FUELHH;
  the job's period book keeps them until their FUELHH comes (``stream.periods.PeriodBook.prune``), so the count
  should match live order's. (Before the book kept time by FUELHH, the catch-up ran the balance check on no period
  and raised 398 alerts against live order's 818.)

Printed: readings produced per dataset, the alerts by source per day for each way in, the alerts per month, the
days with the most, and FUELHH produced alone (catch-up) through the same job in the same run: the baseline that
``bench_stream.py`` counts.

Run: .venv/bin/python bench/bench_live_year.py [--days 365] [--start 2018-01-01]
"""

import argparse
import collections
import datetime as dt
import itertools
import logging
import tempfile
import threading
import time
from pathlib import Path

import redis
from confluent_kafka import Producer

from grid_guardian_assets.data_layout import DataLayout
from grid_guardian_assets.datasets import AGWS, FREQ, FUELHH, INDO, ITSDO, DatasetSpec
from grid_guardian_assets.detect.calibration import fit_detectors
from grid_guardian_assets.dev.local_servers import LocalBroker, LocalRedis
from grid_guardian_assets.dev.recorded_store import WINDOWS_2018, recorded_2018
from grid_guardian_assets.grid.branch_limits import LoadingHistory, save_branch_limits
from grid_guardian_assets.grid.network import reduced_network
from grid_guardian_assets.replay import agws, bmrs_history, synthetic
from grid_guardian_assets.replay.grid import bundled_snapshot_days
from grid_guardian_assets.settlement import day_bounds_utc, days_between
from grid_guardian_assets.stream.job import InferenceJob, StreamConfig
from grid_guardian_assets.stream.kafka import KafkaSettings, ensure_topics
from grid_guardian_assets.stream.producers import produce_record
from grid_guardian_assets.stream.redis_keys import ALERT_STREAM
from grid_guardian_assets.stream.topics import topic_for

LIVE_DATASETS = (FUELHH, INDO, ITSDO, AGWS, FREQ)


def year_records(days: list[dt.date], specs: tuple[DatasetSpec, ...]) -> list[tuple[str, DatasetSpec, dict]]:
    """Every record of ``specs`` for ``days``, as ``(published, spec, record)`` in publication order."""
    start, end = day_bounds_utc(days[0])[0], day_bounds_utc(days[-1])[1]
    by_code: dict[str, list[dict]] = {
        "FUELHH": [r for day in days for r in bmrs_history.fuelhh_records(day)],
        "INDO": bmrs_history.demand_records("INDO", start, end),
        "ITSDO": bmrs_history.demand_records("ITSDO", start, end),
        "AGWS": agws.agws_records(start, end),
        "FREQ": synthetic.freq_records(start, end),
    }
    # A record without a publish or measurement time (a defective recording) goes out at the end of its day.
    out = [(r.get("publishTime") or r.get("measurementTime") or f"{r['settlementDate']}T24", spec, r)
           for spec in specs for r in by_code[spec.code]]
    out.sort(key=lambda item: item[0])  # ISO UTC strings sort in time order
    return out


def produce(settings: KafkaSettings, records: list[tuple[str, DatasetSpec, dict]]) -> None:
    producer = Producer({**settings.producer_config(), "linger.ms": 20, "queue.buffering.max.messages": 500_000})
    for _, spec, record in records:
        produce_record(producer, spec, record)
    assert producer.flush(120) == 0


def processed(job: InferenceJob) -> int:
    """Messages the job has consumed, scored and written so far (its ``messages_processed_total``)."""
    return int(sum(sample.value for metric in job.metrics.messages_processed.collect() for sample in metric.samples
                   if sample.name.endswith("_total")))


def alerts_through_job(work: Path, records: list[tuple[str, DatasetSpec, dict]], specs: tuple[DatasetSpec, ...],
                       limits: Path, calibration: Path, label: str, day_by_day: bool) -> tuple[list[dict], float]:
    """The alerts the job writes for ``records`` (a fresh broker and Redis), and the seconds it took.

    ``day_by_day``: each settlement day's records are produced once the job has processed the day before (live
    order); otherwise all of them first (catch-up).
    """
    with LocalBroker() as broker, LocalRedis(directory=work / f"redis-{label}") as redis_server:
        settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        ensure_topics(settings)
        config = StreamConfig(branch_limits_file=limits, kafka=settings, redis_url=redis_server.url,
                              model_root=None, fuel_settle_s=1.0, detector_calibration_file=calibration,
                              topics=tuple(topic_for(s) for s in specs), group_id=f"bench-live-year-{label}")
        job = InferenceJob(config)
        started = time.perf_counter()
        if day_by_day:
            runner = threading.Thread(target=job.run, kwargs={"max_seconds": 7200, "handle_sigterm": False}, daemon=True)
            runner.start()
            sent = 0
            for _, day in itertools.groupby(records, key=lambda item: item[0][:10]):
                chunk = list(day)
                produce(settings, chunk)
                sent += len(chunk)
                while processed(job) < sent and runner.is_alive():
                    time.sleep(0.05)
            job.stop()
            runner.join(60)
        else:
            produce(settings, records)
            job.run(max_seconds=3600, max_messages=len(records), handle_sigterm=False)
        seconds = time.perf_counter() - started
        client = redis.Redis.from_url(redis_server.url)
        alerts = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in client.xrange(ALERT_STREAM)]
        return alerts, seconds


def per_day(alerts: list[dict], days: int) -> dict[str, float]:
    counts = collections.Counter(a["source"] for a in alerts)
    return {source: round(n / days, 3) for source, n in sorted(counts.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2018, 1, 1))
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    days = [d for d in days_between(args.start, args.start + dt.timedelta(days=args.days - 1)) if bmrs_history.fuelhh_records(d)]
    work = Path(tempfile.mkdtemp(prefix="bench-live-year-"))
    calibration = work / "detector_calibration.json"
    fit_detectors(recorded_2018(work / "data" / "hdf5"), WINDOWS_2018).save(calibration)
    network = reduced_network()
    train = list(bundled_snapshot_days(network, WINDOWS_2018.training.first, WINDOWS_2018.training.last))
    history = LoadingHistory.of(train, network.n_branches)
    limits = save_branch_limits(DataLayout(work / "data").branch_limits(network.name), network, history.limits(), history,
                                [d.day for d in train])
    print(f"{len(days)} days with FUELHH from {days[0]} to {days[-1]}; detectors fitted and line limits measured on "
          f"{WINDOWS_2018.training.describe()}")

    logging.getLogger("grid_guardian").setLevel(logging.ERROR)  # the defective day's 705 dead letters, one line each
    runs = {}
    for label, specs, day_by_day in (("FUELHH alone, catch-up", (FUELHH,), False),
                                     ("every live dataset, catch-up", LIVE_DATASETS, False),
                                     ("every live dataset, live order", LIVE_DATASETS, True)):
        records = year_records(days, specs)
        produced = collections.Counter(spec.code for _, spec, _ in records)
        alerts, seconds = alerts_through_job(work, records, specs, limits, calibration, str(len(runs)), day_by_day)
        runs[label] = alerts
        print(f"{label}: produced {dict(produced)}; {seconds:.0f} s; {len(alerts)} alerts, "
              f"{len(alerts) / len(days):.2f} a day")
        print(f"  alerts a day by source: {per_day(alerts, len(days))}")
    full = runs["every live dataset, live order"]
    by_day = collections.Counter(a["time"][:10] for a in full)
    quiet = sum(1 for d in days if by_day.get(d.isoformat(), 0) == 0)
    print(f"live order: days without an alert: {quiet} of {len(days)}; most alerts in a day: {by_day.most_common(5)}")
    by_month: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for a in full:
        by_month[a["time"][:7]][a["source"]] += 1
    for month, counts in sorted(by_month.items()):
        print(f"  {month}: {sum(counts.values())} alerts {dict(sorted(counts.items()))}")
    for label, alerts in runs.items():
        print(f"{label}: {len(alerts)} alerts, {len(alerts) / max(len(full), 1):.2f}x of live order's {len(full)}")


if __name__ == "__main__":
    main()
