"""A real HTTP server that answers like the Elexon Insights API from the bundled recording.

Paths, parameters and JSON shapes follow the API's OpenAPI spec (``/datasets/{CODE}``, ``{"data": [...]}``), under
``/bmrs/api/v1`` or at the root, so ``ELEXON_API_BASE_URL=http://127.0.0.1:PORT/bmrs/api/v1`` points any Insights
API client at it. FUELHH, INDO and ITSDO are real BMRS data for 2016-2023 (``replay.bmrs_history``), AGWS real for
2018, PN real per BM unit for 2021-06-30 … 07-10 (``replay.pn_2021``); FREQ, B1610 and PN are synthetic, for 2018.
Each response says which in its ``metadata`` (``synthetic`` and
``source``) and in the ``X-Grid-Guardian-Synthetic`` header. NESO's Data Portal answers beside it under
``/neso/api/3/action`` (``datastore_search`` over NESO's historic demand, real for 2018 and 2021:
``replay.neso_portal``), in CKAN's shape.

Faults can be queued (HTTP 429/5xx with Retry-After, malformed bodies, rewritten records) to exercise a client
the way the real API sometimes does.
"""

import datetime as dt
import json
import logging
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from grid_guardian_assets.elexon.responses import SYNTHETIC_HEADER
from grid_guardian_assets.replay import agws, bm_units, bmrs_history, neso_portal, pn_2021, synthetic

API_PREFIX = "/bmrs/api/v1"
NESO_PREFIX = "/neso/api/3/action"
FREQ_MAX_WINDOW = dt.timedelta(hours=24)
log = logging.getLogger(__name__)

Records = list[dict[str, Any]]


class BadRequest(ValueError):
    """A request the real API would refuse with HTTP 400."""


@dataclass
class Fault:
    """One queued misbehaviour for requests whose path contains ``path_contains`` (and query ``query_contains``).

    Exactly one of ``status`` (an error response, with optional ``retry_after`` seconds), ``body`` (a 200 whose
    body is this text) or ``transform`` (a 200 whose records are rewritten) applies, ``times`` times.
    """

    path_contains: str
    status: int | None = None
    retry_after: float | None = None
    body: str | None = None
    transform: Callable[[Records], Records] | None = None
    times: int = 1
    query_contains: str = ""


def _time(params: dict[str, list[str]], name: str) -> dt.datetime:
    try:
        text = params[name][0]
    except (KeyError, IndexError):
        raise BadRequest(f"The {name} field is required.") from None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"The value '{text}' is not valid for {name}.") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _date(params: dict[str, list[str]], name: str) -> dt.date:
    try:
        text = params[name][0]
    except (KeyError, IndexError):
        raise BadRequest(f"The {name} field is required.") from None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"The value '{text}' is not valid for {name}; use yyyy-MM-dd.") from None


def _int(params: dict[str, list[str]], name: str) -> int:
    try:
        return int(params[name][0])
    except (KeyError, IndexError):
        raise BadRequest(f"The {name} field is required.") from None
    except ValueError:
        raise BadRequest(f"The value '{params[name][0]}' is not valid for {name}.") from None


def _fuelhh(params: dict[str, list[str]]) -> Records:
    start, end = _date(params, "settlementDateFrom"), _date(params, "settlementDateTo")
    periods = {int(p) for p in params.get("settlementPeriod", [])}
    fuels = {f.upper() for f in params.get("fuelType", [])}
    rows: Records = []
    day = start
    while day <= end:
        rows.extend(
            r
            for r in bmrs_history.fuelhh_records(day)
            if (not periods or r["settlementPeriod"] in periods) and (not fuels or r["fuelType"] in fuels)
        )
        day += dt.timedelta(days=1)
    return rows


def _freq(params: dict[str, list[str]]) -> Records:
    start, end = _time(params, "measurementDateTimeFrom"), _time(params, "measurementDateTimeTo")
    if end - start > FREQ_MAX_WINDOW:
        raise BadRequest("The date range must be at most 24 hours.")
    return synthetic.freq_records(start, end)


def _demand(code: str) -> Callable[[dict[str, list[str]]], Records]:
    def handler(params: dict[str, list[str]]) -> Records:
        return bmrs_history.demand_records(code, _time(params, "publishDateTimeFrom"), _time(params, "publishDateTimeTo"))

    return handler


def _agws(params: dict[str, list[str]]) -> Records:
    return agws.agws_records(_time(params, "publishDateTimeFrom"), _time(params, "publishDateTimeTo"))


def _per_period(make: Callable[[dt.date, int], Records]) -> Callable[[dict[str, list[str]]], Records]:
    def handler(params: dict[str, list[str]]) -> Records:
        return make(_date(params, "settlementDate"), _int(params, "settlementPeriod"))

    return handler


@dataclass(frozen=True)
class Route:
    """One dataset endpoint: how it answers, and the ``metadata`` that says where its numbers come from."""

    handler: Callable[[dict[str, list[str]]], Records]
    metadata: dict[str, Any]
    # Where a dataset is real on some days and synthetic on others: the metadata of one request's answer.
    metadata_of: Callable[[dict[str, list[str]]], dict[str, Any]] | None = None

    def metadata_for(self, params: dict[str, list[str]]) -> dict[str, Any]:
        return self.metadata if self.metadata_of is None else self.metadata_of(params)


def _pn_records(day: dt.date, period: int) -> Records:
    """PN: synthetic where the synthetic year is (2018, marked), real in the 2021 per-unit window, nothing elsewhere."""
    return synthetic.pn_records(day, period) if synthetic.covers(day) else pn_2021.pn_records(day, period)


def _pn_metadata(params: dict[str, list[str]]) -> dict[str, Any]:
    try:
        day = _date(params, "settlementDate")
    except BadRequest:
        return synthetic.METADATA
    return synthetic.METADATA if synthetic.covers(day) else _real(pn_2021.SOURCE)


# Reference endpoints: each answers a list of records with no dataset envelope, as the Insights API does.
REFERENCE_ROUTES: dict[str, Callable[[], tuple[dict, ...]]] = {"/reference/bmunits/all": bm_units.bm_unit_records}


def _real(source: str) -> dict[str, Any]:
    return {"synthetic": False, "source": source}


ROUTES: dict[str, Route] = {
    "/datasets/FUELHH": Route(_fuelhh, _real(bmrs_history.SOURCE)),
    "/datasets/FREQ": Route(_freq, synthetic.METADATA),
    "/datasets/INDO": Route(_demand("INDO"), _real(bmrs_history.SOURCE)),
    "/datasets/ITSDO": Route(_demand("ITSDO"), _real(bmrs_history.SOURCE)),
    "/datasets/AGWS": Route(_agws, _real(agws.SOURCE)),
    "/datasets/B1610": Route(_per_period(synthetic.b1610_records), synthetic.METADATA),
    "/datasets/PN": Route(_per_period(_pn_records), synthetic.METADATA, _pn_metadata),
}


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-response (a timeout, a `curl | head`) is routine, not a server fault.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            log.debug("replay client %s disconnected", client_address)
            return
        super().handle_error(request, client_address)


class ReplayServer:
    """The replay server, run in a background thread.

    Args:
        host: Address to bind; loopback by default.
        port: Port to bind; 0 picks a free one (see :attr:`base_url`).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self._lock = threading.Lock()
        self._httpd = _QuietServer((host, port), self._handler_class())
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{API_PREFIX}"

    @property
    def neso_base_url(self) -> str:
        """NESO's Data Portal API as this server answers it (``NESO_API_BASE_URL``)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{NESO_PREFIX}"

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def _take_fault(self, path: str, query: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.path_contains in path and fault.query_contains in query and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def start(self) -> "ReplayServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="replay-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "ReplayServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes; without TCP_NODELAY each response waits ~40 ms on
                # Nagle's algorithm against the client's delayed ACK.
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("replay %s", fmt % args)

            def _send(self, status: int, body: str | bytes, headers: dict[str, str] | None = None) -> None:
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlsplit(self.path)
                path = url.path[len(API_PREFIX) :] if url.path.startswith(API_PREFIX) else url.path
                stream = path.endswith("/stream")
                route = path[: -len("/stream")] if stream else path
                params = parse_qs(url.query)
                with server._lock:
                    server.requests.append((path, params))
                fault = server._take_fault(path, url.query + "&")
                if fault is not None and fault.status is not None:
                    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                    return self._send(fault.status, fault.body or json.dumps({"status": fault.status, "title": "injected fault"}), headers)
                if fault is not None and fault.body is not None:
                    return self._send(200, fault.body)
                if route == f"{NESO_PREFIX}/datastore_search":
                    return self._neso(params, fault)
                if route in REFERENCE_ROUTES:  # reference data: a bare array, not a dataset's {"data": ...}
                    return self._send(200, orjson.dumps(list(REFERENCE_ROUTES[route]())), {SYNTHETIC_HEADER: "false"})
                if route not in ROUTES:
                    return self._send(404, json.dumps({"status": 404, "title": f"No endpoint at {path}"}))
                served = ROUTES[route]
                try:
                    rows = served.handler(params)
                except BadRequest as exc:
                    return self._send(400, json.dumps({"status": 400, "title": "Bad Request", "errors": {"request": [str(exc)]}}))
                if fault is not None and fault.transform is not None:
                    rows = fault.transform([dict(r) for r in rows])
                # orjson: a backfill's server shares the machine with the run, and json.dumps was a third of its time
                metadata = served.metadata_for(params)
                body = orjson.dumps(rows if stream else {"data": rows, "metadata": metadata},
                                    option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
                self._send(200, body, {SYNTHETIC_HEADER: "true" if metadata["synthetic"] else "false"})

            def _neso(self, params: dict[str, list[str]], fault: Fault | None) -> None:
                try:
                    body = neso_portal.datastore_search(params, server.neso_base_url)
                except neso_portal.CkanError as exc:
                    return self._send(exc.status, orjson.dumps(exc.body()))
                if fault is not None and fault.transform is not None:
                    body["result"]["records"] = fault.transform([dict(r) for r in body["result"]["records"]])
                self._send(200, orjson.dumps(body), {SYNTHETIC_HEADER: "false"})

        return Handler
