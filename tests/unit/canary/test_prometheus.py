"""The live-traffic check against a small HTTP server answering as Prometheus's HTTP API does.

Not a real Prometheus: the server returns ``/api/v1/query`` JSON (``status``, ``data.resultType``,
``data.result[].value``) for the PromQL the client sends, and records every query.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tfsctl.canary.prometheus import REQUEST_COUNT, REQUEST_LATENCY, PrometheusClient, queries
from tfsctl.errors import Unavailable


class FakePrometheus(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers: dict[str, Any] = {}  # substring of the query -> value (None: empty vector)
        self.seen: list[dict[str, str]] = []
        self.fail: tuple[int, dict[str, Any]] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakePrometheus

    def do_GET(self) -> None:
        parsed = urllib.parse.urlparse(self.path)
        params = dict(urllib.parse.parse_qsl(parsed.query))
        self.server.seen.append({"path": parsed.path, **params})
        if self.server.fail is not None:
            code, body = self.server.fail
        else:
            code = 200
            result = []
            for key, value in self.server.answers.items():
                if key in params.get("query", ""):
                    if value is not None:
                        result = [{"metric": {}, "value": [float(params["time"]), str(value)]}]
                    break
            body = {"status": "success", "data": {"resultType": "vector", "result": result}}
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def prom() -> Iterator[FakePrometheus]:
    server = FakePrometheus()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_queries_use_tf_servings_own_metric_names_by_model() -> None:
    q = queries("fashion", 30, 'namespace="tfs"')
    assert q["requests"] == f'sum(increase({REQUEST_COUNT}{{model_name="fashion",namespace="tfs"}}[30s]))'
    assert 'status!="OK"' in q["errors"]
    assert f"{REQUEST_LATENCY}_bucket" in q["p99"] and q["p99"].endswith("/ 1e6")


def test_a_window_reads_requests_errors_and_p99(prom: FakePrometheus) -> None:
    prom.answers = {'status!="OK"': 4, "histogram_quantile": 0.025, "increase": 200}
    stats = PrometheusClient(prom.url).window("fashion", end=1_700_000_000.0, seconds=30)
    assert (stats.requests, stats.errors, stats.p99_seconds) == (200.0, 4.0, 0.025)
    assert stats.error_rate == 0.02
    assert {s["path"] for s in prom.seen} == {"/api/v1/query"}
    assert {s["time"] for s in prom.seen} == {"1700000000.000"}


def test_an_empty_or_nan_answer_is_no_data(prom: FakePrometheus) -> None:
    prom.answers = {"histogram_quantile": "NaN", "increase": None}
    stats = PrometheusClient(prom.url).window("fashion", end=1.0, seconds=5)
    assert (stats.requests, stats.errors, stats.p99_seconds) == (0.0, 0.0, None)


def test_a_query_error_is_one_line_naming_the_url(prom: FakePrometheus) -> None:
    prom.fail = (400, {"status": "error", "errorType": "bad_data", "error": "parse error"})
    with pytest.raises(Unavailable, match=r"prometheus.url http://127.0.0.1:\d+: HTTP 400"):
        PrometheusClient(prom.url).query("up", 1.0)


def test_an_unreachable_prometheus_is_unavailable() -> None:
    with pytest.raises(Unavailable, match=r"prometheus\.url http://127\.0\.0\.1:9"):
        PrometheusClient("http://127.0.0.1:9", timeout=2).query("up", 1.0)
