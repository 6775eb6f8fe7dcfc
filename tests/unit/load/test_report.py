from __future__ import annotations

import base64
import json
from pathlib import Path

from support.load_timelines import PHASES, desired_profile, samples, scenario
from tfsctl.load import report
from tfsctl.load.evaluate import Expectations, evaluate

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
