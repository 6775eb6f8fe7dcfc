"""Live traffic from the Prometheus HTTP API (``/api/v1/query``), when the spec names a URL.

TF Serving labels its serving metrics by model only (``:tensorflow:serving:request_count``
by ``model_name`` and ``status``, ``:tensorflow:serving:request_latency`` by
``model_name``, ``API``, ``entrypoint``; ``tensorflow_serving/servables/tensorflow/util.cc``):
no series says which version or label served a request. So the live check compares the
model's traffic over the bake window with the same-length window before the canary
started: the error rate during the bake, and the p99 latency during it against the p99
before it. The analysis's own shadow requests are in those counts too.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from tfsctl.canary.judge import LiveStats
from tfsctl.errors import Unavailable

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"


def _matchers(model: str, selector: str | None) -> str:
    escaped = model.replace("\\", "\\\\").replace('"', '\\"')
    extra = f",{selector}" if selector else ""
    return f'model_name="{escaped}"{extra}'


def queries(model: str, window_seconds: float, selector: str | None = None) -> dict[str, str]:
    """The PromQL of each figure, evaluated at the end of a window of ``window_seconds``."""
    w = f"{max(1, math.ceil(window_seconds))}s"
    m = _matchers(model, selector)
    return {
        "requests": f"sum(increase({REQUEST_COUNT}{{{m}}}[{w}]))",
        "errors": f'sum(increase({REQUEST_COUNT}{{{m},status!="OK"}}[{w}]))',
        # request_latency is in microseconds
        "p99": f"histogram_quantile(0.99, sum by (le) (rate({REQUEST_LATENCY}_bucket{{{m}}}[{w}]))) / 1e6",
    }


class PrometheusClient:
    """Instant queries against one Prometheus (no credentials: a URL inside the cluster network)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, promql: str, at: float) -> float | None:
        """The value of a one-series instant query at ``at`` (unix seconds); None when empty or NaN."""
        params = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"})
        url = f"{self.url}/api/v1/query?{params}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                body: dict[str, Any] = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            raise Unavailable(
                f"prometheus.url {self.url}: HTTP {exc.code} for {promql!r}: {detail}"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise Unavailable(f"prometheus.url {self.url}: {exc}") from None
        if body.get("status") != "success":
            raise Unavailable(f"prometheus.url {self.url}: {body.get('errorType')}: {body.get('error')}")
        data = body.get("data", {})
        result = data.get("result", [])
        if data.get("resultType") == "scalar":
            value = result[1] if result else None
        elif not result:
            return None
        else:
            value = result[0].get("value", [None, None])[1]
        try:
            number = float(value) if value is not None else None
        except (TypeError, ValueError):
            return None
        if number is None or math.isnan(number) or math.isinf(number):
            return None
        return number

    def window(self, model: str, end: float, seconds: float, selector: str | None = None) -> LiveStats:
        """Requests, errors and p99 latency of ``model`` over ``[end - seconds, end]``."""
        q = queries(model, seconds, selector)
        return LiveStats(
            requests=self.query(q["requests"], end) or 0.0,
            errors=self.query(q["errors"], end) or 0.0,
            p99_seconds=self.query(q["p99"], end),
        )
