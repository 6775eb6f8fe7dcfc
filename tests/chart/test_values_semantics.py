"""Our copy of Helm's values rules against helm itself, on the same inputs.

tfsctl reads ``-f`` files, merges them and applies ``--set``/``--set-string``/
``--set-json`` itself (``tfsctl.release.ops.load_values``) and hands helm one dict as
JSON, because pyhelm3 concatenates lists when it merges. So the values a chart sees
must be the same either way: ``helm template -f a -f b --set ...`` (helm's own
reading and merging) and ``helm template -f ours.json`` (ours, of the same inputs).
A throwaway chart renders ``.Values`` as JSON, with chart defaults, so
null-deletes-a-default and list replacement are covered too.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tfsctl.release.ops import load_values

DEFAULTS = {
    "image": {"repository": "tensorflow/serving", "tag": "2.19.1", "pullPolicy": "IfNotPresent"},
    "args": ["--a", "--b"],
    "models": {"m": {"versionPolicy": {"latest": {"numVersions": 1}}, "versionLabels": {}}},
    "resources": {"limits": {"cpu": "1"}},
    "podAnnotations": {"keep": "yes", "drop": "me"},
}

# values files as users write them (YAML 1.1 words included: helm reads y/n/on/off as booleans)
FILES = [
    "args: [--c]\nmodels:\n  m:\n    versionLabels: {stable: 1}\npodAnnotations:\n  drop: null\n",
    "image: {tag: 2.19.1-gpu}\nmodels:\n  n: {basePath: /models/n}\nresources: null\n"
    "flags: [y, n, on, Off]\n",
]

# (kind, expression) lists; helm and tfsctl each apply them in their own order
SETS: list[list[tuple[str, str]]] = [
    [("set", "replicaCount=3,image.pullPolicy=Always")],
    [("set", "args[1]=--z"), ("set", "tolerations[0].key=gpu,tolerations[0].operator=Exists")],
    [("set", "models.m.versionLabels.canary=2"), ("set", "extra={x,y}")],
    [("set", "nodeSelector.kubernetes\\.io/os=linux"), ("set", "note=a\\,b")],
    [("set", "flag=true,off=false,gone=null,zip=007,neg=-4")],
    [("set", "image=null")],
    [("set-string", "tag=123,bool=true")],
    [("set-json", 'probes={"readiness":{"periodSeconds":2}}'), ("set-json", "list=[1,2,3]")],
    [("set-json", "replicaCount=5"), ("set", "replicaCount=2"), ("set-string", "tier=7")],
]

TEMPLATE = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: values\n"
    "data:\n  values: {{ toJson .Values | quote }}\n"
)


@pytest.fixture(scope="module")
def values_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chart = tmp_path_factory.mktemp("values-chart")
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: values\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text(yaml.safe_dump(DEFAULTS))
    (chart / "templates").mkdir()
    (chart / "templates" / "values.yaml").write_text(TEMPLATE)
    return chart


def _rendered(helm: Path, chart: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(helm), "template", "x", str(chart), *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    doc = yaml.safe_load(done.stdout)
    return dict(json.loads(doc["data"]["values"]))


@pytest.mark.parametrize("sets", SETS, ids=[" ".join(e for _, e in s) for s in SETS])
def test_our_values_reach_the_chart_as_helms_own_would(
    helm: Path, values_chart: Path, tmp_path: Path, sets: list[tuple[str, str]]
) -> None:
    files = []
    for i, text in enumerate(FILES):
        path = tmp_path / f"{i}.yaml"
        path.write_text(text)
        files.append(path)
    theirs = _rendered(
        helm, values_chart, *[f"-f={f}" for f in files], *[f"--{kind}={expr}" for kind, expr in sets]
    )

    by_kind = {k: [e for kind, e in sets if kind == k] for k in ("set", "set-string", "set-json")}
    ours = load_values(files, by_kind["set"], by_kind["set-string"], by_kind["set-json"])
    merged = tmp_path / "ours.json"  # as pyhelm3 hands values to helm: JSON on stdin
    merged.write_text(json.dumps(ours))
    assert _rendered(helm, values_chart, "-f", str(merged)) == theirs
