"""The HPA metric model against the HPA controller's rules (k8s.io/kubernetes v1.35).

The rules and the controller functions they come from: ``FIDELITY.md`` next to this file.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from tfsctl.errors import InvalidInput
from tfsctl.load import metrics
from tfsctl.load.metrics import MetricSpec, MetricValue, Tolerances

ROUTE = client.V1LabelSelector(match_labels={"route": "tfs-tfs-8501"})


def target(kind: str, **kw: object) -> client.V2MetricTarget:
    return client.V2MetricTarget(type=kind, **kw)


def resource(name: str = "cpu", **kw: object) -> client.V2MetricSpec:
    return client.V2MetricSpec(
        type="Resource",
        resource=client.V2ResourceMetricSource(name=name, target=target("Utilization", **kw)),
    )


def external(name: str = "ingress_requests_per_second", **kw: object) -> client.V2MetricSpec:
    return client.V2MetricSpec(
        type="External",
        external=client.V2ExternalMetricSource(
            metric=client.V2MetricIdentifier(name=name, selector=ROUTE), target=target("AverageValue", **kw)
        ),
    )


def hpa(
    metric_specs: list[client.V2MetricSpec],
    statuses: list[client.V2MetricStatus] | None = None,
    behavior: client.V2HorizontalPodAutoscalerBehavior | None = None,
) -> client.V2HorizontalPodAutoscaler:
    return client.V2HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="tfs", namespace="tfs"),
        spec=client.V2HorizontalPodAutoscalerSpec(
            min_replicas=1,
            max_replicas=4,
            scale_target_ref=client.V2CrossVersionObjectReference(kind="Deployment", name="tfs"),
            metrics=metric_specs,
            behavior=behavior,
        ),
        status=client.V2HorizontalPodAutoscalerStatus(
            current_replicas=2, desired_replicas=2, current_metrics=statuses
        ),
    )


ALL_TYPES = [
    resource(average_utilization=60),
    client.V2MetricSpec(
        type="ContainerResource",
        container_resource=client.V2ContainerResourceMetricSource(
            name="memory", container="serving", target=target("AverageValue", average_value="512Mi")
        ),
    ),
    client.V2MetricSpec(
        type="Pods",
        pods=client.V2PodsMetricSource(
            metric=client.V2MetricIdentifier(name="tensorflow_serving_requests_per_second"),
            target=target("AverageValue", average_value="20"),
        ),
    ),
    client.V2MetricSpec(
        type="Object",
        object=client.V2ObjectMetricSource(
            described_object=client.V2CrossVersionObjectReference(
                kind="Ingress", name="tfs", api_version="networking.k8s.io/v1"
            ),
            metric=client.V2MetricIdentifier(name="requests_per_second"),
            target=target("Value", value="100"),
        ),
    ),
    external(average_value="500m"),
]


class TestSpecs:
    def test_every_source_type_becomes_a_spec(self) -> None:
        specs = metrics.specs(hpa(ALL_TYPES))
        assert [(s.source, s.key, s.target_type, s.target, s.unit, s.api) for s in specs] == [
            ("Resource", "cpu", "Utilization", 60.0, "%", "metrics.k8s.io"),
            ("ContainerResource", "container/serving/memory", "AverageValue", 512 * 2**20, "bytes",
             "metrics.k8s.io"),
            ("Pods", "pods/tensorflow_serving_requests_per_second", "AverageValue", 20.0, "",
             "custom.metrics.k8s.io"),
            ("Object", "object/Ingress/tfs/requests_per_second", "Value", 100.0, "", "custom.metrics.k8s.io"),
            ("External", "external/ingress_requests_per_second{route=tfs-tfs-8501}", "AverageValue", 0.5, "",
             "external.metrics.k8s.io"),
        ]  # fmt: skip
        assert specs[3].described == metrics.ObjectRef("Ingress", "tfs", "networking.k8s.io/v1")
        assert specs[4].describe() == "external metric ingress_requests_per_second{route=tfs-tfs-8501}"

    def test_target_field_order_is_the_controllers(self) -> None:
        both = {"average_value": "300m", "average_utilization": 70}
        (res,) = metrics.specs(hpa([resource(**both)]))
        assert (res.target_type, res.target) == ("AverageValue", 0.3)  # AverageValue wins
        obj = client.V2MetricSpec(
            type="Object",
            object=client.V2ObjectMetricSource(
                described_object=client.V2CrossVersionObjectReference(kind="Service", name="tfs"),
                metric=client.V2MetricIdentifier(name="rps"),
                target=target("AverageValue", average_value="5", value="50"),
            ),
        )
        (o,) = metrics.specs(hpa([obj]))
        assert (o.target_type, o.target) == ("Value", 50.0)  # Value wins for Object
        (ext,) = metrics.specs(hpa([external(average_value="5", value="50")]))
        assert (ext.target_type, ext.target) == ("AverageValue", 5.0)  # AverageValue wins for External

    def test_a_metric_without_a_target_names_its_place(self) -> None:
        with pytest.raises(InvalidInput) as err:
            metrics.specs(hpa([resource(average_utilization=50), external()]))
        assert str(err.value) == (
            "HorizontalPodAutoscaler tfs spec.metrics[1] (External ingress_requests_per_second): "
            "the target sets none of AverageValue or Value"
        )

    def test_an_unknown_source_type_is_refused(self) -> None:
        with pytest.raises(InvalidInput, match=r"spec.metrics\[0\]: type 'Custom' without its source"):
            metrics.specs(hpa([client.V2MetricSpec(type="Custom")]))

    def test_selector_strings(self) -> None:
        selector = client.V1LabelSelector(
            match_labels={"zone": "a", "app": "tfs"},
            match_expressions=[
                client.V1LabelSelectorRequirement(key="tier", operator="In", values=["web", "api"]),
                client.V1LabelSelectorRequirement(key="canary", operator="DoesNotExist"),
                client.V1LabelSelectorRequirement(key="model", operator="Exists"),
                client.V1LabelSelectorRequirement(key="env", operator="NotIn", values=["dev"]),
            ],
        )
        assert metrics.selector_string(selector) == (
            "app=tfs,!canary,env notin (dev),model,tier in (api,web),zone=a"
        )
        assert metrics.selector_string(None) == ""
        assert metrics.selector_string(client.V1LabelSelector()) == ""
        with pytest.raises(InvalidInput, match="label selector key x: 'Near' is not a valid"):
            metrics.selector_string(
                client.V1LabelSelector(
                    match_expressions=[client.V1LabelSelectorRequirement(key="x", operator="Near")]
                )
            )


def cpu_status(utilization: int, average_value: str = "250m") -> client.V2MetricStatus:
    return client.V2MetricStatus(
        type="Resource",
        resource=client.V2ResourceMetricStatus(
            name="cpu",
            current=client.V2MetricValueStatus(average_utilization=utilization, average_value=average_value),
        ),
    )


def external_status(**current: object) -> client.V2MetricStatus:
    return client.V2MetricStatus(
        type="External",
        external=client.V2ExternalMetricStatus(
            metric=client.V2MetricIdentifier(name="ingress_requests_per_second", selector=ROUTE),
            current=client.V2MetricValueStatus(**current),
        ),
    )


class TestCurrentValues:
    def test_status_entries_pair_with_their_specs_in_spec_order(self) -> None:
        obj = hpa(
            [resource(average_utilization=50), external(average_value="10")],
            statuses=[external_status(average_value="12"), cpu_status(80)],
        )
        values = metrics.current_values(obj)
        assert [(v.name, v.current, v.target) for v in values] == [
            ("cpu", 80.0, 50.0),
            ("external/ingress_requests_per_second{route=tfs-tfs-8501}", 12.0, 10.0),
        ]
        assert [v.describe() for v in values] == [
            "cpu 80%/50%",
            "external/ingress_requests_per_second{route=tfs-tfs-8501} 12/10",
        ]

    def test_a_metric_the_controller_could_not_read_has_no_value(self) -> None:
        obj = hpa([resource(average_utilization=50), external(average_value="10")], statuses=[cpu_status(80)])
        cpu, ext = metrics.current_values(obj)
        assert cpu.current == 80.0
        assert ext.current is None
        assert not ext.above_target and not ext.below_target and ext.describe().endswith(" ?/10")

    def test_an_external_metric_with_another_selector_is_another_metric(self) -> None:
        other = client.V2MetricStatus(
            type="External",
            external=client.V2ExternalMetricStatus(
                metric=client.V2MetricIdentifier(
                    name="ingress_requests_per_second",
                    selector=client.V1LabelSelector(match_labels={"route": "other"}),
                ),
                current=client.V2MetricValueStatus(average_value="99"),
            ),
        )
        (ext,) = metrics.current_values(hpa([external(average_value="10")], statuses=[other]))
        assert ext.current is None

    def test_status_value_follows_the_target_type(self) -> None:
        status = cpu_status(80, average_value="400m")
        utilization = MetricSpec("Resource", "cpu", "Utilization", 50)
        raw = MetricSpec("Resource", "cpu", "AverageValue", 0.5)
        assert metrics.status_value(utilization, status) == 80.0
        assert metrics.status_value(raw, status) == 0.4
        total = MetricSpec("External", "ingress_requests_per_second", "Value", 100, "route=tfs-tfs-8501")
        assert metrics.status_value(total, external_status(value="130")) == 130.0


CPU = MetricSpec("Resource", "cpu", "Utilization", 50)


class TestAboveTarget:
    @pytest.mark.parametrize(
        ("current", "above", "below"),
        [
            (56, True, False),  # ratio 1.12: scales out
            (55, False, False),  # ratio 1.10: on the edge of the band, isWithin is inclusive
            (54, False, False),  # ratio 1.08: within tolerance, the HPA leaves it alone
            (46, False, False),  # ratio 0.92
            (45, False, False),  # ratio 0.90: inclusive lower edge
            (44, False, True),  # ratio 0.88: scales in
        ],
    )
    def test_tolerance_band(self, current: float, above: bool, below: bool) -> None:
        value = MetricValue(CPU, current)
        assert (value.above_target, value.below_target) == (above, below)

    def test_configured_tolerance_overrides_the_default(self) -> None:
        behavior = client.V2HorizontalPodAutoscalerBehavior(
            scale_up=client.V2HPAScalingRules(tolerance="0.05"),
            scale_down=client.V2HPAScalingRules(tolerance="200m"),
        )
        obj = hpa([resource(average_utilization=50)], statuses=[cpu_status(54)], behavior=behavior)
        (value,) = metrics.current_values(obj)
        assert value.tolerances == Tolerances(scale_up=0.05, scale_down=0.2)
        assert value.above_target  # 1.08 > 1.05
        assert not MetricValue(CPU, 42, value.tolerances).below_target  # 0.84 >= 0.8
        assert MetricValue(CPU, 39, value.tolerances).below_target  # 0.78 < 0.8

    def test_default_tolerance_is_the_controller_managers(self) -> None:
        (value,) = metrics.current_values(hpa([resource(average_utilization=50)], statuses=[cpu_status(54)]))
        assert value.tolerances == Tolerances(0.1, 0.1)
        assert not value.above_target


EXT_AVG = MetricSpec("External", "ingress_requests_per_second", "AverageValue", 10, "route=tfs-tfs-8501")
EXT_TOTAL = MetricSpec("External", "ingress_requests_per_second", "Value", 20, "route=tfs-tfs-8501")


class TestHpaView:
    def test_external_average_value_divides_by_replicas(self) -> None:
        view = metrics.hpa_view(EXT_AVG, [12.0, 18.0], replicas=3)
        assert view == 10.0
        assert not MetricValue(EXT_AVG, view).above_target  # 30 rps over 3 pods = the target
        assert MetricValue(EXT_AVG, metrics.hpa_view(EXT_AVG, [12.0, 18.0], replicas=2)).above_target

    def test_external_value_compares_the_total(self) -> None:
        view = metrics.hpa_view(EXT_TOTAL, [12.0, 18.0], replicas=3)
        assert view == 30.0  # the replica count does not matter for a Value target
        assert MetricValue(EXT_TOTAL, view).above_target

    def test_object_targets(self) -> None:
        ref = metrics.ObjectRef("Service", "tfs")
        avg = MetricSpec("Object", "rps", "AverageValue", 10, described=ref)
        value = MetricSpec("Object", "rps", "Value", 10, described=ref)
        assert metrics.hpa_view(avg, [40.0], replicas=4) == 10.0
        assert metrics.hpa_view(value, [40.0], replicas=4) == 40.0

    def test_pods_metric_is_the_mean(self) -> None:
        pods = MetricSpec("Pods", "tensorflow_serving_requests_per_second", "AverageValue", 20)
        assert metrics.hpa_view(pods, [10.0, 30.0, 50.0], replicas=7) == 30.0

    def test_no_values_or_a_resource_metric_give_no_view(self) -> None:
        assert metrics.hpa_view(EXT_AVG, [], replicas=2) is None
        assert metrics.hpa_view(EXT_AVG, [5.0], replicas=0) is None
        assert metrics.hpa_view(CPU, [0.2, 0.3], replicas=2) is None
