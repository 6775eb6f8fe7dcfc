"""Container environment as the kubelet builds it (pure; object lookups are passed in).

Order and precedence follow the kubelet: ``envFrom`` first (later sources win),
then ``env`` (later entries win), and ``$(VAR)`` references in values, command
and args are expanded against what is defined before them.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from decimal import ROUND_CEILING, Decimal
from typing import Any

from tfsctl.errors import InvalidInput, NotFound

# (kind "configmap"|"secret", namespace, name) -> object dict, or None when absent
Lookup = Callable[[str, str, str], "dict[str, Any] | None"]

_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")

_SUFFIXES: dict[str, int | Decimal] = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}  # fmt: skip


def parse_quantity(value: str | int | float) -> Decimal:
    """A Kubernetes resource quantity ("100m", "64Gi", "1.5") as a Decimal."""
    text = str(value).strip()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix) and text[: -len(suffix)]:
            return Decimal(text[: -len(suffix)]) * Decimal(_SUFFIXES[suffix])
    try:
        return Decimal(text)
    except ArithmeticError as exc:
        raise InvalidInput(f"resource quantity {value!r} is not valid") from exc


def expand(text: str, env: dict[str, str]) -> str:
    """Expand ``$(VAR)`` from ``env``; unknown references stay as written, ``$$`` escapes."""

    def repl(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REF.sub(repl, text)


def field_value(pod: dict[str, Any], path: str) -> str:
    """The value of a downward-API ``fieldRef.fieldPath`` for ``pod``."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
        "status.podIPs": ",".join(p.get("ip", "") for p in status.get("podIPs") or []) or None,
        "status.hostIPs": ",".join(p.get("ip", "") for p in status.get("hostIPs") or []) or None,
    }
    if path in simple:
        return str(simple[path] or "")
    for prefix, source in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        items: dict[str, str] = meta.get(source) or {}
        if path == prefix:
            return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
        if path.startswith(prefix + "['") and path.endswith("']"):
            return str(items.get(path[len(prefix) + 2 : -2], ""))
    raise InvalidInput(f"fieldRef.fieldPath {path!r} is not supported")


def resource_value(container: dict[str, Any], ref: dict[str, Any]) -> str:
    """The value of a ``resourceFieldRef`` (limits default to the node's capacity like the kubelet)."""
    resource = str(ref.get("resource", ""))
    divisor = parse_quantity(ref.get("divisor") or "1")
    section, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    raw = (resources.get(section) or {}).get(name)
    if raw is None and section == "limits":
        raw = {"cpu": "16", "memory": "64Gi", "ephemeral-storage": "100Gi"}.get(name)
    if raw is None:
        raw = "0"
    value = parse_quantity(raw) / divisor
    return str(int(value.to_integral_value(rounding=ROUND_CEILING)))


def _data_of(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    if kind == "secret":
        return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("data") or {}).items()}
    return dict(obj.get("data") or {})


def resolve_env(
    pod: dict[str, Any],
    container: dict[str, Any],
    lookup: Lookup,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """Build the environment of ``container`` in ``pod``; raise NotFound for a missing required source."""
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    env: dict[str, str] = dict(base or {})
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        for kind, key in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = source.get(key)
            if not ref:
                continue
            obj = lookup(kind, namespace, ref["name"])
            if obj is None:
                if ref.get("optional"):
                    continue
                raise NotFound(f"{kind} {namespace}/{ref['name']} (envFrom of container {container['name']})")
            for name, value in _data_of(kind, obj).items():
                env[prefix + name] = value
    for var in container.get("env") or []:
        name = var["name"]
        if "value" in var or not var.get("valueFrom"):
            env[name] = expand(str(var.get("value") or ""), env)
            continue
        source = var["valueFrom"]
        if source.get("fieldRef"):
            env[name] = field_value(pod, source["fieldRef"]["fieldPath"])
        elif source.get("resourceFieldRef"):
            env[name] = resource_value(container, source["resourceFieldRef"])
        else:
            kind, ref = (
                ("configmap", source["configMapKeyRef"])
                if source.get("configMapKeyRef")
                else ("secret", source.get("secretKeyRef") or {})
            )
            obj = lookup(kind, namespace, ref.get("name", ""))
            data = _data_of(kind, obj) if obj is not None else None
            if data is None or ref.get("key") not in data:
                if ref.get("optional"):
                    continue
                raise NotFound(
                    f"{kind} {namespace}/{ref.get('name')} key {ref.get('key')!r} "
                    f"(env {name} of container {container['name']})"
                )
            env[name] = data[ref["key"]]
    return env


def command_line(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    """``command + args`` with ``$(VAR)`` expanded; a process pod has no image entrypoint to fall back on."""
    command = list(container.get("command") or [])
    if not command:
        raise InvalidInput(
            f"container {container.get('name')!r} has no command: a process pod runs "
            "spec.containers[].command (there is no image entrypoint on the process node)"
        )
    return [expand(str(part), env) for part in command + list(container.get("args") or [])]
