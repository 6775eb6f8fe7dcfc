"""``--resolve HOST:PORT:ADDRESS``: load through a name-based route (an Ingress host) at an address."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from tfsctl.errors import InvalidInput
from tfsctl.load import options as knobs
from tfsctl.load import target as targets
from tfsctl.load.options import LoadSettings


def _opts(**over: Any) -> SimpleNamespace:
    base = {k.dest: k.default for k in knobs.KNOBS}
    return SimpleNamespace(**{**base, **over})


def test_a_resolved_target_connects_to_the_address_and_keeps_the_name_in_the_host_header() -> None:
    t = targets.Target.from_options(_opts(resolve="tfs.local:80:172.31.79.10"), "http://tfs.local")
    assert t.resolve == targets.Resolve("tfs.local", 80, "172.31.79.10")
    assert t.connect_url == "http://172.31.79.10:80"
    assert t.headers()["Host"] == "tfs.local"
    assert t.host == "http://tfs.local"  # the URL keeps the name, as curl's --resolve does


def test_a_non_default_port_stays_in_the_host_header() -> None:
    t = targets.Target.from_options(_opts(resolve="tfs.local:8080:10.0.0.5"), "http://tfs.local:8080/")
    assert t.connect_url == "http://10.0.0.5:8080"
    assert t.headers()["Host"] == "tfs.local:8080"


def test_an_ipv6_address_is_bracketed_in_the_connect_url() -> None:
    t = targets.Target.from_options(_opts(resolve="tfs.local:80:[fd00::10]"), "http://tfs.local")
    assert t.connect_url == "http://[fd00::10]:80"


def test_without_resolve_the_target_is_the_host_and_sends_no_host_header() -> None:
    t = targets.Target.from_options(_opts(), "http://127.0.0.1:8501")
    assert t.resolve is None and t.connect_url == "http://127.0.0.1:8501"
    assert "Host" not in t.headers()


@pytest.mark.parametrize(
    "text", ["tfs.local", "tfs.local:80", "tfs.local:http:10.0.0.1", ":80:10.0.0.1", "h:0:a"]
)
def test_a_malformed_resolve_is_one_line_naming_the_flag_and_the_form(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"^--resolve .*: expected HOST:PORT:ADDRESS"):
        targets.Target.from_options(_opts(resolve=text), "http://tfs.local")


@pytest.mark.parametrize("host", ["http://other.local", "http://tfs.local:8501", "https://tfs.local"])
def test_a_resolve_for_another_host_or_port_is_refused(host: str) -> None:
    with pytest.raises(
        InvalidInput, match=r"--resolve 'tfs.local:80:10.0.0.1' does not name the host and port"
    ):
        targets.Target.from_options(_opts(resolve="tfs.local:80:10.0.0.1"), host)


def test_resolve_travels_to_locust_and_to_distributed_workers() -> None:
    s = LoadSettings(host="http://tfs.local", resolve="tfs.local:80:10.0.0.1")
    argv = s.to_argv()
    assert argv[argv.index("--resolve") + 1] == "tfs.local:80:10.0.0.1"
    assert s.to_env()["TFSCTL_LOAD_RESOLVE"] == "tfs.local:80:10.0.0.1"
    parsed = LoadSettings.from_knobs("http://tfs.local", {"resolve": "tfs.local:80:10.0.0.1"})
    assert parsed.resolve == "tfs.local:80:10.0.0.1"


class _Recorder(http.server.BaseHTTPRequestHandler):
    hosts: list[str] = []

    def do_GET(self) -> None:
        type(self).hosts.append(self.headers.get("Host", ""))
        body = json.dumps({"model_spec": {"name": "m"}, "metadata": {"signature_def": {}}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[int]:
    _Recorder.hosts = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_the_metadata_request_goes_to_the_address_with_the_name_as_host(server: int) -> None:
    """The payload's /metadata read: a real HTTP exchange on the loopback, its Host header recorded."""
    t = targets.Target.from_options(
        _opts(model="m", resolve=f"tfs.local:{server}:127.0.0.1"), f"http://tfs.local:{server}"
    )
    assert targets.fetch_metadata(t, "rest")["model_spec"]["name"] == "m"
    assert _Recorder.hosts == [f"tfs.local:{server}"]
