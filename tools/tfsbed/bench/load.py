"""Load generator throughput: requests/s per generator core.

Three generators hit the same local endpoint (a canned TF Serving REST
responder on loopback, pinned to another core when there are two, so the
generator is what saturates): our locustfile's ``RestUser``, a minimal
``FastHttpUser`` posting the same body (the overhead ratio), and ``wrk`` (the
limit; Debian's ``wrk`` package, installed with ``apt-get install -y wrk`` when
missing and permitted). Each generator is one process; its CPU time (psutil)
over the wall time gives the cores it used, and requests/s divided by that is
the figure. Run: ``python -m tfsbed.bench --only load``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

from tfsbed.bench import Table
from tfsctl.paths import REPO_ROOT

LOCUSTFILE = REPO_ROOT / "loadtest" / "locustfile.py"

_SERVER = textwrap.dedent(
    """
    import asyncio, json, sys
    META = json.dumps({"model_spec": {"name": "fashion"}, "metadata": {"signature_def": {"signature_def": {
        "serving_default": {"inputs": {"images": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [
        {"size": "-1"}, {"size": "28"}, {"size": "28"}, {"size": "1"}]}}}}}}}}).encode()
    PRED = json.dumps({"outputs": [[0.1] * 10]}).encode()
    def reply(body):
        head = b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\n"
        return head + b"Content-Length: %d\\r\\n\\r\\n%s" % (len(body), body)
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\\r\\n\\r\\n")
                length = 0
                for line in head.split(b"\\r\\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if length:
                    await reader.readexactly(length)
                writer.write(reply(META if head.startswith(b"GET") else PRED))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=512)
        async with server:
            await server.serve_forever()
    asyncio.run(main())
    """
)

_MINIMAL = textwrap.dedent(
    """
    import json
    from locust import FastHttpUser, task
    BODY = json.dumps({"signature_name": "serving_default", "inputs": {"images": [[[[0.5]] * 28] * 28]}})
    class MinimalUser(FastHttpUser):
        @task
        def predict(self):
            self.client.post("/v1/models/fashion:predict", data=BODY,
                             headers={"Content-Type": "application/json"}, name="predict")
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def _measure(argv: list[str], seconds: float) -> tuple[str, float, float]:
    """Run ``argv``; return its stdout, wall seconds and CPU seconds (process and children)."""
    start = time.monotonic()
    proc = psutil.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    cpu = 0.0
    try:
        while proc.poll() is None:
            try:
                times = proc.cpu_times()
                cpu = (
                    times.user
                    + times.system
                    + sum(c.cpu_times().user + c.cpu_times().system for c in proc.children(recursive=True))
                )
            except psutil.Error:
                pass
            time.sleep(0.2)
            if time.monotonic() - start > seconds + 60:
                proc.kill()
                raise RuntimeError(f"{argv[0]} did not finish within {seconds + 60:g}s")
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(argv[:3])}... exited {proc.returncode}: {err[-500:]}")
    return out, time.monotonic() - start, cpu


def _locust(
    locustfile: Path, host: str, seconds: float, users: int, extra: list[str]
) -> tuple[float, float, float]:
    """Requests/s, requests per CPU second and average cores used."""
    argv = [
        *_pin(1), str(Path(sys.executable).with_name("locust")), "-f", str(locustfile), "--headless",
        "-H", host, "-u", str(users), "-r", str(users), "-t", f"{seconds:g}s", "--json", "--only-summary",
        *extra,
    ]  # fmt: skip
    out, wall, cpu = _measure(argv, seconds)
    stats = json.loads(out[out.index("[") :])
    requests = sum(int(s["num_requests"]) for s in stats)
    return requests / seconds, requests / max(cpu, 1e-9), cpu / wall


def _ensure_wrk() -> str | None:
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, timeout=300, check=False)
    return shutil.which("wrk")


def _wrk(
    wrk: str, host: str, seconds: float, connections: int, body: str, tmp: Path
) -> tuple[float, float, float]:
    script = tmp / "post.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    argv = [
        *_pin(1), wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script),
        f"{host}/v1/models/fashion:predict",
    ]  # fmt: skip
    out, wall, cpu = _measure(argv, seconds)
    match = re.search(r"([0-9]+) requests in ([0-9.]+)s", out)
    if not match:
        raise RuntimeError(f"wrk printed no request count: {out[-300:]}")
    requests, took = int(match.group(1)), float(match.group(2))
    return requests / took, requests / max(cpu, 1e-9), cpu / wall


def collect(quick: bool) -> list[Table]:
    seconds = 3.0 if quick else 10.0
    users = 8
    port = _free_port()
    host = f"http://127.0.0.1:{port}"
    table = Table(
        title="Load generator: requests/s per generator core (REST predict, local canned endpoint)",
        columns=["generator", "requests/s", "generator cores used", "requests/s per core", "vs minimal"],
    )
    with tempfile.TemporaryDirectory(prefix="tfsctl-bench-load-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "server.py").write_text(_SERVER)
        (tmp / "minimal.py").write_text(_MINIMAL)
        server = subprocess.Popen([*_pin(0), sys.executable, str(tmp / "server.py"), str(port)])
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.1)
            rows: list[tuple[str, float, float, float]] = []
            rows.append(("minimal FastHttpUser", *_locust(tmp / "minimal.py", host, seconds, users, [])))
            ours = _locust(LOCUSTFILE, host, seconds, users, ["--p95-ms", "0", "--p99-ms", "0"])
            rows.append(("loadtest/locustfile.py RestUser", *ours))
            wrk = _ensure_wrk()
            body = json.dumps(
                {"signature_name": "serving_default", "inputs": {"images": [[[[0.5]] * 28] * 28]}}
            )
            if wrk:
                rows.append(("wrk -t1 (limit)", *_wrk(wrk, host, seconds, users, body, tmp)))
            else:
                table.notes.append(
                    "wrk missing and not installable here: run `apt-get install -y wrk` (Debian)"
                )
        finally:
            server.terminate()
            server.wait(timeout=10)
    minimal = rows[0][2]
    for name, rps, per_core, cores in rows:
        table.rows.append(
            [name, f"{rps:,.0f}", f"{cores:.2f}", f"{per_core:,.0f}", f"{per_core / minimal:.2f}x"]
        )
    table.notes += [
        f"{users} users/connections, {seconds:g} s each, no wait time; generator pinned to CPU 1 and the "
        "endpoint to CPU 0 when taskset and 2 cores exist. Per core = requests / generator CPU seconds "
        "(process start included, which favours wrk on short runs).",
        "Our RestUser sends the signature-built 28x28x1 body (about 8 KB) and wraps each call in "
        "catch_response; the minimal user and wrk post a same-sized body.",
    ]
    return [table]
