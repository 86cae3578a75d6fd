"""The end-to-end demo on bundled real data, into a persistent Dagster instance.

1. Every BMRS chain (fetch → validate → store) and the grid snapshots for a week.
2. The FUELHH, INDO, ITSDO, AGWS, NESO and FREQ chains and grid snapshots for the rest of the fit, threshold and
   held-out windows, then the branch limits and the detector calibration on the stored fit and threshold windows.
3. The frozen anomaly benchmarks (validation from the threshold window, then held-out) and a short training of the GNN
   verifier, gated against the 3-sigma rule on the held-out one.
4. Self-play rounds from the promoted checkpoint (promotion decided on the validation benchmark), and the scenario
   buffer.
5. The live path: the checkpoint sensor's run consumes the week's last day, replayed through Kafka with an incident
   in it (``demo_live``), and writes scores and alerts to Redis.

Where the demo writes and what it talks to are passed in (``DemoPaths``, the replay URL, the instance settings, the
broker and Redis); it sets no environment variable and finds no file through the package's location, so it runs the
same from a checkout, an installed wheel or a test. Only the network (``GRID_GUARDIAN_NETWORK``, default gb29) comes
from the environment, as for any run.
"""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from grid_guardian_assets.data_layout import DataLayout
from grid_guardian_assets.datasets import DATASETS
from grid_guardian_assets.definitions import defs
from grid_guardian_assets.defs.bmrs.partitions import bmrs_daily_partitions
from grid_guardian_assets.defs.instance_storage import settings_for_home
from grid_guardian_assets.defs.resources import resources_for, sqlite_tracking_uri
from grid_guardian_assets.replay.server import ReplayServer
from grid_guardian_assets.settlement import contiguous_spans, days_between
from grid_guardian_assets.store.hdf5 import HDF5Store
from grid_guardian_assets.store.snapshot_store import SnapshotStore
from grid_guardian_assets.verifier.benchmark_config import HELD_OUT, VALIDATION

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class DemoPaths:
    """The demo's data folder and Dagster instance, both under one root (``DemoPaths.under``)."""

    data_dir: Path
    dagster_home: Path

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_dir.resolve())

    @property
    def tracking_uri(self) -> str:
        """The MLflow store beside the instance: where ``dagster dev`` with this ``DAGSTER_HOME`` looks too."""
        return sqlite_tracking_uri(self.dagster_home / "mlflow.db")

    @classmethod
    def under(cls, root: Path) -> "DemoPaths":
        return cls(root / "data", root / "dagster_home")


@dataclass
class DemoPlan:
    """What the demo materialises. ``verifier`` False stops after the data plane and snapshots.

    ``fit``, ``threshold`` and ``held_out``: the windows of the learned assets (``grid_guardian_assets.windows``), first
    and last day each: the detectors and the verifier learn on ``fit`` and set thresholds and calibrate on ``threshold``,
    whose days the validation benchmark is cut from; the held-out benchmark is cut from ``held_out``. Each benchmark
    range must hold ``clean_days`` whole days.
    """

    week: list[dt.date]
    fit: tuple[dt.date, dt.date]
    threshold: tuple[dt.date, dt.date]
    held_out: tuple[dt.date, dt.date]
    epochs: int = 3
    calibration_days: int = 7
    # A small benchmark keeps the demo fast (the asset's defaults, 30 per type and 60 clean days, are for the real table).
    cases_per_type: int = 6
    clean_days: int = 7
    verifier: bool = True
    self_play_rounds: int = 1
    live: bool = True

    @classmethod
    def default(cls, start: dt.date, days: int) -> "DemoPlan":
        week = [start + dt.timedelta(days=i) for i in range(days)]
        # Three weeks before the week and the week: the first 13 days fit, the last 15 set thresholds and hold the
        # validation cases (they must give seven whole 48-period days: a spring clock-change day has 46, and the day
        # after it in 2018 lacks its last INDO); one held-out autumn week to test on. (2018-10-02 and 10-03 have periods
        # Elexon never published: the held-out week starts after them.)
        return cls(week, (week[0] - dt.timedelta(days=21), week[0] - dt.timedelta(days=9)),
                   (week[0] - dt.timedelta(days=8), week[-1]), (dt.date(2018, 10, 4), dt.date(2018, 10, 10)))

    def windows_config(self) -> dict[str, str]:
        """The learned assets' run config for the plan's windows (``defs.windows_config.WindowsConfig``)."""
        return {f"{name}_{end}": day.isoformat() for name, days in
                (("fit", self.fit), ("threshold", self.threshold), ("held_out", self.held_out))
                for end, day in zip(("start", "end"), days)}

    def grid_days(self) -> list[dt.date]:
        ranges = (self.fit, self.threshold, self.held_out) if self.verifier else ()
        wanted = {day for first_last in ranges for day in days_between(*first_last)}
        return sorted(wanted - set(self.week))


def _daily_assets() -> dg.AssetSelection:
    """The assets partitioned by settlement day (read from the definitions, so a new stage needs no list here)."""
    graph = defs.resolve_asset_graph()
    return dg.AssetSelection.assets(*(key for key in graph.get_all_asset_keys()
                                      if graph.get(key).partitions_def == bmrs_daily_partitions))


def _materialized(instance: dg.DagsterInstance, asset: str, result: dg.ExecuteInProcessResult) -> dict | None:
    """The metadata ``asset`` got from the run behind ``result``, or ``None`` when that run did not materialise it."""
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None or event.run_id != result.run_id:
        return None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _install_dagster_yaml(dagster_home: Path, dagster_yaml: Path | None) -> None:
    dagster_home.mkdir(parents=True, exist_ok=True)
    target = dagster_home / "dagster.yaml"
    if not target.exists() and dagster_yaml is not None:
        target.write_text(settings_for_home(dagster_yaml.read_text(), dagster_home))


def run_demo(
    plan: DemoPlan,
    paths: DemoPaths,
    *,
    replay_url: str | None = None,
    dagster_yaml: Path | None = None,
    kafka_bootstrap: str = "",
    redis_url: str = "",
    console: Console | None = None,
) -> bool:
    """Run the plan; returns whether every partition was stored and the verifier trained (gate passed or not).

    ``replay_url``: a running Insights API (replay) server, else one is started. ``dagster_yaml``: instance settings
    copied into a new Dagster home. ``kafka_bootstrap`` and ``redis_url``: servers for the live stage, used when they
    answer (else the demo starts local ones; see ``demo_live.live_servers``).
    """
    console = console or Console()
    _install_dagster_yaml(paths.dagster_home, dagster_yaml)
    server = None
    if replay_url is None:
        server = ReplayServer().start()
        replay_url = server.base_url
        console.print(f"Started the Insights API replay server at [bold]{replay_url}[/]")
    resources = resources_for(replay_url, paths.layout.root, tracking_uri=paths.tracking_uri)

    all_partitioned = _daily_assets()
    # The snapshots' inputs, and the real datasets the detectors are fitted on (B1610 is left to the week: 48
    # requests a day).
    grid_inputs = dg.AssetSelection.assets("grid_snapshots", "itsdo_store", "agws_store", "neso_demand_store").upstream() & all_partitioned
    outcomes: dict[dt.date, bool] = {}
    verifier_meta: dict[str, object] = {}
    verifier_ok = True
    self_play: list[dict] = []
    live = None
    try:
        with dg.DagsterInstance.from_config(str(paths.dagster_home.resolve())) as instance, Progress(console=console) as progress:

            def materialize(
                selection, partition: str | None = None, run_config: dict | None = None, tags: dict | None = None
            ) -> dg.ExecuteInProcessResult:
                return dg.materialize(
                    list(defs.assets), selection=selection, partition_key=partition, instance=instance,
                    resources=resources, raise_on_error=False, tags={"grid_guardian/demo": "true", **(tags or {})},
                    # The progress bar and the summary say what happened; the UI keeps the full event log.
                    run_config={**QUIET, **(run_config or {})},
                )

            def materialize_days(selection: dg.AssetSelection, days: list[dt.date], task) -> None:
                """One ranged run per span of adjacent days (as a backfill runs); a day succeeded when every
                selected asset was materialised for it."""
                wanted = selection.resolve(defs.resolve_asset_graph())
                for span in contiguous_spans(days):
                    result = materialize(selection, tags={ASSET_PARTITION_RANGE_START_TAG: span[0].isoformat(),
                                                          ASSET_PARTITION_RANGE_END_TAG: span[-1].isoformat()})
                    done: dict[str, set[dg.AssetKey]] = {}
                    for event in result.get_asset_materialization_events():
                        done.setdefault(event.partition, set()).add(event.asset_key)
                    for day in span:
                        outcomes[day] = done.get(day.isoformat(), set()) >= wanted
                    progress.advance(task, len(span))

            topology_ok = materialize(["grid_topology"]).success
            task = progress.add_task("BMRS partitions (all datasets) and grid snapshots", total=len(plan.week))
            materialize_days(all_partitioned, plan.week, task)
            grid_days = plan.grid_days()
            task = progress.add_task("FUELHH, INDO, ITSDO, AGWS, NESO, FREQ and snapshots for the fit, threshold and "
                                     "held-out windows", total=len(grid_days))
            materialize_days(grid_inputs, grid_days, task)
            windows = plan.windows_config()
            # The line-overload limits self-play and the live path read, measured on the fit and threshold windows.
            limits_ok = materialize(["branch_limits"], run_config={"ops": {"branch_limits": {"config": windows}}}).success
            if not limits_ok:
                console.print("[red]branch_limits failed[/]: self-play and the live path cannot run without it (see the run in the UI)")
            # The redundancy checks and per-fuel data-quality detectors the live path runs beside the model and rules.
            if not materialize(["detector_calibration"], run_config={"ops": {"detector_calibration": {"config": windows}}}).success:
                console.print("[yellow]detector_calibration failed[/]: the live path runs without the redundancy and data-quality checks")
            if plan.verifier:
                task = progress.add_task("Anomaly benchmarks (validation, held-out) and GNN verifier training", total=1)

                def benchmark_config(split: str) -> dict:
                    return {"config": {"split": split, **windows, "cases_per_type": plan.cases_per_type,
                                       "clean_days": plan.clean_days}}

                # The validation split first: its own run, as one run materialises an asset once. Self-play decides on it.
                validation_ok = materialize(["anomaly_benchmark"],
                                            run_config={"ops": {"anomaly_benchmark": benchmark_config(VALIDATION)}}).success
                if not validation_ok:
                    console.print("[red]anomaly_benchmark (validation) failed[/]: self-play cannot decide without it")
                config = {
                    "ops": {
                        "anomaly_benchmark": benchmark_config(HELD_OUT),
                        "gnn_verifier": {"config": {**windows, "epochs": plan.epochs, "calibration_days": plan.calibration_days}},
                    }
                }
                result = materialize(["anomaly_benchmark", "gnn_verifier"], run_config=config)
                verifier_meta = _materialized(instance, "gnn_verifier", result) or {}
                verifier_ok = validation_ok and bool(verifier_meta)  # trained; the gate may still say no
                progress.advance(task)
            if plan.verifier and plan.self_play_rounds and verifier_meta.get("promoted"):
                task = progress.add_task("Self-play rounds", total=plan.self_play_rounds)
                config = {"ops": {"self_play_round": {"config": {"proposals": 16, "attempts": 4, "solver_steps": 10}}}}
                for number in range(1, plan.self_play_rounds + 1):
                    result = materialize(["self_play_round"], f"round-{number:04d}", run_config=config)
                    meta = _materialized(instance, "self_play_round", result) if result.success else None
                    if meta is None:
                        verifier_ok = False
                        break
                    self_play.append(meta)
                    progress.advance(task)
                materialize(["scenario_buffer"])
            if plan.live:
                from grid_guardian_assets.dev.demo_live import live_servers, run_live_stage

                task = progress.add_task(f"Live path: replay {plan.week[-1]} with an incident through Kafka → GNN → Redis", total=None)
                with live_servers(paths.data_dir.parent, console, kafka_bootstrap, redis_url) as servers:
                    live_resources = resources_for(replay_url, paths.layout.root, tracking_uri=paths.tracking_uri,
                                                   kafka_bootstrap=servers.bootstrap_servers, redis_url=servers.redis_url)
                    live = run_live_stage(instance, live_resources, HDF5Store(paths.layout.hdf5), plan.week[-1], servers, QUIET)
                progress.update(task, total=1, completed=1)
    finally:
        if server is not None:
            server.stop()

    _print_summary(console, plan, paths, outcomes, verifier_meta, resources["grid"].network)
    _print_self_play(console, self_play)
    if live is not None:
        _print_live(console, live)
    return topology_ok and limits_ok and all(outcomes.values()) and verifier_ok and (live is None or live.run_ok)


def _print_self_play(console: Console, rounds: list[dict]) -> None:
    for meta in rounds:
        console.print(
            f"\n[bold]Self-play[/] proposed {meta['proposed']}, accepted {meta['accepted']} (rejected: {meta['rejected_by_reason']}), "
            f"solve rate {meta['solve_rate']:.2f}, mean proposer reward {meta['mean_proposer_reward']:.3f}; validation F1 "
            f"{meta['f1_validation_before']:.3f} → candidate {meta['f1_validation_candidate']:.3f} → "
            + ("[green]promoted[/]" if meta["promoted"] else "kept the previous solver")
            + f"; held-out F1 {meta['f1_held_out_carried']:.3f} (3-sigma {meta['f1_held_out_three_sigma']:.3f}); "
            f"buffer {meta['buffer_size']} scenarios",
            soft_wrap=True,
        )


def _print_live(console: Console, live) -> None:
    by_source: dict[str, int] = {}
    for alert in live.alerts:
        by_source[alert["source"]] = by_source.get(alert["source"], 0) + 1
    console.print(
        f"\n[bold]Live path[/] sensor: {live.sensor}; run {live.run_id} "
        + ("[green]succeeded[/]" if live.run_ok else "[red]failed[/]")
        + f"; {live.published} records replayed; incident (1,000 MW nuclear trip) at {live.trip:%Y-%m-%d %H:%M} UTC; "
        f"alerts in Redis for the day: {len(live.alerts)} {by_source}",
        soft_wrap=True,
    )
    first, last = live.trip.strftime("%Y-%m-%dT%H"), (live.trip + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    window = [a for a in live.alerts if first <= a["time"] <= last]
    console.print("Alerts around the incident (Redis stream `alerts`): time, node, source, score, model version, Kafka origin")
    for alert in sorted(window, key=lambda a: (a["time"], a["node"]))[:20]:
        console.print(
            f"  {alert['time']}  {alert['node']:<10} {alert['source']:<22} {alert['score']:>8}  {alert['model_version']}  "
            f"{alert['kafka_topic']}/{alert['kafka_partition']}@{alert['kafka_offset']}",
            soft_wrap=True,
        )
    url = live.servers.redis_url
    console.print(
        "[bold]Redis[/] "
        f"(REDIS_URL={url}{'; stopped now, restart it with the same --dir to read them' if 'LocalRedis' in live.servers.started else ''}):\n"
        f"  REDIS_URL={url} .venv/bin/grid-guardian stream alerts --count 20\n"
        f"  redis-cli -u {url} XRANGE alerts - + COUNT 10 ;  HGETALL anomaly:system ;  ZREVRANGE anomaly:timeline 0 9 WITHSCORES",
        soft_wrap=True,
    )


def _print_summary(console: Console, plan: DemoPlan, paths: DemoPaths, outcomes: dict, verifier_meta: dict, network: str) -> None:
    layout = paths.layout
    store, snapshots = HDF5Store(layout.hdf5), SnapshotStore(layout.hdf5)
    table = Table(title=f"Stored rows per settlement day of the week ({layout.hdf5})")
    for name in ("day", *(s.code for s in DATASETS.values()), "snapshots", "run"):
        table.add_column(name, justify="left" if name == "day" else "right")
    for day in plan.week:
        counts = [str(store.read_range(spec, day, day).height) for spec in DATASETS.values()]
        built = snapshots.read_range(network, day, day)
        table.add_row(day.isoformat(), *counts, str(len(built[0].periods)) if built else "0", "ok" if outcomes[day] else "[red]failed[/]")
    console.print(table)
    others = [d for d in outcomes if d not in plan.week]
    if others:
        failed = [d.isoformat() for d in others if not outcomes[d]]
        console.print(f"Grid snapshots for {len(others) - len(failed)} more days" + (f"; [red]failed: {', '.join(failed)}[/]" if failed else ""))
    if verifier_meta:
        console.print(
            f"\n[bold]GNN verifier[/] checkpoint {verifier_meta['checkpoint']} (trained {verifier_meta['train_days']}, "
            f"calibrated {verifier_meta['calibration_days']}): event-wise F1 on benchmark {verifier_meta['benchmark_version']}: "
            f"GNN {verifier_meta['f1_gnn']:.3f} (95 % interval {verifier_meta['f1_gnn_lo']:.3f}–{verifier_meta['f1_gnn_hi']:.3f}), "
            f"per-bus GRU {verifier_meta['f1_gru']:.3f}, 3-sigma {verifier_meta['f1_three_sigma']:.3f}; {verifier_meta['gate']} → "
            + ("[green]promoted[/]" if verifier_meta["promoted"] else "[yellow]not promoted (verifier_quality failed)[/]"),
            soft_wrap=True,
        )
    env = (
        f"DAGSTER_HOME={paths.dagster_home.resolve()} GRID_GUARDIAN_DATA_DIR={paths.layout.root} "
        "ELEXON_API_BASE_URL=http://127.0.0.1:8765/bmrs/api/v1"
    )
    console.print(
        "\n[bold]Where to look[/]\n"
        f"  Dagster UI:   .venv/bin/grid-guardian replay serve --port 8765 &  then\n"
        f"                {env} .venv/bin/dagster dev -w workspace.yaml\n"
        "                open http://127.0.0.1:3000 → Assets: groups bmrs_*, grid, verifier, self_play (lineage, checks, plots,\n"
        "                maps, F1 tables), live (topics → live_anomaly_scores → redis_alerts: the live run's progress and\n"
        "                summary); Jobs: live_inference; Automation: promoted_checkpoint_sensor, learned_refresh_sensor\n"
        f"  MLflow UI:    .venv/bin/mlflow ui --backend-store-uri {paths.tracking_uri}\n"
        f"  Stored data:  GRID_GUARDIAN_DATA_DIR={paths.layout.root} .venv/bin/grid-guardian store read fuelhh "
        f"--start {plan.week[0]} --end {plan.week[0]} --format csv\n"
        f"  Checkpoints:  {layout.models}\n"
        f"  Raw archive:  {layout.raw}",
        soft_wrap=True,
    )

