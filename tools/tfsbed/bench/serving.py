"""Serving benchmarks: predict throughput and latency through ``tfsctl serve``.

REST and gRPC, batch 1 and 32, one client thread issuing requests back to back
(latency) against the example Fashion-MNIST-shaped model, next to the same model
called in-process (``Servable.predict``, the same session-callable path the
server uses): the ratio is what the protocol layer costs.

A second table: many concurrent batch-1 gRPC clients against a server without
and with ``--enable_batching``, and the mean batch the batching server formed
(from its ``processed_batch_size`` histogram).
"""

from __future__ import annotations

import http.client
import os
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tfsbed.bench import Table

BATCHES = (1, 32)
BATCHING_PARAMETERS = """max_batch_size {{ value: 16 }}
batch_timeout_micros {{ value: {timeout} }}
max_enqueued_batches {{ value: 100 }}
num_batch_threads {{ value: 2 }}
"""
BATCH_TIMEOUTS_US = (0, 2000)


def _model(root: Path) -> tuple[str, Path, str]:
    """(name, base path, input name): the project's example model, else TF Serving's half_plus_two."""
    try:
        from tfsctl.models.example import generate

        return "fashion", generate(root, "fashion", versions=(1,), warmup=False), "images"
    except ImportError:  # pragma: no cover - the models area not there yet
        from tfsctl.paths import REPO_ROOT

        src = REPO_ROOT.parent / "shared" / "testdata" / "tf_serving" / "saved_model_half_plus_two_cpu"
        return "half_plus_two", src, "x"


def _inputs(name: str, batch: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    if name == "fashion":
        return rng.random((batch, 28, 28, 1), dtype=np.float32)
    return rng.random((batch, 1), dtype=np.float32)


def _measure(call: Callable[[], Any], count: int, warmup: int = 5) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) over ``count`` sequential calls."""
    for _ in range(warmup):
        call()
    latencies = []
    start = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - start
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, round(0.99 * len(latencies)) - 1)]
    return count / elapsed, statistics.median(latencies), p99


def collect(quick: bool) -> list[Table]:
    from tfsbed.serve.servable import Servable
    from tfsbed.serve.testing import LocalServer

    count = 60 if quick else 400
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="tfsctl-bench-serving-") as tmp:
        name, base, input_name = _model(Path(tmp))
        version_dir = sorted(p for p in Path(base).iterdir() if p.name.isdigit())[-1]
        in_process = Servable(
            name, int(version_dir.name), str(version_dir), intra_op_threads=1, inter_op_threads=1
        )
        baseline: dict[int, tuple[float, float, float]] = {}
        for batch in BATCHES:
            data = _inputs(name, batch)

            def direct(d: np.ndarray = data) -> Any:
                return in_process.predict("serving_default", {input_name: d})

            baseline[batch] = _measure(direct, count)
            rps, p50, p99 = baseline[batch]
            rows.append(
                [
                    "in-process",
                    str(batch),
                    f"{rps:.0f}",
                    f"{rps * batch:.0f}",
                    f"{p50:.2f}",
                    f"{p99:.2f}",
                    "1.00",
                ]
            )
        in_process.close()
        with LocalServer(model_name=name, base_path=base) as server, server.client(timeout=60) as client:
            for transport in ("grpc", "rest"):
                for batch in BATCHES:
                    data = _inputs(name, batch)
                    payload: Any = data if transport == "grpc" else data.tolist()

                    def call(p: Any = payload, t: str = transport) -> Any:
                        return client.predict(name, {input_name: p}, transport=t, columnar=True)  # type: ignore[arg-type]

                    rps, p50, p99 = _measure(call, count)
                    ratio = rps / baseline[batch][0]
                    rows.append(
                        [
                            transport,
                            str(batch),
                            f"{rps:.0f}",
                            f"{rps * batch:.0f}",
                            f"{p50:.2f}",
                            f"{p99:.2f}",
                            f"{ratio:.2f}",
                        ]
                    )
        batching_table = _batching_table(name, base, input_name, Path(tmp), quick)
    table = Table(
        title=f"Predict through tfsctl serve vs in-process ({name} model)",
        columns=["path", "batch", "requests/s", "rows/s", "p50 ms", "p99 ms", "throughput vs in-process"],
        rows=rows,
        notes=[
            f"{count} sequential requests per row after 5 warm-up calls, one client thread, on loopback; "
            "server and in-process session use 1 intra-op and 1 inter-op thread.",
            "in-process = the same SavedModel through the same session callable (Servable.predict) in the "
            "benchmark process: the ceiling for the served figures.",
            f"host: {os.cpu_count()} cores shared with other jobs: compare rows within this table, "
            "not across runs.",
        ],
    )
    return [table, batching_table]


def _concurrent(call: Callable[[], Any], clients: int, per_client: int) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of ``clients`` threads each making ``per_client`` calls."""
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client() -> None:
        mine = []
        start.wait(timeout=120)
        for _ in range(per_client):
            t0 = time.perf_counter()
            call()
            mine.append((time.perf_counter() - t0) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait(timeout=120)
    t0 = time.perf_counter()
    for thread in threads:
        thread.join(timeout=600)
    elapsed = time.perf_counter() - t0
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, round(0.99 * len(latencies)) - 1)]
    return len(latencies) / elapsed, statistics.median(latencies), p99


def _batch_histogram(port: int, model: str) -> tuple[float, int]:
    """(sum, count) of the server's processed_batch_size histogram for ``model``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/monitoring/prometheus/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    name = re.escape(":tensorflow:serving:batching_session:processed_batch_size")
    total = re.search(rf'{name}_sum{{model_name="{model}"}} ([0-9.e+]+)', text)
    count = re.search(rf'{name}_count{{model_name="{model}"}} (\d+)', text)
    return (float(total.group(1)) if total else 0.0), (int(count.group(1)) if count else 0)


def _batching_table(name: str, base: Path, input_name: str, tmp: Path, quick: bool) -> Table:
    from tfsbed.serve.testing import LocalServer

    clients = 16
    per_client = 20 if quick else 100
    data = _inputs(name, 1)
    rows: list[list[str]] = []
    baseline = 0.0
    runs: list[tuple[str, list[str]]] = [("off", [])]
    for timeout in BATCH_TIMEOUTS_US:
        params = tmp / f"batching_parameters_{timeout}.pbtxt"
        params.write_text(BATCHING_PARAMETERS.format(timeout=timeout))
        runs.append(
            (
                f"on, batch_timeout_micros {timeout}",
                ["--enable_batching=true", f"--batching_parameters_file={params}"],
            )
        )
    for label, flags in runs:
        with (
            LocalServer(model_name=name, base_path=base, fs_poll_seconds=0, flags=flags) as server,
            server.client(timeout=60) as client,
        ):

            def call() -> Any:
                return client.predict(name, {input_name: data}, transport="grpc", columnar=True)

            for _ in range(5):
                call()
            before = _batch_histogram(server.rest_port, name)
            rps, p50, p99 = _concurrent(call, clients, per_client)
            after = _batch_histogram(server.rest_port, name)
        batches = after[1] - before[1]
        mean = f"{(after[0] - before[0]) / batches:.1f}" if batches else "1 (unbatched)"
        baseline = baseline or rps
        rows.append(
            [label, str(clients), f"{rps:.0f}", f"{p50:.2f}", f"{p99:.2f}", mean, f"{rps / baseline:.2f}"]
        )
    return Table(
        title=f"Concurrent batch-1 gRPC predicts with and without --enable_batching ({name} model)",
        columns=["batching", "clients", "requests/s", "p50 ms", "p99 ms", "mean batch", "throughput vs off"],
        rows=rows,
        notes=[
            f"{clients} client threads x {per_client} requests each, one shared gRPC channel, on loopback; "
            "server with 1 intra-op and 1 inter-op TF thread.",
            "batching parameters: max_batch_size 16, num_batch_threads 2, max_enqueued_batches 100.",
            f"host: {os.cpu_count()} cores shared with other jobs: compare the rows, not across runs.",
        ],
    )
