"""Distributed mode without a cluster: artifact frames, the master wrapper, target and failure checks."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tfsctl.errors import InvalidInput
from tfsctl.load import distributed
from tfsctl.load.master import frame, parse_frames

# stands in for `locust`: prints like Locust's --json, writes what --csv/--html ask for, exits 1
FAKE_LOCUST = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    args = sys.argv[1:]
    csv, html = args[args.index("--csv") + 1], args[args.index("--html") + 1]
    Path(csv + "_stats.csv").write_text("Type,Name,Request Count\\nPOST,predict:fashion,42\\n")
    Path(html).write_text("<html>" + "x" * 5000 + "</html>")
    print("log line [not json")
    print(json.dumps([{"name": "predict:fashion", "num_requests": 42}]))
    sys.exit(1)
    """
)


def test_frames_round_trip_binary_and_empty_files() -> None:
    text = "Locust output\n" + frame("a.csv", b"x,y\n1,2\n") + frame("empty", b"") + frame("bin", bytes(256))
    head, artifacts = parse_frames(text)
    assert head == "Locust output\n"
    assert artifacts == {"a.csv": b"x,y\n1,2\n", "empty": b"", "bin": bytes(256)}


def test_a_torn_or_corrupt_frame_is_left_out() -> None:
    good = frame("good.csv", b"1\n")
    corrupt = frame("bad.csv", b"12345").replace("\n", "\nZZZZ", 2)
    torn = frame("torn.csv", b"abc")[:-30]
    assert parse_frames(good + corrupt + torn)[1] == {"good.csv": b"1\n"}


def test_master_wrapper_runs_locust_then_prints_its_artifacts_and_keeps_the_exit_code(
    tmp_path: Path,
) -> None:
    fake = tmp_path / "fake_locust.py"
    fake.write_text(FAKE_LOCUST)
    done = subprocess.run(
        [sys.executable, "-m", "tfsctl.load.master", str(tmp_path / "artifacts"), sys.executable, str(fake)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1
    head, artifacts = parse_frames(done.stdout)
    assert sorted(artifacts) == ["locust_report.html", "locust_stats.csv"]
    assert artifacts["locust_stats.csv"].endswith(b"POST,predict:fashion,42\n")
    assert (tmp_path / "artifacts" / "locust_report.html").exists()
    assert distributed.parse_master_output(head) == [{"name": "predict:fashion", "num_requests": 42}]


@pytest.mark.parametrize("host", ["http://127.0.100.1:8501", "http://localhost:8501", "http://[::1]:8501"])
def test_loopback_targets_are_refused_naming_the_flag(host: str) -> None:
    with pytest.raises(InvalidInput, match=r"--target .* not reachable from the worker pods"):
        distributed.check_target(host)


@pytest.mark.parametrize("host", ["http://10.244.100.7:8501", "http://tfs.ns.svc:8501"])
def test_in_cluster_targets_are_accepted(host: str) -> None:
    distributed.check_target(host)


def test_master_that_gave_up_on_workers_is_recognised() -> None:
    log = (
        "[2026] INFO Waiting for workers to be ready, 1 of 2 connected\n"
        "[2026] ERROR Gave up waiting for workers to connect\n"
    )
    assert distributed.gave_up_waiting(log)
    assert not distributed.gave_up_waiting(json.dumps([{"name": "x"}]))


def _request(**kw: object) -> distributed.DistributedRequest:
    from tfsctl.load.options import LoadSettings

    settings = LoadSettings(host="http://tfs.ns.svc:8501")
    return distributed.DistributedRequest(settings=settings, workers=2, namespace="ns", name="t", **kw)  # type: ignore[arg-type]


def _pod_specs(request: distributed.DistributedRequest) -> list[dict[str, object]]:
    docs = distributed.render(request, "10.0.0.9", "print('hi')")
    return [d["spec"]["template"]["spec"] for d in docs if d["kind"] == "Job"]


def test_by_default_the_pods_have_no_placement_and_the_default_image() -> None:
    specs = _pod_specs(_request())
    assert len(specs) == 2
    for spec in specs:
        assert spec["nodeSelector"] == {} and spec["tolerations"] == []
        assert spec["containers"][0]["image"] == distributed.DEFAULT_IMAGE  # type: ignore[index]


def test_node_selector_tolerations_and_image_reach_master_and_workers() -> None:
    selector = distributed.parse_node_selector(["kubernetes.io/hostname=node-a", "pool=load"])
    tolerations = (
        distributed.parse_toleration("dedicated=load:NoSchedule"),
        distributed.parse_toleration("node.example/slow:NoExecute"),
    )
    specs = _pod_specs(_request(node_selector=selector, tolerations=tolerations, image="reg:5000/l:1"))
    for spec in specs:
        assert spec["nodeSelector"] == {"kubernetes.io/hostname": "node-a", "pool": "load"}
        assert spec["tolerations"] == [
            {"key": "dedicated", "operator": "Equal", "value": "load", "effect": "NoSchedule"},
            {"key": "node.example/slow", "operator": "Exists", "effect": "NoExecute"},
        ]
        assert spec["containers"][0]["image"] == "reg:5000/l:1"  # type: ignore[index]


def test_a_toleration_with_an_empty_value_is_equal_to_empty() -> None:
    assert distributed.parse_toleration("k=:NoSchedule") == {
        "key": "k", "operator": "Equal", "value": "", "effect": "NoSchedule"
    }  # fmt: skip


@pytest.mark.parametrize("item", ["nokey", "=v", "a b=c", ""])
def test_bad_node_selectors_are_refused_naming_the_flag(item: str) -> None:
    with pytest.raises(InvalidInput, match=r"^--node-selector .*expected KEY=VALUE$"):
        distributed.parse_node_selector([item])


@pytest.mark.parametrize("item", ["k=v", "k=v:Sometimes", ":NoSchedule", "=v:NoSchedule", "k v:NoSchedule"])
def test_bad_tolerations_are_refused_naming_the_flag(item: str) -> None:
    with pytest.raises(InvalidInput, match=r"^--toleration .*expected KEY\[=VALUE\]:EFFECT"):
        distributed.parse_toleration(item)


@pytest.mark.parametrize("image", ["", "a b", "reg/x:", "/x"])
def test_bad_images_are_refused_naming_the_flag(image: str) -> None:
    with pytest.raises(InvalidInput, match=r"^--image "):
        distributed.check_image(image)


def test_no_test_bed_knowledge_in_the_product() -> None:
    from tfsctl.paths import LOCUST_MANIFEST

    for path in (Path(distributed.__file__), LOCUST_MANIFEST):
        text = path.read_text().lower()
        assert "node.tfsctl.dev" not in text and "process node" not in text, path
