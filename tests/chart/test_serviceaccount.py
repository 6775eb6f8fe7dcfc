"""templates/serviceaccount.yaml and templates/networkpolicy.yaml: identity and network isolation."""

from __future__ import annotations

import pytest

from support.chart_render import FULLNAME, find, render_chart

pytestmark = pytest.mark.chart


class TestServiceAccount:
    def test_created_without_token_automount(self) -> None:
        account = find(render_chart(None, show_only="serviceaccount.yaml"), "ServiceAccount", FULLNAME)
        assert account["automountServiceAccountToken"] is False

    def test_annotations_for_cloud_identity(self) -> None:
        values = {
            "serviceAccount": {
                "annotations": {"iam.gke.io/gcp-service-account": "sa@p.iam.gserviceaccount.com"}
            }
        }
        account = find(render_chart(values, show_only="serviceaccount.yaml"), "ServiceAccount")
        assert account["metadata"]["annotations"] == {
            "iam.gke.io/gcp-service-account": "sa@p.iam.gserviceaccount.com"
        }

    def test_existing_account_is_referenced_not_created(self) -> None:
        values = {"serviceAccount": {"create": False, "name": "shared"}}
        assert render_chart(values, show_only="serviceaccount.yaml") == []
        pod = find(render_chart(values, show_only="deployment.yaml"), "Deployment")["spec"]["template"][
            "spec"
        ]
        assert pod["serviceAccountName"] == "shared"


class TestNetworkPolicy:
    def test_not_rendered_by_default(self) -> None:
        assert render_chart(None, show_only="networkpolicy.yaml") == []

    def test_admits_only_the_serving_ports_from_the_given_peers(self) -> None:
        peers = [{"namespaceSelector": {"matchLabels": {"name": "gateway"}}}]
        docs = render_chart(
            {"networkPolicy": {"enabled": True, "from": peers}}, show_only="networkpolicy.yaml"
        )
        spec = find(docs, "NetworkPolicy", FULLNAME)["spec"]
        assert spec["policyTypes"] == ["Ingress"]
        assert [p["port"] for p in spec["ingress"][0]["ports"]] == ["grpc", "rest"]
        assert spec["ingress"][0]["from"] == peers
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "tfs"
