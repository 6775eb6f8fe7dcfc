"""``tfsctl serve --enable_batching`` against real servers and the generated example model.

Two servers for the module (TensorFlow start-up is the expensive part): one
without batching (the reference answers) and one with a batching parameters file
(max 8 rows, padded to 4 or 8, batches closed after 100 ms or when full). The
batched server must answer each concurrent request exactly as the unbatched one
does, and its ``:tensorflow:serving:batching_session:processed_batch_size``
histogram must show batches of more than one request.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tfsbed.serve.testing import LocalServer
from tfsctl.errors import InvalidInput
from tfsctl.serving.client import ServingClient

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODEL = "fashion"
BATCHING = """
max_batch_size { value: 8 }
batch_timeout_micros { value: 100000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 2 }
allowed_batch_sizes: 4
allowed_batch_sizes: 8
"""
CLIENTS = 16  # concurrent batch-1 requests, half over REST, half over gRPC


@pytest.fixture(scope="module")
def model_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tfsctl.models.example import generate

    return generate(tmp_path_factory.mktemp("batching-models"), MODEL, versions=(1,), warmup=True)


@pytest.fixture(scope="module")
def plain(model_base: Path) -> Iterator[LocalServer]:
    with LocalServer(model_name=MODEL, base_path=model_base, fs_poll_seconds=0) as server:
        yield server


@pytest.fixture(scope="module")
def batching(model_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    params = tmp_path_factory.mktemp("batching") / "batching_parameters.pbtxt"
    params.write_text(BATCHING)
    flags = ["--enable_batching=true", f"--batching_parameters_file={params}"]
    with LocalServer(model_name=MODEL, base_path=model_base, fs_poll_seconds=0, flags=flags) as server:
        yield server


def _images(seed: int, rows: int = 1) -> np.ndarray:
    from tfsctl.models.example import sample_images

    return sample_images(rows, seed=seed)


def _predict(client: ServingClient, images: np.ndarray, transport: str) -> np.ndarray:
    payload: Any = images if transport == "grpc" else images.tolist()
    answer = client.predict(MODEL, {"images": payload}, transport=transport, columnar=True)  # type: ignore[arg-type]
    return np.asarray(answer["outputs"], dtype=np.float32)


def _metrics(server: LocalServer) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    try:
        conn.request("GET", "/monitoring/prometheus/metrics")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def _processed_batches(text: str) -> tuple[int, int]:
    """(batches of size 1, all batches) from the processed_batch_size histogram."""
    name = ":tensorflow:serving:batching_session:processed_batch_size"
    label = f'model_name="{MODEL}"'
    ones = re.search(rf'{re.escape(name)}_bucket{{{label},le="1"}} (\d+)', text)
    total = re.search(rf"{re.escape(name)}_count{{{label}}} (\d+)", text)
    assert ones and total, f"no processed_batch_size histogram in:\n{text}"
    return int(ones.group(1)), int(total.group(1))


def test_concurrent_requests_are_batched_and_answered_like_the_unbatched_server(
    plain: LocalServer, batching: LocalServer
) -> None:
    inputs = [_images(seed) for seed in range(CLIENTS)]
    transports = ["rest" if i % 2 else "grpc" for i in range(CLIENTS)]
    with plain.client(timeout=60) as reference:
        expected = [_predict(reference, x, t) for x, t in zip(inputs, transports, strict=True)]
    before = _processed_batches(_metrics(batching))[1]

    answers: list[Any] = [None] * CLIENTS
    start = threading.Barrier(CLIENTS)
    with batching.client(timeout=60) as client:

        def one(i: int) -> None:
            start.wait(timeout=60)
            try:
                answers[i] = _predict(client, inputs[i], transports[i])
            except Exception as exc:  # reported by the assertion below
                answers[i] = exc

        threads = [threading.Thread(target=one, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    for i, answer in enumerate(answers):
        assert isinstance(answer, np.ndarray), f"request {i} ({transports[i]}) failed: {answer!r}"
        assert answer.shape == (1, 10)
        # Same model, same rows; oneDNN picks kernels by batch size, so the last bits may differ
        # (measured: at most 1.2e-6 relative). The class must not.
        np.testing.assert_allclose(answer, expected[i], rtol=1e-5, atol=1e-7)
        assert int(answer.argmax()) == int(expected[i].argmax())
    ones, total = _processed_batches(_metrics(batching))
    formed = total - before
    assert 0 < formed < CLIENTS, f"{CLIENTS} requests ran as {formed} batches: nothing was batched"
    assert ones < total


def test_multi_row_requests_keep_their_rows_and_order(plain: LocalServer, batching: LocalServer) -> None:
    images = _images(seed=99, rows=3)  # padded to 4 by allowed_batch_sizes
    with plain.client() as reference, batching.client() as client:
        expected = _predict(reference, images, "grpc")
        for transport in ("grpc", "rest"):
            answer = _predict(client, images, transport)
            assert answer.shape == (3, 10)
            np.testing.assert_allclose(answer, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_request_larger_than_max_batch_size_is_invalid_argument(
    batching: LocalServer, transport: str
) -> None:
    with batching.client() as client, pytest.raises(InvalidInput) as info:
        _predict(client, _images(seed=1, rows=9), transport)
    assert "Task size 9 is larger than maximum input batch size 8" in str(info.value)


def _serve(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfsctl", "serve", "--model_name=m", f"--model_base_path={tmp_path}", *flags],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_batch_size: 8\n", "invalid text format of tensorflow.serving.BatchingParameters"),
        (
            "max_batch_size { value: 8 }\nallowed_batch_sizes: 4\n",
            "allowed_batch_sizes: Last entry in allowed_batch_sizes must match max_batch_size",
        ),
    ],
)
def test_bad_parameters_file_fails_startup_with_one_line(tmp_path: Path, text: str, expected: str) -> None:
    params = tmp_path / "batching.pbtxt"
    params.write_text(text)
    result = _serve(tmp_path, "--enable_batching", f"--batching_parameters_file={params}")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("tfsctl: error:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"tfsctl: error: --batching_parameters_file: {params}: ")
    assert expected in errors[0]


def test_parameters_file_without_enable_batching_is_rejected(tmp_path: Path) -> None:
    params = tmp_path / "batching.pbtxt"
    params.write_text("max_batch_size { value: 8 }\n")
    result = _serve(tmp_path, f"--batching_parameters_file={params}")
    assert result.returncode == 2
    assert "--batching_parameters_file is set without --enable_batching=true" in result.stderr
