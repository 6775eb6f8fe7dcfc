"""Shadow comparison: the same inputs to ``stable`` and ``canary`` on each replica, rate-limited.

Each ``Pair`` is one input sent to ``/v1/models/M/labels/stable:predict`` and
``/v1/models/M/labels/canary:predict`` on the same replica, back to back (which label
goes first alternates, so neither is always measured on a warm cache). Replicas and
inputs are visited round-robin. A token bucket holds the analysis to ``maxRequestRate``
requests per second across the whole service (both labels counted), whatever the number
of replicas. Inputs come from the model's warmup records (``assets.extra/
tf_serving_warmup_requests``, PredictionLog TFRecords), a REST request file, or are
generated from the signature (``tfsctl.load.payload``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfsctl.canary.judge import Pair, Sample
from tfsctl.canary.spec import InputsSpec
from tfsctl.errors import InvalidInput, ToolkitError
from tfsctl.load.payload import Payload, from_metadata, from_request, from_request_file, signature_inputs
from tfsctl.release.replicas import FleetClient, Replica

log = logging.getLogger(__name__)

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"


class RateLimiter:
    """A token bucket: at most ``rate`` acquisitions per second, bursts of at most ``burst``."""

    def __init__(
        self,
        rate: float,
        burst: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise InvalidInput(f"maxRequestRate {rate}: must be above 0")
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.clock = clock
        self.sleep = sleep
        self._tokens = self.burst
        self._at = clock()

    def acquire(self, n: float = 1.0) -> None:
        """Block until ``n`` tokens are there, then take them."""
        while True:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= n - 1e-9:  # float rounding must not leave it sleeping 1e-17 s forever
                self._tokens = max(0.0, self._tokens - n)
                return
            self.sleep((n - self._tokens) / self.rate)


# ------------------------------------------------------------------ inputs


def warmup_payloads(path: Path, signature: str, count: int) -> list[Payload]:
    """Payloads of the PredictLog records of a TF Serving warmup file (at most ``count``)."""
    from tfsctl.models import tfrecord
    from tfsctl.serving import tensors
    from tfsctl.serving.protos import prediction_log_pb2

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"inputs: warmup file {path}: {exc.strerror or exc}") from None
    payloads: list[Payload] = []
    try:
        for record in tfrecord.read(data):
            entry = prediction_log_pb2.PredictionLog.FromString(record.data)
            if entry.WhichOneof("log_type") != "predict_log":
                continue
            req = entry.predict_log.request
            inputs = {
                k: tensors.to_json_value(tensors.from_tensor_proto(v), k)
                for k, v in sorted(req.inputs.items())
            }
            sig = req.model_spec.signature_name or signature
            payloads.append(from_request({"inputs": inputs}, signature=sig, source=f"warmup file {path}"))
            if len(payloads) >= count:
                break
    except tfrecord.FramingError as exc:
        raise InvalidInput(f"inputs: warmup file {path}: {exc}") from None
    if not payloads:
        raise InvalidInput(f"inputs: warmup file {path} holds no PredictLog records")
    return payloads


def build_payloads(
    spec: InputsSpec, metadata: Callable[[], dict[str, Any]], warmup: Path | None
) -> tuple[list[Payload], str]:
    """The inputs of the analysis and where they came from.

    ``metadata`` fetches the stable label's ``/metadata`` (only called when needed);
    ``warmup`` is the stable version's warmup file when it is readable from here.
    """
    source = spec.source
    if source == "file":
        assert spec.file is not None
        path = Path(spec.file)
        if path.name == WARMUP_FILE.name or path.suffix in (".tfrecord", ".tfrecords"):
            return warmup_payloads(path, spec.signature, spec.count), f"warmup records of {path}"
        specs = signature_inputs(metadata(), spec.signature)
        return [from_request_file(path, signature=spec.signature, specs=specs)], f"request file {path}"
    if source in ("warmup", "auto") and spec.file:
        return warmup_payloads(Path(spec.file), spec.signature, spec.count), f"warmup records of {spec.file}"
    if source in ("warmup", "auto") and warmup is not None and warmup.is_file():
        return warmup_payloads(warmup, spec.signature, spec.count), f"warmup records of {warmup}"
    if source == "warmup":
        raise InvalidInput(
            "inputs.source is warmup but the stable version's warmup file is not readable from here "
            "(set inputs.file to a copy of assets.extra/tf_serving_warmup_requests)"
        )
    meta = metadata()
    payloads = [
        from_metadata(meta, spec.signature, batch_size=spec.batch_size, seed=spec.seed + i)
        for i in range(spec.count)
    ]
    return payloads, f"{spec.count} input(s) generated from signature {spec.signature}"


# ------------------------------------------------------------------ requests


def _outputs(response: dict[str, Any]) -> dict[str, Any]:
    raw = response.get("outputs", response.get("predictions"))
    if isinstance(raw, dict):
        return {str(k): np.asarray(v) for k, v in raw.items()}
    return {"outputs": np.asarray(raw)}


class Shadow:
    """Sends paired requests to two labels of ``model`` on every replica, under a rate limit."""

    def __init__(
        self,
        fleet: FleetClient,
        model: str,
        stable_label: str,
        canary_label: str,
        payloads: Sequence[Payload],
        limiter: RateLimiter,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not payloads:
            raise InvalidInput("inputs: no inputs to compare")
        self.fleet = fleet
        self.model = model
        self.labels = (stable_label, canary_label)
        self.payloads = list(payloads)
        self.limiter = limiter
        self.clock = clock
        self.sent = 0
        self._turn = 0

    def _one(self, replica: Replica, label: str, index: int) -> Sample:
        payload = self.payloads[index]
        body = payload.rest_body
        columnar = "inputs" in body
        client = self.fleet.client(replica.endpoint)
        started = self.clock()
        self.sent += 1
        try:
            response = client.predict(
                self.model,
                body["inputs"] if columnar else body["instances"],
                label=label,
                signature=payload.signature,
                transport="rest",
                columnar=columnar,
            )
        except ToolkitError as exc:
            return Sample(replica.name, label, index, self.clock() - started, None, str(exc))
        seconds = self.clock() - started
        return Sample(replica.name, label, index, seconds, _outputs(response))

    def pair(self, replica: Replica, index: int) -> Pair:
        """One input to both labels on ``replica`` (the first label alternates)."""
        self.limiter.acquire(2)
        stable_label, canary_label = self.labels
        first_stable = self._turn % 2 == 0
        self._turn += 1
        if first_stable:
            s = self._one(replica, stable_label, index)
            c = self._one(replica, canary_label, index)
        else:
            c = self._one(replica, canary_label, index)
            s = self._one(replica, stable_label, index)
        return Pair(
            Sample(s.replica, "stable", s.input_index, s.seconds, s.outputs, s.error),
            Sample(c.replica, "canary", c.input_index, c.seconds, c.outputs, c.error),
        )

    def sweep(self, replicas: Sequence[Replica], offset: int = 0) -> list[Pair]:
        """Every input once on every replica (inputs rotated by ``offset`` per sweep)."""
        pairs = []
        for replica in replicas:
            for i in range(len(self.payloads)):
                pairs.append(self.pair(replica, (i + offset) % len(self.payloads)))
        return pairs
