from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest

from tfsbed.cluster.agent.env import command_line, expand, field_value, parse_quantity, resolve_env
from tfsctl.errors import InvalidInput, NotFound

POD: dict[str, Any] = {
    "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1", "labels": {"app": "web", "tier": "a"}},
    "spec": {"nodeName": "tfsctl-process-0"},
    "status": {"podIP": "10.244.100.7", "hostIP": "127.0.0.1"},
}
OBJECTS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("configmap", "shop", "cfg"): {"data": {"MODE": "fast", "LEVEL": "3"}},
    ("secret", "shop", "creds"): {"data": {"TOKEN": base64.b64encode(b"s3cret").decode()}},
}


def lookup(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    return OBJECTS.get((kind, namespace, name))


def test_values_field_refs_and_expansion() -> None:
    container = {
        "name": "c",
        "env": [
            {"name": "A", "value": "x"},
            {"name": "B", "value": "$(A)-$(UNDEFINED)-$$(A)"},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "TIER", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}}},
        ],
    }
    env = resolve_env(POD, container, lookup)
    assert env["B"] == "x-$(UNDEFINED)-$(A)"
    assert (env["IP"], env["NODE"], env["TIER"]) == ("10.244.100.7", "tfsctl-process-0", "a")


def test_config_map_and_secret_key_refs_and_env_from_prefix() -> None:
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "env": [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "TOKEN"}}},
            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "none", "key": "x", "optional": True}}},
        ],
    }
    env = resolve_env(POD, container, lookup)
    assert env == {"CFG_MODE": "fast", "CFG_LEVEL": "3", "TOKEN": "s3cret"}


def test_missing_required_key_names_object_and_variable() -> None:
    container = {
        "name": "c",
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "NOPE"}}}],
    }
    with pytest.raises(NotFound, match=r"configmap shop/cfg key 'NOPE' \(env X of container c\)"):
        resolve_env(POD, container, lookup)


def test_resource_field_ref_uses_divisor_and_rounds_up() -> None:
    container = {
        "name": "c",
        "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}},
        "env": [
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1"}}},
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
        ],
    }
    env = resolve_env(POD, container, lookup)
    assert (env["CPU"], env["MEM"]) == ("1", "1024")


def test_parse_quantity_suffixes() -> None:
    assert parse_quantity("100m") == Decimal("0.1")
    assert parse_quantity("64Gi") == 64 * 2**30
    assert parse_quantity("2k") == 2000


def test_labels_field_path_renders_kubelet_format() -> None:
    assert field_value(POD, "metadata.labels") == 'app="web"\ntier="a"'


def test_command_line_expands_references() -> None:
    container = {"name": "c", "command": ["tfsctl", "serve"], "args": ["--port=$(PORT)"]}
    assert command_line(container, {"PORT": "8500"}) == ["tfsctl", "serve", "--port=8500"]


def test_command_line_requires_a_command() -> None:
    with pytest.raises(InvalidInput, match="container 'c' has no command"):
        command_line({"name": "c", "args": ["x"]}, {})


def test_expand_leaves_text_without_references() -> None:
    assert expand("plain $HOME", {"HOME": "x"}) == "plain $HOME"
