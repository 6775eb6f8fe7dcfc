"""Processes and ports of the local cluster's components: pid files, liveness, who holds a port.

Shared by the control plane (:mod:`tfsbed.cluster.local`) and the real nodes
(:mod:`tfsbed.cluster.node.runtime`).
"""

from __future__ import annotations

import contextlib
import errno
import socket
from pathlib import Path


def pid_alive(pid: int, needle: str) -> bool:
    """True when ``pid`` runs and its command line mentions ``needle`` (guards against pid reuse)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return needle in " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def port_owner(port: int) -> str:
    import psutil

    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                with contextlib.suppress(psutil.Error):
                    return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
                return f"pid {conn.pid}"
    return "another process"


def port_in_use(port: int) -> bool:
    """True when something listens on ``port`` (any address); TIME_WAIT leftovers do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False
