"""``tfsctl serve`` over time: new versions on disk, config-file edits, SIGTERM drain.

One server polls its file system and its config file every second (as the chart's
local preset does with a short poll), with ``--allow_version_labels_for_unavailable_models``.
"""

from __future__ import annotations

import http.client
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.serving_models import TESTDATA, add_version, copy_model, write_slow_model
from support.serving_wait import eventually
from tfsbed.serve.testing import LocalServer
from tfsctl.errors import NotFound
from tfsctl.serving.client import ServingClient
from tfsctl.serving.config import ModelConfig, ServerConfig, VersionPolicy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HP2_SRC = TESTDATA / "saved_model_half_plus_two_2_versions"


@pytest.fixture(scope="module")
def live_root(tmp_path_factory: pytest.TempPathFactory, tf_serving_testdata: Path) -> Path:
    root = tmp_path_factory.mktemp("live")
    copy_model("saved_model_half_plus_two_2_versions", root / "live", versions=(123,))
    write_slow_model(root / "slow")
    return root


def _write(config_file: Path, config: ServerConfig) -> None:
    tmp = config_file.with_suffix(".tmp")
    tmp.write_text(config.to_text())
    tmp.replace(config_file)  # atomic, like a kubelet ConfigMap update


@pytest.fixture(scope="module")
def server(live_root: Path) -> Iterator[LocalServer]:
    config = ServerConfig(
        {
            "live": ModelConfig("live", str(live_root / "live")),
            "slow": ModelConfig("slow", str(live_root / "slow")),
        }
    )
    config_file = live_root / "model_config.pbtxt"
    _write(config_file, config)
    srv = LocalServer(
        config=config_file, config_poll_seconds=1, fs_poll_seconds=1, allow_labels_for_unavailable=True
    )
    with srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: LocalServer) -> Iterator[ServingClient]:
    with server.client(timeout=60) as c:
        yield c


def _states(client: ServingClient, model: str = "live") -> dict[int, str]:
    return {r.version: r.state for r in client.model_status(model)}


def test_a_new_version_directory_is_loaded_and_latest_policy_retires_the_old(
    client: ServingClient, live_root: Path
) -> None:
    assert _states(client) == {123: "AVAILABLE"}
    add_version(HP2_SRC, "00000124", live_root / "live", 200)
    eventually(lambda: _states(client) == {200: "AVAILABLE", 123: "END"}, what="200 served, 123 unloaded")
    assert client.predict("live", [2.0], transport="grpc")["model_spec"]["version"] == "200"


def test_config_file_edit_changes_policy_and_adds_a_new_label(
    client: ServingClient, server: LocalServer, live_root: Path
) -> None:
    assert server.config_file is not None
    config = ServerConfig.parse(server.config_file.read_text())
    live = config.models["live"].with_policy(VersionPolicy.specific(123, 200)).with_labels({"stable": 200})
    _write(server.config_file, config.with_model(live))
    eventually(lambda: _states(client) == {200: "AVAILABLE", 123: "AVAILABLE"}, what="123 reloaded")
    eventually(lambda: client.label_version("live", "stable") == 200, what="label stable")


def test_moving_a_label_to_a_version_not_loaded_is_refused_and_logged(
    client: ServingClient, server: LocalServer
) -> None:
    assert server.config_file is not None
    config = ServerConfig.parse(server.config_file.read_text())
    live = config.models["live"]
    _write(server.config_file, config.with_model(live.with_labels({"stable": 999})))
    eventually(
        lambda: "Request to assign label to version 999 of model live" in server.log_text(),
        what="label refusal in the server log",
    )
    assert client.label_version("live", "stable") == 200
    _write(server.config_file, config.with_model(live.with_labels({"stable": 123})))
    eventually(lambda: client.label_version("live", "stable") == 123, what="label moved to 123")


def test_a_malformed_config_file_is_logged_and_the_server_keeps_serving(
    client: ServingClient, server: LocalServer
) -> None:
    assert server.config_file is not None
    good = server.config_file.read_text()
    server.config_file.write_text(good.replace("model_config_list {", "model_config_list { bogus: 1", 1))
    try:
        eventually(
            lambda: "Error parsing text-format tensorflow.serving.ModelServerConfig" in server.log_text(),
            what="parse error in the server log",
        )
        assert client.predict("live", [2.0], label="stable")["predictions"] == [3.0]
    finally:
        server.config_file.write_text(good)


def test_removing_a_model_from_the_config_unloads_it(
    client: ServingClient, server: LocalServer, live_root: Path
) -> None:
    assert server.config_file is not None
    config = ServerConfig.parse(server.config_file.read_text())
    extra = ModelConfig("extra", str(live_root / "extra"))
    shutil.copytree(live_root / "live" / "00000123", live_root / "extra" / "1")
    _write(server.config_file, config.with_model(extra))
    eventually(lambda: _states(client, "extra") == {1: "AVAILABLE"}, what="extra loaded")
    _write(server.config_file, config)
    eventually(lambda: _states(client, "extra") == {1: "END"}, what="extra unloaded")
    with pytest.raises(NotFound, match=r"Latest\(extra\)"):
        client.predict("extra", [1.0])


def _in_flight(server: LocalServer) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=10)
    try:
        conn.request("GET", "/monitoring/prometheus/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    match = re.search(r"^tfsctl_serving_requests_in_flight (\d+)$", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def test_sigterm_finishes_requests_in_flight_then_exits_zero(
    server: LocalServer, client: ServingClient
) -> None:
    results: dict[str, Any] = {}

    def slow(transport: str) -> None:
        try:
            inputs = {"x": [1.0, 2.0], "delay_us": 3_000_000}
            results[transport] = client.predict("slow", inputs, columnar=True, transport=transport)  # type: ignore[arg-type]
        except Exception as exc:
            results[transport] = exc

    # Warm the signature so the requests below spend their time in the model's sleep.
    client.predict("slow", {"x": [0.0], "delay_us": 0}, columnar=True, transport="rest")
    client.predict("slow", {"x": [0.0], "delay_us": 0}, columnar=True, transport="grpc")
    threads = [threading.Thread(target=slow, args=(t,)) for t in ("rest", "grpc")]
    for thread in threads:
        thread.start()
    eventually(lambda: _in_flight(server) >= 2, what="both requests in flight")
    status = server.stop(timeout=60)
    for thread in threads:
        thread.join(timeout=60)
    assert results["rest"]["outputs"] == [2.0, 4.0]
    assert results["grpc"]["outputs"] == [2.0, 4.0]
    assert status == 0
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.rest_port), timeout=2):
        pass
