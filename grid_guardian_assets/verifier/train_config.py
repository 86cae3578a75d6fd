"""The verifier's training knobs and defaults, without torch: the Dagster layer declares its run config from them.

Each field's ``metadata["doc"]`` says what it means; the ``gnn_verifier`` asset shows it in Dagster's config UI.
"""

from dataclasses import asdict, dataclass, field

DEFAULT_FALSE_ALARM_RATE = 0.001  # per bus and settlement period, on normal data
DEFAULT_CALIBRATION_DAYS = 14
# The operator's budget for the learned detector: alerts per day on normal data, over all buses and the balance head
# together (29 buses at DEFAULT_FALSE_ALARM_RATE alone would alarm about 1.4 times a day). Chosen on the validation
# benchmark with bench/bench_ablation.py; the figures are in the README ("The GNN verifier").
DEFAULT_ALERTS_PER_DAY = 0.05


@dataclass
class TrainConfig:
    """Hyper-parameters of the verifier and its per-bus GRU baseline (all logged to MLflow and stored in the checkpoint)."""

    warmup: int = field(default=4, metadata={"doc": "Periods at the start of every run that give the recurrent state "
                                             "context: neither trained on nor scored."})
    chunk_periods: int = field(default=48, metadata={"doc": "Periods per training chunk (48: a settlement day)."})
    batch_chunks: int = field(default=32, metadata={"doc": "Chunks stacked as one disjoint-union graph per optimiser step."})
    max_batch_buses: int = field(default=10_000, metadata={
        "doc": "Caps the buses per step (chunks × buses): 32 days of 29 buses, but 4 of 2,224, which keeps autograd's "
               "memory to a few GB (32 days of the 2,224-bus graph exhaust 24 GB)."})
    hidden_channels: int = field(default=32, metadata={"doc": "Width of the recurrent state per bus."})
    heads: int = field(default=2, metadata={"doc": "Attention heads of the GAT layer."})
    epochs: int = field(default=4, metadata={"doc": "Passes over the training chunks."})
    learning_rate: float = field(default=3e-3, metadata={"doc": "Adam's learning rate."})
    balance_weight: float = field(default=0.5, metadata={"doc": "Weight of the national balance head's loss."})
    loading_weight: float = field(default=0.5, metadata={"doc": "Weight of the branch loading head's loss."})
    seed: int = field(default=0, metadata={"doc": "Seed of initialisation and chunk order."})

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)
