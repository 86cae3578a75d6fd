"""The proposer: a learnable policy over scenario parameters, conditioned on scenarios from the buffer.

Actions: anomaly type; bus (per type); duration; relative size (``LEVELS``, turned into a magnitude on the window:
a trip of that share of the bus's running unit, a demand change of half that share, …). The start period is drawn
uniformly: where in the day a fault lands is the window's business, not a skill.

Conditioning (AZR conditions each proposal on K past tasks): the context is the mean one-hot type of K scenarios
sampled from the buffer and their mean solve rate; a linear map of it shifts the type logits.

Learning rule: REINFORCE with the round's mean reward as baseline (advantages scaled to unit spread) and an entropy
bonus, one policy-gradient step per round over that round's proposals (reward = learnability, 0 for a rejected
scenario).
"""

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Categorical
from torch.nn import Linear, Module, Parameter

from grid_guardian_assets.selfplay.scenarios import GEN, SYSTEM_KINDS, Scenario
from grid_guardian_assets.verifier.anomalies import ANOMALY_TYPES
from grid_guardian_assets.verifier.sequences import GridSequence

LEVELS = (0.1, 0.25, 0.5, 1.0, 2.0)
DURATIONS = (1, 2, 4, 6, 8)
LEAD_IN = 8  # periods of normal context before a scenario starts (as in the benchmark)
TAIL = 12  # periods after the start that stay inside the window


def learnability_reward(solve_rate: float) -> float:
    """AZR's proposer reward: ``1 − p̄`` when the solver sometimes solves the task, else 0 (too easy or too hard)."""
    return 1.0 - solve_rate if 0.0 < solve_rate < 1.0 else 0.0


def magnitude_for(kind: str, level: float, window: GridSequence, bus: int, start: int, sign: float) -> float:
    """The scenario magnitude a relative ``level`` means for ``kind`` on this window (see ``scenarios``)."""
    if kind == "unit_trip":
        return float(level * window.node[start, bus, GEN].max())
    if kind == "demand_shift":
        return float(sign * level * 0.5)
    if kind == "unit_scaling":
        return float(max(1.0 - level, 0.001))  # level 1 and up: MW read as kW
    if kind == "overload_redispatch":
        return float(level * 1000.0)
    return 0.0


class ProposerPolicy(Module):
    r"""Categorical policy over anomaly type, bus, duration and size level.

    Args:
        num_buses: Buses of the network.
        num_types: Anomaly types (the benchmark's).
    """

    def __init__(self, num_buses: int, num_types: int = len(ANOMALY_TYPES)):
        super().__init__()
        self.num_buses, self.num_types = num_buses, num_types
        self.type_logits = Parameter(torch.zeros(num_types))
        self.context = Linear(num_types + 1, num_types, bias=False)
        self.bus_logits = Parameter(torch.zeros(num_types, num_buses))
        self.duration_logits = Parameter(torch.zeros(num_types, len(DURATIONS)))
        self.level_logits = Parameter(torch.zeros(num_types, len(LEVELS)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in (self.type_logits, self.bus_logits, self.duration_logits, self.level_logits):
            torch.nn.init.zeros_(p)
        torch.nn.init.zeros_(self.context.weight)  # no preference until the buffer has taught one

    def type_distribution(self, context: Tensor) -> Categorical:
        """``context``: ``(C,)`` or ``(B, C)``, the buffer summary (mean one-hot type, mean solve rate)."""
        return Categorical(logits=self.type_logits + self.context(context))

    def log_prob(self, context: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """Log-probability ``(B,)`` and entropy ``(B,)`` of ``actions`` ``(B, 4)`` = (type, bus, duration, level)."""
        kind = self.type_distribution(context)
        t = actions[:, 0]
        bus = Categorical(logits=self.bus_logits[t])
        duration = Categorical(logits=self.duration_logits[t])
        level = Categorical(logits=self.level_logits[t])
        log_p = kind.log_prob(t) + bus.log_prob(actions[:, 1]) + duration.log_prob(actions[:, 2]) + level.log_prob(actions[:, 3])
        entropy = kind.entropy() + bus.entropy() + duration.entropy() + level.entropy()
        return log_p, entropy

    @torch.no_grad()
    def sample(self, context: Tensor, generator: torch.Generator) -> Tensor:
        """One action ``(4,)`` = (type, bus, duration index, level index)."""
        t = torch.multinomial(self.type_distribution(context).probs, 1, generator=generator)[0]
        b = torch.multinomial(torch.softmax(self.bus_logits[t], -1), 1, generator=generator)[0]
        d = torch.multinomial(torch.softmax(self.duration_logits[t], -1), 1, generator=generator)[0]
        lv = torch.multinomial(torch.softmax(self.level_logits[t], -1), 1, generator=generator)[0]
        return torch.stack([t, b, d, lv])

    @torch.no_grad()
    def type_probabilities(self, context: Tensor | None = None) -> np.ndarray:
        context = torch.zeros(self.num_types + 1) if context is None else context
        return self.type_distribution(context).probs.numpy()

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_buses={self.num_buses}, num_types={self.num_types})"


def buffer_context(kinds: list[str], solve_rates: list[float]) -> Tensor:
    """The conditioning vector of K reference scenarios (zeros when the buffer is empty)."""
    context = torch.zeros(len(ANOMALY_TYPES) + 1)
    if kinds:
        for kind in kinds:
            context[ANOMALY_TYPES.index(kind)] += 1.0 / len(kinds)
        context[-1] = float(np.mean(solve_rates))
    return context


def reinforce_step(policy: ProposerPolicy, optimiser: torch.optim.Optimizer, contexts: Tensor, actions: Tensor,
                   rewards: Tensor, entropy_weight: float) -> float:
    """One REINFORCE update with the batch-mean baseline; returns the loss."""
    log_p, entropy = policy.log_prob(contexts, actions)
    advantage = rewards - rewards.mean()
    if advantage.abs().max() > 0:
        # Scaled to unit spread: learnability rewards are small (most tasks are always or never solved), and the
        # step should not depend on how small.
        advantage = advantage / (advantage.std() + 1e-6)
    loss = -(advantage * log_p).mean() - entropy_weight * entropy.mean()
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return float(loss.detach())


def scenario_from_action(action: Tensor, window: GridSequence, window_index: int, rng: np.random.Generator) -> Scenario:
    """Turn a sampled action into a concrete scenario on one window (start uniform, demand sign random)."""
    kind = ANOMALY_TYPES[int(action[0])]
    bus = -1 if kind in SYSTEM_KINDS else int(action[1])
    start = int(rng.integers(LEAD_IN, len(window) - TAIL))
    sign = float(rng.choice([-1.0, 1.0]))
    magnitude = magnitude_for(kind, LEVELS[int(action[3])], window, max(bus, 0), start, sign)
    return Scenario(kind, bus, start, DURATIONS[int(action[2])], magnitude, window_index)

