"""The Insights API client against a real local HTTP server (the replay server) that misbehaves on request."""

import datetime as dt
import time
from pathlib import Path

import pytest

from grid_guardian_assets.datasets import B1610, FREQ, FUELHH, INDO, PN
from grid_guardian_assets.elexon import ElexonClient, ElexonRequestError, ElexonResponseError
from grid_guardian_assets.ingest import fetch_partition
from grid_guardian_assets.replay.server import Fault, ReplayServer
from grid_guardian_assets.store.raw_archive import RawArchive

DAY = dt.date(2018, 3, 1)


def client_for(server: ReplayServer, **kwargs) -> ElexonClient:
    kwargs.setdefault("backoff_base_s", 0.01)
    kwargs.setdefault("backoff_max_s", 0.05)
    return ElexonClient(server.base_url, **kwargs)


def test_fuelhh_day_is_one_request_with_the_api_parameters(replay: ReplayServer) -> None:
    with client_for(replay) as client:
        responses = client.fetch_day(FUELHH, DAY)
    assert len(responses) == 1
    path, params = replay.requests[0]
    assert path == "/datasets/FUELHH"
    assert params["settlementDateFrom"] == ["2018-03-01"] and params["settlementDateTo"] == ["2018-03-01"]
    rows = responses[0].records("test")
    assert len(rows) == 48 * 14
    assert set(rows[0]) == {"dataset", "publishTime", "startTime", "settlementDate", "settlementPeriod", "fuelType", "generation"}
    assert responses[0].synthetic is False


def test_freq_autumn_day_is_split_into_windows_of_at_most_24_hours(replay: ReplayServer) -> None:
    day = dt.date(2018, 10, 28)  # 25 hours long
    with client_for(replay) as client:
        responses = client.fetch_day(FREQ, day)
    windows = [
        (dt.datetime.fromisoformat(p["measurementDateTimeFrom"][0]), dt.datetime.fromisoformat(p["measurementDateTimeTo"][0]))
        for _, p in replay.requests
    ]
    assert len(windows) == 2
    assert all(b - a <= dt.timedelta(hours=24) for a, b in windows)
    assert windows[0][1] == windows[1][0]
    assert sum(len(r.records("t")) for r in responses) == 25 * 240
    assert all(r.synthetic for r in responses)


@pytest.mark.parametrize("spec, periods", [(B1610, 46), (PN, 46)])
def test_per_period_datasets_ask_for_every_settlement_period(replay: ReplayServer, spec, periods: int) -> None:
    with client_for(replay) as client:
        client.fetch_day(spec, dt.date(2018, 3, 25))
    asked = [int(p["settlementPeriod"][0]) for _, p in replay.requests]
    assert asked == list(range(1, periods + 1))
    assert {p["settlementDate"][0] for _, p in replay.requests} == {"2018-03-25"}


def test_indo_asks_by_publish_time(replay: ReplayServer) -> None:
    with client_for(replay) as client:
        client.fetch_day(INDO, DAY)
    (_, params), = replay.requests
    assert params["publishDateTimeFrom"] == ["2018-03-01T00:00:00Z"]


def test_429_then_success_honours_retry_after(replay: ReplayServer) -> None:
    replay.add_fault(Fault("/datasets/FUELHH", status=429, retry_after=1))
    with client_for(replay) as client:
        started = time.monotonic()
        responses = client.fetch_day(FUELHH, DAY)
        waited = time.monotonic() - started
    assert len(replay.requests) == 2
    assert waited >= 1.0  # the server asked for a second; backoff alone would have waited ~0.01 s
    assert len(responses[0].records("t")) == 672


def test_repeated_500_fails_clearly_after_bounded_tries(replay: ReplayServer) -> None:
    replay.add_fault(Fault("/datasets/FUELHH", status=500, times=10))
    with client_for(replay, max_attempts=4) as client, pytest.raises(ElexonRequestError) as info:
        client.fetch_day(FUELHH, DAY)
    message = str(info.value)
    assert "FUELHH partition 2018-03-01" in message
    assert "after 4 attempts" in message and "HTTP 500" in message
    assert f"{replay.base_url}/datasets/FUELHH?settlementDateFrom=2018-03-01" in message
    assert len(replay.requests) == 4
    assert info.value.status == 500


def test_client_errors_are_not_retried(replay: ReplayServer) -> None:
    replay.add_fault(Fault("/datasets/FUELHH", status=400, body='{"title": "bad"}'))
    with client_for(replay) as client, pytest.raises(ElexonRequestError, match="HTTP 400 \\(not retryable\\)"):
        client.fetch_day(FUELHH, DAY)
    assert len(replay.requests) == 1


def test_connection_refused_is_retried_then_named() -> None:
    client = ElexonClient("http://127.0.0.1:9/bmrs/api/v1", max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.02)
    with pytest.raises(ElexonRequestError, match="FUELHH partition 2018-03-01.*failed after 2 attempts: ConnectError"):
        client.fetch_day(FUELHH, DAY)


def test_malformed_json_names_the_partition_and_keeps_the_body(replay: ReplayServer, tmp_path: Path) -> None:
    replay.add_fault(Fault("/datasets/FUELHH", body='{"data": [{"startTime": '))
    archive = RawArchive(tmp_path)
    with client_for(replay) as client:
        raw = fetch_partition(client, archive, FUELHH, DAY)
    with pytest.raises(ElexonResponseError, match="FUELHH partition 2018-03-01.*malformed JSON"):
        raw.responses[0].records("FUELHH partition 2018-03-01")
    assert RawArchive.load(archive.fetches("FUELHH", DAY)[0]).responses[0].body == '{"data": [{"startTime": '


def test_a_failed_fetch_keeps_what_arrived(replay: ReplayServer, tmp_path: Path) -> None:
    # Period 3 of PN fails for good; periods 1-2 were fetched and must not be thrown away.
    replay.add_fault(Fault("/datasets/PN", query_contains="settlementPeriod=3&", status=503, times=99))
    archive = RawArchive(tmp_path)
    with client_for(replay, max_attempts=2) as client, pytest.raises(ElexonRequestError, match="request 3/48"):
        fetch_partition(client, archive, PN, DAY)
    partial = archive.latest("PN", DAY, complete_only=False)
    assert not partial.complete and "HTTP 503" in partial.error
    assert [r.params["settlementPeriod"] for r in partial.responses] == ["1", "2"]
    assert all(len(r.records("t")) > 0 for r in partial.responses)
    with pytest.raises(FileNotFoundError, match="no complete raw fetch of PN 2018-03-01"):
        archive.latest("PN", DAY)


def test_shared_rate_limit_spans_clients(replay: ReplayServer, tmp_path: Path) -> None:
    db = tmp_path / "limit.sqlite"
    first = client_for(replay, requests_per_minute=3, limiter_db=db, limiter_max_wait_s=0)
    second = client_for(replay, requests_per_minute=3, limiter_db=db, limiter_max_wait_s=0)
    first.fetch_day(FUELHH, DAY)
    second.fetch_day(FUELHH, DAY)
    first.fetch_day(FUELHH, DAY)
    with pytest.raises(ElexonRequestError, match="budget of 3 requests a minute"):
        second.fetch_day(FUELHH, DAY)
    assert len(replay.requests) == 3


def test_replay_server_refuses_what_the_api_refuses(replay: ReplayServer) -> None:
    with client_for(replay) as client:
        with pytest.raises(ElexonRequestError, match="HTTP 400"):
            client.get(
                "/datasets/FREQ", {"measurementDateTimeFrom": "2018-03-01T00:00:00Z", "measurementDateTimeTo": "2018-03-02T01:00:00Z"}, context="t"
            )
        with pytest.raises(ElexonRequestError, match="HTTP 400"):
            client.get("/datasets/B1610", {"settlementDate": "2018-03-01"}, context="t")
        with pytest.raises(ElexonRequestError, match="HTTP 404"):
            client.get("/datasets/SYSDEM", {}, context="t")


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b[:10] + b"\x00" * 20 + b[30:], lambda b: b"not gzip"])
def test_a_damaged_archive_file_is_an_error_naming_it(tmp_path: Path, damage) -> None:
    from grid_guardian_assets.elexon.responses import RawResponse
    from grid_guardian_assets.store.raw_archive import RawPartition

    archive = RawArchive(tmp_path)
    body = '{"data": [{"quote": "\\"x\\""}]}'
    path = archive.save(RawPartition("FUELHH", DAY, [RawResponse("u", {"a": "1"}, 200, body, "t")], complete=True))
    assert RawArchive.load(path).responses[0].body == body  # the body comes back exactly
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=f"raw archive file {path} is unreadable"):
        RawArchive.load(path)
