"""Real BMRS INDO and ITSDO (2016-2023) and B1630 (AGWS, 2018), served over HTTP by the replay server and checked as
the assets check; NESO's demand file, a different series, beside them."""

import csv
import datetime as dt
import gzip
import json
import urllib.request
from urllib.parse import urlencode

import numpy as np
import pytest

from grid_guardian_assets.datasets import AGWS, DEMAND_PUBLISH_MARGIN, INDO, ITSDO
from grid_guardian_assets.grid.physics import LOSS_MAX, LOSS_MIN
from grid_guardian_assets.replay import agws, bmrs_history, neso
from grid_guardian_assets.replay.server import ReplayServer
from grid_guardian_assets.settlement import day_bounds_utc, to_api_time
from grid_guardian_assets.validation import frame_from_records, validate_partition

DAY = dt.date(2018, 3, 1)


def get(server: ReplayServer, code: str, start: dt.datetime, end: dt.datetime) -> tuple[dict, dict[str, str]]:
    query = urlencode({"publishDateTimeFrom": to_api_time(start), "publishDateTimeTo": to_api_time(end), "format": "json"})
    with urllib.request.urlopen(f"{server.base_url}/datasets/{code}?{query}", timeout=10) as response:
        return json.load(response), {k.lower(): v for k, v in response.headers.items()}


def day_of(server: ReplayServer, code: str, day: dt.date) -> tuple[list[dict], dict, dict[str, str]]:
    """The rows of settlement ``day`` as the ingest asks for them, with the response's metadata and headers."""
    start, end = day_bounds_utc(day)
    body, headers = get(server, code, start, end + DEMAND_PUBLISH_MARGIN)
    return [r for r in body["data"] if r["settlementDate"] == day.isoformat()], body["metadata"], headers


def bmrs_file_value(date_text: str, period: int, column: str) -> int:
    """A value read straight from the bundled yearly file, without the loader under test."""
    with gzip.open(bmrs_history.year_file(int(date_text[:4])), "rt", newline="") as f:
        for row in csv.DictReader(f):
            if row["settlement_date"] == date_text and int(row["settlement_period"]) == period:
                return int(row[column])
    raise LookupError((date_text, period))


def neso_file_value(date_text: str, period: int, column: str) -> int:
    with open(neso.bundled_neso_dir(2018) / neso.YEAR_FILES[2018][1][0], newline="") as f:
        for row in csv.DictReader(f):
            if row["SETTLEMENT_DATE"] == date_text and int(row["SETTLEMENT_PERIOD"]) == period:
                return int(row[column])
    raise LookupError((date_text, period))


@pytest.mark.parametrize("code, neso_column", [("INDO", "ND"), ("ITSDO", "TSD")])
def test_demand_is_bmrs_own_series_not_neso_and_says_so(replay: ReplayServer, code: str, neso_column: str) -> None:
    rows, metadata, headers = day_of(replay, code, DAY)
    assert [r["settlementPeriod"] for r in rows] == list(range(1, 49))
    by_period = {r["settlementPeriod"]: r["demand"] for r in rows}
    for period in (1, 18, 36):
        assert by_period[period] == bmrs_file_value("2018-03-01", period, code)
    # NESO's settled ND and TSD are a different series: BMRS's initial outturn is not NESO's file.
    assert sum(by_period[p] != neso_file_value("01-Mar-18", p, neso_column) for p in by_period) > 40
    assert metadata["synthetic"] is False and "BMRS" in metadata["source"] and "real" in metadata["source"]
    assert headers["x-grid-guardian-synthetic"] == "false"
    spec = INDO if code == "INDO" else ITSDO
    assert validate_partition(spec, DAY, frame_from_records(spec, rows)).passed


def test_itsdo_exceeds_indo_by_station_load_pumping_and_exports(replay: ReplayServer) -> None:
    indo = {r["settlementPeriod"]: r["demand"] for r in day_of(replay, "INDO", DAY)[0]}
    itsdo = {r["settlementPeriod"]: r["demand"] for r in day_of(replay, "ITSDO", DAY)[0]}
    assert indo.keys() == itsdo.keys() and all(itsdo[p] > indo[p] for p in indo)


@pytest.mark.parametrize("day, periods", [(dt.date(2023, 3, 26), 46), (dt.date(2023, 10, 29), 50)])
def test_clock_change_days_have_their_real_period_count(replay: ReplayServer, day: dt.date, periods: int) -> None:
    rows, _, _ = day_of(replay, "INDO", day)
    assert [r["settlementPeriod"] for r in rows] == list(range(1, periods + 1))
    report = validate_partition(INDO, day, frame_from_records(INDO, rows))
    assert report.passed, report.summary()  # startTime of every period is its real UTC start


def test_publish_time_filter_is_inclusive_and_exact(replay: ReplayServer) -> None:
    start, _ = day_bounds_utc(DAY)
    # Period 3 ends at 01:30 and is published five minutes later.
    for lo, hi in ((95, 124), (66, 95)):  # both ends inclusive
        body, _ = get(replay, "INDO", start + dt.timedelta(minutes=lo), start + dt.timedelta(minutes=hi))
        assert [(r["settlementDate"], r["settlementPeriod"]) for r in body["data"]] == [("2018-03-01", 3)]
        assert body["data"][0]["publishTime"] == "2018-03-01T01:35:00Z"
    body, _ = get(replay, "INDO", start + dt.timedelta(minutes=96), start + dt.timedelta(minutes=124))
    assert body["data"] == []
    # Period 48 of the day before is published just after midnight: a day's window starts with it.
    body, _ = get(replay, "INDO", start, start + dt.timedelta(minutes=10))
    assert [(r["settlementDate"], r["settlementPeriod"]) for r in body["data"]] == [("2018-02-28", 48)]


def test_a_day_outside_the_files_returns_none_and_2016_to_2023_are_served(replay: ReplayServer) -> None:
    assert day_of(replay, "INDO", dt.date(2024, 6, 1))[0] == []
    for day in (dt.date(2016, 6, 1), dt.date(2019, 6, 1), dt.date(2023, 12, 30)):
        rows, _, _ = day_of(replay, "ITSDO", day)
        assert [r["settlementPeriod"] for r in rows] == list(range(1, 49))


def test_agws_serves_a_real_day_that_validates(replay: ReplayServer) -> None:
    rows, metadata, headers = day_of(replay, "AGWS", DAY)
    assert metadata["synthetic"] is False and "B1630" in metadata["source"] and headers["x-grid-guardian-synthetic"] == "false"
    assert set(rows[0]) == set(AGWS.fields)
    assert {r["psrType"] for r in rows} == {"Solar", "Wind Offshore", "Wind Onshore"}
    first = {r["psrType"]: r["quantity"] for r in rows if r["settlementPeriod"] == 1}
    assert first["Solar"] == 0  # night
    with open(agws.bundled_agws_csv(), newline="") as f:
        source = next(r for r in csv.reader(f) if r[0] == "2018-03-01 00:00:00+00:00")
    assert first["Wind Offshore"] == float(source[2]) and first["Wind Onshore"] == float(source[3])
    report = validate_partition(AGWS, DAY, frame_from_records(AGWS, rows))
    assert report.passed, report.summary()
    assert report.frame.height == 48 * 3


def test_agws_day_with_missing_periods_fails_naming_them(replay: ReplayServer) -> None:
    day = dt.date(2018, 1, 29)  # the source lacks periods 35-38
    rows, _, _ = day_of(replay, "AGWS", day)
    report = validate_partition(AGWS, day, frame_from_records(AGWS, rows))
    assert not report.passed
    assert report.failure_counts() == {"completeness": 3}
    assert all("35-38" in reason for reason in report.failures["reason"].to_list())


@pytest.mark.parametrize("day", [dt.date(2018, 2, 14), dt.date(2018, 3, 1), dt.date(2018, 6, 21), dt.date(2018, 8, 6), dt.date(2018, 11, 20)])
def test_power_balance_band_holds_on_real_days(day: dt.date) -> None:
    generation = bmrs_history.fuel_generation(day)
    indo = bmrs_history.demand_day(day)
    supply = np.array([sum(generation[p].values()) for p in indo["settlementPeriod"].to_list()], dtype=float)
    ratio = (supply - indo["INDO"].to_numpy().astype(float)) / supply
    assert ((ratio >= LOSS_MIN) & (ratio <= LOSS_MAX)).all(), (ratio.min(), ratio.max())


def test_power_balance_band_catches_a_real_fuelhh_glitch() -> None:
    day = dt.date(2018, 9, 11)  # FUELHH period 22 reports almost no generation
    generation = bmrs_history.fuel_generation(day)
    nd = dict(zip(*bmrs_history.demand_day(day).select("settlementPeriod", "INDO").to_dict(as_series=False).values()))
    supply = sum(generation[22].values())
    assert (supply - nd[22]) / supply < LOSS_MIN
