"""The anomaly benchmark's size and its two splits, without numpy or torch: the Dagster layer declares its run config
from them (``anomaly_benchmark``'s ``BenchmarkConfig``), and ``build_benchmark`` takes its defaults from here.

A benchmark that tells detectors apart needs at least 30 cases per anomaly type (so that a type's F1 interval is
narrower than the differences between detectors) and 60 clean whole days (so that false alerts per clean day are
measured to about 0.1).
Thresholds, margins and hyper-parameters are tuned on the ``validation`` split; the ``held_out`` split is scored only
for the final table and the promotion gate (their days: ``SPLITS``).
"""

from dataclasses import asdict, dataclass, field

# The promotion gate: the lower end of the candidate's 95 % F1 interval on the held-out split must be at least this far above
# the 3-sigma rule's F1 (``verifier.bootstrap.gate``).
DEFAULT_GATE_MARGIN = 0.25
# The benchmark's targets for the detector the live job runs (the rules and the model combined) on the held-out split:
# overall event-wise F1, every anomaly type's F1, and false alerts per clean day; the lower end of its F1 interval
# must also clear the 3-sigma rule's F1 by the gate's margin (``verifier.bootstrap.issue_targets``).
TARGET_F1 = 0.85
TARGET_TYPE_F1 = 0.6
TARGET_FALSE_ALERTS_PER_CLEAN_DAY = 0.5

VALIDATION = "validation"
HELD_OUT = "held_out"
# The splits, each cut from a window of ``grid_guardian_assets.windows``: validation cases from the threshold window
# (inside gnn_verifier's training range: they tune, they never report), held-out cases from the held-out window, which
# no model and no detector ever fits on.
SPLITS = (VALIDATION, HELD_OUT)


@dataclass
class BenchmarkSpec:
    """How many cases of which shape ``build_benchmark`` cuts, and from which seed."""

    seed: int = field(default=2018, metadata={"doc": "Seed of every draw: which windows, where, which anomaly."})
    cases_per_type: int = field(default=30, metadata={"doc": "Cases with one injected anomaly, per anomaly type (30 or more)."})
    clean_days: int = field(default=60, metadata={
        "doc": "Clean cases: whole settlement days without an injected anomaly, each a different day (at least 60)."})
    length: int = field(default=48, metadata={"doc": "Periods per case (48: a settlement day; a clean case is exactly one day)."})
    lead_in: int = field(default=8, metadata={"doc": "Periods before an injected anomaly at the least: the detectors' context."})

    def to_dict(self) -> dict[str, int]:
        return asdict(self)
