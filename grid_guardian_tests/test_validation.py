"""Validation of single partitions: real signed FUELHH, its recorded gaps, clock changes and every kind of bad input."""

import datetime as dt

import polars as pl
import pytest

from grid_guardian_assets import gaps
from grid_guardian_assets.datasets import AGWS, B1610, DATASETS, DEMAND_PUBLISH_MARGIN, FREQ, FUELHH, INDO, PN
from grid_guardian_assets.replay import agws, bmrs_history, synthetic
from grid_guardian_assets.settlement import day_bounds_utc
from grid_guardian_assets.validation import frame_from_records, validate_partition
from grid_guardian_assets.validation.parse import python_rows

DAY = dt.date(2018, 3, 1)


def fuelhh(day: dt.date = DAY) -> list[dict]:
    return bmrs_history.fuelhh_records(day)


def check(records: list[dict], day: dt.date = DAY, spec=FUELHH):
    return validate_partition(spec, day, frame_from_records(spec, records))


def test_a_real_day_passes_with_48_periods_of_14_fuels_signed() -> None:
    report = check(fuelhh())
    assert report.passed, report.summary()
    assert report.frame.height == 48 * 14  # 2018: ten fuel types and the four interconnectors then running
    assert report.frame["fuelType"].n_unique() == 14
    assert report.frame["startTime"].is_sorted()
    signed = report.frame.filter(pl.col("generation") < 0)["fuelType"].unique().sort().to_list()
    assert signed and set(signed) <= {"PS", "INTEW", "INTFR", "INTIRL", "INTNED"}  # pumping and exports, as the API serves them


@pytest.mark.parametrize("day, periods", [(dt.date(2023, 3, 26), 46), (dt.date(2023, 10, 29), 50)])
def test_real_clock_change_days_pass(day: dt.date, periods: int) -> None:
    report = check(fuelhh(day), day)
    assert report.passed, report.summary()
    assert report.frame["settlementPeriod"].max() == periods
    assert report.frame.height == periods * report.frame["fuelType"].n_unique()


def test_a_day_elexon_never_completed_fails_unless_the_source_confirmed_its_gap() -> None:
    day = dt.date(2018, 1, 23)  # known_gaps.csv: 44 of 48 periods; Elexon never published 21, 23, 25 and 26
    records = fuelhh(day)
    alone = check(records, day)
    assert not alone.passed and set(alone.failure_counts()) == {"completeness"}
    assert "4 of 48 settlement periods missing for fuelType=CCGT: 21, 23, 25-26" in alone.failures["reason"].to_list()
    confirmed = gaps.missing_cells(FUELHH, day, records)
    report = validate_partition(FUELHH, day, frame_from_records(FUELHH, records), confirmed)
    assert report.passed, report.summary()
    assert report.gaps == confirmed and report.missing_periods() == [21, 23, 25, 26] and not report.complete
    assert report.frame["settlementPeriod"].n_unique() == 44


def test_a_confirmed_gap_does_not_excuse_other_missing_periods() -> None:
    day = dt.date(2018, 1, 23)
    records = fuelhh(day)
    confirmed = gaps.missing_cells(FUELHH, day, records)
    report = validate_partition(FUELHH, day, frame_from_records(FUELHH, [r for r in records if r["settlementPeriod"] != 30]), confirmed)
    assert not report.passed
    assert "1 of 48 settlement periods missing for fuelType=CCGT: 30" in report.failures["reason"].to_list()


def test_a_whole_day_the_source_confirmed_empty_is_stored_empty() -> None:
    day = dt.date(2018, 11, 9)  # BMRS INDO has no period of this day in the files
    confirmed = gaps.missing_cells(INDO, day, [])
    report = validate_partition(INDO, day, frame_from_records(INDO, []), confirmed)
    assert report.passed and report.frame.height == 0 and report.missing_periods() == list(range(1, 49))
    assert not check([], day, INDO).passed  # unconfirmed, an empty day is refused


@pytest.mark.parametrize("day", [d for d in bmrs_history.history_days() if d.month in (1, 7, 10)])
def test_every_real_day_of_three_months_passes_with_its_confirmed_gap(day: dt.date) -> None:
    records = fuelhh(day)
    missing = gaps.missing_cells(FUELHH, day, records)
    report = validate_partition(FUELHH, day, frame_from_records(FUELHH, records), missing)
    assert report.passed, report.summary()
    assert report.gaps == missing
    if day not in bmrs_history.known_gaps() and day.year == 2023:
        # 2023's files hold every period (the earlier years lose a day's last one before a gap); a link's first day
        # (Viking Link, INTVKL) still lacks the periods before it started.
        assert not report.missing_periods()


def test_a_missing_settlement_period_is_named() -> None:
    rows = [r for r in fuelhh() if r["settlementPeriod"] != 17]
    report = check(rows)
    assert not report.passed
    assert report.failures.filter(pl.col("check") == "completeness").height == 14
    assert "1 of 48 settlement periods missing for fuelType=CCGT: 17" in report.failures["reason"].to_list()


def test_conflicting_duplicates_fail_with_both_rows() -> None:
    rows = fuelhh()
    clash = dict(rows[0], generation=rows[0]["generation"] + 100)
    report = check(rows + [clash])
    assert not report.passed
    conflicts = report.failures.filter(pl.col("check") == "conflicting_duplicates")
    assert conflicts.height == 2
    assert "settlementPeriod=1" in conflicts["reason"][0] and f"fuelType={rows[0]['fuelType']}" in conflicts["reason"][0]


def test_exact_duplicates_alone_pass() -> None:
    rows = fuelhh()
    report = check(rows + rows[:30])
    assert report.passed and report.exact_duplicates_dropped == 30


def test_a_renamed_field_is_schema_drift() -> None:
    rows = [{("generationMW" if k == "generation" else k): v for k, v in r.items()} for r in fuelhh()]
    report = check(rows)
    assert not report.passed
    drift = report.failures.filter(pl.col("check") == "schema_drift")
    assert drift["column"].to_list() == ["generation"]
    assert "generationMW" in drift["reason"][0]


def test_an_added_field_is_only_a_warning() -> None:
    report = check([dict(r, newField=1) for r in fuelhh()])
    assert report.passed and report.unexpected_fields == ["newField"]


def test_an_empty_day_fails() -> None:
    report = check([])
    assert not report.passed
    assert "no FUELHH rows for settlement day 2018-03-01 (expected 48 periods)" in report.failures["reason"].to_list()


def test_values_of_the_wrong_type_are_reported_not_dropped() -> None:
    rows = fuelhh()
    rows[5] = dict(rows[5], generation="lots")
    report = check(rows)
    assert "type" in report.failure_counts()
    assert any("'lots' is not a valid int" in r for r in report.failures["reason"].to_list())


@pytest.mark.parametrize(
    "fuel, value, ok",
    [("INTFR", -1500, True), ("PS", -300, True), ("CCGT", -5, False), ("WIND", 50_000, False)],
)
def test_generation_sign_and_range(fuel: str, value: int, ok: bool) -> None:
    rows = [dict(r, generation=value) if r["fuelType"] == fuel and r["settlementPeriod"] == 10 else r for r in fuelhh()]
    assert check(rows).passed is ok


def test_start_time_must_match_the_settlement_period() -> None:
    rows = fuelhh()
    rows[0] = dict(rows[0], startTime="2018-03-01T01:00:00Z")  # period 1 starts at 00:00Z
    report = check(rows)
    assert "period_alignment" in report.failure_counts()


def test_rows_of_other_days_are_set_aside_not_failed() -> None:
    rows = fuelhh() + bmrs_history.fuelhh_records(dt.date(2018, 3, 2))[:15]
    report = check(rows)
    assert report.passed and report.rows_outside_partition == 15


def test_frequency_range_and_gaps() -> None:
    start, end = day_bounds_utc(DAY)
    rows = synthetic.freq_records(start, end)
    assert check(rows, spec=FREQ).passed
    bad = [dict(r, frequency=56.0) if i == 100 else r for i, r in enumerate(rows)]
    assert "schema" in check(bad, spec=FREQ).failure_counts()
    gappy = rows[:1000] + rows[1010:]
    report = check(gappy, spec=FREQ)
    assert report.failure_counts() == {"completeness": 1}
    assert "165 s gap" in report.failures["reason"][0]


@pytest.mark.parametrize("spec", list(DATASETS.values()), ids=lambda s: s.code)
@pytest.mark.parametrize("day, gap", [(dt.date(2018, 3, 25), [46]), (dt.date(2018, 6, 15), []), (dt.date(2018, 10, 28), [48])])
def test_every_bundled_dataset_validates(spec, day: dt.date, gap: list[int]) -> None:
    """The files lose the spring day's 46th FUELHH, INDO and ITSDO period and the autumn day's 48th FUELHH; the synthetic
    B1610 and PN, built from FUELHH, lack the same periods; FREQ and AGWS are whole."""
    start, end = day_bounds_utc(day)
    if spec is FUELHH:
        rows = fuelhh(day)
    elif spec is FREQ:
        rows = synthetic.freq_records(start, end)
    elif spec.code in ("INDO", "ITSDO"):
        rows = bmrs_history.demand_records(spec.code, start, end + DEMAND_PUBLISH_MARGIN)
    elif spec is AGWS:
        rows = agws.agws_records(start, end + DEMAND_PUBLISH_MARGIN)
    else:
        make = synthetic.b1610_records if spec is B1610 else synthetic.pn_records
        rows = [r for n in range(1, 51) for r in make(day, n)]
    confirmed = gaps.missing_cells(spec, day, rows) if gaps.confirmable(spec) else None
    report = validate_partition(spec, day, frame_from_records(spec, rows), confirmed)
    assert report.passed, report.summary()
    demand_gap = {3: [46], 10: [50]}.get(day.month, [])  # the spring row 48 and the autumn row 50 carry no demand
    expected = gap if spec.code in ("FUELHH", "B1610", "PN") else demand_gap if spec.code in ("INDO", "ITSDO") else []
    assert report.missing_periods() == expected


def test_real_demand_follows_generation() -> None:
    # Signed supply (pumping and exports negative) less INDO, which leaves out station load, pumping and exports, is
    # losses and station load: 0.8..2.8 % of supply (p0.5..p99 of 2018's training range). ITSDO adds pumping and exports
    # back, so it reads above signed supply on a night of pumping (up to 8 % on 2018-03-01).
    start, end = day_bounds_utc(DAY)
    window = (start, end + DEMAND_PUBLISH_MARGIN)
    itsdo = {r["settlementPeriod"]: r["demand"] for r in bmrs_history.demand_records("ITSDO", *window) if r["settlementDate"] == "2018-03-01"}
    indo = {r["settlementPeriod"]: r["demand"] for r in bmrs_history.demand_records("INDO", *window) if r["settlementDate"] == "2018-03-01"}
    gen = bmrs_history.fuel_generation(DAY)
    assert len(itsdo) == len(indo) == 48
    for period, demand in itsdo.items():
        supply = sum(gen[period].values())
        assert 0.005 < (supply - indo[period]) / supply < 0.03
        assert demand > indo[period]


def test_pn_levels_and_indo_demand_ranges() -> None:
    rows = [dict(r, levelTo=9999) if i == 0 else r for i, r in enumerate(r for n in range(1, 49) for r in synthetic.pn_records(DAY, n))]
    assert "schema" in check(rows, spec=PN).failure_counts()
    start, end = day_bounds_utc(DAY)
    demand = [dict(r, demand=-10) if i == 3 else r for i, r in enumerate(bmrs_history.demand_records("INDO", start, end + DEMAND_PUBLISH_MARGIN))]
    assert "schema" in check(demand, spec=INDO).failure_counts()


def test_days_validated_together_get_the_reports_each_gets_alone() -> None:
    """A ranged run validates a month of a dataset at once (one pandera call): every day's report, failures and
    offending rows included, must be the one it gets alone; a bad day taints none of its neighbours."""
    from grid_guardian_assets.validation import validate_partitions

    days = [dt.date(2018, 12, 29), dt.date(2018, 12, 30), dt.date(2018, 1, 23), dt.date(2018, 3, 1)]  # 01-23: a gap
    records = {day: fuelhh(day) for day in days}
    records[dt.date(2018, 3, 1)][5] = {**records[dt.date(2018, 3, 1)][5], "generation": 90_000}  # out of range
    parsed = {day: frame_from_records(FUELHH, rows) for day, rows in records.items()}
    together = validate_partitions(FUELHH, parsed)
    for day in days:
        alone = validate_partition(FUELHH, day, parsed[day])
        assert together[day].failures.equals(alone.failures), day
        assert together[day].frame.equals(alone.frame), day
        assert together[day].passed == alone.passed
    assert [together[d].passed for d in days] == [True, True, False, False]
    assert "generation failed in_range" in together[dt.date(2018, 3, 1)].failures["reason"][0]
    assert '"generation": 90000' in together[dt.date(2018, 3, 1)].failures["row"][0]


@pytest.mark.parametrize(
    "value, valid",
    [(512, True), ("512", True), (512.0, True), ("512.5", False), (True, False), ({"mw": 512}, False), ([512], False),
     ("abc", False), (2**70, False), (None, True)],
)
def test_any_json_value_in_a_number_field_is_read_or_reported_never_raised(value, valid: bool) -> None:
    """Polars builds the text columns; values it cannot write (objects, lists, huge numbers) go through Python's
    conversion, with the same outcome: a whole number of MW is read (FUELHH's generation is an integer), anything
    else is a type error naming the record."""
    records = [{"dataset": "FUELHH", **r} for r in fuelhh()[:3]]
    records[1] = {**records[1], "generation": value}
    parsed = frame_from_records(FUELHH, records)
    assert parsed.frame.height == 3
    assert parsed.type_errors.is_empty() == valid, parsed.type_errors
    if not valid:
        assert parsed.type_errors.row(0, named=True)["row"] == 1
        assert parsed.type_errors["column"].to_list() == ["generation"]


@pytest.mark.parametrize("cut, first_gap", [(slice(10, None), "from 2018-03-01T00:00:00+00:00"), (slice(None, -10), "to 2018-03-02T00:00:00+00:00")])
def test_frequency_missing_at_either_edge_of_the_day_is_a_gap(cut: slice, first_gap: str) -> None:
    start, end = day_bounds_utc(DAY)
    report = check(synthetic.freq_records(start, end)[cut], spec=FREQ)
    assert report.failure_counts() == {"completeness": 1}
    assert first_gap in report.failures["reason"][0]


@pytest.mark.parametrize("day", [dt.date(2018, 3, 25), dt.date(2018, 10, 28)])
def test_the_replayed_frequency_times_are_the_samples_own(day: dt.date) -> None:
    """The replay formats a day's FREQ times at once; each must be ``to_api_time`` of its sample, across clock changes
    and for a window that starts between samples and ends in the next day."""
    from grid_guardian_assets.settlement import to_api_time

    start, end = day_bounds_utc(day)
    start, end = start + dt.timedelta(hours=5, seconds=7), end + dt.timedelta(hours=2)
    expected = [to_api_time(t) for d in (day, day + dt.timedelta(days=1)) for t, _ in synthetic.freq_samples(d) if start <= t < end]
    assert [r["measurementTime"] for r in synthetic.freq_records(start, end)] == expected



@pytest.mark.parametrize("spec, records", [
    (FUELHH, lambda: bmrs_history.fuelhh_records(dt.date(2018, 3, 25))),  # a clock-change day
    (FREQ, lambda: synthetic.freq_records(*day_bounds_utc(dt.date(2018, 3, 25)))),
    (B1610, lambda: synthetic.b1610_records(dt.date(2018, 3, 25), 5)),
], ids=lambda v: getattr(v, "code", ""))
def test_python_rows_equal_polars_rows_with_shared_times_and_nulls(spec, records) -> None:
    frame = frame_from_records(spec, records()).frame
    nulls = pl.DataFrame([dict.fromkeys(frame.columns)] * 2, schema=frame.schema)  # every type null
    frame = pl.concat([frame, nulls])
    assert frame.height > 3 and any(dtype.is_temporal() for dtype in frame.dtypes)
    assert python_rows(frame) == list(frame.iter_rows(named=True))
    assert python_rows(frame.head(0)) == []
