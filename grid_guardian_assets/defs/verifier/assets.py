"""``anomaly_benchmark`` (frozen, versioned cases) and ``gnn_verifier`` (train, evaluate, gate, promote)."""

import datetime as dt
import json
import tempfile
from pathlib import Path

import dagster as dg
from pydantic import Field

from grid_guardian_assets.defs.domain_config import from_domain, to_domain
from grid_guardian_assets.defs.mlflow_run import closing_mlflow_run
from grid_guardian_assets.defs.resources import BmrsStorageResource, GridResource
from grid_guardian_assets.reporting import markdown_table
from grid_guardian_assets.verifier.train_config import DEFAULT_CALIBRATION_DAYS, DEFAULT_FALSE_ALARM_RATE, TrainConfig

# The verifier domain (torch, PyG; h5py too) is imported inside the asset bodies: see definitions.py. Its config
# (train_config) is plain dataclasses, imported here.

QUALITY_CHECK = "verifier_quality"


class BenchmarkConfig(dg.Config):
    """Held-out days the benchmark is cut from (October to December 2018 by default) and its seed."""

    start: str = "2018-10-01"
    end: str = "2018-12-31"
    seed: int = 2018
    cases_per_type: int = 6
    clean_cases: int = 8


# The fields of VerifierConfig that gnn_verifier uses itself; the others make up its TrainConfig.
VERIFIER_RUN_FIELDS = frozenset({"start", "end", "calibration_days", "false_alarm_rate", "device"})


class VerifierConfig(dg.Config):
    """Training range (January to September 2018 by default; its last ``calibration_days`` calibrate), calibration,
    device, and the hyper-parameters of ``TrainConfig`` (defaults and meanings from there)."""

    start: str = Field(default="2018-01-01", description="First day of the training range.")
    end: str = Field(default="2018-09-30", description="Last day of the training range.")
    calibration_days: int = Field(default=DEFAULT_CALIBRATION_DAYS,
                                  description="Last days of the range, held out to calibrate: never trained on.")
    false_alarm_rate: float = Field(default=DEFAULT_FALSE_ALARM_RATE,
                                    description="Calibrated alarm rate per bus and settlement period on normal data.")
    device: str = Field(default="auto", description="auto (CUDA when present, else the CPU), cpu or cuda[:N].")
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


@dg.asset(
    group_name="verifier",
    deps=["grid_snapshots"],
    kinds={"numpy"},
    description="Windows of held-out real snapshots with injected, labelled anomalies of every type, from a fixed "
    "seed; saved as a versioned .npz so every checkpoint is measured on the same cases.",
)
def anomaly_benchmark(config: BenchmarkConfig, grid: GridResource, bmrs_storage: BmrsStorageResource) -> dg.MaterializeResult:
    from grid_guardian_assets.store.snapshot_store import SnapshotStore
    from grid_guardian_assets.verifier.anomalies import ANOMALY_TYPES, build_benchmark
    from grid_guardian_assets.verifier.pipeline import contiguous_sequences

    network = grid.load()
    days = SnapshotStore(bmrs_storage.layout.hdf5).read_range(network.name, dt.date.fromisoformat(config.start), dt.date.fromisoformat(config.end))
    if not days:
        raise dg.Failure(description=f"no {network.name} grid_snapshots stored for {config.start}..{config.end}: materialise them first")
    bench = build_benchmark(
        contiguous_sequences(days), network, seed=config.seed, cases_per_type=config.cases_per_type, clean_cases=config.clean_cases
    )
    path = bench.save(bmrs_storage.layout.benchmarks)
    pointer = bmrs_storage.layout.benchmark_pointer(network.name)
    pointer.write_text(json.dumps({"version": bench.version, "path": str(path)}))
    counts = {kind: sum(1 for label in bench.labels if label and label.kind == kind) for kind in ANOMALY_TYPES}
    return dg.MaterializeResult(
        metadata={
            "version": bench.version,
            "file": dg.MetadataValue.path(str(path)),
            "cases": len(bench.labels),
            "clean_cases": sum(1 for label in bench.labels if label is None),
            "cases_by_type": dg.MetadataValue.json(counts),
            "held_out_days": f"{days[0].day}..{days[-1].day} ({len(days)} stored)",
            "seed": config.seed,
        },
        data_version=dg.DataVersion(bench.version),
    )


@dg.asset(
    group_name="verifier",
    deps=["grid_snapshots", anomaly_benchmark],
    # dagster-mlflow's resource is a legacy (non-Pythonic) one, so every resource comes through the context.
    required_resource_keys={"mlflow", "grid", "bmrs_storage", "model_store"},
    kinds={"pytorch", "mlflow"},
    check_specs=[
        dg.AssetCheckSpec(
            QUALITY_CHECK,
            asset="gnn_verifier",
            blocking=True,
            description="the checkpoint's event-wise F1 on the frozen benchmark beats the 3-sigma rule's; only then is it promoted",
        )
    ],
    description="A TGCN + GAT verifier trained on grid_snapshots, calibrated to a stated false-alarm rate, measured "
    "against the per-bus GRU and 3-sigma baselines on the frozen benchmark, saved as a versioned checkpoint.",
)
def gnn_verifier(context: dg.AssetExecutionContext, config: VerifierConfig):
    from grid_guardian_assets.store.snapshot_store import SnapshotStore
    from grid_guardian_assets.verifier.anomalies import Benchmark
    from grid_guardian_assets.verifier.pipeline import benchmark_table, overall_f1, save_checkpoint, train_verifier
    from grid_guardian_assets.verifier.train import pick_device

    mlflow = context.resources.mlflow
    grid: GridResource = context.resources.grid
    bmrs_storage: BmrsStorageResource = context.resources.bmrs_storage
    store = context.resources.model_store.store()
    with closing_mlflow_run(mlflow) as run_id:
        network = grid.load()
        snapshots = SnapshotStore(bmrs_storage.layout.hdf5)
        days = snapshots.read_range(network.name, dt.date.fromisoformat(config.start), dt.date.fromisoformat(config.end))
        pointer = bmrs_storage.layout.benchmark_pointer(network.name)
        if not pointer.exists():
            raise dg.Failure(description=f"no anomaly_benchmark for {network.name}: materialise anomaly_benchmark first")
        benchmark = Benchmark.load(Path(json.loads(pointer.read_text())["path"]))
        train_config = config.train_config()
        device = pick_device(config.device)
        mlflow.log_params(
            {
                **train_config.to_dict(),
                "network": network.name,
                "device": str(device),
                "train_start": config.start,
                "train_end": config.end,
                "benchmark_version": benchmark.version,
                "false_alarm_rate": config.false_alarm_rate,
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
                device=device,
                on_epoch=on_epoch,
            )
        except ValueError as exc:
            raise dg.Failure(description=f"gnn_verifier: {exc}") from None
        table = benchmark_table(trained, network, benchmark)
        f1 = {name: overall_f1(table, name) for name in ("GNN verifier", "per-bus GRU", "3-sigma")}
        metrics = {"f1_gnn": f1["GNN verifier"], "f1_gru": f1["per-bus GRU"], "f1_three_sigma": f1["3-sigma"], "final_loss": trained.losses[-1]}
        checkpoint = save_checkpoint(store, trained, network, {**metrics, "table": table.to_dicts()}, benchmark.version)
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            table_path = Path(tmp) / "benchmark_f1_by_type.csv"
            table.write_csv(table_path)
            mlflow.log_artifact(str(table_path))
        for name in ("model.pt", "meta.json"):
            mlflow.log_artifact(str(store.root / checkpoint.version / name), artifact_path="checkpoint")
        mlflow.set_tag("checkpoint_version", checkpoint.version)
    passed = f1["GNN verifier"] > f1["3-sigma"]
    if passed:
        store.promote(checkpoint.version)
    summary = table.filter(table["type"] == "overall").select("detector", "precision", "recall", "f1", "mean_delay_periods")
    yield dg.MaterializeResult(
        metadata={
            "checkpoint": checkpoint.version,
            "promoted": passed,
            "device": str(device),
            "train_days": f"{trained.train_days[0]}..{trained.train_days[1]}",
            "calibration_days": f"{trained.calibration_days[0]}..{trained.calibration_days[1]}",
            "false_alarm_rate": config.false_alarm_rate,
            "losses": dg.MetadataValue.json([round(loss, 5) for loss in trained.losses]),
            "epoch_seconds": dg.MetadataValue.json([round(s, 2) for s in trained.epoch_seconds]),
            "f1_by_type": dg.MetadataValue.md(markdown_table(table, limit=table.height)),
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
                    "f1_gnn": f1["GNN verifier"],
                    "f1_three_sigma": f1["3-sigma"],
                    "overall": dg.MetadataValue.md(markdown_table(summary)),
                    "promoted": passed,
                    "checkpoint": checkpoint.version,
                },
            )
        ],
    )
