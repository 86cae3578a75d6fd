"""``grid-guardian``: the operator's and analyst's console commands."""

import sys
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from grid_guardian_assets import settings as env
from grid_guardian_assets.data_layout import DataLayout
from grid_guardian_assets.datasets import DATASETS, dataset_spec
from grid_guardian_assets.settlement import parse_day
from grid_guardian_assets.store.hdf5 import HDF5Store
from grid_guardian_assets.stream import defaults as stream_defaults

app = typer.Typer(help="Grid Guardian: anomaly detection for the GB electricity grid.", no_args_is_help=True)
store_app = typer.Typer(help="Read the validated BMRS stores.", no_args_is_help=True)
replay_app = typer.Typer(help="The local server that answers like the Elexon Insights API.", no_args_is_help=True)
app.add_typer(store_app, name="store")
app.add_typer(replay_app, name="replay")
stream_app = typer.Typer(help="The live path: Kafka -> GNN -> Redis.", no_args_is_help=True)
app.add_typer(stream_app, name="stream")

# Fields the store keeps for provenance but an analyst rarely wants in a table.
_BOOKKEEPING_FIELDS = ("dataset", "publishTime")


def _api_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Times and dates in the Insights API's own text forms (``2018-03-01T00:00:00Z``, ``2018-03-01``)."""
    return frame.with_columns(
        [pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%SZ") for c, t in frame.schema.items() if isinstance(t, pl.Datetime)]
        + [pl.col(c).dt.strftime("%Y-%m-%d") for c, t in frame.schema.items() if t == pl.Date]
    )


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@store_app.command("read")
def store_read(
    dataset: Annotated[str, typer.Argument(help=f"One of {', '.join(DATASETS)}.")],
    start: Annotated[str, typer.Option(help="First settlement day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last settlement day (inclusive), YYYY-MM-DD.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or json (one object per line).")] = "csv",
    all_fields: Annotated[bool, typer.Option("--all-fields", help="Also print dataset and publishTime.")] = False,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (default: $GRID_GUARDIAN_DATA_DIR or ~/.grid_guardian).")] = None,
) -> None:
    """Print the validated rows of settlement days START..END, sorted by time, with the API's field names."""
    try:
        spec = dataset_spec(dataset)
        first, last = parse_day(start), parse_day(end)
        if last < first:
            raise ValueError(f"--end {last} is before --start {first}")
    except (KeyError, ValueError) as exc:
        _fail(str(exc.args[0]) if exc.args else str(exc))
    if fmt not in ("csv", "json"):
        _fail(f"--format must be csv or json, not {fmt!r}")
    store = HDF5Store(DataLayout.at(data_dir).hdf5)
    frame = store.read_range(spec, first, last)
    if not all_fields:
        frame = frame.select([f for f in spec.fields if f not in _BOOKKEEPING_FIELDS])
    if frame.height == 0:
        typer.echo(f"note: no stored {spec.code} rows for {first}..{last} in {store.path(spec)}", err=True)
    text = _api_text(frame)
    if fmt == "csv":
        sys.stdout.write(text.write_csv())
    else:
        sys.stdout.write(text.write_ndjson())


@replay_app.command("serve")
def replay_serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind (0 picks a free one).")] = 8765,
) -> None:
    """Serve the bundled recording like the Insights API until interrupted."""
    from grid_guardian_assets.replay.server import ReplayServer

    server = ReplayServer(host, port)
    typer.echo(f"Insights API replay at {server.base_url} (FUELHH, INDO, ITSDO real 2016-2023; AGWS real 2018; "
               f"PN real 2021-06-30..07-10; FREQ/B1610/PN synthetic, 2018); NESO's Data Portal at {server.neso_base_url} (2018, 2021)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _logging(verbose: bool) -> None:
    import logging

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@stream_app.command("run")
def stream_run(
    max_seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: run until SIGTERM).")] = None,
    max_messages: Annotated[int | None, typer.Option(help="Stop after this many messages.")] = None,
    batch_size: Annotated[
        int, typer.Option(help="Most messages per batch (one Redis transaction, one offset commit); a batch never waits to fill.")
    ] = stream_defaults.BATCH_SIZE,
    keep_periods: Annotated[
        int, typer.Option(help="Scored periods kept for late refinement (B1610 lags ~5 days: 288+).")
    ] = stream_defaults.KEEP_PERIODS,
    group: Annotated[str, typer.Option(help="Kafka consumer group.")] = stream_defaults.GROUP_ID,
    network: Annotated[
        str, typer.Option(help=f"Grid model: gb29 or gb2224, must match the checkpoint (default: ${env.NETWORK.name} or {env.NETWORK.default}).")
    ] = "",
    models: Annotated[Path | None, typer.Option(help="Model store with the promoted checkpoint (default: DATA_DIR/models).")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus /metrics on this port.")] = None,
    metrics_addr: Annotated[str, typer.Option(help="Address the metrics server binds.")] = "127.0.0.1",
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (default: $GRID_GUARDIAN_DATA_DIR or ~/.grid_guardian).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each model swap and DLQ record.")] = False,
) -> None:
    """Score BMRS readings from Kafka ($KAFKA_BOOTSTRAP_SERVERS) into Redis ($REDIS_URL) until stopped."""
    import json

    from grid_guardian_assets.grid.branch_limits import BranchLimitsMissing
    from grid_guardian_assets.stream.job import InferenceJob, StreamConfig
    from grid_guardian_assets.stream.metrics import StreamMetrics

    _logging(verbose)
    layout = DataLayout.at(data_dir)
    grid = env.NETWORK.get(network)
    config = StreamConfig(
        branch_limits_file=layout.branch_limits(grid),
        detector_calibration_file=layout.detector_calibration,
        stores=layout.hdf5,
        group_id=group,
        network=grid,
        model_root=models or layout.models,
        batch_size=batch_size,
        keep_periods=keep_periods,
    )
    metrics = StreamMetrics()
    try:
        job = InferenceJob(config, metrics)
    except BranchLimitsMissing as exc:
        _fail(str(exc))
    if metrics_port:
        metrics.serve(metrics_port, metrics_addr)
    summary = job.run(max_seconds=max_seconds, max_messages=max_messages)
    typer.echo(json.dumps(summary.as_metadata()))


@stream_app.command("replay")
def stream_replay(
    start: Annotated[str, typer.Option(help="First settlement day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last settlement day (inclusive).")],
    datasets: Annotated[str, typer.Option(help="Comma-separated dataset codes.")] = "FUELHH,INDO,FREQ",
    speed: Annotated[str, typer.Option(help="max (as fast as possible), realtime, or a factor such as 60.")] = "max",
    data_dir: Annotated[Path | None, typer.Option(help="Data folder with the HDF5 stores.")] = None,
) -> None:
    """Publish stored HDF5 partitions to the BMRS topics in publication order (a backtest through the live path)."""
    from confluent_kafka import Producer

    from grid_guardian_assets.stream.kafka import KafkaSettings, ensure_topics
    from grid_guardian_assets.stream.producers import replay_store

    try:
        specs = [dataset_spec(code.strip()) for code in datasets.split(",") if code.strip()]
        first, last = parse_day(start), parse_day(end)
        factor = None if speed == "max" else 1.0 if speed == "realtime" else float(speed)
        if factor is not None and factor <= 0:
            raise ValueError(f"--speed must be positive, got {speed}")
    except (KeyError, ValueError) as exc:
        _fail(str(exc.args[0]) if exc.args else str(exc))
    settings = KafkaSettings.from_env()
    ensure_topics(settings)
    store = HDF5Store(DataLayout.at(data_dir).hdf5)
    summary = replay_store(store, Producer(settings.producer_config()), specs, first, last, speed=factor)
    if summary.records == 0:
        _fail(f"no stored rows of {datasets} for {first}..{last} in {store.root}")
    typer.echo(f"published {summary.records} records ({summary.first}..{summary.last}) in {summary.seconds:.1f} s")


@stream_app.command("poll")
def stream_poll(
    rounds: Annotated[int | None, typer.Option(help="Stop after this many rounds (default: poll until interrupted).")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between rounds.")] = 30.0,
    as_of: Annotated[str | None, typer.Option(help="Poll as if the time were this ISO 8601 UTC instant (replays).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (the published-keys table lives there).")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus /metrics (bmrs_api_requests_total) on this port.")] = None,
    metrics_addr: Annotated[str, typer.Option(help="Address the metrics server binds.")] = "127.0.0.1",
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Publish new FREQ, FUELHH and INDO records from the Insights API ($ELEXON_API_BASE_URL) every 30 s."""
    import datetime as dt

    from confluent_kafka import Producer

    from grid_guardian_assets.elexon.client import ElexonClient
    from grid_guardian_assets.stream.kafka import KafkaSettings, ensure_topics
    from grid_guardian_assets.stream.metrics import StreamMetrics
    from grid_guardian_assets.stream.producers import LivePoller, PublishedKeys

    _logging(verbose)
    clock = None
    if as_of:
        try:
            fixed = dt.datetime.fromisoformat(as_of.replace("Z", "+00:00"))
        except ValueError:
            _fail(f"--as-of {as_of!r} is not an ISO 8601 time")
        if fixed.tzinfo is None:
            _fail(f"--as-of {as_of!r} needs a time zone (e.g. a trailing Z)")
        offset = fixed - dt.datetime.now(dt.UTC)
        clock = lambda: dt.datetime.now(dt.UTC) + offset  # noqa: E731
    layout = DataLayout.at(data_dir)
    settings = KafkaSettings.from_env()
    ensure_topics(settings)
    client = ElexonClient(env.ELEXON_API_BASE_URL.get(), limiter_db=layout.elexon_rate_limit_db)
    keys = PublishedKeys(layout.live_poller_keys_db)
    metrics = StreamMetrics()
    if metrics_port:
        metrics.serve(metrics_port, metrics_addr)
    try:
        LivePoller(client, Producer(settings.producer_config()), keys, clock=clock, metrics=metrics, interval_s=interval).run(rounds)
    except KeyboardInterrupt:
        pass
    finally:
        keys.close()
        client.close()


@stream_app.command("broker")
def stream_broker(port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 9092) -> None:
    """Run the local Kafka-protocol broker (tansu, in memory) in the foreground, for the demo and development."""
    import time

    from grid_guardian_assets.dev.local_servers import LocalBroker

    with LocalBroker(port) as broker:
        typer.echo(f"tansu listening on {broker.bootstrap_servers} (in-memory: nothing survives a restart)", err=True)
        try:
            while broker.process and broker.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


@stream_app.command("alerts")
def stream_alerts(count: Annotated[int, typer.Option(help="How many of the newest alerts.")] = 20) -> None:
    """Print the newest alerts of the Redis stream ``alerts`` ($REDIS_URL), one JSON object per line."""
    import json

    import redis

    client = redis.Redis.from_url(env.REDIS_URL.get())
    for entry_id, fields in reversed(client.xrevrange("alerts", count=count)):
        typer.echo(json.dumps({"id": entry_id.decode(), **{k.decode(): v.decode() for k, v in fields.items()}}))


@app.command("demo")
def demo(
    start: Annotated[str, typer.Option(help="First settlement day of the week (bundled real 2018 data).")] = "2018-03-25",
    days: Annotated[int, typer.Option(help="How many settlement days get every dataset.")] = 7,
    epochs: Annotated[int, typer.Option(help="Training epochs of the verifier.")] = 3,
    verifier: Annotated[bool, typer.Option(help="Also build the benchmark and train the verifier.")] = True,
    self_play_rounds: Annotated[int, typer.Option(help="Self-play rounds after the verifier (0: none).")] = 1,
    live: Annotated[bool, typer.Option(help="Replay the week's last day with an incident through Kafka → GNN → Redis.")] = True,
    root: Annotated[Path, typer.Option(help="Folder for the demo's data and Dagster instance.")] = Path(".grid_guardian"),
    replay_url: Annotated[str | None, typer.Option(help="Use a running Insights API (replay) server instead of starting one.")] = None,
    dagster_yaml: Annotated[
        Path | None, typer.Option(help="Instance settings copied into the demo's new Dagster home (default: ./dagster.yaml when there is one).")
    ] = None,
) -> None:
    """Run the whole chain on bundled real data: BMRS chains, grid snapshots, benchmark, verifier, self-play, live path.

    The live stage uses $KAFKA_BOOTSTRAP_SERVERS and $REDIS_URL when they answer, else starts local servers.
    """
    from grid_guardian_assets.dev.demo import DemoPaths, DemoPlan, run_demo

    try:
        first = parse_day(start)
    except ValueError as exc:
        _fail(str(exc))
    if days < 1 or epochs < 1:
        _fail(f"--days and --epochs must be at least 1, got {days} and {epochs}")
    plan = DemoPlan.default(first, days)
    plan.epochs, plan.verifier, plan.self_play_rounds, plan.live = epochs, verifier, self_play_rounds, live
    if dagster_yaml is None and Path("dagster.yaml").is_file():
        dagster_yaml = Path("dagster.yaml")
    elif dagster_yaml is not None and not dagster_yaml.is_file():
        _fail(f"--dagster-yaml {dagster_yaml} is not a file")
    from grid_guardian_assets.dev.local_servers import LocalServerError

    try:
        ok = run_demo(plan, DemoPaths.under(root), replay_url=replay_url, dagster_yaml=dagster_yaml,
                      kafka_bootstrap=env.KAFKA_BOOTSTRAP_SERVERS.set_value(), redis_url=env.REDIS_URL.set_value())
    except LocalServerError as exc:  # e.g. no redis-server on a fresh machine: say what to install
        _fail(f"{exc} (or point REDIS_URL / KAFKA_BOOTSTRAP_SERVERS at running servers, or pass --no-live)")
    raise typer.Exit(code=0 if ok else 1)


if __name__ == "__main__":
    app()
