"""Servers whose polled config file lags the store (a slow ConfigMap mount), with real ``tfsctl serve``.

The store writes its file at once; the servers' file follows ``LAG`` seconds
later, as the kubelet updates a mounted ConfigMap after helm changed it. Each
server re-applies its (older) file every second. The promotion must only return
once the servers' file carries the final revision (so no poll can bring an older
one back), end with every server on the target state, and a probe on
``/labels/stable`` must see no failed request (a version re-loaded by an older
file while a label already points at it would fail requests).
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from tfsbed.serve.fleet import Probe, endpoints_flag, fleet, model_config_text
from tfsctl.release.promote import Promoter, PromotionRequest
from tfsctl.release.replicas import FleetClient, parse_endpoints
from tfsctl.release.store import EndpointStore, write_atomic
from tfsctl.serving.client import ServingClient
from tfsctl.serving.config import ServerConfig

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LAG = 4.0
POLL = 1


class LaggingStore(EndpointStore):
    """The store's file changes now; the servers' file ``LAG`` seconds later (never out of order)."""

    def __init__(self, source: Path, served: Path, endpoints: str) -> None:
        super().__init__(source, parse_endpoints(endpoints))
        self.served = served
        self.settle_seconds = POLL + 2.0  # what ReleaseStore derives from modelConfig.pollWaitSeconds
        self._copies: list[threading.Timer] = []
        self._order = threading.Lock()

    def write(self, config: ServerConfig, reason: str) -> ServerConfig:
        text = config.to_text()
        write_atomic(self.path, text)

        def copy() -> None:
            with self._order:
                write_atomic(self.served, text)

        timer = threading.Timer(LAG, copy)
        timer.start()
        self._copies.append(timer)
        return config

    def wait_copied(self) -> None:
        for timer in self._copies:
            timer.join(LAG + 5)


@pytest.fixture(scope="module")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tfsctl.models.example import generate

    root = tmp_path_factory.mktemp("models")
    generate(root, "fashion", versions=(1, 2), warmup=False)
    return root


def test_promotion_holds_when_the_servers_file_lags_the_store(tmp_path: Path, model_root: Path) -> None:
    served = tmp_path / "served.config"
    source = tmp_path / "store.config"
    served.write_text(model_config_text(model_root, (1, 2), {"stable": 1, "canary": 2}))
    shutil.copy(served, source)
    with fleet(served, 2) as servers:  # each server polls its file every POLL (1) second
        store = LaggingStore(source, served, endpoints_flag(servers))
        probe = Probe(servers)
        probe.start()
        try:
            with FleetClient(timeout=10) as fleet_client:
                result = Promoter(store, fleet_client).run(
                    PromotionRequest("fashion", "stable", 2, timeout=120)
                )
            # Done only once the servers' own file carries the final revision: from then on no poll
            # can bring back an older one.
            served_at_return = served.read_text()
            store.wait_copied()
            time.sleep(3 * POLL)  # the servers re-apply the now current file a few times
        finally:
            probe.stop()
        assert [s.name for s in result.steps] == ["label", "retire"]
        assert served_at_return == source.read_text(), "returned before the servers' file caught up"
        assert probe.failed == [], probe.failed[:5]
        assert probe.ok > 0
        for s in servers:
            with ServingClient(s.endpoint, timeout=5) as c:
                assert c.label_version("fashion", "stable") == 2
                states = {v.version: v.state for v in c.model_status("fashion")}
                assert states[2] == "AVAILABLE" and states.get(1, "END") == "END", states
