"""One place decides which pods serve a release (tfsctl.kubestate), and every caller uses it."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from tfsctl import kubestate

TOOLS = Path(__file__).resolve().parents[3] / "tools"


def _pod(ready: str | None = "True", ip: str | None = "10.0.0.1", deleting: bool = False) -> NS:
    conditions = [] if ready is None else [NS(type="Ready", status=ready)]
    return NS(
        metadata=NS(deletion_timestamp="now" if deleting else None),
        status=NS(conditions=conditions, pod_ip=ip),
    )


@pytest.mark.parametrize(
    ("pod", "serves"),
    [
        (_pod(), True),
        (_pod(ready="False"), False),
        (_pod(ready=None), False),
        (_pod(ip=None), False),
        (_pod(deleting=True), False),
    ],
)
def test_a_pod_serves_when_ready_addressed_and_not_terminating(pod: NS, serves: bool) -> None:
    assert kubestate.serves(pod) is serves


def test_the_server_selector_is_the_charts_instance_and_component() -> None:
    assert (
        kubestate.server_selector("tfs")
        == "app.kubernetes.io/instance=tfs,app.kubernetes.io/component=server"
    )


@pytest.mark.parametrize(
    "path", sorted((TOOLS / "tfsctl").rglob("*.py")), ids=lambda p: str(p.relative_to(TOOLS))
)
def test_no_product_module_reads_the_ready_condition_itself(path: Path) -> None:
    if path.name == "kubestate.py":
        return
    tree = ast.parse(path.read_text())
    own = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and any(isinstance(c, ast.Constant) and c.value == "Ready" for c in node.comparators)
    ]
    assert own == [], f"{path.relative_to(TOOLS)}:{own} decides readiness itself: use tfsctl.kubestate"
