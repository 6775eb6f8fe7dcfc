"""The Locust master's entry point in ``tfsctl loadtest --distributed``: run it, then ship its artifacts.

``python -m tfsctl.load.master DIR locust ARGS...`` runs Locust with ``--csv
DIR/locust --html DIR/locust_report.html``, then writes every file of DIR to
stdout as gzip+base64 frames and exits with Locust's exit code. The frames reach
``tfsctl`` through the pod's log (the ``pods/log`` API), so collecting results
needs no port-forward, no shared volume and no reachable pod IP.

:func:`frame` and :func:`parse_frames` are pure and used on both sides.
"""

from __future__ import annotations

import base64
import gzip
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

BEGIN = "=== tfsctl-artifact "
END = "=== tfsctl-artifact-end"


def frame(name: str, data: bytes) -> str:
    """One artifact as text lines: a header with name and size, base64 of its gzip, an end line."""
    encoded = base64.b64encode(gzip.compress(data, mtime=0)).decode()
    body = "\n".join(textwrap.wrap(encoded, 76)) if encoded else ""
    return f"{BEGIN}{name} {len(data)}\n{body}\n{END}\n"


def parse_frames(text: str) -> tuple[str, dict[str, bytes]]:
    """(the text before the first frame, artifacts by name); a torn or corrupt frame is left out."""
    start = text.find("\n" + BEGIN)
    if text.startswith(BEGIN):
        start = 0
    head = text if start == -1 else text[: start + 1]
    artifacts: dict[str, bytes] = {}
    position = 0 if start == -1 else start
    while True:
        begin = text.find(BEGIN, position)
        if begin == -1:
            break
        header_end = text.find("\n", begin)
        end = text.find(END, header_end if header_end != -1 else begin)
        if header_end == -1 or end == -1:
            break
        name, _, size = text[begin + len(BEGIN) : header_end].strip().rpartition(" ")
        position = end + len(END)
        try:
            data = gzip.decompress(base64.b64decode("".join(text[header_end:end].split())))
        except (ValueError, OSError, EOFError):
            continue
        if name and "/" not in name and size.isdigit() and len(data) == int(size):
            artifacts[name] = data
    return head, artifacts


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        sys.stderr.write("usage: python -m tfsctl.load.master DIR locust ARGS...\n")
        return 2
    directory = Path(argv[0])
    directory.mkdir(parents=True, exist_ok=True)
    command = [*argv[1:], "--csv", str(directory / "locust"), "--html", str(directory / "locust_report.html")]
    proc = subprocess.Popen(command)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: proc.send_signal(number))
    code = proc.wait()
    sys.stdout.flush()
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        sys.stdout.write(frame(path.name, path.read_bytes()))
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
