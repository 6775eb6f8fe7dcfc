"""The HPA's metrics as the HPA controller reads them (pure: no cluster, no clock).

One model for every ``autoscaling/v2`` metric source (Resource, ContainerResource,
Pods, Object, External) and target type (Utilization, AverageValue, Value):

- :func:`specs` turns an HPA's ``spec.metrics`` into :class:`MetricSpec` s;
- :func:`current_values` pairs them with ``status.currentMetrics`` (what the
  controller computed on its last sync) into :class:`MetricValue` s;
- :class:`MetricValue` decides "above target" the way the controller does.

The rules are upstream's, k8s.io/kubernetes ``pkg/controller/podautoscaler``
(v1.35):

- ``horizontal.go`` ``computeReplicasForMetric`` dispatches on the source type;
  ``computeStatusForObjectMetric`` / ``computeStatusForExternalMetric`` pick the
  ``Value`` target before ``AverageValue`` (Object) or ``AverageValue`` before
  ``Value`` (External); ``computeStatusForResourceMetricGeneric`` uses
  ``AverageValue`` when set, else ``AverageUtilization``; each writes the value it
  compared into the status (``current.averageUtilization`` /
  ``current.averageValue`` / ``current.value``).
- ``replica_calculator.go``: the usage ratio is current / target, and the
  controller acts only when ``Tolerances.isWithin(ratio)`` is false, i.e. the
  ratio is outside ``[1 - scaleDown, 1 + scaleUp]``. For External and Object
  ``AverageValue`` (``GetExternalPerPodMetricReplicas``,
  ``GetObjectPerPodMetricReplicas``) the metric's total is divided by the
  current replica count (``usage / (target * statusReplicas)``); for ``Value``
  (``GetExternalMetricReplicas`` sums every series, ``GetObjectMetricReplicas``)
  the total is compared with the target; Pods metrics average over the pods
  (``metrics/utilization.go`` ``GetMetricUsageRatio``).
- The tolerance is kube-controller-manager's ``--horizontal-pod-autoscaler-tolerance``
  (``config/v1alpha1/defaults.go``: 0.1), overridden per direction by
  ``spec.behavior.scaleUp/scaleDown.tolerance`` (``horizontal.go``
  ``tolerancesForHpa``; the API server drops the field unless the
  ``HPAConfigurableTolerance`` gate is on, so a value on the object is in force).
- Label selectors are written as ``metav1.LabelSelectorAsSelector(...).String()``
  (k8s.io/apimachinery ``pkg/apis/meta/v1/helpers.go`` and
  ``pkg/labels/selector.go`` ``Requirement.String``): requirements sorted by key,
  ``k=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tfsctl.errors import InvalidInput

SourceType = Literal["Resource", "ContainerResource", "Pods", "Object", "External"]
TargetType = Literal["Utilization", "AverageValue", "Value"]

SOURCE_TYPES: tuple[SourceType, ...] = ("Resource", "ContainerResource", "Pods", "Object", "External")
DEFAULT_TOLERANCE = 0.1  # kube-controller-manager --horizontal-pod-autoscaler-tolerance

RESOURCE_METRICS_API = "metrics.k8s.io"
CUSTOM_METRICS_API = "custom.metrics.k8s.io"
EXTERNAL_METRICS_API = "external.metrics.k8s.io"

_RESOURCE_UNITS = {"cpu": "cores", "memory": "bytes"}
_OPERATORS = {"In": "in", "NotIn": "notin"}


def quantity(value: Any) -> float | None:
    """A Kubernetes quantity (``"500m"``, ``"2Gi"``, ``7``) as a float, ``None`` for no value."""
    if value is None:
        return None
    from kubernetes.utils import parse_quantity

    return float(parse_quantity(str(value)))


def selector_string(selector: Any) -> str:
    """``metav1.LabelSelectorAsSelector(selector).String()`` for a ``V1LabelSelector`` (or None).

    A missing or empty selector is the empty string (``labels.Nothing()`` and
    ``labels.Everything()`` both print as ``""``): no ``labelSelector`` parameter.
    """
    if selector is None:
        return ""
    requirements: list[tuple[str, str]] = [
        (key, f"{key}={value}") for key, value in (selector.match_labels or {}).items()
    ]
    for expr in selector.match_expressions or []:
        key, op, values = expr.key, expr.operator, sorted(expr.values or [])
        if op in _OPERATORS:
            requirements.append((key, f"{key} {_OPERATORS[op]} ({','.join(values)})"))
        elif op == "Exists":
            requirements.append((key, key))
        elif op == "DoesNotExist":
            requirements.append((key, f"!{key}"))
        else:
            raise InvalidInput(f"label selector key {key}: {op!r} is not a valid label selector operator")
    return ",".join(text for _, text in sorted(requirements, key=lambda r: r[0]))


@dataclass(frozen=True)
class ObjectRef:
    """An Object metric's ``describedObject`` (a ``CrossVersionObjectReference``)."""

    kind: str
    name: str
    api_version: str = "v1"


@dataclass(frozen=True)
class Tolerances:
    """The usage-ratio band in which the HPA leaves the replica count alone (``replica_calculator.go``)."""

    scale_up: float = DEFAULT_TOLERANCE
    scale_down: float = DEFAULT_TOLERANCE

    def is_within(self, ratio: float) -> bool:
        """``Tolerances.isWithin``: ``1 - scaleDown <= ratio <= 1 + scaleUp``."""
        return 1.0 - self.scale_down <= ratio <= 1.0 + self.scale_up


def tolerances(hpa: Any, default: float = DEFAULT_TOLERANCE) -> Tolerances:
    """``tolerancesForHpa``: the controller's tolerance unless ``spec.behavior`` sets one per direction."""
    behavior = hpa.spec.behavior if hpa.spec is not None else None
    up = down = default
    if behavior is not None:
        if behavior.scale_up is not None and behavior.scale_up.tolerance is not None:
            up = quantity(behavior.scale_up.tolerance) or 0.0
        if behavior.scale_down is not None and behavior.scale_down.tolerance is not None:
            down = quantity(behavior.scale_down.tolerance) or 0.0
    return Tolerances(scale_up=up, scale_down=down)


@dataclass(frozen=True)
class MetricSpec:
    """One entry of ``spec.metrics``: what is measured, where it is read, and its target."""

    source: SourceType
    name: str  # the resource (cpu, memory) or the metric's name
    target_type: TargetType
    target: float  # percent of the request for Utilization, else the quantity as a number
    selector: str = ""  # the metric's label selector (Pods, Object, External)
    container: str = ""  # ContainerResource
    described: ObjectRef | None = None  # Object

    @property
    def key(self) -> str:
        """Unique within an HPA; the name the report and the decisions use."""
        sel = f"{{{self.selector}}}" if self.selector else ""
        if self.source == "Resource":
            return self.name
        if self.source == "ContainerResource":
            return f"container/{self.container}/{self.name}"
        if self.source == "Pods":
            return f"pods/{self.name}{sel}"
        if self.source == "Object":
            ref = self.described or ObjectRef("", "")
            return f"object/{ref.kind}/{ref.name}/{self.name}{sel}"
        return f"external/{self.name}{sel}"

    @property
    def unit(self) -> str:
        if self.target_type == "Utilization":
            return "%"
        if self.source in ("Resource", "ContainerResource"):
            return _RESOURCE_UNITS.get(self.name, "")
        return ""

    @property
    def api(self) -> str:
        """The aggregated API the HPA controller reads this metric from (``metrics/client.go``)."""
        if self.source in ("Resource", "ContainerResource"):
            return RESOURCE_METRICS_API
        if self.source == "External":
            return EXTERNAL_METRICS_API
        return CUSTOM_METRICS_API

    def describe(self) -> str:
        """``external metric ingress_requests_per_second{route=r}``: how an error names the metric."""
        sel = f"{{{self.selector}}}" if self.selector else ""
        if self.source == "Resource":
            return f"resource metric {self.name}"
        if self.source == "ContainerResource":
            return f"container resource metric {self.name} of container {self.container}"
        if self.source == "Pods":
            return f"pods metric {self.name}{sel}"
        if self.source == "Object":
            ref = self.described or ObjectRef("", "")
            return f"object metric {self.name}{sel} of {ref.kind} {ref.name}"
        return f"external metric {self.name}{sel}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.key,
            "metric": self.name,
            "type": self.source,
            "target_type": self.target_type,
            "target": self.target,
            "unit": self.unit,
            "api": self.api,
        }
        if self.selector:
            out["selector"] = self.selector
        if self.container:
            out["container"] = self.container
        if self.described is not None:
            out["described_object"] = {
                "kind": self.described.kind,
                "name": self.described.name,
                "apiVersion": self.described.api_version,
            }
        return out


def _target(where: str, target: Any, order: Sequence[TargetType]) -> tuple[TargetType, float]:
    """The first target field set, in the order the controller checks them."""
    fields: dict[str, Any] = {
        "Utilization": target.average_utilization if target is not None else None,
        "AverageValue": target.average_value if target is not None else None,
        "Value": target.value if target is not None else None,
    }
    for kind in order:
        value = quantity(fields[kind])  # an int percent or a quantity string alike
        if value is not None:
            return kind, value
    wanted = " or ".join(order)
    raise InvalidInput(f"{where}: the target sets none of {wanted}")


# The order each computeStatusFor*Metric tries the target fields in (horizontal.go).
_RESOURCE_ORDER: tuple[TargetType, ...] = ("AverageValue", "Utilization")
_OBJECT_ORDER: tuple[TargetType, ...] = ("Value", "AverageValue")
_EXTERNAL_ORDER: tuple[TargetType, ...] = ("AverageValue", "Value")


def spec_of(metric: Any, where: str = "HPA metric") -> MetricSpec:
    """A ``V2MetricSpec`` as a :class:`MetricSpec`; an unknown type or a missing target names ``where``."""
    kind = metric.type
    if kind == "Resource" and metric.resource is not None:
        src = metric.resource
        target_type, target = _target(f"{where} (Resource {src.name})", src.target, _RESOURCE_ORDER)
        return MetricSpec("Resource", src.name, target_type, target)
    if kind == "ContainerResource" and metric.container_resource is not None:
        src = metric.container_resource
        target_type, target = _target(
            f"{where} (ContainerResource {src.name} of {src.container})", src.target, _RESOURCE_ORDER
        )
        return MetricSpec("ContainerResource", src.name, target_type, target, container=src.container)
    if kind == "Pods" and metric.pods is not None:
        src = metric.pods
        target_type, target = _target(f"{where} (Pods {src.metric.name})", src.target, ("AverageValue",))
        return MetricSpec("Pods", src.metric.name, target_type, target, selector_string(src.metric.selector))
    if kind == "Object" and metric.object is not None:
        src = metric.object
        ref = src.described_object
        target_type, target = _target(f"{where} (Object {src.metric.name})", src.target, _OBJECT_ORDER)
        return MetricSpec(
            "Object",
            src.metric.name,
            target_type,
            target,
            selector_string(src.metric.selector),
            described=ObjectRef(ref.kind, ref.name, ref.api_version or "v1"),
        )
    if kind == "External" and metric.external is not None:
        src = metric.external
        target_type, target = _target(f"{where} (External {src.metric.name})", src.target, _EXTERNAL_ORDER)
        return MetricSpec(
            "External", src.metric.name, target_type, target, selector_string(src.metric.selector)
        )
    known = ", ".join(SOURCE_TYPES)
    raise InvalidInput(f"{where}: type {kind!r} without its source is not an autoscaling/v2 metric ({known})")


def specs(hpa: Any) -> tuple[MetricSpec, ...]:
    """Every entry of the HPA's ``spec.metrics``, in order.

    The API server defaults an autoscaling/v2 HPA without ``metrics`` to 80 % CPU utilization
    (``pkg/apis/autoscaling/v2/defaults.go`` ``SetDefaults_HorizontalPodAutoscaler``), so an
    empty list only comes from an object built by hand; it yields no specs.
    """
    name = hpa.metadata.name if hpa.metadata is not None else "?"
    return tuple(
        spec_of(m, f"HorizontalPodAutoscaler {name} spec.metrics[{i}]")
        for i, m in enumerate(hpa.spec.metrics or [])
    )


def _status_key(status: Any) -> str | None:
    """The :attr:`MetricSpec.key` a ``V2MetricStatus`` reports on (the controller copies the spec's)."""
    kind = status.type
    if kind == "Resource" and status.resource is not None:
        return MetricSpec("Resource", status.resource.name, "Value", 0).key
    if kind == "ContainerResource" and status.container_resource is not None:
        src = status.container_resource
        return MetricSpec("ContainerResource", src.name, "Value", 0, container=src.container).key
    if kind == "Pods" and status.pods is not None:
        m = status.pods.metric
        return MetricSpec("Pods", m.name, "Value", 0, selector_string(m.selector)).key
    if kind == "Object" and status.object is not None:
        src = status.object
        ref = src.described_object
        return MetricSpec(
            "Object",
            src.metric.name,
            "Value",
            0,
            selector_string(src.metric.selector),
            described=ObjectRef(ref.kind, ref.name, ref.api_version or "v1"),
        ).key
    if kind == "External" and status.external is not None:
        m = status.external.metric
        return MetricSpec("External", m.name, "Value", 0, selector_string(m.selector)).key
    return None


def _status_current(status: Any) -> Any:
    for attr in ("resource", "container_resource", "pods", "object", "external"):
        src = getattr(status, attr, None)
        if src is not None:
            return src.current
    return None


def status_value(spec: MetricSpec, status: Any) -> float | None:
    """The value in a ``V2MetricStatus`` that the controller compared with ``spec``'s target."""
    current = _status_current(status)
    if current is None:
        return None
    if spec.target_type == "Utilization":
        return None if current.average_utilization is None else float(current.average_utilization)
    if spec.target_type == "AverageValue":
        return quantity(current.average_value)
    return quantity(current.value)


def hpa_view(spec: MetricSpec, values: Sequence[float], replicas: int) -> float | None:
    """What the HPA status would show for ``spec`` given the raw values a metrics API returned.

    ``values`` are the items of the API's answer (one per pod for Pods, one for Object, one
    per series for External); ``replicas`` the scale target's current replicas. None when
    the HPA could not compute one (no values: "no metrics returned from ... metrics API").
    Resource metrics need the pods' requests and are left to the HPA's status.
    """
    if not values or spec.source in ("Resource", "ContainerResource"):
        return None
    total = math.fsum(values)
    if spec.source == "Pods":
        return total / len(values)  # GetMetricUsageRatio: the mean over the pods with a value
    if spec.target_type == "AverageValue":  # Get{External,Object}PerPodMetricReplicas
        return total / replicas if replicas > 0 else None
    return total  # GetExternalMetricReplicas sums the series; GetObjectMetricReplicas has one


@dataclass(frozen=True)
class MetricValue:
    """One HPA metric at one moment: its spec and the value the HPA last computed for it."""

    spec: MetricSpec
    current: float | None
    tolerances: Tolerances = Tolerances()

    @property
    def name(self) -> str:
        return self.spec.key

    @property
    def target(self) -> float:
        return self.spec.target

    @property
    def unit(self) -> str:
        return self.spec.unit

    @property
    def ratio(self) -> float | None:
        """The usage ratio current / target (``replica_calculator.go``), None without a value."""
        if self.current is None or self.spec.target <= 0:
            return None
        return self.current / self.spec.target

    @property
    def above_target(self) -> bool:
        """Far enough above the target that the HPA scales out: ratio > 1 + scaleUp tolerance."""
        ratio = self.ratio
        return ratio is not None and ratio > 1.0 and not self.tolerances.is_within(ratio)

    @property
    def below_target(self) -> bool:
        """Far enough below the target that the HPA scales in: ratio < 1 - scaleDown tolerance."""
        ratio = self.ratio
        return ratio is not None and ratio < 1.0 and not self.tolerances.is_within(ratio)

    def describe(self) -> str:
        unit = "%" if self.unit == "%" else ""
        current = "?" if self.current is None else f"{self.current:g}{unit}"
        return f"{self.name} {current}/{self.target:g}{unit}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "current": self.current, "target": self.target, "unit": self.unit}


def current_values(hpa: Any) -> tuple[MetricValue, ...]:
    """Each of the HPA's metrics (spec order) with the value in ``status.currentMetrics``, or None.

    A metric the controller could not read is absent from the status (its condition
    ``ScalingActive=False`` says why); it is still listed, with no value.
    """
    tol = tolerances(hpa)
    statuses = {
        _status_key(s): s for s in ((hpa.status.current_metrics or []) if hpa.status is not None else [])
    }
    out = []
    for spec in specs(hpa):
        status = statuses.get(spec.key)
        out.append(MetricValue(spec, status_value(spec, status) if status is not None else None, tol))
    return tuple(out)
