"""The Prometheus Operator's ServiceMonitor/PodMonitor (monitoring.coreos.com/v1) as strict validators.

The models come from ``cloudcoil.models.prometheus_operator`` (PyPI, generated from the
operator's CRDs, versioned with the operator). The API server prunes unknown fields
instead of rejecting them, and so do the models; so besides the models' own type and
constraint errors, every field of ``spec`` the model did not keep is reported: a
misspelt field in a template fails here rather than vanishing silently in a cluster.
"""

from __future__ import annotations

import json
from typing import Any


def _model(kind: str) -> Any:
    from cloudcoil.models.prometheus_operator import v1

    return {"ServiceMonitor": v1.ServiceMonitor, "PodMonitor": v1.PodMonitor}[kind]


def _dropped(given: Any, kept: Any, path: str) -> list[str]:
    if isinstance(given, dict) and isinstance(kept, dict):
        out = [f"{path}/{key}: not a field of the CRD" for key in given if key not in kept]
        for key in given.keys() & kept.keys():
            out += _dropped(given[key], kept[key], f"{path}/{key}")
        return out
    if isinstance(given, list) and isinstance(kept, list):
        return [
            e
            for i, (g, k) in enumerate(zip(given, kept, strict=False))
            for e in _dropped(g, k, f"{path}/{i}")
        ]
    return []


def schema_errors(obj: dict[str, Any]) -> list[str]:
    """Every violation of the operator's CRD for ``obj['kind']``, as "path: message" lines."""
    from pydantic import ValidationError

    try:
        # strict JSON mode: no "yes" -> True coercions, which the API server would refuse too
        parsed = _model(obj["kind"]).model_validate_json(json.dumps(obj), strict=True)
    except ValidationError as exc:
        return sorted(f"{'/'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    kept = parsed.model_dump(by_alias=True, exclude_none=True, mode="json")
    return sorted(_dropped(obj.get("spec", {}), kept.get("spec", {}), "spec"))
