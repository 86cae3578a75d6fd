"""The knobs of one self-play round, without torch: the Dagster layer declares its run config from them.

Each field's ``metadata["doc"]`` says what it means; the ``self_play_round`` asset shows it in Dagster's config UI.
"""

from dataclasses import dataclass, field

from grid_guardian_assets.verifier.train_config import DEFAULT_FALSE_ALARM_RATE


@dataclass
class RoundConfig:
    """Knobs of one round (logged with it)."""

    proposals: int = field(default=24, metadata={"doc": "Scenarios the proposer invents."})
    attempts: int = field(default=4, metadata={"doc": "Windows each accepted scenario is tried on (p̄ is the solved share)."})
    context_k: int = field(default=4, metadata={"doc": "Buffer scenarios each proposal is conditioned on."})
    proposer_lr: float = field(default=0.5, metadata={"doc": "Learning rate of the proposer's REINFORCE step."})
    entropy_weight: float = field(default=0.01, metadata={"doc": "Entropy bonus of the proposer's REINFORCE step."})
    solver_steps: int = field(default=10, metadata={"doc": "Fine-tuning steps of the solver on the accepted scenarios."})
    solver_lr: float = field(default=1e-3, metadata={"doc": "Learning rate of the solver's fine-tuning."})
    false_alarm_rate: float = field(default=DEFAULT_FALSE_ALARM_RATE, metadata={"doc": "Calibration target of the updated solver."})
    seed: int = field(default=0, metadata={"doc": "Base seed; the round's seed is seed + round number."})
