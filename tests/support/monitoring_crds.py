"""The Prometheus Operator's ServiceMonitor/PodMonitor schemas (tests/chart/crds/) as strict validators.

The fixtures are the CRDs' ``openAPIV3Schema`` (monitoring.coreos.com/v1) with descriptions dropped; each
names the operator version and file it came from in ``$comment``. The API server prunes unknown fields
instead of rejecting them, so the validator closes every object that lists its properties: a misspelt
field in a template fails here rather than vanishing silently in a cluster.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

CRDS_DIR = Path(__file__).resolve().parents[1] / "chart" / "crds"


def _closed(node: Any) -> Any:
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    closed = {key: _closed(value) for key, value in node.items()}
    if "properties" in closed and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


@cache
def validator(kind: str) -> Draft7Validator:
    """A strict validator for ``kind`` ("ServiceMonitor" or "PodMonitor")."""
    schema = json.loads((CRDS_DIR / f"{kind.lower()}.schema.json").read_text())
    # The root's apiVersion/kind/metadata are open in a CRD schema; only spec is closed.
    schema["properties"]["spec"] = _closed(schema["properties"]["spec"])
    return Draft7Validator(schema)


def schema_errors(obj: dict[str, Any]) -> list[str]:
    """Every violation of the operator's schema for ``obj['kind']``, as "path: message" lines."""
    errors = validator(obj["kind"]).iter_errors(obj)
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
