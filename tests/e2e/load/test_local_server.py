"""Load runs against a real ``tfsctl serve``: each user type, each shape, thresholds, artifacts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from support.load_servers import loadtest_json, locust, request_count
from tfsbed.serve.testing import LocalServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Short, light runs: a few users at a fixed rate, seconds of load (CPU is shared).
LIGHT = ("--users", "2", "--user-rps", "10", "--p95-ms", "2000", "--p99-ms", "4000")


def target_args(server: LocalServer) -> tuple[str, ...]:
    endpoint = server.endpoint
    return ("--target", endpoint.rest_url, "--grpc-target", endpoint.grpc_target)


class TestUserTypes:
    @pytest.mark.parametrize(
        ("transport", "selector", "name", "method"),
        [
            ("rest", ("--model-label", "stable"), "predict:fashion@stable", "POST"),
            ("grpc", ("--model-label", "canary"), "predict:fashion@canary", "grpc"),
            ("grpc", ("--model-version", "1"), "predict:fashion/1", "grpc"),
            ("rest", (), "predict:fashion", "POST"),
        ],
    )
    def test_each_user_type_loads_the_model_and_names_requests_by_model_and_label(
        self,
        fashion_server: LocalServer,
        tmp_path: Path,
        transport: str,
        selector: tuple[str, ...],
        name: str,
        method: str,
    ) -> None:
        before = request_count(fashion_server.endpoint.rest_url)
        code, data, stderr = loadtest_json(
            *target_args(fashion_server), "--transport", transport, *selector, *LIGHT,
            "--duration", "3s", "--report", str(tmp_path),
        )  # fmt: skip
        served = request_count(fashion_server.endpoint.rest_url) - before
        assert code == 0, stderr[-2000:]
        (entry,) = data["requests_by_name"]
        assert (entry["name"], entry["method"], entry["failures"]) == (name, method, 0)
        assert entry["requests"] == data["summary"]["requests"] > 10
        # the server counted what Locust recorded (+ the signature lookup and requests cut off at stop)
        assert entry["requests"] <= served <= entry["requests"] + 4
        assert data["thresholds"] == {**data["thresholds"], "passed": True, "violations": []}


class TestShapes:
    @pytest.mark.parametrize(
        ("shape", "params", "expected_users"),
        [
            ("constant", "", {3}),
            ("step", "steps=3", {1, 2, 3}),
            ("spike", "spike_users=6,spike_at=1,spike_for=2", {3, 6}),
            ("soak", "ramp=1", {3}),
        ],
    )
    def test_each_shape_drives_the_user_count_it_describes(
        self, fashion_server: LocalServer, tmp_path: Path, shape: str, params: str, expected_users: set[int]
    ) -> None:
        code, data, stderr = loadtest_json(
            *target_args(fashion_server), "--shape", shape, "--shape-params", params, "--users", "3",
            "--user-rps", "5", "--duration", "5s", "--report", str(tmp_path),
        )  # fmt: skip
        assert code == 0, stderr[-2000:]
        assert data["shape"] == shape
        assert data["summary"]["requests"] > 5
        assert data["summary"]["failures"] == 0
        with (tmp_path / "timeline.csv").open() as handle:
            users = {int(row["users"]) for row in csv.DictReader(handle)}
        assert expected_users <= users | {0}
        assert max(users) == max(expected_users)


class TestThresholdsAndArtifacts:
    def test_a_violated_latency_threshold_fails_with_exit_7_and_names_it(
        self, fashion_server: LocalServer, tmp_path: Path
    ) -> None:
        code, data, stderr = loadtest_json(
            *target_args(fashion_server), "--users", "1", "--user-rps", "5", "--duration", "2s",
            "--p95-ms", "0.001", "--report", str(tmp_path),
        )  # fmt: skip
        assert code == 7
        assert data["thresholds"]["passed"] is False
        assert data["thresholds"]["violations"][0].startswith("p95 ")
        assert "tfsctl: error: thresholds violated: p95" in stderr

    def test_an_unknown_label_fails_the_failure_ratio_with_the_servers_message(
        self, fashion_server: LocalServer, tmp_path: Path
    ) -> None:
        code, data, _ = loadtest_json(
            *target_args(fashion_server),
            "--model-label",
            "nightly",
            *LIGHT,
            "--duration",
            "2s",
            "--report",
            str(tmp_path),
        )
        assert code == 7
        assert any("failure ratio" in v for v in data["thresholds"]["violations"])
        assert "nightly" in json.dumps(data["errors"])

    def test_writes_locust_csv_and_html_reports(self, fashion_server: LocalServer, tmp_path: Path) -> None:
        code, data, stderr = loadtest_json(
            *target_args(fashion_server), *LIGHT, "--duration", "2s", "--report", str(tmp_path)
        )
        assert code == 0, stderr[-2000:]
        with (tmp_path / "locust_stats.csv").open() as handle:
            rows = {row["Name"]: row for row in csv.DictReader(handle)}
        assert int(rows["Aggregated"]["Request Count"]) == data["summary"]["requests"]
        assert "predict:fashion" in rows
        html = (tmp_path / "locust_report.html").read_text()
        assert "predict:fashion" in html
        assert (tmp_path / "locust_stats_history.csv").stat().st_size > 0

    def test_a_request_file_is_sent_as_the_payload(self, fashion_server: LocalServer, tmp_path: Path) -> None:
        request = tmp_path / "request.json"
        request.write_text(json.dumps({"instances": [[[[0.5]] * 28] * 28] * 2}))
        for transport in ("rest", "grpc"):
            code, data, stderr = loadtest_json(
                *target_args(fashion_server), "--transport", transport, "--request-file", str(request),
                *LIGHT,
                "--duration", "2s", "--report", str(tmp_path / transport),
            )  # fmt: skip
            assert code == 0, stderr[-2000:]
            assert data["summary"]["failures"] == 0
            assert data["summary"]["requests"] > 5


class TestLocustCommandLine:
    def test_locust_headless_exits_0_when_thresholds_hold(self, fashion_server: LocalServer) -> None:
        done = locust(
            "--headless", "-H", fashion_server.endpoint.rest_url, "-u", "2", "-r", "2", "-t", "3s",
            "--model-label", "stable", "--user-rps", "10", "--p95-ms", "2000", "--p99-ms", "4000",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert "predict:fashion@stable" in done.stdout + done.stderr
        assert "thresholds held" in done.stderr

    def test_locust_headless_exits_1_when_a_threshold_is_violated(self, fashion_server: LocalServer) -> None:
        done = locust(
            "--headless", "-H", fashion_server.endpoint.rest_url, "-u", "1", "-r", "1", "-t", "2s",
            "--transport", "grpc", "--grpc-target", fashion_server.endpoint.grpc_target, "--user-rps", "5",
            "--p95-ms", "0.001",
        )  # fmt: skip
        assert done.returncode == 1, done.stderr[-2000:]
        assert "threshold violated: p95" in done.stderr
        assert "grpc" in done.stdout + done.stderr


def test_an_abort_reason_stops_the_run_and_is_raised(fashion_server: LocalServer) -> None:
    """verify-autoscaling stops the load when a metric stays unserved: runner.run's ``abort``."""
    import subprocess
    import sys

    script = f"""
import time
from tfsctl.errors import Unavailable
from tfsctl.load import runner
from tfsctl.load.options import LoadSettings

asked = []
def abort():
    asked.append(time.monotonic())
    return "metric m is not served" if len(asked) >= 3 else None

settings = LoadSettings(host={fashion_server.endpoint.rest_url!r}, users=1, user_rps=5, duration=60)
started = time.monotonic()
try:
    runner.run(settings, abort=abort)
except Unavailable as exc:
    print(f"raised: {{exc}} after {{time.monotonic() - started:.1f}}s, asked {{len(asked)}}")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("raised: metric m is not served after "), proc.stdout + proc.stderr
    assert float(line.split(" after ")[1].split("s,")[0]) < 20  # stopped well before its 60 s
