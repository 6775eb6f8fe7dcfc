from __future__ import annotations

from pathlib import Path

import pytest

from tfsbed.cluster.agent.ipam import AddressPool, PersistentPool, gateway_of
from tfsctl.errors import Conflict, InvalidInput


def test_pool_hands_out_lowest_free_address_skipping_reserved() -> None:
    pool = AddressPool("10.244.100.0/24", reserved=("10.244.100.1",))
    assert pool.allocate("a") == "10.244.100.2"
    assert pool.allocate("b") == "10.244.100.3"


def test_pool_returns_same_address_for_same_key() -> None:
    pool = AddressPool("10.244.100.0/24")
    assert pool.allocate("a") == pool.allocate("a")


def test_pool_reuses_released_address() -> None:
    pool = AddressPool("10.244.100.0/24", reserved=("10.244.100.1",))
    pool.allocate("a")
    pool.allocate("b")
    assert pool.release("a") == "10.244.100.2"
    assert pool.allocate("c") == "10.244.100.2"


def test_pool_raises_conflict_when_exhausted() -> None:
    pool = AddressPool("10.0.0.0/30")  # two hosts
    pool.allocate("a")
    pool.allocate("b")
    with pytest.raises(Conflict, match="no free address"):
        pool.allocate("c")


def test_pool_rejects_invalid_cidr_naming_it() -> None:
    with pytest.raises(InvalidInput, match=r"10\.0\.0\.1/24"):
        AddressPool("10.0.0.1/24")


def test_gateway_is_first_host() -> None:
    assert gateway_of("10.244.100.0/24") == "10.244.100.1"


def test_persistent_pool_survives_reload(tmp_path: Path) -> None:
    path = tmp_path / "ipam.json"
    first = PersistentPool(path, "127.0.100.0/24")
    assert first.allocate("ns/svc") == "127.0.100.1"
    assert first.allocate("ns/other") == "127.0.100.2"
    second = PersistentPool(path, "127.0.100.0/24")
    assert second.get("ns/svc") == "127.0.100.1"
    assert second.allocate("ns/third") == "127.0.100.3"


def test_persistent_pool_ignores_state_of_another_network(tmp_path: Path) -> None:
    path = tmp_path / "ipam.json"
    PersistentPool(path, "10.1.0.0/24").allocate("a")
    assert PersistentPool(path, "10.2.0.0/24").get("a") is None
