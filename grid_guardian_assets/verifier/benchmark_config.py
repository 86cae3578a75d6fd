"""The anomaly benchmark's size and its two splits, without numpy or torch: the Dagster layer declares its run config
from them (``anomaly_benchmark``'s ``BenchmarkConfig``), and ``build_benchmark`` takes its defaults from here.

Issue #12: a benchmark that tells detectors apart needs at least 30 cases per anomaly type and 60 clean whole days.
Thresholds, margins and hyper-parameters are tuned on the ``validation`` split (July to September 2018); the
``held_out`` split (October to December 2018) is scored only for the final table and the promotion gate.
"""

import datetime as dt
from dataclasses import asdict, dataclass, field

# Issue #12: the lower end of the candidate's 95 % F1 interval on the held-out split must be at least this far above
# the 3-sigma rule's F1 (``verifier.bootstrap.gate``).
DEFAULT_GATE_MARGIN = 0.25
# Issue #12's targets for the detector the live job runs (the rules and the model combined) on the held-out split:
# overall event-wise F1, every anomaly type's F1, and false alerts per clean day; the lower end of its F1 interval
# must also clear the 3-sigma rule's F1 by the gate's margin (``verifier.bootstrap.issue_targets``).
TARGET_F1 = 0.85
TARGET_TYPE_F1 = 0.6
TARGET_FALSE_ALERTS_PER_CLEAN_DAY = 0.5

VALIDATION = "validation"
HELD_OUT = "held_out"
# The days each split's cases are cut from. The validation days lie inside gnn_verifier's default training range
# (January to September): they tune, they never report; only the held-out days are unseen by every model.
SPLIT_DAYS: dict[str, tuple[dt.date, dt.date]] = {
    VALIDATION: (dt.date(2018, 7, 1), dt.date(2018, 9, 30)),
    HELD_OUT: (dt.date(2018, 10, 1), dt.date(2018, 12, 31)),
}
# The days every detector is fitted on when the validation split is scored, as (fit, thresholds) ranges: the rules'
# relations and spreads learn from the first, their thresholds are set on the second, and line limits and the learned
# models take both. They end before the split, so that validation cases, like held-out ones, lie on days no fit has
# seen (forward validation: two months before the split set thresholds, as July–September do for the held-out split
# with the assets' defaults, detect.calibration's FIT_DAYS and VALIDATION_DAYS).
VALIDATION_FIT_DAYS = ((dt.date(2018, 1, 1), dt.date(2018, 4, 30)), (dt.date(2018, 5, 1), dt.date(2018, 6, 30)))


@dataclass
class BenchmarkSpec:
    """How many cases of which shape ``build_benchmark`` cuts, and from which seed."""

    seed: int = field(default=2018, metadata={"doc": "Seed of every draw: which windows, where, which anomaly."})
    cases_per_type: int = field(default=30, metadata={"doc": "Cases with one injected anomaly, per anomaly type (issue #12: ≥ 30)."})
    clean_days: int = field(default=60, metadata={
        "doc": "Clean cases: whole settlement days without an injected anomaly, each a different day (issue #12: ≥ 60)."})
    length: int = field(default=48, metadata={"doc": "Periods per case (48: a settlement day; a clean case is exactly one day)."})
    lead_in: int = field(default=8, metadata={"doc": "Periods before an injected anomaly at the least: the detectors' context."})

    def to_dict(self) -> dict[str, int]:
        return asdict(self)
