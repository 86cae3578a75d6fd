"""``anomaly_benchmark`` (frozen, versioned cases) and ``gnn_verifier`` (train, evaluate, gate, promote)."""

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import polars as pl
from pydantic import Field

from grid_guardian_assets.data_layout import DataLayout
from grid_guardian_assets.defs.domain_config import from_domain, to_domain
from grid_guardian_assets.defs.mlflow_run import closing_mlflow_run
from grid_guardian_assets.defs.refresh.conditions import WEEKLY_REFRESH
from grid_guardian_assets.defs.resources import BmrsStorageResource, GridResource
from grid_guardian_assets.defs.windows_config import TIMELY_INPUTS, WindowsConfig, require_snapshots, stored_deps
from grid_guardian_assets.reporting import markdown_table
from grid_guardian_assets.verifier.benchmark_config import (
    DEFAULT_GATE_MARGIN,
    HELD_OUT,
    SPLITS,
    TARGET_F1,
    TARGET_FALSE_ALERTS_PER_CLEAN_DAY,
    TARGET_TYPE_F1,
    BenchmarkSpec,
)
from grid_guardian_assets.verifier.train_config import (
    DEFAULT_ALERTS_PER_DAY,
    DEFAULT_CALIBRATION_DAYS,
    DEFAULT_FALSE_ALARM_RATE,
    TrainConfig,
)

if TYPE_CHECKING:
    from grid_guardian_assets.detect.calibration import DetectorCalibration
    from grid_guardian_assets.detect.measurements import StoredMeasurements
    from grid_guardian_assets.verifier.anomalies import Benchmark
    from grid_guardian_assets.windows import DayWindow, Windows

# The verifier domain (torch, PyG; h5py too) is imported inside the asset bodies: see definitions.py. Its config
# (train_config, benchmark_config) is plain dataclasses, imported here.

QUALITY_CHECK = "verifier_quality"
# The detectors gnn_verifier scores, by the name they carry, and the suffix of their metrics (f1_gnn, ...).
METRIC_SUFFIX = {"rules": "rules", "GNN verifier": "gnn", "rules + GNN verifier": "combined", "per-bus GRU": "gru",
                 "3-sigma": "three_sigma"}
# The gate's candidate and baseline. The gate decides whether this run's checkpoint is promoted, so it judges the
# checkpoint's own detector: the rules do not change with the checkpoint, and judging the combination alone would let
# them carry a model that regressed. It also asks that the combination (what the live job runs, COMBINED) score at
# least the rules alone: a model that adds more false alerts than detections is not promoted. The combination is
# reported against the benchmark's targets beside it (``benchmark_config.TARGET_*``; the ``target_*`` metadata).
GATE_CANDIDATE, GATE_BASELINE = "GNN verifier", "3-sigma"
COMBINED = "rules + GNN verifier"

# The fields of BenchmarkConfig that anomaly_benchmark uses itself (the split and the windows); the others make up its
# BenchmarkSpec.
BENCHMARK_RUN_FIELDS = frozenset({"split", *WindowsConfig.model_fields})


class BenchmarkConfig(WindowsConfig):
    """Which split the benchmark is cut from (``validation``: the threshold window's days; ``held_out``: the held-out
    window's), the windows, and its size and seed (``BenchmarkSpec``: defaults and meanings from there)."""

    split: str = Field(default=HELD_OUT, description=f"{' or '.join(SPLITS)}: validation cases (the threshold window) tune, "
                       "held-out cases (the held-out window) are scored only for the final table and the gate. Each "
                       "split has its own current benchmark.")
    seed: int = from_domain(BenchmarkSpec, "seed")
    cases_per_type: int = from_domain(BenchmarkSpec, "cases_per_type")
    clean_days: int = from_domain(BenchmarkSpec, "clean_days")
    length: int = from_domain(BenchmarkSpec, "length")
    lead_in: int = from_domain(BenchmarkSpec, "lead_in")

    def spec(self) -> BenchmarkSpec:
        return to_domain(BenchmarkSpec, self, run_fields=BENCHMARK_RUN_FIELDS)

    def window(self, windows: "Windows") -> "DayWindow":
        """The days to cut cases from.

        Raises:
            dagster.Failure: ``split`` is not one of ``SPLITS``.
        """
        if self.split not in SPLITS:
            raise dg.Failure(description=f"unknown benchmark split {self.split!r}; known: {', '.join(SPLITS)}")
        return windows.held_out if self.split == HELD_OUT else windows.threshold


# The fields of VerifierConfig that gnn_verifier uses itself; the others make up its TrainConfig.
VERIFIER_RUN_FIELDS = frozenset({"calibration_days", "false_alarm_rate", "alerts_per_day", "device", "gate_margin",
                                 *WindowsConfig.model_fields})


class VerifierConfig(WindowsConfig):
    """Training range (the fit and threshold windows; their last ``calibration_days`` calibrate), calibration, device,
    and the hyper-parameters of ``TrainConfig`` (defaults and meanings from there)."""

    calibration_days: int = Field(default=DEFAULT_CALIBRATION_DAYS,
                                  description="Last days of the range, held out to calibrate: never trained on.")
    false_alarm_rate: float = Field(default=DEFAULT_FALSE_ALARM_RATE,
                                    description="First step of calibration: each bus's threshold is set to this alarm "
                                                "rate per settlement period on the calibration days.")
    alerts_per_day: float = Field(default=DEFAULT_ALERTS_PER_DAY, description=(
        "Then every threshold is raised by one factor until the calibration days' periods alarm (any bus or the "
        "balance head) about this often per day; 0 or less keeps the per-bus thresholds."))
    device: str = Field(default="auto", description="auto (CUDA when present, else the CPU), cpu or cuda[:N].")
    gate_margin: float = Field(default=DEFAULT_GATE_MARGIN, description=(
        "Promotion gate: the lower end of the verifier's 95 % bootstrap interval of event-wise F1 on the held-out "
        "benchmark must be at least the 3-sigma rule's F1 plus this margin (benchmark_config.DEFAULT_GATE_MARGIN: 0.25)."))
    warmup: int = from_domain(TrainConfig, "warmup")
    chunk_periods: int = from_domain(TrainConfig, "chunk_periods")
    batch_chunks: int = from_domain(TrainConfig, "batch_chunks")
    max_batch_buses: int = from_domain(TrainConfig, "max_batch_buses")
    hidden_channels: int = from_domain(TrainConfig, "hidden_channels")
    heads: int = from_domain(TrainConfig, "heads")
    epochs: int = from_domain(TrainConfig, "epochs")
    learning_rate: float = from_domain(TrainConfig, "learning_rate")
    balance_weight: float = from_domain(TrainConfig, "balance_weight")
    loading_weight: float = from_domain(TrainConfig, "loading_weight")
    seed: int = from_domain(TrainConfig, "seed")

    def train_config(self) -> TrainConfig:
        return to_domain(TrainConfig, self, run_fields=VERIFIER_RUN_FIELDS)


def current_benchmark(layout: DataLayout, network: str, split: str) -> "Benchmark":
    """The benchmark ``anomaly_benchmark`` last cut for ``network`` and ``split`` (its pointer file names it).

    Raises:
        dagster.Failure: no benchmark of that split is current; the message names the missing pointer file and the
            run config of ``anomaly_benchmark`` that writes it.
    """
    from grid_guardian_assets.verifier.anomalies import Benchmark

    pointer = layout.benchmark_pointer(network, split)
    if not pointer.exists():
        raise dg.Failure(description=f"no {split} anomaly_benchmark for {network}: {pointer} is missing; materialise "
                         f"anomaly_benchmark with run config split: {split}")
    return Benchmark.load(Path(json.loads(pointer.read_text())["path"]))


@dg.asset(
    automation_condition=WEEKLY_REFRESH,
    group_name="verifier",
    deps=["grid_snapshots", "detector_calibration", *stored_deps(*TIMELY_INPUTS)],
    kinds={"numpy"},
    description="Windows of stored snapshots of one split (the held-out window by default, or the threshold window as the "
    "validation split; windows are run config, relative to the newest stored day by default) with injected, labelled "
    "anomalies of every type, each kept as the live job would observe it (the national readings the injected buses add "
    "up to, spread over the buses again, beside the stored ITSDO and AGWS of the same periods), and clean whole days, "
    "from a fixed seed; the periods whose stored data is known to be bad (gross disagreement of two independent "
    "measurements, drop-outs, missing FUELHH rows) are marked, and alarms there are not false alerts; saved as a "
    "versioned .npz so every checkpoint is measured on the same cases.",
)
def anomaly_benchmark(context: dg.AssetExecutionContext, config: BenchmarkConfig, grid: GridResource,
                      bmrs_storage: BmrsStorageResource) -> dg.MaterializeResult:
    from grid_guardian_assets.detect.calibration import known_bad_periods
    from grid_guardian_assets.detect.measurements import StoredMeasurements
    from grid_guardian_assets.store.snapshot_store import SnapshotStore
    from grid_guardian_assets.verifier.anomalies import ANOMALY_TYPES, build_benchmark, frequency_excursions
    from grid_guardian_assets.verifier.pipeline import contiguous_sequences

    network = grid.load()
    windows = config.resolve(bmrs_storage)
    window = config.window(windows)
    snapshots = SnapshotStore(bmrs_storage.layout.hdf5)
    require_snapshots(window, snapshots, network.name, what=f"anomaly_benchmark's {config.split} window")
    days = snapshots.read_range(network.name, window.first, window.last)
    spec = config.spec()
    measurements = StoredMeasurements(bmrs_storage.hdf5_store())
    detectors, detectors_source = _detector_calibration(context, bmrs_storage, measurements, windows)
    known_bad = known_bad_periods(detectors, measurements.table(window.days(), b1610_days=()), measurements)
    try:
        bench = build_benchmark(contiguous_sequences(days), network, spec, known_bad, measurements)
    except ValueError as exc:
        raise dg.Failure(description=f"anomaly_benchmark ({config.split}, {window.describe()}): {exc}") from None
    path = bench.save(bmrs_storage.layout.benchmarks)
    pointer = bmrs_storage.layout.benchmark_pointer(network.name, config.split)
    pointer.write_text(json.dumps({"version": bench.version, "path": str(path)}))
    counts = {kind: sum(1 for label in bench.labels if label and label.kind == kind) for kind in ANOMALY_TYPES}
    # Periods whose recorded frequency left the operational band, marked with the known bad (None: snapshots stored
    # before their FREQ extremes were kept).
    excursions = (None if bench.untouched_frequency_extreme is None
                  else int(frequency_excursions(bench.untouched_frequency_extreme).sum()))
    return dg.MaterializeResult(
        metadata={
            "version": bench.version,
            "split": config.split,
            "file": dg.MetadataValue.path(str(path)),
            "cases": len(bench.labels),
            "clean_days": sum(1 for label in bench.labels if label is None),
            "cases_by_type": dg.MetadataValue.json(counts),
            "window": window.describe(),
            "windows": dg.MetadataValue.json(windows.describe()),
            # What the cases' readings and the known-bad marks come from; a dataset not stored is left out of both.
            "stored_days_by_dataset": dg.MetadataValue.json(measurements.datasets_stored(window.days())),
            "days": f"{days[0].day}..{days[-1].day} ({len(days)} whole days stored; days with a recorded gap left out)",
            "known_bad_periods": dg.MetadataValue.json({
                "in_split": len(known_bad), "marked_in_cases": int(bench.known_bad.sum()),
                "share_of_case_periods": round(float(bench.known_bad.mean()), 4),
                "frequency_excursions_marked": excursions,
                "detector_calibration": detectors_source}),
            "spec": dg.MetadataValue.json(spec.to_dict()),
        },
        data_version=dg.DataVersion(bench.version),
    )


@dg.asset(
    automation_condition=WEEKLY_REFRESH,
    group_name="verifier",
    deps=["grid_snapshots", anomaly_benchmark, "detector_calibration", *stored_deps(*TIMELY_INPUTS)],
    # dagster-mlflow's resource is a legacy (non-Pythonic) one, so every resource comes through the context.
    required_resource_keys={"mlflow", "grid", "bmrs_storage", "model_store"},
    kinds={"pytorch", "mlflow"},
    check_specs=[
        dg.AssetCheckSpec(
            QUALITY_CHECK,
            asset="gnn_verifier",
            blocking=True,
            description="the lower end of the checkpoint's 95 % bootstrap interval of event-wise F1 on the held-out benchmark "
            "is at least the 3-sigma rule's F1 plus gate_margin, and the live job's detector with it (rules + GNN "
            "verifier) scores at least the rules alone; only then is it promoted",
        )
    ],
    description="A TGCN + GAT verifier trained on grid_snapshots, calibrated to a stated daily alert budget, measured "
    "on the frozen held-out benchmark beside the live job's rules alone (detector_calibration's redundancy and "
    "data-quality checks, and the physics rules), the rules and the verifier combined, and the per-bus GRU and 3-sigma "
    "baselines (F1, false alerts per clean day and detection delay, with case-bootstrap 95 % intervals), saved as a "
    "versioned checkpoint. The gate compares the verifier's interval's lower end, not the point estimate, with the "
    "3-sigma rule's F1, and asks that the rules with the verifier score at least the rules alone; the combination "
    "is reported against the benchmark's targets (benchmark_config.TARGET_*). The cases are as the live job would "
    "see them (national readings spread over buses, no bus-level detail: see anomaly_benchmark).",
)
def gnn_verifier(context: dg.AssetExecutionContext, config: VerifierConfig):
    from grid_guardian_assets.detect.measurements import StoredMeasurements
    from grid_guardian_assets.grid.branch_limits import LoadingHistory
    from grid_guardian_assets.store.snapshot_store import SnapshotStore
    from grid_guardian_assets.verifier.bootstrap import gate, issue_targets, summary_table
    from grid_guardian_assets.verifier.pipeline import benchmark_outcomes, benchmark_table, save_checkpoint, train_verifier
    from grid_guardian_assets.verifier.rule_detectors import RulesDetector
    from grid_guardian_assets.verifier.train import pick_device

    mlflow = context.resources.mlflow
    grid: GridResource = context.resources.grid
    bmrs_storage: BmrsStorageResource = context.resources.bmrs_storage
    store = context.resources.model_store.store()
    with closing_mlflow_run(mlflow) as run_id:
        network = grid.load()
        windows = config.resolve(bmrs_storage)
        snapshots = SnapshotStore(bmrs_storage.layout.hdf5)
        require_snapshots(windows.training, snapshots, network.name, what="gnn_verifier's training window (fit and threshold)")
        days = snapshots.read_range(network.name, windows.training.first, windows.training.last)
        # Nothing here chooses from the benchmark: epochs are fixed, thresholds come from the calibration days. The
        # held-out benchmark is the reported table and the gate's comparison.
        benchmark = current_benchmark(bmrs_storage.layout, network.name, HELD_OUT)
        train_config = config.train_config()
        device = pick_device(config.device)
        mlflow.log_params(
            {
                **train_config.to_dict(),
                "network": network.name,
                "device": str(device),
                "train_start": windows.training.first.isoformat(),
                "train_end": windows.training.last.isoformat(),
                "benchmark_version": benchmark.version,
                "false_alarm_rate": config.false_alarm_rate,
                "alerts_per_day": config.alerts_per_day,
            }
        )

        def on_epoch(epoch: int, loss: float, seconds: float) -> None:
            context.log.info(f"epoch {epoch + 1}/{config.epochs}: loss {loss:.4f} ({seconds:.1f} s)")
            mlflow.log_metrics({"loss": loss, "epoch_seconds": seconds}, step=epoch)

        try:
            trained = train_verifier(
                network,
                days,
                train_config,
                calibration_days=config.calibration_days,
                false_alarm_rate=config.false_alarm_rate,
                alerts_per_day=config.alerts_per_day if config.alerts_per_day > 0 else None,
                device=device,
                on_epoch=on_epoch,
            )
        except ValueError as exc:
            raise dg.Failure(description=f"gnn_verifier: {exc}") from None
        measurements = StoredMeasurements(bmrs_storage.hdf5_store())
        detectors, detectors_source = _detector_calibration(context, bmrs_storage, measurements, windows)
        # The rules' line limits are measured as the branch_limits asset measures them, but on the training range's
        # snapshots: the stored file covers every stored day, held-out ones included, which the benchmark must not see.
        limits = LoadingHistory.of(days, network.n_branches).limits()
        scored = benchmark_outcomes(trained, network, benchmark, detectors, limits, measurements)
        table = benchmark_table(scored)
        summary = summary_table({name: run.outcomes for name, run in scored.items()})
        decision = gate(summary, GATE_CANDIDATE, GATE_BASELINE, config.gate_margin, combined=COMBINED, rules=RulesDetector.name)
        targets = issue_targets(summary, COMBINED, GATE_BASELINE, config.gate_margin)
        metrics = {**_summary_metrics(summary), "final_loss": trained.losses[-1]}
        checkpoint = save_checkpoint(store, trained, network, {**metrics, "table": table.to_dicts(), "summary": summary.to_dicts()},
                                     benchmark.version)
        mlflow.log_metrics(metrics)
        mlflow.log_metrics({f"target_{key}": float(value) for key, value in targets.items() if isinstance(value, bool)})
        with tempfile.TemporaryDirectory() as tmp:
            table_path = Path(tmp) / "benchmark_f1_by_type.csv"
            table.write_csv(table_path)
            mlflow.log_artifact(str(table_path))
        for name in ("model.pt", "meta.json"):
            mlflow.log_artifact(str(store.root / checkpoint.version / name), artifact_path="checkpoint")
        mlflow.set_tag("checkpoint_version", checkpoint.version)
    passed = decision.passed
    if passed:
        store.promote(checkpoint.version)
    overall = summary.select("detector", "f1", "f1_lo", "f1_hi", "false_alerts_per_clean_day", "false_alerts_lo", "false_alerts_hi",
                             "mean_delay_min", "median_delay_min", "p90_delay_min")
    yield dg.MaterializeResult(
        metadata={
            "checkpoint": checkpoint.version,
            "promoted": passed,
            "device": str(device),
            "windows": dg.MetadataValue.json(windows.describe()),
            "train_days": f"{trained.train_days[0]}..{trained.train_days[1]}",
            "calibration_days": f"{trained.calibration_days[0]}..{trained.calibration_days[1]}",
            "false_alarm_rate": config.false_alarm_rate,
            "losses": dg.MetadataValue.json([round(loss, 5) for loss in trained.losses]),
            "epoch_seconds": dg.MetadataValue.json([round(s, 2) for s in trained.epoch_seconds]),
            "f1_by_type": dg.MetadataValue.md(markdown_table(table, limit=table.height)),
            "benchmark_summary": dg.MetadataValue.md(markdown_table(summary, limit=summary.height)),
            "ablation": dg.MetadataValue.md(markdown_table(overall, limit=overall.height)),
            "detector_calibration": detectors_source,
            "line_limits": f"measured on the training range's snapshots ({trained.train_days[0]}..{trained.calibration_days[1]})",
            **_target_metadata(targets),
            "gate": decision.describe(),
            "benchmark_version": benchmark.version,
            "mlflow_run_id": run_id,
            **metrics,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=QUALITY_CHECK,
                passed=passed,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "gate": decision.describe(),
                    "candidate_f1_lo": decision.candidate_f1_lo,
                    "baseline_f1": decision.baseline_f1,
                    "margin": decision.margin,
                    "combined_f1": decision.combined_f1,
                    "rules_f1": decision.rules_f1,
                    "overall": dg.MetadataValue.md(markdown_table(overall)),
                    "promoted": passed,
                    "checkpoint": checkpoint.version,
                },
            )
        ],
    )


def _detector_calibration(context: dg.AssetExecutionContext, storage: BmrsStorageResource,
                          measurements: "StoredMeasurements", windows: "Windows") -> tuple["DetectorCalibration", str]:
    """The detectors the ``detector_calibration`` asset stored, or, when it has not been materialised, the same fit on
    the same windows made here, and a line saying which.

    Fitting here rather than failing: the rules are a column of the benchmark table, not what this asset trains or
    promotes, and the fit is what the asset stores for these windows (a few seconds), so a missing file changes no
    figure; the metadata and the log say it happened.
    """
    from grid_guardian_assets.detect.calibration import DetectorCalibration, fit_detectors

    path = storage.layout.detector_calibration
    if path.exists():
        return DetectorCalibration.load(path), f"loaded from {path}"
    context.log.warning(f"no detector calibration at {path}: fitting it here on {windows.fit.describe()} and "
                        f"{windows.threshold.describe()}, as the detector_calibration asset would (materialise it to "
                        "store it for the live job)")
    try:
        fitted = fit_detectors(measurements, windows)
    except ValueError as exc:
        raise dg.Failure(description=f"no detector_calibration, and none can be fitted here: {exc}") from None
    return fitted, "fitted in this run on the same windows (detector_calibration not materialised)"


def _target_metadata(targets: dict[str, object]) -> dict[str, object]:
    """The benchmark's targets for the combination as ``target_*`` metadata entries (``verifier.bootstrap.issue_targets``)."""
    values = {f"target_{key}": value for key, value in targets.items() if value is not None}
    rows = pl.DataFrame(
        [
            ("overall F1", targets["f1"], f">= {TARGET_F1}", targets["f1_met"]),
            ("F1 95 % interval, lower end", targets["f1_lo"], f">= {targets['f1_lo_goal']} (3-sigma F1 + margin)",
             targets["f1_lo_met"]),
            (f"weakest type ({targets['weakest_type']}) F1", targets["min_type_f1"], f">= {TARGET_TYPE_F1}",
             targets["every_type_met"]),
            ("false alerts per clean day", targets["false_alerts_per_clean_day"], f"<= {TARGET_FALSE_ALERTS_PER_CLEAN_DAY}",
             targets["false_alerts_met"]),
        ],
        schema={"target": pl.Utf8, "value": pl.Float64, "goal": pl.Utf8, "met": pl.Boolean},
        orient="row",
    )
    heading = f"{COMBINED} against the benchmark's targets (benchmark_config):"
    return {**values, "targets": dg.MetadataValue.md(f"{heading}\n\n{markdown_table(rows, limit=rows.height)}")}


def _summary_metrics(summary: pl.DataFrame) -> dict[str, float]:
    """Flat metrics from a bootstrap summary for MLflow and the asset metadata: ``f1_gnn``, ``f1_gnn_lo``,
    ``false_alerts_per_clean_day_gnn``, ``median_delay_min_gnn``, ... (an undefined statistic is left out)."""
    names = {"f1": "f1_{}", "f1_lo": "f1_{}_lo", "f1_hi": "f1_{}_hi", "false_alerts_per_clean_day": "false_alerts_per_clean_day_{}",
             "false_alerts_lo": "false_alerts_per_clean_day_{}_lo", "false_alerts_hi": "false_alerts_per_clean_day_{}_hi",
             "median_delay_min": "median_delay_min_{}", "p90_delay_min": "p90_delay_min_{}", "mean_delay_min": "mean_delay_min_{}"}
    return {name.format(METRIC_SUFFIX[row["detector"]]): float(row[column])
            for row in summary.iter_rows(named=True) for column, name in names.items() if row[column] is not None}
