"""A predict request sent again and again while something changes under it (a label move, a rollout).

``PredictProbe`` is how the benchmarks and the e2e tests count the requests a user's client
would have seen fail: one request at a time to one URL, each answer checked for
``predictions``, every failure kept with the time it happened.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any


class PredictProbe(threading.Thread):
    """POST ``body`` to ``url`` one request at a time until stopped; counts answers and failures."""

    def __init__(self, url: str, body: bytes, name: str = "predict-probe") -> None:
        super().__init__(daemon=True, name=name)
        self.url, self.body = url, body
        self.ok = 0
        self.failed: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            req = urllib.request.Request(self.url, self.body, {"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    answer: dict[str, Any] = json.loads(resp.read())
                if "predictions" not in answer:
                    raise ValueError(f"no predictions in {str(answer)[:200]}")
                self.ok += 1
            except urllib.error.HTTPError as exc:
                self.failed.append(f"{time.strftime('%H:%M:%S')} HTTP {exc.code}: {exc.read()[:200]!r}")
            except (OSError, ValueError) as exc:
                self.failed.append(f"{time.strftime('%H:%M:%S')} {exc}")
            self._stop_event.wait(0.05)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(30)
