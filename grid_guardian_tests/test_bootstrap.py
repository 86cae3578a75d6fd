"""Case-level bootstrap intervals, false alerts per clean day, detection delay in minutes, and the promotion gate."""

import numpy as np
import polars as pl
import pytest

from grid_guardian_assets.verifier.anomalies import ANOMALY_TYPES, AnomalyLabel
from grid_guardian_assets.verifier.bootstrap import CaseBootstrap, Interval, by_type_table, gate, issue_targets, summary_table
from grid_guardian_assets.verifier.evaluation import CLEAN, CaseOutcome, evaluate_case, summarise


def _case(kind: str, detected: bool, false_positives: int = 0, delay: float = 0.0, periods: int = 48) -> CaseOutcome:
    return CaseOutcome(kind, detected, delay if detected else float("nan"), false_positives, periods)


def _mixed(copies: int) -> list[CaseOutcome]:
    """Per copy: 10 unit trips (6 detected, 2 false positives among them), 10 stuck sensors (3 detected), 10 clean
    days with 4 false-positive runs in all."""
    one = ([_case("unit_trip", k < 6, false_positives=int(k in (0, 7))) for k in range(10)]
           + [_case("stuck_sensor", k < 3) for k in range(10)]
           + [_case(CLEAN, False, false_positives=int(k < 4)) for k in range(10)])
    return one * copies


def test_f1_point_estimate_matches_the_event_wise_table_and_a_hand_computed_value() -> None:
    outcomes = _mixed(1)
    boot = CaseBootstrap(outcomes, resamples=200)
    # Overall: TP 9, FP 2 + 4 = 6, events 20 → P 9/15, R 9/20, F1 = 2·9 / (2·9 + 6 + 11) = 18/35.
    assert boot.f1().point == pytest.approx(18 / 35)
    # Unit trips alone: TP 6, FP 2, events 10 → 12 / (12 + 2 + 4) = 2/3.
    assert boot.f1("unit_trip").point == pytest.approx(2 / 3)
    table = summarise(outcomes)
    for kind, expected in (("overall", 18 / 35), ("unit_trip", 2 / 3), ("stuck_sensor", 6 / 13)):
        assert table.filter(pl.col("type") == kind)["f1"][0] == pytest.approx(expected, abs=5e-4)


def test_interval_contains_the_point_estimate_and_narrows_with_more_cases() -> None:
    few, many = CaseBootstrap(_mixed(1), seed=1), CaseBootstrap(_mixed(4), seed=1)
    widths = []
    for boot in (few, many):
        for kind in (None, "unit_trip", "stuck_sensor"):
            f1 = boot.f1(kind)
            assert f1.lo <= f1.point <= f1.hi, (kind, f1)
        alerts = boot.false_alerts_per_clean_day()
        assert alerts.point == pytest.approx(0.4) and alerts.lo <= alerts.point <= alerts.hi
        widths.append(boot.f1().hi - boot.f1().lo)
    assert few.f1().point == pytest.approx(many.f1().point)  # the same proportions, four times the cases
    # The width of a percentile interval shrinks as 1/√n: about half with four times the cases.
    assert 0.35 < widths[1] / widths[0] < 0.7, widths


def test_the_same_seed_gives_the_same_interval_and_another_seed_another() -> None:
    first, again, other = (CaseBootstrap(_mixed(1), seed=s).f1() for s in (3, 3, 4))
    assert first == again and (first.lo, first.hi) != (other.lo, other.hi)


def test_a_perfect_detector_scores_one_with_a_degenerate_interval() -> None:
    perfect = [_case(kind, True, delay=1) for kind in ANOMALY_TYPES for _ in range(3)] + [_case(CLEAN, False)] * 5
    boot = CaseBootstrap(perfect, resamples=300)
    assert boot.f1() == Interval(1.0, 1.0, 1.0)
    assert all(boot.f1(kind) == Interval(1.0, 1.0, 1.0) for kind in ANOMALY_TYPES)
    assert boot.false_alerts_per_clean_day() == Interval(0.0, 0.0, 0.0)
    assert boot.median_delay_minutes() == Interval(30.0, 30.0, 30.0)


def test_false_alerts_per_clean_day_counts_runs_per_day_of_clean_data() -> None:
    two_days = np.zeros(96)
    two_days[[5, 6, 7]] = 1.2  # one run of three periods
    two_days[50] = 2.0  # a second run
    two_days[95] = 1.0  # a third, at the threshold, on the last period
    one_day = np.where(np.arange(48) == 30, 1.5, 0.0)  # one run
    trip = np.zeros(48)
    trip[[10, 30]] = 3.0  # a detection, and a false positive on an anomaly case: not a clean day's
    outcomes = [evaluate_case(two_days, None), evaluate_case(one_day, None),
                evaluate_case(trip, AnomalyLabel("unit_trip", 0, start=10, duration=2))]
    assert [o.false_positives for o in outcomes] == [3, 1, 1] and [o.periods for o in outcomes] == [96, 48, 48]
    alerts = CaseBootstrap(outcomes).false_alerts_per_clean_day()
    # 4 runs over 3 days; a resample holds the two-day case twice (6 / 4 days = 1.5), the one-day case twice (2 / 2 =
    # 1.0) or each once (4 / 3): the interval runs from the smallest to the largest of those.
    assert alerts == Interval(pytest.approx(4 / 3), 1.0, 1.5)


def test_detection_delay_is_reported_in_minutes_per_type() -> None:
    def case(kind: str, first_alarm: int | None) -> CaseOutcome:
        scores = np.zeros(48)
        if first_alarm is not None:
            scores[first_alarm] = 2.0
        return evaluate_case(scores, AnomalyLabel(kind, 0, start=10, duration=6))

    outcomes = [case("unit_trip", 10), case("unit_trip", 11), case("stuck_sensor", 13), case("stuck_sensor", None)]
    boot = CaseBootstrap(outcomes)
    assert boot.median_delay_minutes("unit_trip").point == 15.0  # 0 and 30 minutes
    assert boot.median_delay_minutes("stuck_sensor") == Interval(90.0, 90.0, 90.0)  # the missed event has no delay
    assert boot.median_delay_minutes().point == 30.0  # 0, 30, 90
    assert boot.delay_quantile_minutes(0.9) == pytest.approx(78.0)  # 30 + 0.8 · 60
    assert np.isnan(boot.median_delay_minutes("unit_scaling").point)  # no such case
    rows = {row["type"]: row for row in by_type_table(outcomes).iter_rows(named=True)}
    assert (rows["unit_trip"]["median_delay_min"], rows["stuck_sensor"]["p90_delay_min"]) == (15.0, 90.0)
    assert rows["stuck_sensor"]["events"] == 2 and rows["overall"]["events"] == 4 and rows["unit_scaling"]["f1"] is None


def test_summary_has_one_row_per_detector_with_intervals_and_per_type_f1() -> None:
    summary = summary_table({"good": _mixed(1), "blind": [_case(o.kind, False) for o in _mixed(1)]}, resamples=200)
    assert summary["detector"].to_list() == ["good", "blind"]
    good, blind = summary.iter_rows(named=True)
    assert good["f1"] == pytest.approx(18 / 35, abs=5e-4) and good["f1_lo"] <= good["f1"] <= good["f1_hi"]
    assert good["f1_unit_trip"] == pytest.approx(2 / 3, abs=5e-4) and good["false_alerts_per_clean_day"] == 0.4
    assert good["median_delay_min"] == 0.0 and good["f1_unit_scaling"] is None
    assert (blind["f1"], blind["f1_lo"], blind["f1_hi"]) == (0.0, 0.0, 0.0) and blind["median_delay_min"] is None


def test_gate_compares_the_candidates_interval_lower_end_with_the_baselines_f1_plus_the_margin() -> None:
    summary = pl.DataFrame({"detector": ["GNN verifier", "3-sigma"], "f1": [0.8, 0.4], "f1_lo": [0.66, 0.3]})
    decision = gate(summary, "GNN verifier", "3-sigma")  # the issue's margin, 0.25
    assert decision.passed and (decision.candidate_f1_lo, decision.baseline_f1, decision.margin) == (0.66, 0.4, 0.25)
    assert "0.660" in decision.describe() and "passes" in decision.describe()
    assert not gate(summary, "GNN verifier", "3-sigma", margin=0.3).passed  # point 0.8 clears 0.7; the interval does not
    assert gate(summary, "GNN verifier", "3-sigma", margin=0.26).passed  # at the bound: passes
    assert not gate(summary, "GNN verifier", "3-sigma", margin=0.27).passed
    with pytest.raises(KeyError, match="no 'combined' row"):
        gate(summary, "combined", "3-sigma")


@pytest.mark.parametrize("combined_f1, passed", [(0.70, True), (0.72, True), (0.69, False)])
def test_the_gate_refuses_a_model_that_makes_the_rules_worse(combined_f1: float, passed: bool) -> None:
    """A model that clears the 3-sigma rule but adds more false alerts than detections to the rules is not promoted."""
    summary = pl.DataFrame({"detector": ["rules", "GNN verifier", "rules + GNN verifier", "3-sigma"],
                            "f1": [0.70, 0.8, combined_f1, 0.4], "f1_lo": [0.6, 0.66, 0.6, 0.3]})
    decision = gate(summary, "GNN verifier", "3-sigma", combined="rules + GNN verifier", rules="rules")
    assert decision.beats_baseline and decision.adds_to_the_rules is passed and decision.passed is passed
    assert f"rules + GNN verifier F1 {combined_f1:.3f} against rules alone 0.700" in decision.describe()
    with pytest.raises(ValueError, match="name both"):
        gate(summary, "GNN verifier", "3-sigma", combined="rules + GNN verifier")


def test_issue_targets_say_which_of_the_four_the_combination_meets() -> None:
    every_type = {f"f1_{kind}": 0.9 for kind in ANOMALY_TYPES}
    summary = pl.DataFrame([
        {"detector": "combined", "f1": 0.88, "f1_lo": 0.8, "false_alerts_per_clean_day": 0.6, **every_type, "f1_stuck_sensor": 0.55},
        {"detector": "3-sigma", "f1": 0.5, "f1_lo": 0.4, "false_alerts_per_clean_day": 3.0, **every_type},
    ])
    targets = issue_targets(summary, "combined", "3-sigma")
    assert (targets["f1_met"], targets["f1_lo_met"], targets["every_type_met"], targets["false_alerts_met"]) == (True, True, False, False)
    assert (targets["weakest_type"], targets["min_type_f1"], targets["f1_lo_goal"], targets["all_met"]) == ("stuck_sensor", 0.55, 0.75, False)
    assert not issue_targets(summary, "combined", "3-sigma", margin=0.35)["f1_lo_met"]  # 0.8 < 0.5 + 0.35
    with pytest.raises(KeyError, match="no 'GNN verifier' row"):
        issue_targets(summary, "GNN verifier", "3-sigma")
