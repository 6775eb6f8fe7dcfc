"""Can a rendered PersistentVolumeClaim bind one of a cluster's PersistentVolumes? Kubernetes' rule, as data.

Pure: objects are the plain dicts of manifests or of the API (``sanitize_for_serialization``). This is our
own copy of the PV controller's rule, so it is pinned by a differential e2e test against a real API server
and controller-manager (tests/e2e/presets/test_guide_binding.py). Sources, kubernetes/kubernetes:

Fidelity (behaviour: the upstream file and function that decides it):

- a claim naming a PV (``volumeName``) gets it when size, class, volume mode and access modes fit; its
  selector is not consulted: pkg/controller/volume/persistentvolume/pv_controller.go ``syncUnboundClaim``,
  ``checkVolumeSatisfyClaim``;
- otherwise the smallest Available, unbound PV with size >= request, an equal class and matching labels:
  pkg/controller/volume/persistentvolume/util/util.go ``FindMatchingVolume``; a PV pre-bound to the claim
  (``claimRef``) is taken first, whatever its labels and class (``IsVolumeBoundToClaim``);
- the PV's access modes include every mode of the claim: persistentvolume/index.go ``findByClaim``;
- the class is the beta annotation, else ``storageClassName``, else ``""``:
  staging/src/k8s.io/component-helpers/storage/volume/helpers.go ``GetPersistentVolume(Claim)Class``.

Not modelled: node affinity and ``WaitForFirstConsumer`` (decided at scheduling), dynamic provisioning (a
claim with a non-empty class that no PV satisfies is reported as ``provisioned``, not refused).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"

_SUFFIXES: dict[str, int | Decimal] = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def quantity(text: str | int | float) -> Decimal:
    """A Kubernetes quantity (``5Gi``, ``500M``, ``1e9``) as a number of base units."""
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    number, exponent, suffix = match.groups()
    value = Decimal(number) * (Decimal(10) ** int(exponent[1:]) if exponent else 1)
    return value * _SUFFIXES[suffix or ""]


@dataclass(frozen=True)
class Binding:
    """The outcome for one claim: the PV it binds (``volume``), or why it stays Pending (``reason``)."""

    claim: str
    volume: str | None = None
    reason: str = ""
    provisioned: bool = False  # left to dynamic provisioning (a storage class is named)

    @property
    def ok(self) -> bool:
        return self.volume is not None or self.provisioned


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def claim_class(claim: Mapping[str, Any]) -> str:
    """The claim's storage class: the beta annotation, else ``spec.storageClassName``, else ``""``."""
    annotations = _meta(claim).get("annotations") or {}
    if CLASS_ANNOTATION in annotations:
        return str(annotations[CLASS_ANNOTATION])
    return str(_spec(claim).get("storageClassName") or "")


def volume_class(volume: Mapping[str, Any]) -> str:
    """The PV's storage class, by the same rule as :func:`claim_class`."""
    return claim_class(volume)


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A ``LabelSelector`` (matchLabels and matchExpressions) against ``labels``; no selector matches all."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def describe_selector(selector: Mapping[str, Any] | None) -> str:
    """``model=mnist,tier In (a,b)``: a selector the way kubectl prints it."""
    parts = [f"{k}={v}" for k, v in sorted((selector or {}).get("matchLabels", {}).items())]
    for expr in (selector or {}).get("matchExpressions") or []:
        values = ",".join(expr.get("values") or [])
        parts.append(f"{expr['key']} {expr['operator']}" + (f" ({values})" if values else ""))
    return ",".join(parts)


def _claim_key(claim: Mapping[str, Any]) -> str:
    return f"{_meta(claim).get('namespace', 'default')}/{_meta(claim).get('name', '?')}"


def _bound_to_claim(volume: Mapping[str, Any], claim: Mapping[str, Any]) -> bool:
    ref = _spec(volume).get("claimRef") or {}
    if not ref or ref.get("name") != _meta(claim).get("name"):
        return False
    if ref.get("namespace", "default") != _meta(claim).get("namespace", "default"):
        return False
    return not (ref.get("uid") and _meta(claim).get("uid") and ref["uid"] != _meta(claim)["uid"])


def _fit(claim: Mapping[str, Any], volume: Mapping[str, Any], *, by_class: bool = True) -> str | None:
    """Why ``volume`` cannot satisfy ``claim`` (size, class, volume mode, access modes), or None."""
    name = _meta(volume).get("name", "?")
    if _meta(volume).get("deletionTimestamp"):
        return f"PV {name} is being deleted"
    requested = ((_spec(claim).get("resources") or {}).get("requests") or {}).get("storage", "0")
    offered = (_spec(volume).get("capacity") or {}).get("storage", "0")
    if quantity(offered) < quantity(requested):
        return f"PV {name} offers {offered}, less than the {requested} the claim requests"
    if by_class and volume_class(volume) != claim_class(claim):
        return (
            f"PV {name} has storage class {volume_class(volume)!r}, the claim asks for {claim_class(claim)!r}"
        )
    offered_mode = _spec(volume).get("volumeMode") or "Filesystem"
    wanted_mode = _spec(claim).get("volumeMode") or "Filesystem"
    if offered_mode != wanted_mode:
        return f"PV {name} has volumeMode {offered_mode}, the claim wants {wanted_mode}"
    missing = [
        m for m in _spec(claim).get("accessModes") or [] if m not in (_spec(volume).get("accessModes") or [])
    ]
    if missing:
        offers = ",".join(_spec(volume).get("accessModes") or []) or "none"
        return f"PV {name} offers access modes {offers}, not {','.join(missing)}"
    return None


def _taken(claim: Mapping[str, Any], volume: Mapping[str, Any]) -> str | None:
    """Why ``volume`` is not free for ``claim`` (bound elsewhere, Released, Failed), or None."""
    name = _meta(volume).get("name", "?")
    ref = _spec(volume).get("claimRef")
    if ref and not _bound_to_claim(volume, claim):
        phase = (volume.get("status") or {}).get("phase", "")
        held = f"{ref.get('namespace', 'default')}/{ref.get('name')}"
        if phase == "Released":
            return f"PV {name} is Released (its claim {held} was deleted): clear spec.claimRef to reuse it"
        return f"PV {name} is bound to {held}"
    phase = (volume.get("status") or {}).get("phase", "Available")
    if not ref and phase not in ("Available", "Pending"):
        return f"PV {name} is {phase}"
    return None


def bind(claim: Mapping[str, Any], volumes: Iterable[Mapping[str, Any]]) -> Binding:
    """The PV Kubernetes' PV controller would bind ``claim`` to, or the one-line reason it stays Pending."""
    key = _claim_key(claim)
    volumes = list(volumes)
    wanted = _spec(claim).get("volumeName")
    if wanted:
        named = next((v for v in volumes if _meta(v).get("name") == wanted), None)
        if named is None:
            return Binding(key, reason=f"claim {key}: no PV named {wanted} (persistence.volumeName)")
        why = _taken(claim, named) or _fit(claim, named)
        return Binding(key, reason=f"claim {key}: {why}") if why else Binding(key, volume=wanted)
    selector = _spec(claim).get("selector")
    best: Mapping[str, Any] | None = None
    reasons: list[str] = []
    for volume in volumes:
        # pre-bound: FindMatchingVolume returns it before comparing selector or class
        if _bound_to_claim(volume, claim) and not _fit(claim, volume, by_class=False):
            return Binding(key, volume=_meta(volume)["name"])
        if not selector_matches(selector, _meta(volume).get("labels") or {}):
            continue
        why = _taken(claim, volume) or _fit(claim, volume)
        if why:
            reasons.append(why)
            continue
        size = quantity((_spec(volume).get("capacity") or {}).get("storage", "0"))
        if best is None or size < quantity(_spec(best)["capacity"]["storage"]):
            best = volume
    if best is not None:
        return Binding(key, volume=_meta(best)["name"])
    if claim_class(claim):
        return Binding(
            key, reason=f"claim {key}: left to storage class {claim_class(claim)!r}", provisioned=True
        )
    if not reasons:
        wanted_labels = describe_selector(selector)
        return Binding(
            key,
            reason=f"claim {key}: no PV matches the selector {wanted_labels}"
            if wanted_labels
            else f'claim {key}: no PV with storage class ""',
        )
    return Binding(key, reason=f"claim {key}: " + "; ".join(reasons))


def check_claims(
    manifests: Iterable[Mapping[str, Any]], cluster_volumes: Iterable[Mapping[str, Any]]
) -> list[Binding]:
    """Every claim in ``manifests`` against the cluster's PVs plus the PVs the same manifests create."""
    docs = [d for d in manifests if d]
    volumes = {_meta(v).get("name"): v for v in docs if v.get("kind") == "PersistentVolume"}
    volumes.update({_meta(v).get("name"): v for v in cluster_volumes})  # the cluster's copy wins on upgrades
    return [bind(d, volumes.values()) for d in docs if d.get("kind") == "PersistentVolumeClaim"]
