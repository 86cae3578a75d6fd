"""One self-play round: propose → verify → solve (n attempts) → update proposer and solver → gate → promote.

The gate tunes the model (it picks which solver is carried on), so it reads only the ``validation`` benchmark (the
``held_out`` one is never decided on): the candidate, the current solver and the 3-sigma rule are scored there. The ``held_out`` benchmark is scored
after the decision, once for the carried solver and once for the 3-sigma rule: the round's final table
(``f1_held_out_*``), never an input to a choice. That second scoring costs two passes over the held-out cases a round.

Deterministic given the round's seed and the previous round's saved state. State lives under ``{root}``::

    round-0001/state.pt        proposer weights and optimiser, solver type centroids (plain tensors)
    round-0001/round.json      metrics, the carried solver's checkpoint version, the history of rounds so far
    round-0001/proposals.parquet   every proposal: scenario, verdict and reason, solve rate, reward
    buffer.parquet             accepted scenarios of every round (a round's rows are replaced when it is rerun)
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import torch

from grid_guardian_assets.detect.measurements import StoredMeasurements
from grid_guardian_assets.grid.branch_limits import BranchLimits
from grid_guardian_assets.grid.mapping import bus_mapping
from grid_guardian_assets.grid.network import GridNetwork
from grid_guardian_assets.selfplay.environment import PhysicsVerifier
from grid_guardian_assets.selfplay.proposer import (
    ProposerPolicy,
    buffer_context,
    learnability_reward,
    reinforce_step,
    scenario_from_action,
)
from grid_guardian_assets.selfplay.round_config import RoundConfig
from grid_guardian_assets.selfplay.round_keys import SelfPlayError, round_key, round_number  # noqa: F401 (re-exported)
from grid_guardian_assets.selfplay.scenarios import Scenario
from grid_guardian_assets.selfplay.solver import Solver, signature
from grid_guardian_assets.verifier.anomalies import ANOMALY_TYPES, Benchmark
from grid_guardian_assets.verifier.checkpoints import ModelStore
from grid_guardian_assets.verifier.evaluation import evaluate, summarise
from grid_guardian_assets.verifier.observation import observed_case
from grid_guardian_assets.verifier.pipeline import load_detector
from grid_guardian_assets.verifier.scoring import ThreeSigma
from grid_guardian_assets.verifier.sequences import GridSequence
from grid_guardian_assets.verifier.train import seed_everything

BUFFER_SCHEMA = {"round": pl.Int64, "kind": pl.Utf8, "bus": pl.Int64, "start": pl.Int64, "duration": pl.Int64,
                 "magnitude": pl.Float64, "window": pl.Int64, "solve_rate": pl.Float64, "reward": pl.Float64}


@dataclass
class RoundResult:
    number: int
    proposals: pl.DataFrame
    by_type: pl.DataFrame
    metrics: dict[str, float]
    history: list[dict]
    solver_version: str
    promoted: bool
    type_probabilities: dict[str, float] = field(default_factory=dict)


class ScenarioBuffer:
    """Accepted scenarios of every round, in Parquet."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def of_rounds(cls, root: Path) -> "ScenarioBuffer":
        """The buffer of the rounds kept under ``root``."""
        return cls(root / "buffer.parquet")

    def read(self) -> pl.DataFrame:
        return pl.read_parquet(self.path) if self.path.exists() else pl.DataFrame(schema=BUFFER_SCHEMA)

    def replace_round(self, number: int, rows: pl.DataFrame) -> pl.DataFrame:
        frame = pl.concat([self.read().filter(pl.col("round") != number), rows.cast(BUFFER_SCHEMA)]).sort("round")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        frame.write_parquet(tmp)
        tmp.replace(self.path)
        return frame


def _f1(detector, calibration, benchmark: Benchmark) -> tuple[float, pl.DataFrame]:
    """Overall event-wise F1 of ``detector`` on ``benchmark``, and the table per anomaly type."""
    table = summarise(evaluate(detector, calibration, benchmark))
    return float(table.filter(pl.col("type") == "overall")["f1"][0]), table


def _load_state(root: Path, number: int) -> tuple[dict, dict]:
    """The previous round's ``round.json`` and ``state.pt`` (empty for round 1)."""
    if number == 1:
        return {}, {}
    previous = root / round_key(number - 1)
    if not (previous / "round.json").exists():
        raise SelfPlayError(f"{round_key(number)} needs {round_key(number - 1)}: materialise the rounds in order")
    return json.loads((previous / "round.json").read_text()), torch.load(previous / "state.pt", weights_only=True)


def run_round(
    number: int,
    config: RoundConfig,
    *,
    root: Path,
    windows: list[GridSequence],
    calibration_sequences: list[GridSequence],
    validation: Benchmark,
    held_out: Benchmark,
    network: GridNetwork,
    limits: BranchLimits,
    models: ModelStore,
    recorded: StoredMeasurements | None = None,
) -> RoundResult:
    """Run round ``number`` (1-based) and save its state; see the module docstring.

    Args:
        validation: The benchmark the promotion decision is made on.
        held_out: The benchmark of the final table only: scored after the decision, for the carried solver and the
            3-sigma rule.
        recorded: The stores the windows were built from (``verifier.observation``: what an observed case keeps).
    """
    if not windows:
        raise SelfPlayError("no snapshot windows to inject scenarios into: materialise grid_snapshots first")
    seed = config.seed + number
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    info, state = _load_state(root, number)
    version = info.get("solver_version") or models.promoted()
    if version is None:
        raise SelfPlayError(f"no promoted checkpoint in {models.root}: materialise gnn_verifier first")
    checkpoint = models.load(version)
    detector, calibration = load_detector(checkpoint, network)
    centroids = {k: (v[0].numpy(), int(v[1])) for k, v in state.get("centroids", {}).items()}
    solver = Solver(detector, calibration, centroids)
    policy = ProposerPolicy(network.n_buses)
    optimiser = torch.optim.Adam(policy.parameters(), lr=config.proposer_lr)
    if state:
        policy.load_state_dict(state["policy"])
        optimiser.load_state_dict(state["optimiser"])
    verifier = PhysicsVerifier(network, limits, detector, calibration)
    mapping = bus_mapping(network)

    def verify(window: GridSequence, scenario: Scenario):
        """The environment's verdict on the scenario's physics, and what the solver sees of an accepted one: the
        window as the live job would observe it (national readings spread over the buses), as the benchmark holds
        its cases."""
        verdict, after = verifier.verify(window, scenario)
        return verdict, observed_case(after, mapping, verifier.flow, recorded) if verdict.accepted else after

    buffer = ScenarioBuffer.of_rounds(root)
    earlier = buffer.read().filter(pl.col("round") < number)

    rows, contexts, actions, examples, pairs, labels = [], [], [], [], [], []
    for _ in range(config.proposals):
        refs = earlier.sample(min(config.context_k, earlier.height), seed=int(rng.integers(1 << 31))) if earlier.height else earlier
        context = buffer_context(refs["kind"].to_list(), refs["solve_rate"].to_list())
        action = policy.sample(context, generator)
        w = int(rng.integers(len(windows)))
        scenario = scenario_from_action(action, windows[w], w, rng)
        verdict, injected = verify(windows[w], scenario)
        solved, tried, typed = 0, 0, 0
        if verdict.accepted:
            for j in range(config.attempts):
                other = (w + j * max(1, len(windows) // config.attempts)) % len(windows)
                attempt_scenario = Scenario(scenario.kind, scenario.bus, scenario.start, scenario.duration, scenario.magnitude, other)
                ok, attempt_window = (verdict, injected) if j == 0 else verify(windows[other], attempt_scenario)
                if not ok.accepted:
                    continue
                result = solver.attempt(attempt_window, attempt_scenario)
                tried += 1
                solved += result.solved
                typed += result.type_guess == scenario.kind
            located = scenario.bus if scenario.bus >= 0 else 0
            examples.append((scenario.kind, signature(injected, located, scenario.start, detector)))
            pairs.append((windows[w], injected))
            labels.append(scenario.label())
        rate = solved / tried if tried else 0.0
        reward = learnability_reward(rate) if verdict.accepted else 0.0
        rows.append({**scenario.to_row(), "accepted": verdict.accepted, "reason": verdict.reason, "detail": verdict.detail,
                     "attempts": tried, "solved": solved, "solve_rate": rate, "type_correct": typed, "reward": reward})
        contexts.append(context)
        actions.append(action)

    proposals = pl.DataFrame(rows)
    rewards = torch.tensor(proposals["reward"].to_list(), dtype=torch.float32)
    reinforce_step(policy, optimiser, torch.stack(contexts), torch.stack(actions), rewards, config.entropy_weight)

    accepted = proposals.filter(pl.col("accepted"))
    buffer.replace_round(number, accepted.select(list(BUFFER_SCHEMA)[1:]).with_columns(pl.lit(number).alias("round")).select(list(BUFFER_SCHEMA)))

    # The solver: fine-tune on accepted scenarios, recalibrate, then decide on the validation benchmark in this run.
    f1_before, _ = _f1(solver.detector, solver.calibration, validation)
    three_sigma = ThreeSigma(checkpoint.tensors["three_sigma"]["mean"].numpy(), checkpoint.tensors["three_sigma"]["std"].numpy())
    f1_three_sigma, _ = _f1(three_sigma, three_sigma.calibration(), validation)
    candidate = solver.fine_tuned(pairs, config.solver_steps, config.solver_lr, calibration_sequences, config.false_alarm_rate,
                                  seed, labels) if pairs else solver
    f1_after, _ = _f1(candidate.detector, candidate.calibration, validation)
    promoted = bool(pairs) and f1_after >= f1_before and f1_after > f1_three_sigma
    carried = candidate if promoted else solver
    carried.learn_types(examples)
    # The final table: held-out cases, scored only now that nothing is left to choose.
    f1_held_out, held_out_table = _f1(carried.detector, carried.calibration, held_out)
    f1_held_out_three_sigma, _ = _f1(three_sigma, three_sigma.calibration(), held_out)
    carried_version = version
    if promoted:
        tensors = {**checkpoint.tensors, "model": candidate.detector.model.state_dict()}
        # f1_gnn and table stay the held-out figures, as gnn_verifier writes them; the validation F1 beside them.
        metrics_meta = {**checkpoint.meta.get("metrics", {}), "f1_gnn": f1_held_out, "f1_gnn_validation": f1_after,
                        "table": held_out_table.to_dicts()}
        meta = {**checkpoint.meta, "calibration": candidate.calibration.to_dict(), "self_play_round": number, "parent": version,
                "benchmark_version": held_out.version, "validation_benchmark_version": validation.version, "metrics": metrics_meta}
        for drop in ("version", "sha256", "created_at"):
            meta.pop(drop, None)
        carried_version = models.save(tensors, meta).version
        models.promote(carried_version)

    by_type = _by_type(proposals, policy)
    metrics = {
        "proposed": float(proposals.height),
        "accepted": float(accepted.height),
        "rejected": float(proposals.height - accepted.height),
        "mean_proposer_reward": float(proposals["reward"].mean()),
        "solve_rate": float(accepted["solve_rate"].mean()) if accepted.height else 0.0,
        "f1_validation_before": f1_before,
        "f1_validation_candidate": f1_after,
        "f1_validation_three_sigma": f1_three_sigma,
        "f1_validation_carried": f1_after if promoted else f1_before,
        "f1_held_out_carried": f1_held_out,
        "f1_held_out_three_sigma": f1_held_out_three_sigma,
        "buffer_size": float(buffer.read().height),
    }
    history = [*info.get("history", []), {"round": number, **metrics, "promoted": promoted,
                                          "type_probabilities": dict(zip(ANOMALY_TYPES, policy.type_probabilities().round(4).tolist()))}]
    folder = root / round_key(number)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"policy": policy.state_dict(), "optimiser": optimiser.state_dict(),
                "centroids": {k: (torch.as_tensor(v[0]), torch.tensor(v[1])) for k, v in carried.centroids.items()}}, folder / "state.pt")
    proposals.write_parquet(folder / "proposals.parquet")
    (folder / "round.json").write_text(json.dumps({"round": number, "seed": seed, "solver_version": carried_version,
                                                   "started_from": version, "promoted": promoted, "metrics": metrics,
                                                   "history": history}, indent=2))
    return RoundResult(number, proposals, by_type, metrics, history, carried_version, promoted,
                       dict(zip(ANOMALY_TYPES, policy.type_probabilities().tolist())))


def _by_type(proposals: pl.DataFrame, policy: ProposerPolicy) -> pl.DataFrame:
    """Per type: proposed, accepted, rejections by reason, solve rate, mean reward, the proposer's probability now."""
    probabilities = dict(zip(ANOMALY_TYPES, policy.type_probabilities().tolist()))
    rows = []
    for kind in ANOMALY_TYPES:
        mine = proposals.filter(pl.col("kind") == kind)
        accepted = mine.filter(pl.col("accepted"))
        rejected = mine.filter(~pl.col("accepted"))
        reasons = rejected.group_by("reason").len().sort("reason").iter_rows() if rejected.height else []
        rows.append({
            "type": kind,
            "proposed": mine.height,
            "accepted": accepted.height,
            "rejected_by_reason": ", ".join(f"{r}: {n}" for r, n in reasons),
            "solve_rate": round(float(accepted["solve_rate"].mean()), 3) if accepted.height else None,
            "mean_reward": round(float(mine["reward"].mean()), 3) if mine.height else None,
            "proposer_probability": round(probabilities[kind], 3),
        })
    return pl.DataFrame(rows)
