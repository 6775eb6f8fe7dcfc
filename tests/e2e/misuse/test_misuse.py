"""The misuse corpus against the real things: a local ``tfsctl serve`` and the cluster.

Rows marked ``needs: server`` run against one ``tfsctl serve`` of TF Serving's
half_plus_two test model (versions 123 and 124, label stable -> 123); rows marked
``needs: cluster`` run in a fresh namespace of the e2e cluster (a release that was never
installed, a Lease another promotion holds). Each asserts the single stderr line and the
exit status the corpus gives. The rows needing nothing run in tests/unit/core.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import misuse
from support.cluster_helpers import Cluster
from support.serving_models import copy_model
from tfsbed.serve.testing import LocalServer
from tfsctl.serving.config import ModelConfig, ServerConfig, VersionPolicy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CORPUS = misuse.load()


@pytest.fixture(scope="module")
def situation(tmp_path_factory: pytest.TempPathFactory) -> misuse.Situation:
    return misuse.Situation.create(tmp_path_factory.mktemp("misuse"), CORPUS)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tf_serving_testdata: Path) -> Iterator[LocalServer]:
    root = tmp_path_factory.mktemp("misuse-models")
    copy_model("saved_model_half_plus_two_2_versions", root / "hp2")
    config = ServerConfig(
        {"hp2": ModelConfig("hp2", str(root / "hp2"), policy=VersionPolicy.all(), labels={"stable": 123})}
    )
    with LocalServer(config=config, allow_labels_for_unavailable=True) as srv:
        yield srv


@pytest.mark.parametrize("row", CORPUS.needing("server"), ids=lambda r: r.id)
def test_misuse_against_a_local_server(
    row: misuse.Row, situation: misuse.Situation, server: LocalServer
) -> None:
    situation.values.update(grpc=str(server.grpc_port), rest=str(server.rest_port))
    misuse.check(row, misuse.run(row, situation), situation)


def _hold_lease(cluster: Cluster, namespace: str, release: str) -> None:
    """The Lease a promotion of ``release`` in another process holds (fresh, renewed just now)."""
    from kubernetes import client

    from tfsctl.release.kube import lease_name

    now = dt.datetime.now(dt.timezone.utc)
    client.CoordinationV1Api(cluster.api).create_namespaced_lease(
        namespace,
        client.V1Lease(
            metadata=client.V1ObjectMeta(name=lease_name(release), namespace=namespace),
            spec=client.V1LeaseSpec(
                holder_identity="someone-else@elsewhere:1",
                lease_duration_seconds=600,
                acquire_time=now,
                renew_time=now,
            ),
        ),
    )


@pytest.mark.parametrize("row", CORPUS.needing("cluster"), ids=lambda r: r.id)
def test_misuse_against_the_cluster(
    row: misuse.Row, situation: misuse.Situation, cluster: Cluster, namespace: str
) -> None:
    situation.values["ns"] = namespace
    if row.lease_held:
        _hold_lease(cluster, namespace, row.lease_held)
    misuse.check(row, misuse.run(row, situation, kubeconfig=str(cluster.kubeconfig)), situation)
