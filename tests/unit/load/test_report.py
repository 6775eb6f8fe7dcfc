from __future__ import annotations

import base64
import json
import struct
from dataclasses import replace
from pathlib import Path

from support.load_timelines import CPU, LOAD_STOP, PHASES, desired_profile, samples, scenario
from tfsctl.load import report
from tfsctl.load.evaluate import Expectations, evaluate
from tfsctl.load.metrics import MetricSpec, MetricValue

EXPECT = Expectations(at_least=3, scale_out_within=30, scale_in_within=60)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def build(obs_kwargs: dict | None = None) -> report.Report:
    obs = scenario(**(obs_kwargs or {}))
    return report.Report(
        title="verify-autoscaling tfs/tfs",
        context={"release": "tfs", "namespace": "tfs", "transport": obs.transport, "p95_limit_ms": 500.0},
        expectations=EXPECT,
        observation=obs,
        evaluation=evaluate(obs, EXPECT),
        samples=samples(),
        phases=PHASES,
    )


class TestReportFiles:
    def test_writes_json_html_and_png(self, tmp_path: Path) -> None:
        paths = report.write(build(), tmp_path)
        assert {p.name for p in tmp_path.iterdir()} == {"report.json", "report.html", "autoscaling.png"}
        assert paths["plot"].read_bytes().startswith(PNG_MAGIC)

    def test_json_has_the_timeline_the_decisions_and_a_verdict_per_expectation(self, tmp_path: Path) -> None:
        data = json.loads(report.write(build(), tmp_path)["json"].read_text())
        assert data["passed"] is True
        assert [c["name"] for c in data["checks"]] == [
            "scale-out",
            "scale-in",
            "max-replicas",
            "thresholds",
            "spread",
        ]
        assert all(c["status"] == "pass" and c["reason"] for c in data["checks"])
        assert data["decisions"][0].startswith("load crossed the target at t=10s")
        assert len(data["timeline"]["load"]) == 60
        assert data["timeline"]["hpa"][3]["desired"] == 3
        assert data["timeline"]["ready"][-1]["ready"] == 1
        assert data["load"]["phases"][1] == {"name": "step 2", "start": 20, "end": 40, "users": 8}
        assert data["files"] == {"plot": "autoscaling.png", "json": "report.json", "html": "report.html"}

    def test_html_is_self_contained_and_shows_failures_with_their_reasons(self, tmp_path: Path) -> None:
        paths = report.write(build({"desired": desired_profile(3, down_at=500)}), tmp_path)
        page = paths["html"].read_text()
        assert "1 expectation(s) failed: scale-in" in page
        assert "<td class='fail'>FAIL</td><td>still 3 ready replicas (HPA desired 3)" in page
        embedded = page.split("data:image/png;base64,", 1)[1].split('"', 1)[0]
        assert base64.b64decode(embedded) == paths["plot"].read_bytes()
        assert "http://" not in page.replace("http://10.", "")  # nothing fetched from elsewhere

    def test_a_failed_verification_is_marked_in_the_json(self, tmp_path: Path) -> None:
        data = json.loads(
            report.write(build({"split": "stuck", "transport": "grpc"}), tmp_path)["json"].read_text()
        )
        assert data["passed"] is False
        spread = next(c for c in data["checks"] if c["name"] == "spread")
        assert spread["status"] == "fail"
        assert spread["details"]["busiest_pod"] == "tfs-0"


ROUTE_RPS = MetricSpec("External", "ingress_requests_per_second", "AverageValue", 10.0, "route=tfs-tfs-8501")


def with_external_metric(rep: report.Report) -> report.Report:
    """The same run with an External metric next to cpu; the HPA reported it from t=10 on."""
    obs = rep.observation
    points = []
    for p in obs.hpa:
        rps = MetricValue(ROUTE_RPS, (25.0 if p.t < LOAD_STOP else 0.0) if p.t >= 10 else None)
        points.append(replace(p, metrics=(*p.metrics, rps)))
    obs = replace(obs, hpa=points, metrics=(CPU, ROUTE_RPS))
    return replace(rep, observation=obs, evaluation=evaluate(obs, EXPECT))


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    return struct.unpack(">II", data[16:24])  # IHDR width, height


class TestMetricLines:
    def test_json_lists_every_hpa_metric_with_its_target_and_series(self, tmp_path: Path) -> None:
        data = json.loads(report.write(with_external_metric(build()), tmp_path)["json"].read_text())
        cpu, rps = data["metrics"]
        assert {k: cpu[k] for k in ("name", "type", "target_type", "target", "unit", "api")} == {
            "name": "cpu", "type": "Resource", "target_type": "Utilization", "target": 50.0, "unit": "%",
            "api": "metrics.k8s.io",
        }  # fmt: skip
        fields = ("name", "metric", "type", "target_type", "target", "selector", "api")
        assert {k: rps[k] for k in fields} == {
            "name": "external/ingress_requests_per_second{route=tfs-tfs-8501}",
            "metric": "ingress_requests_per_second", "type": "External", "target_type": "AverageValue",
            "target": 10.0, "selector": "route=tfs-tfs-8501", "api": "external.metrics.k8s.io",
        }  # fmt: skip
        assert rps["tolerance"] == {"scale_up": 0.1, "scale_down": 0.1}
        assert rps["series"][:3] == [{"t": 0.0, "current": None}, {"t": 5.0, "current": None},
                                     {"t": 10.0, "current": 25.0}]  # fmt: skip
        assert len(rps["series"]) == len(data["timeline"]["hpa"])
        assert cpu["series"][2] == {"t": 10.0, "current": 180.0}
        assert data["timeline"]["hpa"][2]["metrics"][1] == {
            "name": "external/ingress_requests_per_second{route=tfs-tfs-8501}",
            "current": 25.0, "target": 10.0, "unit": "",
        }  # fmt: skip

    def test_a_metric_the_hpa_never_reported_is_still_listed(self, tmp_path: Path) -> None:
        rep = build()
        rep.observation.metrics = (CPU, ROUTE_RPS)
        data = json.loads(report.write(rep, tmp_path)["json"].read_text())
        assert [(m["name"], m["series"]) for m in data["metrics"][1:]] == [
            ("external/ingress_requests_per_second{route=tfs-tfs-8501}", [])
        ]
        page = (tmp_path / "report.html").read_text()
        assert "<td>external/ingress_requests_per_second{route=tfs-tfs-8501}</td><td>External</td>" in page
        assert "no value reported" in page

    def test_the_plot_has_a_panel_per_metric(self, tmp_path: Path) -> None:
        one = png_size(report.write(build(), tmp_path / "one")["plot"])
        two = png_size(report.write(with_external_metric(build()), tmp_path / "two")["plot"])
        assert one[0] == two[0] == 1000
        assert two[1] - one[1] == 220  # one more 2.2-inch panel at 100 dpi
        page = (tmp_path / "two" / "report.html").read_text()
        assert "<td>AverageValue 10 </td><td>25</td>" in page
