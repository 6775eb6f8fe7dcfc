"""Shadow inputs and the rate limit: warmup records, request files, the signature; a token bucket."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tfsctl.canary.shadow import RateLimiter, build_payloads, warmup_payloads
from tfsctl.canary.spec import parse
from tfsctl.errors import InvalidInput
from tfsctl.models import example, tfrecord

METADATA = {
    "metadata": {
        "signature_def": {
            "signature_def": {
                "serving_default": {
                    "inputs": {
                        "x": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1"}, {"size": "4"}]}}
                    }
                }
            }
        }
    }
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_the_rate_limiter_holds_requests_to_the_rate_after_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, burst=2.0, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        limiter.acquire(2)
    # 100 tokens at 10/s with 2 up front: at least 9.8 s
    assert clock.now == pytest.approx(9.8)


def test_a_rate_of_zero_is_refused() -> None:
    with pytest.raises(InvalidInput, match="maxRequestRate"):
        RateLimiter(0)


def test_warmup_records_become_payloads_with_their_tensors(tmp_path: Path) -> None:
    path = tmp_path / "tf_serving_warmup_requests"
    with path.open("wb") as stream:
        tfrecord.write(stream, example.warmup_records("fashion", batch_sizes=(1, 3)))
    payloads = warmup_payloads(path, "serving_default", count=10)
    assert len(payloads) == 2
    assert [p.tensors[0].shape for p in payloads] == [(1, 28, 28, 1), (3, 28, 28, 1)]
    assert np.allclose(payloads[0].tensors[0].array, example.sample_images(1, seed=1000), atol=1e-6)
    assert warmup_payloads(path, "serving_default", count=1)[0].signature == "serving_default"


def test_a_corrupt_warmup_file_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "tf_serving_warmup_requests"
    path.write_bytes(b"not a tfrecord at all")
    with pytest.raises(InvalidInput, match=r"warmup file .*tf_serving_warmup_requests: record 0"):
        warmup_payloads(path, "serving_default", 4)


def test_auto_inputs_prefer_the_stable_versions_warmup_file(tmp_path: Path) -> None:
    path = tmp_path / "tf_serving_warmup_requests"
    with path.open("wb") as stream:
        tfrecord.write(stream, example.warmup_records("fashion"))
    payloads, source = build_payloads(parse({}).inputs, lambda: pytest.fail("no metadata needed"), path)
    assert source.startswith("warmup records of") and len(payloads) == len(example.WARMUP_BATCH_SIZES)


def test_without_warmup_inputs_are_generated_from_the_signature() -> None:
    spec = parse({"inputs": {"count": 3, "batchSize": 2}}).inputs
    payloads, source = build_payloads(spec, lambda: METADATA, None)
    assert source == "3 input(s) generated from signature serving_default"
    assert [p.tensors[0].shape for p in payloads] == [(2, 4)] * 3
    assert not np.array_equal(payloads[0].tensors[0].array, payloads[1].tensors[0].array)


def test_a_request_file_is_used_as_is(tmp_path: Path) -> None:
    path = tmp_path / "req.json"
    path.write_text(json.dumps({"instances": [[1, 2, 3, 4]]}))
    spec = parse({"inputs": {"source": "file", "file": str(path)}}).inputs
    payloads, source = build_payloads(spec, lambda: METADATA, None)
    assert source == f"request file {path}" and payloads[0].rest_body["instances"] == [[1, 2, 3, 4]]


def test_warmup_source_without_a_readable_file_says_how_to_give_one() -> None:
    with pytest.raises(InvalidInput, match=r"set inputs\.file"):
        build_payloads(parse({"inputs": {"source": "warmup"}}).inputs, lambda: METADATA, None)
