"""``self_play_round`` (one partition per round) and ``scenario_buffer`` (accepted scenarios of every round)."""

import datetime as dt
import tempfile
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from grid_guardian_assets.defs.domain_config import from_domain, to_domain
from grid_guardian_assets.defs.mlflow_run import closing_mlflow_run
from grid_guardian_assets.defs.resources import BmrsStorageResource, GridResource
from grid_guardian_assets.defs.verifier.assets import current_benchmark
from grid_guardian_assets.defs.windows_config import TIMELY_INPUTS, stored_deps
from grid_guardian_assets.reporting import figure_markdown, markdown_table, self_play_figure
from grid_guardian_assets.selfplay.round_config import RoundConfig
from grid_guardian_assets.selfplay.round_keys import SelfPlayError, round_key, round_number
from grid_guardian_assets.verifier.benchmark_config import HELD_OUT, VALIDATION

# The self-play domain (torch, the verifier; h5py and scipy too) is imported inside the asset bodies: see
# definitions.py. Its config (round_config) is a plain dataclass, imported here.

ROUNDS = dg.StaticPartitionsDefinition([round_key(n) for n in range(1, 101)])
WINDOW = 48


# The fields of SelfPlayConfig that self_play_round uses itself; the others make up its RoundConfig.
SELF_PLAY_RUN_FIELDS = frozenset({"start", "end"})


class SelfPlayConfig(dg.Config):
    """Scenario windows come from the promoted checkpoint's training days unless ``start``/``end`` say otherwise;
    the knobs of ``RoundConfig`` (defaults and meanings from there)."""

    start: str = Field(default="", description="First day of the scenario windows; empty: the checkpoint's first training day.")
    end: str = Field(default="", description="Last day of the scenario windows; empty: the checkpoint's last training day.")
    proposals: int = from_domain(RoundConfig, "proposals")
    attempts: int = from_domain(RoundConfig, "attempts")
    context_k: int = from_domain(RoundConfig, "context_k")
    proposer_lr: float = from_domain(RoundConfig, "proposer_lr")
    entropy_weight: float = from_domain(RoundConfig, "entropy_weight")
    solver_steps: int = from_domain(RoundConfig, "solver_steps")
    solver_lr: float = from_domain(RoundConfig, "solver_lr")
    false_alarm_rate: float = from_domain(RoundConfig, "false_alarm_rate")
    seed: int = from_domain(RoundConfig, "seed")

    def round_config(self) -> RoundConfig:
        return to_domain(RoundConfig, self, run_fields=SELF_PLAY_RUN_FIELDS)


def _windows(days) -> list:
    from grid_guardian_assets.verifier.pipeline import contiguous_sequences

    return [s.slice(i, i + WINDOW) for s in contiguous_sequences(days) for i in range(0, len(s) - WINDOW + 1, WINDOW)]


@dg.asset(
    group_name="self_play",
    partitions_def=ROUNDS,
    deps=["gnn_verifier", "anomaly_benchmark", "branch_limits", *stored_deps(*TIMELY_INPUTS)],
    required_resource_keys={"mlflow", "grid", "bmrs_storage", "model_store"},
    kinds={"pytorch", "mlflow"},
    check_specs=[
        dg.AssetCheckSpec(
            "solver_gate",
            asset="self_play_round",
            blocking=False,
            description="the round's solver beats the 3-sigma rule and does not regress on the frozen validation benchmark; "
            "only then is it promoted (held-out F1 is reported, never decided on)",
        )
    ],
    description="One Absolute-Zero-style round: the proposer invents scenarios in real windows, the physics environment "
    "and the GNN verifier reject the impossible, the solver tries each n times, both learn; promoted when it does not regress "
    "on the validation benchmark. Needs both anomaly_benchmark splits: validation decides, held-out is the final table.",
)
def self_play_round(context: dg.AssetExecutionContext, config: SelfPlayConfig):
    mlflow = context.resources.mlflow
    grid: GridResource = context.resources.grid
    bmrs_storage: BmrsStorageResource = context.resources.bmrs_storage
    from grid_guardian_assets.detect.measurements import StoredMeasurements
    from grid_guardian_assets.grid.branch_limits import BranchLimitsMissing, load_branch_limits
    from grid_guardian_assets.selfplay.rounds import run_round
    from grid_guardian_assets.store.snapshot_store import SnapshotStore
    from grid_guardian_assets.verifier.pipeline import contiguous_sequences

    models = context.resources.model_store.store()
    number = round_number(context.partition_key)
    with closing_mlflow_run(mlflow) as run_id:
        network = grid.load()
        promoted = models.promoted()
        if promoted is None:
            raise dg.Failure(description=f"no promoted checkpoint in {models.root}: materialise gnn_verifier first")
        meta = models.meta(promoted)
        first, last = (config.start or meta["train_days"][0]), (config.end or meta["train_days"][1])
        snapshots = SnapshotStore(bmrs_storage.layout.hdf5)
        windows = _windows(snapshots.read_range(network.name, dt.date.fromisoformat(first), dt.date.fromisoformat(last)))
        cal_first, cal_last = (dt.date.fromisoformat(d) for d in meta["calibration_days"])
        calibration = contiguous_sequences(snapshots.read_range(network.name, cal_first, cal_last))
        # The promotion decision tunes the model, so it reads the validation split only; held-out is the final table.
        validation = current_benchmark(bmrs_storage.layout, network.name, VALIDATION)
        held_out = current_benchmark(bmrs_storage.layout, network.name, HELD_OUT)
        try:
            limits = load_branch_limits(bmrs_storage.layout.branch_limits(network.name), network)
        except BranchLimitsMissing as exc:
            raise dg.Failure(description=str(exc)) from None
        round_config = config.round_config()
        mlflow.set_tag("self_play_round", context.partition_key)
        mlflow.log_params(
            {
                **vars(round_config),
                "round": number,
                "windows": len(windows),
                "window_days": f"{first}..{last}",
                "validation_benchmark_version": validation.version,
                "held_out_benchmark_version": held_out.version,
            }
        )
        try:
            result = run_round(
                number,
                round_config,
                root=bmrs_storage.layout.selfplay,
                windows=windows,
                calibration_sequences=calibration,
                validation=validation,
                held_out=held_out,
                network=network,
                limits=limits,
                models=models,
                recorded=StoredMeasurements(bmrs_storage.hdf5_store()),
            )
        except SelfPlayError as exc:
            raise dg.Failure(description=str(exc)) from None
        mlflow.log_metrics({k: v for k, v in result.metrics.items()})
        mlflow.log_metrics({f"p_{k}": v for k, v in result.type_probabilities.items()})
        figure = self_play_figure(result.history, result.by_type)
        with tempfile.TemporaryDirectory() as tmp:
            figure.savefig(Path(tmp) / f"self_play_{context.partition_key}.png", dpi=90)
            result.by_type.write_csv(Path(tmp) / "by_type.csv")
            result.proposals.write_csv(Path(tmp) / "proposals.csv")
            for name in (f"self_play_{context.partition_key}.png", "by_type.csv", "proposals.csv"):
                mlflow.log_artifact(str(Path(tmp) / name), artifact_path=context.partition_key)
        plots = figure_markdown(figure, f"self-play up to {context.partition_key}")
    m = result.metrics
    rejected = result.proposals.filter(~pl.col("accepted")).group_by("reason").len().sort("reason")
    yield dg.MaterializeResult(
        metadata={
            "proposed": int(m["proposed"]),
            "accepted": int(m["accepted"]),
            "rejected_by_reason": dg.MetadataValue.json({r: n for r, n in rejected.iter_rows()}),
            "mean_proposer_reward": round(m["mean_proposer_reward"], 4),
            "solve_rate": round(m["solve_rate"], 4),
            "f1_validation_before": m["f1_validation_before"],
            "f1_validation_candidate": m["f1_validation_candidate"],
            "f1_validation_carried": m["f1_validation_carried"],
            "f1_validation_three_sigma": m["f1_validation_three_sigma"],
            "f1_held_out_carried": m["f1_held_out_carried"],
            "f1_held_out_three_sigma": m["f1_held_out_three_sigma"],
            "validation_benchmark_version": validation.version,
            "held_out_benchmark_version": held_out.version,
            "promoted": result.promoted,
            "solver_checkpoint": result.solver_version,
            "buffer_size": int(m["buffer_size"]),
            "by_type": dg.MetadataValue.md(markdown_table(result.by_type, limit=20)),
            "proposals": dg.MetadataValue.md(
                markdown_table(
                    result.proposals.select("kind", "bus", "start", "duration", "magnitude", "accepted", "reason", "solve_rate", "reward"), limit=50
                )
            ),
            "rounds_so_far": dg.MetadataValue.md(
                markdown_table(pl.DataFrame([{k: v for k, v in h.items() if k != "type_probabilities"} for h in result.history]), limit=100)
            ),
            "plots": dg.MetadataValue.md(plots),
            "mlflow_run_id": run_id,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="solver_gate",
                passed=result.promoted,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "partition": context.partition_key,
                    "f1_validation_before": m["f1_validation_before"],
                    "f1_validation_candidate": m["f1_validation_candidate"],
                    "f1_validation_three_sigma": m["f1_validation_three_sigma"],
                    "promoted": result.promoted,
                },
            )
        ],
    )


@dg.asset(
    group_name="self_play",
    deps=[self_play_round],
    kinds={"parquet"},
    description="Accepted self-play scenarios of every round (data/selfplay/buffer.parquet): what later proposals are conditioned on.",
)
def scenario_buffer(bmrs_storage: BmrsStorageResource) -> dg.MaterializeResult:
    from grid_guardian_assets.selfplay.rounds import ScenarioBuffer

    buffer = ScenarioBuffer.of_rounds(bmrs_storage.layout.selfplay)
    path, frame = buffer.path, buffer.read()
    if frame.height == 0:
        raise dg.Failure(description=f"{path} holds no scenarios: materialise a self_play_round first")
    by_round = frame.group_by("round").len().sort("round")
    by_type = frame.group_by("kind").agg(pl.len().alias("scenarios"), pl.col("solve_rate").mean().round(3).alias("mean_solve_rate")).sort("kind")
    return dg.MaterializeResult(
        metadata={
            "file": dg.MetadataValue.path(str(path)),
            "scenarios": frame.height,
            "by_round": dg.MetadataValue.md(markdown_table(by_round, limit=100)),
            "by_type": dg.MetadataValue.md(markdown_table(by_type)),
            "dagster/row_count": frame.height,
        }
    )
