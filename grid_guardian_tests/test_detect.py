"""The redundancy checks and data-quality detectors on real 2018 days as the stores hold them: untouched, with a fault written in, and with
the real defects the bundled files hold. Detectors are fitted once, on the training days (January–September)."""

import dataclasses
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from grid_guardian_assets.datasets import AGWS, B1610, DEMAND_PUBLISH_MARGIN, FREQ, FUELHH, INDO, ITSDO, DatasetSpec
from grid_guardian_assets.detect.calibration import (
    DetectorCalibration,
    PeriodDetector,
    detect,
    fit_detectors,
    known_bad_periods,
)
from grid_guardian_assets.detect.data_quality import (
    DUPLICATED_PERIOD,
    INFEED_LOSS,
    MISSING_PERIOD,
    STUCK_READING,
    UNIT_JUMP,
    UNSEEN_SIGN,
    FuelChecks,
    FuelLimits,
    FuelTrack,
    integrity_findings,
    sign_of,
    step_decade,
    step_decades,
)
from grid_guardian_assets.detect.findings import Finding
from grid_guardian_assets.detect.measurements import INDO as INDO_COLUMN
from grid_guardian_assets.detect.measurements import StoredMeasurements
from grid_guardian_assets.detect.redundancy import (
    FALSE_ALARM_RATE,
    PairRelation,
    local_slot,
    local_slots,
    period_suspects,
    step_residuals,
)
from grid_guardian_assets.detect.schedules import SCHEDULE_DAYS, ScheduledFalls
from grid_guardian_assets.dev.recorded_store import WINDOWS_2018
from grid_guardian_assets.grid.branch_limits import BranchLimits
from grid_guardian_assets.grid.dcflow import DCPowerFlow
from grid_guardian_assets.grid.mapping import bus_mapping
from grid_guardian_assets.grid.network import reduced_network
from grid_guardian_assets.replay import agws, bmrs_history, synthetic
from grid_guardian_assets.settlement import PERIOD, day_bounds_utc, days_between, period_count, settlement_periods
from grid_guardian_assets.stream.dead_letters import REJECTED_READING, rejected_reading_finding
from grid_guardian_assets.stream.messages import Origin, RawMessage, Reading, Rejected, encode_record, parse_messages
from grid_guardian_assets.stream.processor import LiveProcessor
from grid_guardian_assets.stream.topics import DLQ_TOPIC, topic_for
from grid_guardian_assets.windows import DayWindow, Windows

# A validation day and a held-out day on which no detector comes near its threshold untouched (the wind rises
# through both, by 7 GW and 5 GW; IFA imports all day).
DAYS = [dt.date(2018, 9, 23), dt.date(2018, 10, 21)]
BALANCE, WIND = "redundancy:balance", "redundancy:wind"
FUEL_SOURCES = (INFEED_LOSS, STUCK_READING, UNSEEN_SIGN, UNIT_JUMP)


@pytest.fixture(scope="module")
def calibration(recorded_2018: StoredMeasurements) -> DetectorCalibration:
    return fit_detectors(recorded_2018, WINDOWS_2018)


@pytest.fixture(scope="module")
def day_table(recorded_2018: StoredMeasurements) -> Callable[..., pl.DataFrame]:
    """A day's (or days') stored measurement table."""
    def table(*days: dt.date, b1610: bool = True) -> pl.DataFrame:
        return recorded_2018.table(days, b1610_days=None if b1610 else ())
    return table


def with_fault(table: pl.DataFrame, column: str, periods: range | list[int], change: Callable[[pl.Expr], pl.Expr]) -> pl.DataFrame:
    """``table`` with ``column`` rewritten in the given settlement periods."""
    rewritten = pl.when(pl.col("settlementPeriod").is_in(list(periods))).then(change(pl.col(column))).otherwise(pl.col(column))
    return table.with_columns(rewritten.alias(column))


def alarms(calibration: DetectorCalibration, table: pl.DataFrame) -> list[Finding]:
    return detect(calibration, table).alarms()


def period_of(finding: Finding) -> int:
    return int(finding.detail["settlement_period"])


def by_source(found: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in found:
        out.setdefault(f.source, []).append(f)
    return out


# --- calibration ------------------------------------------------------------------------------------------------
def test_calibration_is_learned_on_training_days_and_round_trips_through_json(calibration: DetectorCalibration, tmp_path: Path) -> None:
    assert calibration.fit_days == (dt.date(2018, 1, 1), dt.date(2018, 6, 30))
    assert calibration.validation_days == (dt.date(2018, 7, 1), dt.date(2018, 9, 30))
    assert {BALANCE, WIND, "redundancy:interconnector:INTFR", "redundancy:interconnector:INTNED",
            "redundancy:interconnector:INTIRL", "redundancy:interconnector:INTEW", "redundancy:b1610:CCGT+OCGT",
            "redundancy:b1610:WIND"} <= set(calibration.relations)
    wind = calibration.relations[WIND]
    assert 0.9 < wind.slope < 1.1 and wind.intercept < -100  # learned: FUELHH's wind is AGWS's less the non-BM part
    # Signed FUELHH and NESO's signed flows: nothing to floor.
    assert all(r.reference_floor is None for r in calibration.relations.values())
    assert calibration.relations[BALANCE].check.reference == ("INDO",)
    assert calibration.relations[BALANCE].spread_mw < 80  # signed supply less national demand: losses and station load
    for relation in calibration.relations.values():
        assert relation.threshold >= 3.0 and relation.step_threshold >= 3.0 and relation.false_alarm_rate == FALSE_ALARM_RATE
        assert relation.gross_errors < 0.01 * relation.validation_periods
    for check in (BALANCE, WIND):  # their residuals wander: from one period to the next they move less
        assert calibration.relations[check].step_spread_mw < 0.7 * calibration.relations[check].spread_mw
    assert calibration.fuel_limits["INTFR"].signs == ("negative", "positive")  # IFA exported as well as imported
    assert calibration.fuel_limits["PS"].signs == ("negative", "zero", "positive")
    # BMRS's demand against NESO's: two publishers' figures of one quantity, tens of MW apart.
    assert calibration.relations["redundancy:demand:INDO"].spread_mw < 80
    assert calibration.relations["redundancy:demand:ITSDO"].spread_mw < 150
    assert calibration.fuel_limits["CCGT"].longest_repeat == 2
    path = tmp_path / "calibration.json"
    calibration.save(path)
    assert DetectorCalibration.load(path) == calibration
    assert json.loads(path.read_text())["relations"][WIND]["check"]["reference_name"] == "AGWS:wind"


def test_windows_that_overlap_are_refused_so_no_fit_reads_held_out_days() -> None:
    with pytest.raises(ValueError, match="overlaps the held_out window"):
        Windows(DayWindow(dt.date(2018, 1, 1), dt.date(2018, 6, 30)), DayWindow(dt.date(2018, 7, 1), dt.date(2018, 10, 5)),
                DayWindow(dt.date(2018, 10, 1), dt.date(2018, 12, 31)))


def test_a_calibration_without_agws_neso_or_b1610_fits_the_checks_it_can_and_names_the_others(
        recorded_2018: StoredMeasurements) -> None:
    only_bmrs = StoredMeasurements(recorded_2018.store, datasets=(FUELHH, INDO, ITSDO))
    windows = Windows(DayWindow(dt.date(2018, 1, 1), dt.date(2018, 2, 28)), DayWindow(dt.date(2018, 3, 1), dt.date(2018, 3, 31)),
                      DayWindow(dt.date(2018, 4, 1), dt.date(2018, 4, 30)))
    fitted = fit_detectors(only_bmrs, windows)
    assert set(fitted.relations) == {BALANCE}
    assert WIND in fitted.not_fitted and "AGWS not stored" in fitted.not_fitted[WIND]
    assert "NESO not stored" in fitted.not_fitted["redundancy:demand:INDO"]
    assert "redundancy:interconnector:INTFR" in fitted.not_fitted and "redundancy:b1610:WIND" in fitted.not_fitted
    assert DetectorCalibration.from_json(fitted.to_json()).not_fitted == fitted.not_fitted


def test_a_periods_fuel_rows_come_by_node_and_source_whichever_detectors_fire() -> None:
    limits = {fuel: FuelLimits(fuel, longest_repeat=1, signs=("positive",), max_step_decades=0.2, periods=100,
                               drop_quantile_mw=None if fuel.startswith("INT") else 500.0)
              for fuel in ("WIND", "CCGT", "NUCLEAR", "INTFR")}
    checks = FuelChecks(limits)
    key = {"settlementDate": dt.date(2018, 7, 1), "settlementPeriod": 5, "start": dt.datetime(2018, 6, 30, 1, tzinfo=dt.UTC)}
    previous = {"FUELHH:WIND": FuelTrack(900.0, 3), "FUELHH:CCGT": FuelTrack(1.0, 1), "FUELHH:NUCLEAR": FuelTrack(7000.0, 9),
                "FUELHH:INTFR": FuelTrack(1000.0, 1)}
    # WIND stuck for a fourth period, CCGT jumping 1 -> 1000 MW, NUCLEAR losing 1000 MW and reading below zero at once
    # (a sign no generator shows), INTFR flipping sign and shrinking (a factor; an interconnector's sign and fall are not
    # judged: it exports as readily as it imports).
    values = {"FUELHH:WIND": 900.0, "FUELHH:CCGT": 1000.0, "FUELHH:NUCLEAR": -50.0, "FUELHH:INTFR": -10.0, "ITSDO": 3e4}
    rows, tracks = checks.score(key, values, previous)
    order = [(r["node"], r["source"]) for r in rows]
    assert order == sorted(order) and {s for _, s in order} == {INFEED_LOSS, STUCK_READING, UNIT_JUMP, UNSEEN_SIGN}
    assert all(r["settlementPeriod"] == 5 for r in rows) and tracks["FUELHH:WIND"] == FuelTrack(900.0, 4)
    assert [s for n, s in order if n == "FUELHH:INTFR"] == [STUCK_READING, UNIT_JUMP]
    assert [s for n, s in order if n == "FUELHH:NUCLEAR"] == [INFEED_LOSS, STUCK_READING, UNIT_JUMP, UNSEEN_SIGN]
    assert [s for n, s in order if n == "FUELHH:WIND"] == [STUCK_READING]  # no fall: no infeed_loss row
    (loss,) = [r for r in rows if r["source"] == INFEED_LOSS]
    assert (loss["node"], loss["evidence"], loss["limit"], loss["score"]) == ("FUELHH:NUCLEAR", 7050.0, 500.0, 14.1)


nan = float("nan")


@pytest.mark.parametrize(("residuals", "steps"), [
    ([1.0, 2.0, 4.0, 1.0], [nan, 1.0, 2.5, -2.0]),  # the mean of the two periods before; the first has none
    ([0.0, 9.0, 1.0, 2.0], [nan, 9.0, 1.0, 1.0]),  # a gross residual (beyond 6 spreads) is no level to step from
    ([0.0, nan, 1.0, 7.0, 8.0, 9.0], [nan, nan, 1.0, 6.0, 7.0, nan]),  # unknown or gross ones do not count; none: NaN
])
def test_a_step_is_the_residual_less_the_mean_of_the_usable_two_before(residuals: list[float], steps: list[float]) -> None:
    np.testing.assert_allclose(step_residuals(np.array(residuals)), steps, equal_nan=True)


def test_the_scored_step_is_the_fitted_step(calibration: DetectorCalibration, day_table: Callable[..., pl.DataFrame]) -> None:
    """Thresholds are fitted with ``step_residuals`` over tables; periods are scored one by one (``PeriodDetector``,
    carrying the residuals before). On a real day with a 700 MW fault (beyond the gross level, so the baseline skips
    it) both give the same step."""
    table = with_fault(day_table(DAYS[0]), INDO_COLUMN, [20], lambda v: v + 700)
    rows = detect(calibration, table).redundancy.filter(pl.col("check") == BALANCE).sort("start")
    relation = calibration.relations[BALANCE]
    fitted = step_residuals(rows["normalised_residual"].to_numpy()) * relation.spread_mw / relation.step_spread_mw
    assert abs(rows["normalised_residual"][19]) > 6  # period 20's residual is gross: periods 21 and 22 step from the rest
    np.testing.assert_allclose(rows["step_residual"].to_numpy(), fitted, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize(("instant", "slot"), [
    (dt.datetime(2018, 1, 15, 3, 30, tzinfo=dt.UTC), 7),  # GMT: 03:30
    (dt.datetime(2018, 7, 15, 3, 0, tzinfo=dt.UTC), 8),  # BST: an hour ahead, 04:00
    (dt.datetime(2018, 10, 28, 0, 30, tzinfo=dt.UTC), 3),  # the autumn clock change: 01:30 BST
    (dt.datetime(2018, 10, 28, 1, 30, tzinfo=dt.UTC), 3),  # and 01:30 GMT, the same local half-hour again
])
def test_the_time_of_day_slot_is_the_local_half_hour_in_a_table_and_one_by_one(instant: dt.datetime, slot: int) -> None:
    assert local_slot(instant) == slot
    assert local_slots(pl.Series([instant, None], dtype=pl.Datetime("us", "UTC"))).tolist() == [slot, -1]


def test_the_time_of_day_offset_is_interpolated_between_the_hours_middles_around_the_clock(
        calibration: DetectorCalibration) -> None:
    """Each hour's median holds at its middle; a half-hour reads a quarter of the way to its neighbour's, so that no
    step in the offset is read as a step in the residual (midnight wraps to 23:00)."""
    medians = tuple(float(h) * 10 for h in range(24))
    relation = dataclasses.replace(calibration.relations[BALANCE], time_of_day_offset_mw=medians)
    np.testing.assert_allclose(relation.offsets(np.array([8, 9, 0, 47, -1])), [37.5, 42.5, 57.5, 172.5, 0.0])


def test_the_balance_learns_its_nightly_offset_and_scores_with_it_one_period_at_a_time(
        calibration: DetectorCalibration, day_table: Callable[..., pl.DataFrame]) -> None:
    """Signed supply stands above INDO's line at night and below it in the late afternoon (station load and losses follow
    the day's load); a period scored one by one (``PeriodDetector``) reads the offset of its local hour, as the fit did."""
    relation = calibration.relations[BALANCE]
    offsets = np.array(relation.time_of_day_offset_mw)
    assert offsets[0:6].mean() > 10 > 0 > -10 > offsets[15:19].mean()
    table = day_table(DAYS[0])
    rows = detect(calibration, table).redundancy.filter(pl.col("check") == BALANCE).sort("start")
    measured, reference = relation.check.sides(table.sort("start"))
    fitted = relation.normalised(measured, reference, local_slots(table.sort("start")["start"]))
    np.testing.assert_allclose(rows["normalised_residual"].to_numpy(), fitted, rtol=1e-12)


def test_a_calibration_stored_before_the_time_of_day_was_learned_loads_with_no_offset(
        calibration: DetectorCalibration) -> None:
    stored = calibration.relations[BALANCE].to_json()
    del stored["time_of_day_offset_mw"]
    relation = PairRelation.from_json(stored)
    assert relation.time_of_day_offset_mw == ()
    assert relation.expected(np.array([30_000.0]), np.array([4])) == pytest.approx(
        relation.slope * 30_000.0 + relation.intercept)


# --- untouched days ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("previous", "value"), [(1000.0, 1.0), (1.0, 1000.0), (-250.0, 250.0), (0.0, 5.0), (5.0, 0.0),
                                                 (float("nan"), 5.0), (5.0, float("nan")), (812.5, 812.5)])
def test_the_live_paths_step_of_one_reading_is_the_fitted_tables_step(previous: float, value: float) -> None:
    """The limits are fitted with ``step_decades`` over tables, the live path scores with ``step_decade``."""
    expected = step_decades(np.array([previous, value]))[1]
    assert step_decade(previous, value) == pytest.approx(expected, nan_ok=True)


@pytest.mark.parametrize("day", DAYS)
def test_an_untouched_day_raises_no_alarm(calibration: DetectorCalibration, day: dt.date, day_table: Callable[..., pl.DataFrame]) -> None:
    table = day_table(day)
    assert table["FUELHH:PS"].min() < 0  # pumping reads negative, as the API serves it: normal, no sign alarm
    found = detect(calibration, table)
    assert found.redundancy["check"].n_unique() == len(calibration.relations)  # every check ran, B1610 included
    assert found.redundancy.group_by("check").len()["len"].to_list() == [48] * len(calibration.relations)
    assert found.redundancy["score"].max() < 1 and found.fuel["score"].max() < 1
    assert found.alarms() == []
    assert integrity_findings(FUELHH, day, bmrs_history.fuelhh_records(day)) == []
    assert integrity_findings(AGWS, day, agws.agws_day_records(day)) == []


@pytest.mark.parametrize("day", [dt.date(2023, 3, 26), dt.date(2023, 10, 29)])
def test_clock_change_days_are_whole_with_46_and_50_periods(day: dt.date) -> None:
    records = bmrs_history.fuelhh_records(day)
    assert max(r["settlementPeriod"] for r in records) == period_count(day) in (46, 50)
    assert integrity_findings(FUELHH, day, records) == []
    start, end = day_bounds_utc(day)
    demand = [r for r in bmrs_history.demand_records("INDO", start, end + DEMAND_PUBLISH_MARGIN) if r["settlementDate"] == day.isoformat()]
    assert integrity_findings(INDO, day, demand) == []


@pytest.mark.parametrize("day, missing", [(dt.date(2018, 3, 25), 46), (dt.date(2018, 10, 28), 48)])
def test_a_clock_change_days_period_the_files_never_held_is_a_missing_period(day: dt.date, missing: int) -> None:
    found = integrity_findings(FUELHH, day, bmrs_history.fuelhh_records(day))
    assert [(f.node, f.source, period_of(f)) for f in found] == [("FUELHH", MISSING_PERIOD, missing)]


# --- redundancy checks with a fault written in ------------------------------------------------------------------
@pytest.mark.parametrize("day", DAYS)
def test_indo_off_by_1500_mw_alarms_the_national_balance_and_names_indo(
        calibration: DetectorCalibration, day: dt.date, day_table: Callable[..., pl.DataFrame]) -> None:
    """INDO is in two checks, the balance (against signed supply) and NESO's ND: both alarm, and both name INDO alone,
    as a state estimator names the one measurement that explains every residual."""
    table = with_fault(day_table(day), "INDO", range(20, 23), lambda v: v + 1500)
    found = alarms(calibration, table)
    checks = (BALANCE, "redundancy:demand:INDO")
    assert {(f.source, f.node, period_of(f)) for f in found} == {(c, "INDO", p) for c in checks for p in (20, 21, 22)}
    assert all(f.dataset == "INDO" and f.detail["candidates"] == "INDO" for f in found)
    suspects = period_suspects(detect(calibration, table).redundancy).filter(pl.col("score") >= 1)
    rows = suspects.select("settlementPeriod", "check", "suspect").rows()  # a period's most alarming check names it
    assert [(p, suspect) for p, _, suspect in rows] == [(p, "INDO") for p in (20, 21, 22)] and {c for _, c, _ in rows} <= set(checks)


@pytest.mark.parametrize("day", DAYS)
def test_frozen_fuelhh_wind_alarms_wind_balance_b1610_and_stuck_and_names_fuelhh_wind(
        calibration: DetectorCalibration, day: dt.date, day_table: Callable[..., pl.DataFrame]) -> None:
    frozen = range(17, 49)  # the meter sticks at period 16's reading for the rest of the day
    table = day_table(day)
    stuck_at = table.filter(pl.col("settlementPeriod") == 16)["FUELHH:WIND"].item()
    found = by_source(alarms(calibration, with_fault(table, "FUELHH:WIND", frozen, lambda v: pl.lit(stuck_at))))
    assert set(found) == {WIND, BALANCE, "redundancy:b1610:WIND", STUCK_READING}
    for source, findings in found.items():
        assert {f.node for f in findings} == {"FUELHH:WIND"}, source
        assert {period_of(f) for f in findings} <= set(frozen), source
    assert min(period_of(f) for f in found[STUCK_READING]) == 16 + 2 * calibration.fuel_limits["WIND"].longest_repeat
    assert len(found[WIND]) >= 5 and len(found["redundancy:b1610:WIND"]) == len(frozen)


@pytest.mark.parametrize("day", DAYS)
def test_an_interconnector_sign_flip_alarms_and_names_fuelhh_intfr(
        calibration: DetectorCalibration, day: dt.date, day_table: Callable[..., pl.DataFrame]) -> None:
    """A reversed flow is normal on signed data, so the sign alone says nothing (no ``unseen_sign``): NESO's own meter of
    the link and the national balance tell the flipped reading from a real reversal."""
    table = with_fault(day_table(day), "FUELHH:INTFR", range(30, 33), lambda v: -v)
    found = by_source(alarms(calibration, table))
    assert set(found) == {"redundancy:interconnector:INTFR", BALANCE}
    for findings in found.values():
        assert {(f.node, period_of(f)) for f in findings} == {("FUELHH:INTFR", p) for p in (30, 31, 32)}
    assert all(f.score > 10 for f in found["redundancy:interconnector:INTFR"])


def test_a_real_b1630_wind_drop_out_is_blamed_on_agws(calibration: DetectorCalibration, day_table: Callable[..., pl.DataFrame]) -> None:
    """2018-11-20 (held out): B1630's offshore wind reads 168 MW in period 34, ~4,000 MW either side; FUELHH agrees
    with ITSDO and B1610, so the wind check names AGWS."""
    day = dt.date(2018, 11, 20)
    found = [f for f in alarms(calibration, day_table(day)) if f.source == WIND]
    assert [(f.node, period_of(f)) for f in found] == [("AGWS:wind", 34)]
    assert found[0].dataset == "AGWS" and found[0].score > 2


# --- data-quality detectors with a fault written in -------------------------------------------------------------
@pytest.mark.parametrize("day", DAYS)
def test_agws_wind_off_by_1200_mw_alarms_the_wind_checks_step_and_names_agws(
        calibration: DetectorCalibration, day: dt.date, day_table: Callable[..., pl.DataFrame]) -> None:
    """1,200 MW is under half the wind check's residual threshold (2,604 MW) but over its step threshold (907 MW):
    the step alarms where the fault starts and where it ends, naming AGWS; the residual alone would not."""
    relation = calibration.relations[WIND]
    assert relation.step_spread_mw * relation.step_threshold < 1200 < relation.spread_mw * relation.threshold / 2
    table = with_fault(day_table(day), "AGWS:Wind Onshore", [20, 21], lambda v: v + 1200)
    found = alarms(calibration, table)
    assert {(f.source, f.node, f.dataset, period_of(f)) for f in found} == {(WIND, "AGWS:wind", "AGWS", p) for p in (20, 22)}
    assert all(abs(f.detail["normalised_residual"]) < relation.threshold for f in found)
    assert [np.sign(f.detail["step_residual"]) for f in sorted(found, key=period_of)] == [-1, 1]  # expected FUELHH rose, then fell


@pytest.mark.parametrize("day", DAYS)
@pytest.mark.parametrize("factor", [1000, 1 / 1000])
def test_a_units_error_alarms_unit_jump_and_the_b1610_and_balance_checks(
        calibration: DetectorCalibration, day: dt.date, factor: float, day_table: Callable[..., pl.DataFrame]) -> None:
    table = with_fault(day_table(day), "FUELHH:CCGT", [30], lambda v: v * factor)
    found = by_source(alarms(calibration, table))
    assert set(found) == {UNIT_JUMP, INFEED_LOSS, BALANCE, "redundancy:b1610:CCGT+OCGT"}
    assert {(f.node, period_of(f)) for f in found[UNIT_JUMP]} == {("FUELHH:CCGT", 30), ("FUELHH:CCGT", 31)}  # in, and back
    falling = 30 if factor < 1 else 31  # the fall: into a reading 1000 times too small, or back from one too large
    assert {(f.node, period_of(f)) for f in found[INFEED_LOSS]} == {("FUELHH:CCGT", falling)}
    assert all(2.9 < f.detail["step_decades"] < 3.1 for f in found[UNIT_JUMP])
    for source in (BALANCE, "redundancy:b1610:CCGT+OCGT"):
        assert {(f.node, period_of(f)) for f in found[source]} == {("FUELHH:CCGT", 30)}


@pytest.mark.parametrize("day", DAYS)
def test_a_nuclear_trip_picked_up_by_ccgt_alarms_infeed_loss_and_names_fuelhh_nuclear(calibration: DetectorCalibration,
                                                                                       day: dt.date, day_table: Callable[..., pl.DataFrame]) -> None:
    """A reactor trips at period 20 and stays off: nuclear falls 900 MW and CCGT rises as much, so supply still
    meets demand and the balance stays silent; only the fall names it. A 300 MW fall, within what nuclear does in
    training, does not alarm. (B1610 is left out: a real trip moves it too, and it is published days later.)"""
    limit = calibration.fuel_limits["NUCLEAR"].drop_limit_mw
    assert 300 < limit < 900 < calibration.fuel_limits["CCGT"].drop_limit_mw
    table = day_table(day, b1610=False)

    def tripped(lost: float) -> pl.DataFrame:
        picked_up = with_fault(table, "FUELHH:CCGT", range(20, 49), lambda v: v + lost)
        return with_fault(picked_up, "FUELHH:NUCLEAR", range(20, 49), lambda v: v - lost)

    found = alarms(calibration, tripped(900))
    assert [(f.source, f.node, period_of(f)) for f in found] == [(INFEED_LOSS, "FUELHH:NUCLEAR", 20)]
    assert found[0].detail["unscheduled_drop_mw"] > 800 and found[0].detail["drop_limit_mw"] == limit
    assert alarms(calibration, tripped(300)) == []


def test_a_fall_recurring_at_a_time_of_day_is_expected_there_and_one_days_fall_is_not() -> None:
    schedule = ScheduledFalls(["FUELHH:BIOMASS"])
    first = dt.date(2018, 8, 1)
    for k in range(SCHEDULE_DAYS):
        day = first + dt.timedelta(days=k)
        for number in range(1, 49):
            ramp = 600.0 if number == 47 else 0.0
            trip = 900.0 if (k, number) == (3, 20) else 0.0  # one day's trip at period 20
            schedule.add(day, number, {"FUELHH:BIOMASS": ramp + trip, "FUELHH:WIND": 50.0})
    today = first + dt.timedelta(days=SCHEDULE_DAYS)
    assert schedule.expected(today, 47) == {"FUELHH:BIOMASS": 600.0}
    assert schedule.expected(today, 48) == {"FUELHH:BIOMASS": 600.0}  # a schedule may move by a half-hour
    assert schedule.expected(today, 20) == {"FUELHH:BIOMASS": 0.0}  # the median leaves one day's trip out
    assert schedule.expected(today, 10) == {"FUELHH:BIOMASS": 0.0}  # only the measurements it is told to keep
    restored = ScheduledFalls(["FUELHH:BIOMASS"])
    restored.load_json(json.loads(json.dumps(schedule.to_json())))
    assert restored.falls == schedule.falls
    # A day more than SCHEDULE_DAYS before the newest is forgotten.
    schedule.add(today + dt.timedelta(days=1), 1, {"FUELHH:BIOMASS": 0.0})
    assert min(day for day, _ in schedule.falls) == first + dt.timedelta(days=1)


def test_a_real_nightly_biomass_ramp_does_not_alarm_infeed_loss_and_a_trip_that_day_does(
        calibration: DetectorCalibration, day_table: Callable[..., pl.DataFrame]) -> None:
    """2018-09-14: biomass falls 820 MW at 23:00 (period 47), as it fell at that hour through the week before (the
    median of the days' largest falls there is 230 MW). At January to June's biomass limit, 606 MW, the raw fall
    alarmed; beyond the week's usual fall it does not. A 700 MW trip at 10:00 (period 20, picked up by CCGT) alarms."""
    day = dt.date(2018, 9, 14)
    limits = {**calibration.fuel_limits,
              "BIOMASS": dataclasses.replace(calibration.fuel_limits["BIOMASS"], drop_quantile_mw=606.0)}
    spring = DetectorCalibration(calibration.relations, limits, calibration.fit_days, calibration.validation_days,
                                 calibration.false_alarm_rate)
    week = day_table(*days_between(day - dt.timedelta(days=SCHEDULE_DAYS), day - dt.timedelta(days=1)), b1610=False)
    table = day_table(day, b1610=False)
    tripped = with_fault(with_fault(table, "FUELHH:CCGT", range(20, 49), lambda v: v + 700),
                         "FUELHH:BIOMASS", range(20, 49), lambda v: v - 700)

    def infeed_alarms(rows: pl.DataFrame, learned: bool) -> list[tuple[str, int]]:
        detector = PeriodDetector(spring)
        if learned:
            detector.learn_schedule(week)
        found = []
        for row in rows.iter_rows(named=True):
            scored = detector.score(row["settlementDate"], row["settlementPeriod"], row["start"], row)
            found += [(f.node, period_of(f)) for f in scored.findings() if f.alert and f.source == INFEED_LOSS]
        return found

    assert infeed_alarms(table, learned=False) == [("FUELHH:BIOMASS", 47)]
    assert infeed_alarms(table, learned=True) == []
    assert infeed_alarms(tripped, learned=True) == [("FUELHH:BIOMASS", 20)]


@pytest.mark.parametrize("day", DAYS)
def test_a_reading_repeated_longer_than_its_fuel_ever_does_alarms_stuck_reading(
        calibration: DetectorCalibration, day: dt.date, day_table: Callable[..., pl.DataFrame]) -> None:
    limit = calibration.fuel_limits["BIOMASS"].repeat_limit
    table = day_table(day)
    readings = table["FUELHH:BIOMASS"].to_list()
    first = next(p for p in range(5, 48) if readings[p - 1] != readings[p - 2])  # a run starts here
    held = readings[first - 1]
    found = [f for f in alarms(calibration, with_fault(table, "FUELHH:BIOMASS", range(first, first + limit + 3), lambda v: pl.lit(held)))
             if f.source == STUCK_READING]
    assert [(f.node, period_of(f)) for f in found] == [("FUELHH:BIOMASS", p) for p in range(first + limit, first + limit + 3)]
    assert found[0].score == pytest.approx(1.0) and found[0].detail["run_periods"] == limit + 1
    # As long as the limit and no longer is still within what biomass does.
    shorter = with_fault(table, "FUELHH:BIOMASS", range(first, first + limit), lambda v: pl.lit(held))
    assert [f for f in alarms(calibration, shorter) if f.source == STUCK_READING] == []


@pytest.mark.parametrize("day", DAYS)
def test_missing_periods_are_found_whole_and_per_fuel(day: dt.date) -> None:
    records = [r for r in bmrs_history.fuelhh_records(day)
               if r["settlementPeriod"] != 17 and not (r["settlementPeriod"] == 18 and r["fuelType"] == "WIND")]
    found = integrity_findings(FUELHH, day, records)
    assert [(f.node, f.source, period_of(f)) for f in found] == [("FUELHH", MISSING_PERIOD, 17), ("FUELHH:WIND", MISSING_PERIOD, 18)]
    assert all(f.alert and f.dataset == "FUELHH" for f in found)
    assert found[0].time == settlement_periods(day)[16].start


@pytest.mark.parametrize("day", DAYS)
def test_duplicated_periods_are_found_and_say_whether_the_copies_agree(day: dt.date) -> None:
    records = bmrs_history.fuelhh_records(day)
    again = [dict(r) for r in records if r["settlementPeriod"] == 5]
    changed = [{**r, "generation": r["generation"] + 100} for r in records if r["settlementPeriod"] == 9 and r["fuelType"] == "WIND"]
    found = integrity_findings(FUELHH, day, records + again + changed)
    assert [(f.node, f.source, period_of(f), f.detail["conflicting"]) for f in found] == [
        ("FUELHH", DUPLICATED_PERIOD, 5, "no"), ("FUELHH:WIND", DUPLICATED_PERIOD, 9, "yes")]


def test_the_real_files_missing_periods_are_found() -> None:
    day = dt.date(2018, 1, 23)  # Elexon never published FUELHH periods 21, 23, 25 and 26
    found = integrity_findings(FUELHH, day, bmrs_history.fuelhh_records(day))
    assert [(f.node, f.source, period_of(f)) for f in found] == [("FUELHH", MISSING_PERIOD, p) for p in (21, 23, 25, 26)]
    gap = dt.date(2018, 1, 29)  # B1630 lacks periods 35-38
    found = integrity_findings(AGWS, gap, agws.agws_day_records(gap))
    assert [(f.node, f.source, period_of(f)) for f in found] == [("AGWS", MISSING_PERIOD, p) for p in range(35, 39)]


# --- dead letters -----------------------------------------------------------------------------------------------
def test_a_dead_lettered_reading_is_an_alert_on_its_dataset() -> None:
    record = {**bmrs_history.fuelhh_records(DAYS[0])[0], "generation": "lots"}
    value = json.dumps(record).encode()
    finding = rejected_reading_finding(Rejected(Origin("bmrs.FUELHH", 2, 41), b"k", value, "generation='lots' is not a valid int"))
    assert (finding.node, finding.dataset, finding.source, finding.alert) == ("FUELHH", "FUELHH", REJECTED_READING, True)
    assert finding.time == dt.datetime.fromisoformat(record["startTime"].replace("Z", "+00:00"))
    assert finding.detail["kafka_origin"] == "bmrs.FUELHH/2@41" and "lots" in finding.detail["error"]
    now = dt.datetime(2024, 1, 15, 12, tzinfo=dt.UTC)
    garbage = rejected_reading_finding(Rejected(Origin("bmrs.FREQ", 0, 7), None, b"{not json", "value is not JSON"), now=now)
    assert (garbage.node, garbage.time) == ("FREQ", now)
    stray = rejected_reading_finding(Rejected(Origin("other.topic", 0, 1), None, b"{}", "not a BMRS topic"), now=now)
    assert (stray.node, stray.dataset) == ("other.topic", "other.topic") and DLQ_TOPIC == "bmrs.dlq"


def test_the_detectors_import_neither_dagster_nor_torch() -> None:
    """Assets and the live job import ``detect``; it must stay usable without either."""
    probe = "import sys, grid_guardian_assets.detect.calibration; print(sorted(m for m in ('dagster', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", probe], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


# --- one detector: the live job's period-by-period path equals the batch detector --------------------------------
def _readings(spec: DatasetSpec, records: list[dict], offset: int) -> list[Reading]:
    raws = [RawMessage(Origin(topic_for(spec), 0, offset + i), *encode_record(spec, r)) for i, r in enumerate(records)]
    good, bad = parse_messages(spec, raws)
    assert bad == []
    return good


def _live_processor(calibration: DetectorCalibration | None) -> LiveProcessor:
    network = reduced_network()
    loose = BranchLimits(np.full(network.n_branches, 10.0), np.zeros(network.n_branches, bool))  # no overloads
    detectors = PeriodDetector(calibration, keep_periods=97) if calibration else None
    return LiveProcessor(bus_mapping(network), DCPowerFlow(network), loose, None, detectors, fuel_settle_s=0.0)


@pytest.mark.parametrize(("shift", "alarming"), [(1500, (20, 21, 22)), (250, (20, 23))])
def test_live_findings_equal_the_batch_detectors_on_a_real_day_with_a_fault(calibration: DetectorCalibration, shift: float,
                                                                            alarming: tuple[int, ...],
                                                                            day_table: Callable[..., pl.DataFrame]) -> None:
    """The day's real FUELHH, INDO (``shift`` MW too high in periods 20–22), AGWS and B1610 readings, sent through
    the live job's processor period by period (its state carried through a restart at period 22, so that the steps of
    periods 22 and 23 stand on residuals from before it), end with the same detector findings as the batch detector
    over the same readings' measurement table. 1,500 MW alarms the balance's residual in every faulty period; 250 MW,
    under its threshold, alarms its step where the fault starts and where it ends. NESO's interconnector flows have no
    topic: the batch table leaves them out as the live job lacks them, and their checks do not run."""
    day, faulty = DAYS[0], (20, 21, 22)
    table = with_fault(day_table(day), INDO_COLUMN, faulty, lambda v: v + shift)
    batch = detect(calibration, table.select(pl.exclude("^NESO:.*$"))).findings()
    start, end = day_bounds_utc(day)
    demand = {code: [r for r in bmrs_history.demand_records(code, start, end + DEMAND_PUBLISH_MARGIN) if r["settlementDate"] == day.isoformat()]
              for code in ("INDO", "ITSDO")}
    indo = [{**r, "demand": r["demand"] + shift} if r["settlementPeriod"] in faulty else r for r in demand["INDO"]]
    records = [(FUELHH, bmrs_history.fuelhh_records(day)), (INDO, indo), (ITSDO, demand["ITSDO"]), (AGWS, agws.agws_day_records(day))]

    processor, live = _live_processor(calibration), []
    for period in settlement_periods(day):
        if period.number == 22:  # a restart: the next process loads the state the last batch stored
            state = json.loads(json.dumps(processor.state()))
            processor = _live_processor(calibration)
            processor.load_state(state)
        readings = [r for spec, rows in records
                    for r in _readings(spec, [x for x in rows if x["settlementPeriod"] == period.number], 1000 * period.number)]
        readings += _readings(B1610, synthetic.b1610_records(day, period.number), 1000 * period.number + 500)
        now = float(period.number)
        live += processor.add(readings, now=now) + processor.tick(now=now)  # the tick settles B1610: a rescore

    # A period is rescored as its references arrive (ITSDO and AGWS at once here, B1610 on the tick); its last score
    # stands: one finding per redundancy check, and one per fuel type and detector.
    def key(f: Finding) -> tuple:
        return f.source, f.time, f.node if f.source in FUEL_SOURCES else ""

    final = {key(f): f for f in live if f.source in {*calibration.relations, *FUEL_SOURCES}}
    assert {key(f) for f in batch} == set(final)
    for f in batch:
        mine = final[key(f)]
        assert (mine.node, mine.dataset, mine.detail["settlement_period"]) == (f.node, f.dataset, f.detail["settlement_period"])
        assert mine.score == pytest.approx(f.score, abs=1e-9, rel=0)
    alarms = sorted((f.source, f.node, period_of(f), f.origin.topic) for f in final.values() if f.alert)
    assert alarms == [(BALANCE, "INDO", p, "bmrs.INDO") for p in alarming]
    assert {f.source for f in final.values()} >= {BALANCE, WIND, "redundancy:b1610:WIND", STUCK_READING}


def test_references_read_days_ahead_of_fuelhh_still_reach_their_periods_checks(calibration: DetectorCalibration) -> None:
    """A catch-up reads each topic in its own chunks: here a week of INDO and AGWS arrives before any of its FUELHH
    (and FREQ, at 15-s samples, runs days ahead too). Each period's redundancy checks still run when its FUELHH
    comes, with the same findings as when every dataset arrives in publication order, period by period."""
    days = days_between(dt.date(2018, 9, 17), dt.date(2018, 9, 23))  # more than the book's two-day window
    start, end = day_bounds_utc(days[0])[0], day_bounds_utc(days[-1])[1]
    wanted = {d.isoformat() for d in days}
    indo = [r for r in bmrs_history.demand_records("INDO", start, end + DEMAND_PUBLISH_MARGIN) if r["settlementDate"] in wanted]
    wind = [r for d in days for r in agws.agws_day_records(d)]
    fuel = [r for d in days for r in bmrs_history.fuelhh_records(d)]
    freq = synthetic.freq_records(start, end)

    def checks(found: list[Finding]) -> dict[tuple, float]:  # a period's last score of each check stands
        return {(f.source, f.time): f.score for f in found if f.source in calibration.relations}

    in_order = _live_processor(calibration)
    live = []
    for day in days:
        for period in settlement_periods(day):
            rows = [(INDO, [r for r in indo if r["settlementDate"] == day.isoformat() and r["settlementPeriod"] == period.number]),
                    (AGWS, [r for r in wind if r["settlementDate"] == day.isoformat() and r["settlementPeriod"] == period.number]),
                    (FUELHH, [r for r in fuel if r["settlementDate"] == day.isoformat() and r["settlementPeriod"] == period.number])]
            readings = [x for spec, records in rows for x in _readings(spec, records, 0)]
            live += in_order.add(readings, now=0.0)
    caught_up = _live_processor(calibration)
    late = caught_up.add(_readings(INDO, indo, 0) + _readings(AGWS, wind, 0) + _readings(FREQ, freq[: len(freq) // 2], 0), now=0.0)
    for day in days:
        late += caught_up.add(_readings(FUELHH, [r for r in fuel if r["settlementDate"] == day.isoformat()], 0), now=0.0)
    expected = checks(live)
    assert {source for source, _ in expected} >= {BALANCE, WIND}
    assert len({t for source, t in expected if source == BALANCE}) == len(indo)  # every period's balance was checked
    assert checks(late).keys() == expected.keys()
    assert all(checks(late)[k] == pytest.approx(v, abs=1e-9) for k, v in expected.items())


def test_without_a_calibration_the_live_processor_scores_no_detector() -> None:
    processor, day = _live_processor(None), DAYS[0]
    start, end = day_bounds_utc(day)
    itsdo = bmrs_history.demand_records("ITSDO", start, end + DEMAND_PUBLISH_MARGIN)
    found = []
    for number in (1, 2, 3):
        fuel = [r for r in bmrs_history.fuelhh_records(day) if r["settlementPeriod"] == number]
        demand = [r for r in itsdo if r["settlementDate"] == day.isoformat() and r["settlementPeriod"] == number]
        readings = _readings(FUELHH, fuel, 100 * number) + _readings(ITSDO, demand, 100 * number + 50)
        found += processor.add(readings, now=float(number)) + processor.tick(now=float(number))
    assert {f.source for f in found} == {"power_imbalance"}
    assert processor.state()["detector_tracks"] == {}


def test_with_a_calibration_the_learned_balance_check_replaces_the_power_imbalance_band(calibration: DetectorCalibration) -> None:
    """Both would judge the same national balance: where the learned check scores a period the band does not; a
    period with ITSDO only, or with a fuel type missing (the check cannot add up supply), still gets the band."""
    processor, day = _live_processor(calibration), DAYS[0]
    start, end = day_bounds_utc(day)
    itsdo = bmrs_history.demand_records("ITSDO", start, end + DEMAND_PUBLISH_MARGIN)
    indo = bmrs_history.demand_records("INDO", start, end + DEMAND_PUBLISH_MARGIN)
    found = []
    for number, spec, demand_records in ((1, INDO, indo), (2, ITSDO, itsdo), (3, INDO, indo)):
        fuel = [r for r in bmrs_history.fuelhh_records(day) if r["settlementPeriod"] == number]
        fuel = fuel[1:] if number == 3 else fuel  # period 3 lacks one fuel type
        demand = [r for r in demand_records if r["settlementDate"] == day.isoformat() and r["settlementPeriod"] == number]
        readings = _readings(FUELHH, fuel, 100 * number) + _readings(spec, demand, 100 * number + 50)
        found += processor.add(readings, now=float(number)) + processor.tick(now=float(number))
    by_period = {n: {f.source for f in found if f.detail.get("settlement_period") == n} for n in (1, 2, 3)}
    assert BALANCE in by_period[1] and "power_imbalance" not in by_period[1]
    assert "power_imbalance" in by_period[2] and BALANCE not in by_period[2]
    assert "power_imbalance" in by_period[3] and BALANCE not in by_period[3]


@pytest.mark.integration
def test_the_detector_calibration_asset_fits_on_the_stored_days_of_windows_relative_to_the_newest(
        recorded_2018: StoredMeasurements, tmp_path: Path) -> None:
    import dagster as dg

    from grid_guardian_assets.data_layout import DataLayout
    from grid_guardian_assets.defs.detect.assets import detector_calibration
    from grid_guardian_assets.defs.resources import BmrsStorageResource

    data_dir = recorded_2018.store.root.parent
    result = dg.materialize([detector_calibration], resources={"bmrs_storage": BmrsStorageResource(data_dir=str(data_dir))},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    path = DataLayout(data_dir).detector_calibration
    stored = DetectorCalibration.load(path)
    # The store ends on 2018-12-31: held out its last 91 days, thresholds the 42 before, the fit the 182 before that.
    assert stored.fit_days == (dt.date(2018, 2, 20), dt.date(2018, 8, 20))
    assert stored.validation_days == (dt.date(2018, 8, 21), dt.date(2018, 10, 1))
    metadata = result.asset_materializations_for_node("detector_calibration")[0].metadata
    assert metadata["windows"].value == {"fit": "2018-02-20..2018-08-20 (182 days)", "threshold": "2018-08-21..2018-10-01 (42 days)",
                                         "held_out": "2018-10-02..2018-12-31 (91 days)"}
    assert metadata["stored_days_by_dataset"].value == {"FUELHH": 224, "INDO": 224, "ITSDO": 224, "NESO_DEMAND": 224, "AGWS": 224,
                                                        "B1610": 33}
    assert metadata["file"].value == str(path)
    assert metadata["false_alarm_rate"].value == stored.false_alarm_rate == FALSE_ALARM_RATE
    assert metadata["thresholds"].value == {name: round(r.threshold, 3) for name, r in stored.relations.items()}
    assert set(metadata["spreads_mw"].value) == set(stored.relations) and metadata["checks"].value == len(stored.relations)
    assert metadata["not_fitted"].value == {}
    assert "time_of_day_offset_max_mw" in metadata["check_table"].value


def test_a_window_the_stores_lack_fails_naming_the_days_and_the_backfill(recorded_2018: StoredMeasurements) -> None:
    import dagster as dg

    from grid_guardian_assets.defs.detect.assets import detector_calibration
    from grid_guardian_assets.defs.resources import BmrsStorageResource

    config = {"fit_start": "2017-12-20", "fit_end": "2018-03-31", "threshold_start": "2018-04-01", "threshold_end": "2018-04-30",
              "held_out_start": "2018-05-01", "held_out_end": "2018-05-31"}
    result = dg.materialize([detector_calibration], resources={"bmrs_storage": BmrsStorageResource(data_dir=str(recorded_2018.store.root.parent))},
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
                            run_config={"ops": {"detector_calibration": {"config": config}}})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE").step_failure_data.user_failure_data
    assert "fit window 2017-12-20..2018-03-31 (102 days) is not wholly stored: fuelhh_store lacks 12 of its days" in failure.description
    assert failure.metadata["backfill_command"].value.endswith(
        "--select '*fuelhh_store,*indo_store,*itsdo_store' --partition-range 2017-12-20...2017-12-31")


@pytest.mark.parametrize(("value", "sign"), [(812.0, "positive"), (-1.5, "negative"), (0.0, "zero"), (-0.0, "zero"),
                                             (np.float64(-3), "negative"), (np.float32(2), "positive"), (7, "positive")])
def test_sign_of_names_a_readings_sign_for_python_and_numpy_numbers(value: float, sign: str) -> None:
    assert sign_of(value) == sign


def test_sign_of_refuses_a_missing_reading() -> None:
    with pytest.raises(ValueError, match="NaN"):
        sign_of(float("nan"))


# --- known bad real data (the benchmark sets it aside) ----------------------------------------------------------
def test_known_bad_periods_are_the_real_files_gross_errors_and_their_neighbours(
        calibration: DetectorCalibration, day_table: Callable[..., pl.DataFrame], recorded_2018: StoredMeasurements) -> None:
    """2018-07-12: FUELHH's IFA reads 1,332 and 334 MW in periods 24 and 25 (10:30 and 11:00 UTC) while NESO's flow
    on the link is 1,999 MW."""
    day = dt.date(2018, 7, 12)
    marked = {p for p in known_bad_periods(calibration, day_table(day), recorded_2018) if p.date() == day}
    glitch = [p.start for p in settlement_periods(day) if p.number in (24, 25)]
    assert set(glitch) <= marked
    assert {glitch[0] - PERIOD, glitch[-1] + PERIOD} <= marked


@pytest.mark.parametrize("day", [dt.date(2018, 7, 1), dt.date(2018, 8, 2)])
def test_an_untouched_good_day_has_no_known_bad_period_and_one_written_in_gross_error_marks_three(
        calibration: DetectorCalibration, day: dt.date, day_table: Callable[..., pl.DataFrame], recorded_2018: StoredMeasurements) -> None:
    table = day_table(day)
    assert known_bad_periods(calibration, table, recorded_2018) == []
    broken = with_fault(table, "FUELHH:INTNED", [20], lambda v: v - 600)  # 60 spreads off NESO's BritNed flow
    start = next(p.start for p in settlement_periods(day) if p.number == 20)
    assert known_bad_periods(calibration, broken, recorded_2018) == [start - PERIOD, start, start + PERIOD]


def test_the_live_job_learns_the_usual_falls_from_the_newest_stored_week(calibration: DetectorCalibration, recorded_2018: StoredMeasurements,
                                                                         day_table: Callable[..., pl.DataFrame]) -> None:
    from grid_guardian_assets.stream.job import learn_stored_falls

    warmed, expected, cold = PeriodDetector(calibration), PeriodDetector(calibration), PeriodDetector(calibration)
    assert learn_stored_falls(warmed, recorded_2018.store.root) == (dt.date(2018, 12, 25), dt.date(2018, 12, 31))
    expected.learn_schedule(day_table(*days_between(dt.date(2018, 12, 25), dt.date(2018, 12, 31)), b1610=False))
    assert warmed.schedule.to_json() == expected.schedule.to_json() != cold.schedule.to_json()
    assert learn_stored_falls(cold, recorded_2018.store.root.parent / "nothing") is None
