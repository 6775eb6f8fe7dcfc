"""templates/deployment.yaml: image selection, server flags, probes, rollout and security."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.chart_render import FULLNAME, find, merge_values, render_chart, server_container
from support.serving_tls import Pki, make_pki
from tfsbed.serve.tls import load_ssl_config

pytestmark = pytest.mark.chart

FASHION = {"models": {"fashion": {"versionPolicy": {"specific": {"versions": [1, 2]}}}}}


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return render_chart(values, show_only="deployment.yaml")


def args_of(docs: list[dict[str, Any]]) -> list[str]:
    return list(server_container(docs)["args"])


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(find(docs, "Deployment")["spec"]["template"]["spec"])


class TestDeployment:
    def test_names_deployment_and_container_as_other_areas_expect(self) -> None:
        docs = render()
        deployment = find(docs, "Deployment")
        assert deployment["metadata"]["name"] == FULLNAME
        assert server_container(docs)["name"] == "tensorflow-serving"

    def test_fullname_is_release_name_when_it_contains_the_chart_name(self) -> None:
        docs = render_chart(None, show_only="deployment.yaml", release="tensorflow-serving-prod")
        assert find(docs, "Deployment")["metadata"]["name"] == "tensorflow-serving-prod"

    def test_selector_has_only_name_and_instance(self) -> None:
        selector = find(render(), "Deployment")["spec"]["selector"]["matchLabels"]
        assert selector == {
            "app.kubernetes.io/name": "tensorflow-serving",
            "app.kubernetes.io/instance": "tfs",
        }

    def test_pod_labels_carry_component_and_version(self) -> None:
        labels = find(render(), "Deployment")["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == "server"
        assert labels["app.kubernetes.io/version"] == "2.19.0"

    def test_runs_the_server_binary_as_command_not_the_entrypoint_script(self) -> None:
        assert server_container(render())["command"] == ["tensorflow_model_server"]

    def test_command_is_configurable_for_a_wrapper_of_the_server(self) -> None:
        docs = render({"server": {"command": ["/usr/local/bin/with-secrets", "tensorflow_model_server"]}})
        assert server_container(docs)["command"] == ["/usr/local/bin/with-secrets", "tensorflow_model_server"]

    def test_cpu_image_by_default(self) -> None:
        container = server_container(render())
        assert container["image"] == "tensorflow/serving:2.19.0"
        assert "nvidia.com/gpu" not in container.get("resources", {}).get("limits", {})

    def test_gpu_image_and_limit_chosen_when_gpus_requested(self) -> None:
        container = server_container(render({"gpu": {"count": 2}}))
        assert container["image"] == "tensorflow/serving:2.19.0-gpu"
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 2

    def test_gpu_limit_is_merged_with_user_limits(self) -> None:
        values = {"gpu": {"count": 1}, "resources": {"limits": {"memory": "8Gi"}, "requests": {"cpu": "2"}}}
        resources = server_container(render(values))["resources"]
        assert resources["limits"] == {"memory": "8Gi", "nvidia.com/gpu": 1}
        assert resources["requests"] == {"cpu": "2"}

    def test_digest_pins_the_image(self) -> None:
        digest = "sha256:" + "a" * 64
        assert (
            server_container(render({"image": {"digest": digest}}))["image"] == f"tensorflow/serving@{digest}"
        )

    def test_pull_secrets_and_policy_are_passed_through(self) -> None:
        docs = render({"imagePullSecrets": [{"name": "acr"}], "image": {"pullPolicy": "Always"}})
        assert pod_spec(docs)["imagePullSecrets"] == [{"name": "acr"}]
        assert server_container(docs)["imagePullPolicy"] == "Always"

    def test_single_model_mode_uses_model_name_and_base_path_flags(self) -> None:
        args = args_of(render({"model": {"name": "mnist"}}))
        assert "--model_name=mnist" in args
        assert "--model_base_path=/models/mnist" in args
        assert not any(a.startswith("--model_config_file") for a in args)

    def test_single_model_base_path_can_be_a_url(self) -> None:
        args = args_of(render({"model": {"name": "resnet", "basePath": "gs://bucket/resnet"}}))
        assert "--model_base_path=gs://bucket/resnet" in args

    def test_multi_model_mode_reads_the_mounted_config_file_with_polling(self) -> None:
        args = args_of(render({**FASHION, "modelConfig": {"pollWaitSeconds": 2}}))
        assert "--model_config_file=/etc/tfserving/model_config.pbtxt" in args
        assert "--model_config_file_poll_wait_seconds=2" in args
        assert not any(a.startswith("--model_name") for a in args)

    def test_allow_labels_for_unavailable_models_flag(self) -> None:
        values = {**FASHION, "modelConfig": {"allowVersionLabelsForUnavailableModels": True}}
        assert "--allow_version_labels_for_unavailable_models=true" in args_of(render(values))
        assert not any("allow_version_labels" in a for a in args_of(render(FASHION)))

    def test_config_map_is_mounted_without_sub_path(self) -> None:
        docs = render(FASHION)
        mount = next(m for m in server_container(docs)["volumeMounts"] if m["name"] == "config")
        assert mount["mountPath"] == "/etc/tfserving"
        assert "subPath" not in mount
        volume = next(v for v in pod_spec(docs)["volumes"] if v["name"] == "config")
        assert volume["configMap"]["name"] == f"{FULLNAME}-config"

    def test_ports_are_named_grpc_and_rest(self) -> None:
        ports = server_container(render({"server": {"grpcPort": 9000, "restPort": 9001}}))["ports"]
        assert {p["name"]: p["containerPort"] for p in ports} == {"grpc": 9000, "rest": 9001}
        assert "--port=9000" in args_of(render({"server": {"grpcPort": 9000}}))

    def test_legacy_single_grpc_port_layout_has_no_rest(self) -> None:
        docs = render({"model": {"name": "mnist"}, "server": {"grpcPort": 9090, "restEnabled": False}})
        container = server_container(docs)
        assert [p["name"] for p in container["ports"]] == ["grpc"]
        assert "--port=9090" in container["args"]
        assert not any(a.startswith("--rest_api_port") for a in container["args"])
        assert container["readinessProbe"]["tcpSocket"] == {"port": "grpc"}

    def test_default_grpc_channel_arguments_limit_connection_age(self) -> None:
        args = args_of(render())
        flag = next(a for a in args if a.startswith("--grpc_channel_arguments="))
        assert "grpc.max_connection_age_ms=60000" in flag

    def test_batching_flags_point_at_the_rendered_parameters_file(self) -> None:
        args = args_of(render({"server": {"batching": {"enabled": True}}}))
        assert "--enable_batching=true" in args
        assert "--batching_parameters_file=/etc/tfserving/batching_parameters.pbtxt" in args

    def test_monitoring_flag_and_scrape_annotations(self) -> None:
        docs = render({"server": {"monitoring": {"enabled": True}}})
        assert "--monitoring_config_file=/etc/tfserving/monitoring_config.pbtxt" in args_of(docs)
        annotations = find(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == "8501"
        assert annotations["prometheus.io/path"] == "/monitoring/prometheus/metrics"

    def test_threading_flags_render_only_when_set(self) -> None:
        args = args_of(render({"server": {"threading": {"intraOpParallelism": 4, "restApiNumThreads": 8}}}))
        assert "--tensorflow_intra_op_parallelism=4" in args
        assert "--rest_api_num_threads=8" in args
        assert not any("inter_op" in a for a in args)

    def test_extra_args_come_last_and_extra_env_is_set(self) -> None:
        values = {
            "server": {
                "extraArgs": ["--enable_model_warmup=true"],
                "extraEnv": [{"name": "TF_CPP_MIN_LOG_LEVEL", "value": "1"}],
            }
        }
        container = server_container(render(values))
        assert container["args"][-1] == "--enable_model_warmup=true"
        assert container["env"] == [{"name": "TF_CPP_MIN_LOG_LEVEL", "value": "1"}]

    def test_readiness_and_startup_check_rest_model_status(self) -> None:
        container = server_container(render(FASHION))
        for probe in ("readinessProbe", "startupProbe"):
            assert container[probe]["httpGet"] == {"path": "/v1/models/fashion", "port": "rest"}
        assert container["livenessProbe"]["tcpSocket"] == {"port": "grpc"}

    def test_startup_probe_budget_is_configurable(self) -> None:
        probe = server_container(render({"probes": {"startup": {"failureThreshold": 120}}}))["startupProbe"]
        assert probe["failureThreshold"] == 120

    def test_pre_stop_drains_within_the_grace_period(self) -> None:
        docs = render({"preStop": {"sleepSeconds": 15}, "terminationGracePeriodSeconds": 60})
        assert server_container(docs)["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "15"]
        assert pod_spec(docs)["terminationGracePeriodSeconds"] == 60

    def test_pre_stop_can_use_the_native_sleep_action(self) -> None:
        docs = render({"preStop": {"useSleepAction": True}})
        assert server_container(docs)["lifecycle"]["preStop"] == {"sleep": {"seconds": 10}}

    def test_rolling_update_never_drops_capacity(self) -> None:
        strategy = find(render(), "Deployment")["spec"]["strategy"]
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0

    def test_replicas_set_without_autoscaling(self) -> None:
        assert find(render({"replicaCount": 3}), "Deployment")["spec"]["replicas"] == 3

    def test_deployment_omits_replicas_when_hpa_enabled(self) -> None:
        values = {"autoscaling": {"enabled": True}, "resources": {"requests": {"cpu": "1"}}}
        assert "replicas" not in find(render(values), "Deployment")["spec"]

    def test_security_context_is_restricted(self) -> None:
        docs = render()
        pod = pod_spec(docs)["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        container = server_container(docs)["securityContext"]
        assert container["readOnlyRootFilesystem"] is True
        assert container["allowPrivilegeEscalation"] is False
        assert container["capabilities"]["drop"] == ["ALL"]

    def test_writable_tmp_with_read_only_root(self) -> None:
        mounts = {m["name"]: m["mountPath"] for m in server_container(render())["volumeMounts"]}
        assert mounts["tmp"] == "/tmp"

    def test_models_volume_mounted_read_only_from_the_claim(self) -> None:
        values = {"persistence": {"enabled": True, "selector": {"matchLabels": {"model": "mnist"}}}}
        docs = render(values)
        mount = next(m for m in server_container(docs)["volumeMounts"] if m["name"] == "models")
        assert mount == {"name": "models", "mountPath": "/models", "readOnly": True}
        volume = next(v for v in pod_spec(docs)["volumes"] if v["name"] == "models")
        assert volume["persistentVolumeClaim"]["claimName"] == f"{FULLNAME}-models"

    def test_existing_claim_is_used_as_is(self) -> None:
        docs = render({"persistence": {"enabled": True, "existingClaim": "shared-models"}})
        volume = next(v for v in pod_spec(docs)["volumes"] if v["name"] == "models")
        assert volume["persistentVolumeClaim"]["claimName"] == "shared-models"

    def test_scheduling_fields_are_passed_through(self) -> None:
        values = {
            "nodeSelector": {"node.tfsctl.dev/type": "gpu"},
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "runtimeClassName": "nvidia",
            "priorityClassName": "serving",
            "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule"}
            ],
        }
        pod = pod_spec(render(values))
        assert pod["nodeSelector"] == {"node.tfsctl.dev/type": "gpu"}
        assert pod["tolerations"][0]["key"] == "gpu"
        assert pod["runtimeClassName"] == "nvidia"
        assert pod["priorityClassName"] == "serving"
        assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"


class TestDeploymentChecksums:
    def test_model_config_change_does_not_restart_pods_when_polling(self) -> None:
        before = find(render({**FASHION, "modelConfig": {"pollWaitSeconds": 30}}), "Deployment")
        assert "checksum/model-config" not in before["spec"]["template"]["metadata"].get("annotations", {})

    def test_model_config_checksum_rolls_pods_when_polling_is_off(self) -> None:
        def checksum(labels: dict[str, int]) -> str:
            models = {
                "fashion": {"versionPolicy": {"specific": {"versions": [1, 2]}}, "versionLabels": labels}
            }
            docs = render(
                {
                    "models": models,
                    "modelConfig": {"pollWaitSeconds": 0, "allowVersionLabelsForUnavailableModels": True},
                }
            )
            return str(
                find(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"][
                    "checksum/model-config"
                ]
            )

        assert checksum({"stable": 1}) != checksum({"stable": 2})

    def test_server_config_checksum_follows_batching_parameters(self) -> None:
        def checksum(size: int) -> str:
            docs = render({"server": {"batching": {"enabled": True, "maxBatchSize": size}}})
            return str(
                find(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"][
                    "checksum/server-config"
                ]
            )

        assert checksum(16) != checksum(32)


class TestDeploymentEci:
    def test_ecs_only_adds_no_eci_placement(self) -> None:
        docs = render()
        pod = pod_spec(docs)
        assert "tolerations" not in pod and "affinity" not in pod
        assert "annotations" not in find(docs, "Deployment")["spec"]["template"]["metadata"]

    def test_eci_only_on_virtual_node_requires_the_virtual_node(self) -> None:
        pod = pod_spec(render({"eci": {"mode": "eci-only"}}))
        assert {
            "key": "virtual-kubelet.io/provider",
            "operator": "Equal",
            "value": "alibabacloud",
            "effect": "NoSchedule",
        } in pod["tolerations"]
        terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ]
        assert terms == [
            {"matchExpressions": [{"key": "type", "operator": "In", "values": ["virtual-kubelet"]}]}
        ]

    def test_eci_only_is_added_to_every_user_node_selector_term(self) -> None:
        user_term = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
        affinity = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [user_term]}
            }
        }
        pod = pod_spec(render({"eci": {"mode": "eci-only"}, "affinity": affinity}))
        terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ]
        assert [e["key"] for e in terms[0]["matchExpressions"]] == ["zone", "type"]

    def test_burst_on_virtual_node_prefers_ecs_nodes(self) -> None:
        pod = pod_spec(render({"eci": {"mode": "burst"}}))
        preferred = pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert preferred[0]["preference"]["matchExpressions"][0]["operator"] == "NotIn"
        assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["nodeAffinity"]
        assert pod["tolerations"][0]["key"] == "virtual-kubelet.io/provider"

    @pytest.mark.parametrize(("mode", "value"), [("burst", "eci"), ("eci-only", "eci_only")])
    def test_annotation_scheduling_uses_burst_resource(self, mode: str, value: str) -> None:
        docs = render({"eci": {"mode": mode, "scheduling": "annotation"}})
        annotations = find(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
        assert annotations["alibabacloud.com/burst-resource"] == value
        assert "tolerations" not in pod_spec(docs)

    def test_eci_specs_and_image_cache_annotations(self) -> None:
        values = {
            "eci": {
                "mode": "eci-only",
                "useSpecs": ["ecs.gn6i-c4g1.xlarge", "ecs.gn6v-c8g1.2xlarge"],
                "imageCache": {"enabled": True},
            }
        }
        annotations = find(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]
        assert annotations["k8s.aliyun.com/eci-use-specs"] == "ecs.gn6i-c4g1.xlarge,ecs.gn6v-c8g1.2xlarge"
        assert annotations["k8s.aliyun.com/eci-auto-imc"] == "true"

    def test_image_cache_id_pins_a_cache(self) -> None:
        values = {"eci": {"mode": "burst", "imageCache": {"enabled": True, "id": "imc-abc123"}}}
        annotations = find(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]
        assert annotations["k8s.aliyun.com/eci-imc-id"] == "imc-abc123"
        assert "k8s.aliyun.com/eci-auto-imc" not in annotations


TLS = {"server": {"tls": {"enabled": True, "secretName": "tfserving-grpc-tls"}}}
SECRET_DIR = "var/run/tfserving/tls-secret"  # where the init container reads the Secret, relative to "/"


def init_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = pod_spec(docs)["initContainers"]
    return dict(container)


def assemble_ssl_config(
    docs: list[dict[str, Any]], root: Path, secret: dict[str, bytes]
) -> subprocess.CompletedProcess[str]:
    """Run the rendered init script with real ``sh`` in ``root`` (its workingDir), Secret keys as files."""
    container = init_container(docs)
    assert container["command"][:2] == ["sh", "-c"]
    assert container["workingDir"] == "/"
    (root / SECRET_DIR).mkdir(parents=True)
    for key, data in secret.items():
        (root / SECRET_DIR / key).write_bytes(data)
    for mount in container["volumeMounts"]:
        (root / mount["mountPath"].lstrip("/")).mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        container["command"], cwd=root, capture_output=True, text=True, timeout=30, check=False
    )


def tls_secret(pki: Pki, *, ca: bool = True) -> dict[str, bytes]:
    secret = {"tls.crt": pki.server.cert.read_bytes(), "tls.key": pki.server.key.read_bytes()}
    if ca:
        secret["ca.crt"] = pki.ca.cert.read_bytes()
    return secret


class TestDeploymentTls:
    def test_off_by_default_without_init_container_or_flag(self) -> None:
        docs = render()
        assert "initContainers" not in pod_spec(docs)
        assert not [a for a in args_of(docs) if a.startswith("--ssl_config_file")]

    def test_server_reads_the_assembled_ssl_config_from_an_in_memory_empty_dir(self) -> None:
        docs = render(TLS)
        assert "--ssl_config_file=/etc/tfserving-tls/ssl_config.pbtxt" in args_of(docs)
        volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
        assert volumes["tls-config"]["emptyDir"]["medium"] == "Memory"
        mounts = {m["name"]: m for m in server_container(docs)["volumeMounts"]}
        assert mounts["tls-config"] == {
            "name": "tls-config",
            "mountPath": "/etc/tfserving-tls",
            "readOnly": True,
        }

    def test_only_the_init_container_mounts_the_secret(self) -> None:
        docs = render(TLS)
        volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
        assert volumes["tls-secret"]["secret"]["secretName"] == "tfserving-grpc-tls"
        assert "tls-secret" not in {m["name"] for m in server_container(docs)["volumeMounts"]}
        init_mounts = {m["name"]: m for m in init_container(docs)["volumeMounts"]}
        assert init_mounts["tls-secret"]["readOnly"] is True
        assert init_mounts["tls-config"]["mountPath"] == "/etc/tfserving-tls"

    def test_init_container_uses_the_server_image_and_restricted_security_context(self) -> None:
        docs = render({**TLS, "gpu": {"count": 1}})
        container = init_container(docs)
        assert container["image"] == server_container(docs)["image"] == "tensorflow/serving:2.19.0-gpu"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["limits"] == {"memory": "64Mi"}
        assert "nvidia.com/gpu" not in json.dumps(container["resources"])

    def test_mount_path_is_configurable(self) -> None:
        values = merge_values(TLS, {"server": {"tls": {"mountPath": "/run/tls/"}}})
        assert "--ssl_config_file=/run/tls/ssl_config.pbtxt" in args_of(render(values))

    def test_probes_stay_on_plain_rest_and_tcp(self) -> None:
        container = server_container(render({**TLS, **FASHION}))
        assert container["readinessProbe"]["httpGet"]["port"] == "rest"
        assert "scheme" not in container["readinessProbe"]["httpGet"]
        assert container["livenessProbe"]["tcpSocket"] == {"port": "grpc"}

    def test_no_key_material_or_ssl_config_is_rendered(self) -> None:
        docs = render_chart(merge_values(TLS, {"server": {"batching": {"enabled": True}}}))
        text = yaml.safe_dump_all(docs)
        assert "BEGIN" not in text
        assert "ssl_config.pbtxt" not in json.dumps(find(docs, "ConfigMap")["data"])
        assert "server_key" not in json.dumps(find(docs, "ConfigMap")["data"])

    def test_init_script_assembles_an_ssl_config_tfsctl_serve_loads(self, tmp_path: Path) -> None:
        pki = make_pki(tmp_path / "pki")
        root = tmp_path / "root"
        out = assemble_ssl_config(render(TLS), root, tls_secret(pki))
        assert out.returncode == 0, out.stderr
        path = root / "etc/tfserving-tls/ssl_config.pbtxt"
        config = load_ssl_config(str(path))  # parses as SSLConfig and loads key, cert and CA
        assert config.server_key == pki.server.key.read_bytes()
        assert config.server_cert == pki.server.cert.read_bytes()
        assert config.custom_ca == pki.ca.cert.read_bytes()
        assert config.client_verify is False
        assert path.stat().st_mode & 0o077 == 0
        assert "BEGIN" not in out.stdout + out.stderr

    def test_init_script_escapes_quotes_and_backslashes_and_drops_carriage_returns(
        self, tmp_path: Path
    ) -> None:
        pki = make_pki(tmp_path / "pki")
        secret = tls_secret(pki)
        cert = b'subject="CN=a\\\\b"\n' + secret["tls.crt"]
        secret["tls.crt"] = cert.replace(b"\n", b"\r\n")
        out = assemble_ssl_config(render(TLS), tmp_path / "root", secret)
        assert out.returncode == 0, out.stderr
        config = load_ssl_config(str(tmp_path / "root/etc/tfserving-tls/ssl_config.pbtxt"))
        assert config.server_cert == cert

    def test_init_script_without_ca_key_in_the_secret_omits_custom_ca(self, tmp_path: Path) -> None:
        pki = make_pki(tmp_path / "pki")
        out = assemble_ssl_config(render(TLS), tmp_path / "root", tls_secret(pki, ca=False))
        assert out.returncode == 0, out.stderr
        config = load_ssl_config(str(tmp_path / "root/etc/tfserving-tls/ssl_config.pbtxt"))
        assert config.custom_ca is None

    def test_client_verify_renders_mutual_tls(self, tmp_path: Path) -> None:
        pki = make_pki(tmp_path / "pki")
        values = merge_values(TLS, {"server": {"tls": {"clientVerify": True}}})
        out = assemble_ssl_config(render(values), tmp_path / "root", tls_secret(pki))
        assert out.returncode == 0, out.stderr
        config = load_ssl_config(str(tmp_path / "root/etc/tfserving-tls/ssl_config.pbtxt"))
        assert config.client_verify is True
        assert config.custom_ca == pki.ca.cert.read_bytes()

    def test_client_verify_fails_at_start_naming_the_missing_ca_key(self, tmp_path: Path) -> None:
        pki = make_pki(tmp_path / "pki")
        values = merge_values(TLS, {"server": {"tls": {"clientVerify": True}}})
        out = assemble_ssl_config(render(values), tmp_path / "root", tls_secret(pki, ca=False))
        assert out.returncode != 0
        assert out.stderr.strip() == (
            "server.tls.caKey: Secret tfserving-grpc-tls has no key ca.crt (or it is empty)"
        )
        assert not (tmp_path / "root/etc/tfserving-tls/ssl_config.pbtxt").exists()

    def test_secret_key_names_are_overridable(self, tmp_path: Path) -> None:
        pki = make_pki(tmp_path / "pki")
        keys = {"certKey": "server.pem", "keyKey": "server-key.pem", "caKey": "root.pem"}
        values = merge_values(TLS, {"server": {"tls": keys}})
        secret = tls_secret(pki)
        renamed = {
            "server.pem": secret["tls.crt"],
            "server-key.pem": secret["tls.key"],
            "root.pem": secret["ca.crt"],
        }
        out = assemble_ssl_config(render(values), tmp_path / "root", renamed)
        assert out.returncode == 0, out.stderr
        config = load_ssl_config(str(tmp_path / "root/etc/tfserving-tls/ssl_config.pbtxt"))
        assert config.custom_ca == pki.ca.cert.read_bytes()

    def test_missing_certificate_key_fails_naming_the_value(self, tmp_path: Path) -> None:
        pki = make_pki(tmp_path / "pki")
        secret = tls_secret(pki)
        del secret["tls.crt"]
        out = assemble_ssl_config(render(TLS), tmp_path / "root", secret)
        assert out.returncode != 0
        assert "server.tls.certKey: Secret tfserving-grpc-tls has no key tls.crt" in out.stderr


SELECTOR = {"app.kubernetes.io/name": "tensorflow-serving", "app.kubernetes.io/instance": "tfs"}


class TestDeploymentPodAntiAffinity:
    def test_required_puts_at_most_one_replica_per_node(self) -> None:
        pod = pod_spec(render({"podAntiAffinity": {"mode": "required"}}))
        assert pod["affinity"]["podAntiAffinity"] == {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": SELECTOR}}
            ]
        }

    def test_preferred_spreads_over_the_given_key(self) -> None:
        values = {"podAntiAffinity": {"mode": "preferred", "topologyKey": "topology.kubernetes.io/zone"}}
        [term] = pod_spec(render(values))["affinity"]["podAntiAffinity"][
            "preferredDuringSchedulingIgnoredDuringExecution"
        ]
        assert term == {
            "weight": 100,
            "podAffinityTerm": {
                "topologyKey": "topology.kubernetes.io/zone",
                "labelSelector": {"matchLabels": SELECTOR},
            },
        }

    def test_merges_with_user_affinity_and_eci_placement(self) -> None:
        user = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "zone", "labelSelector": {}}
                ]
            }
        }
        pod = pod_spec(
            render({"podAntiAffinity": {"mode": "required"}, "affinity": user, "eci": {"mode": "eci-only"}})
        )
        assert len(pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]) == 2
        assert "nodeAffinity" in pod["affinity"]

    def test_off_by_default(self) -> None:
        assert "affinity" not in pod_spec(render())
