"""Command-level flows: one function per ``tfsctl`` release command (deploy, scale,
promote/rollback, status, history, validate). The CLI builds a request, calls one
of these and prints the result; nothing here prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tfsctl import paths
from tfsctl.errors import InvalidInput, NotFound, ToolkitError
from tfsctl.release.fleet import Desired, Disagreement, ReplicaObservation, evaluate_fleet
from tfsctl.release.history import PromotionRecord
from tfsctl.release.promote import Promoter, PromotionRequest, PromotionResult
from tfsctl.release.replicas import FleetClient, Replica, parse_endpoints, state_of
from tfsctl.release.scale import plan_scale
from tfsctl.release.store import ConfigStore, EndpointStore
from tfsctl.release.values import apply_set, merge_values

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """Which fleet a command acts on: a release (Kubernetes mode) or a config file + endpoints."""

    release: str | None = None
    namespace: str = "default"
    model_config: Path | None = None
    endpoints: str | None = None
    kubeconfig: Path | None = None
    timeout: float = 120.0
    connect: str = "auto"  # Kubernetes mode: how to dial pods (auto | pod-ip | port-forward)

    def check(self) -> None:
        if self.model_config is not None or self.endpoints is not None:
            if self.release:
                raise InvalidInput("--release and --model-config/--endpoints are exclusive: pick one mode")
            if self.model_config is None or self.endpoints is None:
                raise InvalidInput(
                    "endpoint mode needs both --model-config FILE and --endpoints host:port,..."
                )
        elif not self.release:
            raise InvalidInput("pass --release (Kubernetes mode) or --model-config and --endpoints")


@contextlib.contextmanager
def open_store(target: Target) -> Iterator[ConfigStore]:
    """The ConfigStore for ``target``; Kubernetes mode holds one asyncio runner for the command."""
    target.check()
    if target.model_config is not None:
        assert target.endpoints is not None
        yield EndpointStore(target.model_config, parse_endpoints(target.endpoints))
        return
    from tfsctl.kubeclient import connect
    from tfsctl.release.helm import HelmAdapter, helm_client
    from tfsctl.release.kube import KubeAdapter, ReleaseStore

    kubeconfig = target.kubeconfig or paths.kubeconfig()
    api = connect(kubeconfig)
    assert target.release is not None
    with asyncio.Runner() as runner:
        helm = HelmAdapter(helm_client(kubeconfig), paths.CHART_DIR, timeout=target.timeout)
        kube = KubeAdapter(api, target.namespace)
        store = ReleaseStore(
            helm, kube, target.release, runner, helm_timeout=target.timeout, connect=target.connect
        )
        try:
            yield store
        finally:
            store.close()


# ------------------------------------------------------------------ promote / rollback


def promote(target: Target, request: PromotionRequest) -> PromotionResult:
    with open_store(target) as store, FleetClient(timeout=min(30.0, target.timeout)) as fleet:
        return Promoter(store, fleet).run(request)


# ------------------------------------------------------------------ status / history


@dataclass
class StatusReport:
    target: str
    config: str
    desired: dict[str, dict[str, Any]]
    replicas: list[ReplicaObservation]
    disagreements: list[Disagreement]
    revision: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "revision": self.revision,
            "desired": self.desired,
            "replicas": [
                {
                    "name": r.name,
                    "address": r.address,
                    "ready": r.ready,
                    "node": r.node,
                    "error": r.error,
                    "models": {
                        m: {
                            "versions": {str(v): s for v, s in sorted(o.versions.items())},
                            "labels": dict(o.labels),
                            "error": o.error,
                        }
                        for m, o in r.models.items()
                    },
                    "disagrees": [d.message for d in self.disagreements if d.replica == r.name],
                }
                for r in self.replicas
            ],
            "consistent": not self.disagreements,
        }


def status(target: Target) -> StatusReport:
    with open_store(target) as store, FleetClient(timeout=min(10.0, target.timeout)) as fleet:
        config = store.read()
        replicas = _all_replicas(store)
        desired: dict[str, Desired] = {}
        for name, model in config.models.items():
            state = state_of(model)
            desired[name] = Desired(state, state.policy.served(store.repository_versions(name)))
        reachable = [r for r in replicas if r.endpoint.host]
        observed = fleet.observe(reachable, {m: list(d.state.labels) for m, d in desired.items()})
        observed += [
            ReplicaObservation(r.name, "", r.ready, r.node, error="no pod IP")
            for r in replicas
            if not r.endpoint.host
        ]
        disagreements = evaluate_fleet(desired, observed)
        return StatusReport(
            store.describe(),
            config.to_text(),
            {
                m: {
                    "policy": d.state.policy.describe(),
                    "served": None if d.served is None else sorted(d.served),
                    "labels": dict(d.state.labels),
                }
                for m, d in desired.items()
            },
            observed,
            disagreements,
            store.revision(),
        )


def _all_replicas(store: ConfigStore) -> list[Replica]:
    """Every replica including not-ready pods (status shows them; promote only uses ready ones)."""
    kube = getattr(store, "kube", None)
    if kube is None:
        return store.replicas()
    from tfsctl.serving.client import Endpoint

    connector = store.connector  # type: ignore[attr-defined]
    return [
        Replica(p.name, connector.endpoint(p.name, p.ip) if p.ip else Endpoint(""), p.ready, p.node)
        for p in kube.pods(store.release)  # type: ignore[attr-defined]
    ]


def read_history(target: Target) -> list[PromotionRecord]:
    with open_store(target) as store:
        return store.read_history()


# ------------------------------------------------------------------ deploy / scale


def load_values(
    files: Sequence[Path], sets: Sequence[str], set_strings: Sequence[str] = (), set_json: Sequence[str] = ()
) -> dict[str, Any]:
    """``-f`` files merged left to right, then ``--set``/``--set-string``/``--set-json`` applied in order."""
    layers = []
    for f in files:
        try:
            data = yaml.safe_load(Path(f).read_text())
        except FileNotFoundError:
            raise NotFound(f"-f {f}: no such file") from None
        except yaml.YAMLError as exc:
            raise InvalidInput(f"-f {f}: not valid YAML ({exc.__class__.__name__}: {exc})") from None
        if data is not None and not isinstance(data, dict):
            raise InvalidInput(f"-f {f}: top level must be a map")
        layers.append(data)
    values = merge_values(*layers)
    for expr in sets:
        values = apply_set(values, expr)
    for expr in set_strings:
        values = apply_set(values, expr, kind="set-string")
    for expr in set_json:
        values = apply_set(values, expr, kind="set-json")
    return values


@dataclass
class DeployResult:
    release: str
    namespace: str
    revision: int | None
    status: str
    installed: bool
    diff: str
    summary: list[str] = field(default_factory=list)
    dry_run: bool = False


def manifest_diff(
    old: str, new: str, old_name: str = "deployed", new_name: str = "proposed"
) -> tuple[str, list[str]]:
    """Unified diff of two manifests (normalised) and a per-resource summary."""
    from tfsctl.release.helm import HelmAdapter

    def index(text: str) -> dict[str, str]:
        out = {}
        for doc in yaml.safe_load_all(text or ""):
            if doc:
                key = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
                out[key] = yaml.safe_dump(doc, sort_keys=True)
        return out

    a, b = index(old), index(new)
    summary = [f"+ {k}" for k in sorted(set(b) - set(a))]
    summary += [f"- {k}" for k in sorted(set(a) - set(b))]
    summary += [f"~ {k}" for k in sorted(set(a) & set(b)) if a[k] != b[k]]
    diff = "".join(
        difflib.unified_diff(
            HelmAdapter.normalise_manifest(old or "").splitlines(keepends=True),
            HelmAdapter.normalise_manifest(new or "").splitlines(keepends=True),
            old_name,
            new_name,
        )
    )
    return diff, summary


def deploy(
    target: Target,
    values: dict[str, Any],
    *,
    wait: bool = True,
    atomic: bool = True,
    dry_run: bool = False,
    lock_timeout: float = 30.0,
    create_namespace: bool = False,
) -> DeployResult:
    from tfsctl.kubeclient import connect
    from tfsctl.release.helm import HelmAdapter, helm_client

    if not target.release:
        raise InvalidInput("--release is required")
    kubeconfig = target.kubeconfig or paths.kubeconfig()
    api = connect(kubeconfig)

    async def run() -> DeployResult:
        helm = HelmAdapter(helm_client(kubeconfig), paths.CHART_DIR, timeout=target.timeout)
        ns, rel = target.namespace, target.release
        assert rel is not None
        current = await helm.status(rel, ns)
        if current is not None and current.status in (
            "pending-install",
            "pending-upgrade",
            "pending-rollback",
        ):
            await helm.require_deployed(rel, ns)
        info = await helm.upgrade(
            rel,
            ns,
            values,
            atomic=atomic,
            wait=wait and not dry_run,
            dry_run=dry_run,
            timeout=target.timeout,
            description="tfsctl deploy",
        )
        diff, summary = manifest_diff(current.manifest if current else "", info.manifest)
        return DeployResult(
            rel,
            ns,
            None if dry_run else info.revision,
            "dry-run" if dry_run else info.status,
            current is None,
            diff,
            summary,
            dry_run,
        )

    if dry_run:
        return asyncio.run(run())
    from tfsctl.release.kube import KubeAdapter, lease_name

    # Under the release's Lease: a promotion in flight would otherwise be overwritten (or overwrite this).
    kube = KubeAdapter(api, target.namespace)
    if create_namespace:
        kube.ensure_namespace()
    with kube.lease(lease_name(target.release), lock_timeout):
        return asyncio.run(run())


@dataclass
class ScaleResult:
    release: str
    namespace: str
    summary: str
    revision: int


def scale(
    target: Target, replicas: int, adjust_hpa: bool, wait: bool = True, lock_timeout: float = 30.0
) -> ScaleResult:
    with open_store(target) as store:
        from tfsctl.release.kube import ReleaseStore

        assert isinstance(store, ReleaseStore)
        desired, _ = store.kube.deployment_replicas(store.full)
        change = plan_scale(
            replicas, current=desired, autoscaler=store.kube.autoscaler(store.full), adjust_hpa=adjust_hpa
        )
        # Under the release's Lease: a promotion in flight upgrades the same values.
        with store.lock(lock_timeout):
            values = merge_values(store.user_values, change.values)
            info = store.runner.run(
                store.helm.upgrade(
                    store.release,
                    store.namespace,
                    values,
                    atomic=True,
                    wait=wait,
                    timeout=target.timeout,
                    description=f"tfsctl scale: {change.summary}",
                )
            )
        return ScaleResult(store.release, store.namespace, change.summary, info.revision)


# ------------------------------------------------------------------ validate


@dataclass
class ValidationReport:
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def validate(
    values_files: list[Path], sets: list[str], model_repo: Path | None, model_config: Path | None
) -> ValidationReport:
    """Values (schema + chart rules via helm template), a model repository, a model config file."""
    report = ValidationReport()
    if values_files or sets:
        report.checked.append("values: " + ", ".join(map(str, values_files)) + (" + --set" if sets else ""))
        try:
            values = load_values(values_files, sets)
        except ToolkitError as exc:
            report.problems.append(str(exc))
        else:
            report.problems += _schema_problems(values)
            if not report.problems:
                report.problems += _template_problems(values)
    if model_config is not None:
        report.checked.append(f"model config: {model_config}")
        report.problems += _model_config_problems(model_config)
    if model_repo is not None:
        report.checked.append(f"model repository: {model_repo}")
        report.problems += _repository_problems(model_repo)
    if not report.checked:
        raise InvalidInput("nothing to validate: pass -f VALUES, --model-config FILE or --model-repo DIR")
    return report


def _schema_problems(values: dict[str, Any]) -> list[str]:
    import jsonschema

    schema_path = paths.CHART_DIR / "values.schema.json"
    schema = json.loads(schema_path.read_text())
    defaults = yaml.safe_load((paths.CHART_DIR / "values.yaml").read_text()) or {}
    merged = merge_values(defaults, values)
    validator = jsonschema.Draft7Validator(schema)
    out = []
    for err in sorted(validator.iter_errors(merged), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        out.append(f"values {where}: {err.message}")
    return out


def _template_problems(values: dict[str, Any]) -> list[str]:
    import subprocess

    try:
        proc = subprocess.run(
            [paths.tool_path("helm"), "template", "validate", str(paths.CHART_DIR), "--values", "-"],
            input=json.dumps(values),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except FileNotFoundError:
        return ["helm not found: run `make tools` (pinned helm in .tools/bin)"]
    except subprocess.TimeoutExpired:
        return ["helm template did not finish within 60s"]
    if proc.returncode == 0:
        return []
    from tfsctl.release.helm import cause

    line, detail = cause(proc.stderr)
    log.info("helm template: %s", detail)
    return [line or f"helm template failed with status {proc.returncode}"]


def _model_config_problems(path: Path) -> list[str]:
    from tfsctl.serving.config import ServerConfig

    try:
        config = ServerConfig.parse(Path(path).read_text(), source=str(path))
    except FileNotFoundError:
        return [f"{path}: no such file"]
    except ToolkitError as exc:
        return [str(exc)]
    out = []
    for name, model in config.models.items():
        if model.policy.kind == "specific":
            for label, version in model.labels.items():
                if version not in model.policy.versions:
                    out.append(
                        f"{path}: model {name} label {label} -> {version} but the policy serves "
                        f"{list(model.policy.versions)}"
                    )
    return out


def _repository_problems(path: Path) -> list[str]:
    try:
        from tfsctl.models import repository
    except ImportError:
        from tfsctl.release.store import list_repository_versions

        versions = list_repository_versions(Path(path))
        if versions is None:
            return [f"{path}: not a directory"]
        missing = [v for v in versions if not (Path(path) / str(v) / "saved_model.pb").exists()]
        out = [f"{path}/{v}: no saved_model.pb" for v in missing]
        return out or ([] if versions else [f"{path}: no numeric version directories"])
    result = repository.validate(Path(path))
    problems = getattr(result, "problems", None) or getattr(result, "errors", None) or []
    return [str(p) for p in problems]
