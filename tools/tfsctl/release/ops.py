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
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from tfsctl import paths
from tfsctl.errors import CheckFailed, Conflict, InvalidInput, NotFound, Timeout, ToolkitError
from tfsctl.release import DEFAULT_TIMEOUT
from tfsctl.release import chart as charts
from tfsctl.release.fleet import Desired, Disagreement, ReplicaObservation, evaluate_fleet
from tfsctl.release.history import PromotionRecord
from tfsctl.release.promote import Promoter, PromotionRequest, PromotionResult
from tfsctl.release.replicas import FleetClient, Replica, parse_endpoints, state_of
from tfsctl.release.scale import plan_scale
from tfsctl.release.store import ConfigStore, EndpointStore
from tfsctl.release.values import apply_set, merge_values, parse_values

if TYPE_CHECKING:
    from tfsctl.release.kube import KubeAdapter

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """Which fleet a command acts on: a release (Kubernetes mode) or a config file + endpoints."""

    release: str | None = None
    namespace: str = "default"
    model_config: Path | None = None
    endpoints: str | None = None
    kubeconfig: Path | None = None
    context: str | None = None  # --context: a context of the kubeconfig (default: its current one)
    timeout: float = DEFAULT_TIMEOUT
    connect: str = "auto"  # Kubernetes mode: how to dial pods (auto | pod-ip | port-forward)
    # --chart/--version: the chart a change renders (tfsctl.release.chart); None = the packaged one
    chart: str | None = None
    chart_version: str | None = None

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


def wait_out_conflicts(
    build: Callable[[], T],
    seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = 2.0,
) -> T:
    """``build()``, retried while it raises Conflict (a pending helm operation, another change's
    Lease) for up to ``seconds``; the last Conflict after that."""
    deadline = clock() + seconds
    while True:
        try:
            return build()
        except Conflict as exc:
            left = deadline - clock()
            if left <= 0:
                raise
            log.info("%s; waiting up to %.0fs more", exc, left)
            sleep(min(poll, left))


@contextlib.contextmanager
def open_store(target: Target, wait: float = 0.0) -> Iterator[ConfigStore]:
    """The ConfigStore for ``target``; Kubernetes mode holds one asyncio runner for the command.

    ``wait``: seconds to wait for a release that another operation holds (``helm install
    --wait`` of the chart that renders the canary Job is pending until its pods are ready).
    """
    target.check()
    if target.model_config is not None:
        assert target.endpoints is not None
        yield EndpointStore(target.model_config, parse_endpoints(target.endpoints))
        return
    from tfsctl.kubeclient import connect
    from tfsctl.release.helm import HelmAdapter, helm_client
    from tfsctl.release.kube import KubeAdapter, ReleaseStore

    kubeconfig = target.kubeconfig or paths.kubeconfig()
    ref = charts.parse(target.chart, target.chart_version)
    api = connect(kubeconfig, target.context)
    assert target.release is not None
    with charts.materialize(ref) as chart_dir, asyncio.Runner() as runner:
        helm = HelmAdapter(helm_client(kubeconfig, context=target.context), chart_dir, timeout=target.timeout)
        kube = KubeAdapter(api, target.namespace)
        release = target.release
        store = wait_out_conflicts(
            lambda: ReleaseStore(
                helm, kube, release, runner, helm_timeout=target.timeout, connect=target.connect
            ),
            wait,
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

    @property
    def starting(self) -> list[ReplicaObservation]:
        """Pods on their way up or down: shown as starting, not judged against the config."""
        return [r for r in self.replicas if r.starting]

    @property
    def consistent(self) -> bool:
        """Every replica Ready and serving the desired config."""
        return not self.disagreements and not self.starting

    @property
    def converging(self) -> bool:
        """No replica disagrees, but some are still starting (or terminating)."""
        return not self.disagreements and bool(self.starting)

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
                    "phase": r.phase,
                    "age_seconds": r.age_seconds,
                    "state": r.describe_state() if r.starting else ("ready" if r.ready else r.phase),
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
            "consistent": self.consistent,
            "converging": self.converging,
        }


def status(target: Target) -> StatusReport:
    with open_store(target) as store, FleetClient(timeout=min(10.0, target.timeout)) as fleet:
        return observe_fleet(store, fleet)


def observe_fleet(store: ConfigStore, fleet: FleetClient) -> StatusReport:
    """The desired config against what every replica serves; starting pods are listed, not dialled."""
    config = store.read()
    desired: dict[str, Desired] = {}
    for name, model in config.models.items():
        state = state_of(model)
        desired[name] = Desired(state, state.policy.served(store.repository_versions(name)))
    replicas, starting = _replicas_and_starting(store)
    observed = fleet.observe(replicas, {m: list(d.state.labels) for m, d in desired.items()})
    observed = sorted(observed + starting, key=lambda r: r.name)
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
        evaluate_fleet(desired, observed),
        store.revision(),
    )


def _replicas_and_starting(store: ConfigStore) -> tuple[list[Replica], list[ReplicaObservation]]:
    """Ready pods to dial, and every other pod as an observation of its phase and age."""
    kube = getattr(store, "kube", None)
    if kube is None:
        return store.replicas(), []
    connector = store.connector  # type: ignore[attr-defined]
    pods = kube.pods(store.release)  # type: ignore[attr-defined]
    transport = store.transport  # type: ignore[attr-defined]
    ready = [
        Replica(p.name, connector.endpoint(p.name, p.ip), True, p.node, transport)
        for p in pods
        if p.ready and p.ip
    ]
    others = [
        ReplicaObservation(p.name, p.ip or "", False, p.node, phase=p.phase, age_seconds=p.age_seconds)
        for p in pods
        if not (p.ready and p.ip)
    ]
    return ready, others


def wait_converged(
    store: ConfigStore,
    fleet: FleetClient,
    deadline: float,
    replicas_ok: Callable[[int], str | None] | None = None,
    poll: float = 2.0,
) -> StatusReport:
    """Until every pod is Ready and serving the desired config (and ``replicas_ok(ready count)``
    says nothing is missing); Timeout at ``deadline`` (monotonic), naming what is still starting."""
    while True:
        report = observe_fleet(store, fleet)
        ready = sum(1 for r in report.replicas if r.ready)
        missing = replicas_ok(ready) if replicas_ok is not None else None
        if report.consistent and missing is None:
            return report
        if time.monotonic() >= deadline:
            if report.disagreements:
                why = f"{len(report.disagreements)} disagreement(s), first {report.disagreements[0]}"
            elif report.starting:
                first = report.starting[0]
                why = f"{len(report.starting)} pod(s) not Ready, first {first.name}: {first.describe_state()}"
            else:
                why = missing or "not converged"
            raise Timeout(
                f"{store.describe()}: not every pod is Ready and serving the config yet ({why}); "
                f"`tfsctl status -r {getattr(store, 'release', '?')} -n {getattr(store, 'namespace', '?')}` "
                "shows the fleet, or raise --timeout"
            )
        time.sleep(poll)


def read_history(target: Target) -> list[PromotionRecord]:
    with open_store(target) as store:
        return store.read_history()


# ------------------------------------------------------------------ deploy / scale


def load_values(
    files: Sequence[Path], sets: Sequence[str], set_strings: Sequence[str] = (), set_json: Sequence[str] = ()
) -> dict[str, Any]:
    """``-f`` files merged left to right, then ``--set-json``, ``--set``, ``--set-string``, as helm does."""
    layers = []
    for f in files:
        try:
            data = parse_values(Path(f).read_text())
        except FileNotFoundError:
            raise NotFound(f"-f {f}: no such file") from None
        except yaml.YAMLError as exc:
            raise InvalidInput(f"-f {f}: {_yaml_problem(exc)}", detail=str(exc)) from None
        if data is not None and not isinstance(data, dict):
            raise InvalidInput(f"-f {f}: top level must be a map")
        layers.append(data)
    values = merge_values(*layers)
    for expr in set_json:
        values = apply_set(values, expr, kind="set-json")
    for expr in sets:
        values = apply_set(values, expr)
    for expr in set_strings:
        values = apply_set(values, expr, kind="set-string")
    return values


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """``line 2, column 1: not valid YAML: <what the parser expected>``."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or type(exc).__name__
    return f"{where}not valid YAML: {problem}"


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
    atomic: bool | None = None,
    dry_run: bool = False,
    lock_timeout: float = 30.0,
    create_namespace: bool = False,
) -> DeployResult:
    """Install or upgrade ``target``'s release with ``values``.

    ``atomic`` (roll a failed upgrade back) follows ``wait`` unless given: Helm's ``--atomic``
    turns ``--wait`` on, so an atomic deploy cannot return before the rollout.
    """
    from tfsctl.kubeclient import connect
    from tfsctl.release.helm import HelmAdapter, helm_client

    if not target.release:
        raise InvalidInput("--release is required")
    if atomic is None:
        atomic = wait
    elif atomic and not wait:
        raise InvalidInput(
            "--atomic waits for the rollout (Helm sets --wait with it): drop --no-wait or pass --no-atomic"
        )
    kubeconfig = target.kubeconfig or paths.kubeconfig()
    from tfsctl.release.kube import KubeAdapter, fullname, lease_name

    ref = charts.parse(target.chart, target.chart_version)
    api = connect(kubeconfig, target.context)
    kube = KubeAdapter(api, target.namespace)

    async def run() -> DeployResult:
        helm = HelmAdapter(helm_client(kubeconfig, context=target.context), chart_dir, timeout=target.timeout)
        ns, rel = target.namespace, target.release
        assert rel is not None
        current = await helm.status(rel, ns)
        _require_bindable_claims(kube, await helm.template(rel, ns, values))
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

    deadline = time.monotonic() + target.timeout
    with charts.materialize(ref) as chart_dir:
        if dry_run:
            return asyncio.run(run())
        # Under the release's Lease: a promotion in flight would otherwise be overwritten (or overwrite this).
        if create_namespace:
            kube.ensure_namespace()
        else:
            kube.require_namespace()
        with kube.lease(lease_name(target.release), lock_timeout):
            result = asyncio.run(run())
    if wait and values.get("models"):
        # helm --wait saw the Deployment roll out; now every pod Ready and serving the config.
        with open_store(target) as store, FleetClient(timeout=min(10.0, target.timeout)) as fleet:
            full = fullname(target.release, values)
            wait_converged(store, fleet, deadline, replica_count_check(kube, full))
    return result


def replica_count_check(kube: Any, full: str, at_least: int | None = None) -> Callable[[int], str | None]:
    """For ``wait_converged``: None once the Deployment's replicas are all Ready (and, with an HPA,
    it has scaled to ``at_least``) and the Service's EndpointSlices list them, else what is missing.

    The replicas a change dials are the Service's ready endpoints (``ReleaseStore.replicas``),
    which the EndpointSlice controller updates after the kubelet marks a pod Ready: a change
    started between the two finds no replica to move.
    """

    def check(ready: int) -> str | None:
        spec, _ = kube.deployment_replicas(full)
        want = 1 if spec is None else int(spec)
        if at_least is not None and want < at_least:
            return f"the HPA has not scaled Deployment {full} to {at_least} yet (it wants {want})"
        if ready != want:
            return f"{ready} of {want} pods Ready"
        listed = len(kube.ready_endpoints(full))
        return None if listed >= want else f"{listed} of {want} Ready pods in Service {full}'s endpoints"

    return check


def _require_bindable_claims(kube: KubeAdapter, manifest: str) -> None:
    """Refuse (one line) when a claim the release creates could bind none of the target cluster's PVs."""
    from tfsctl.release.binding import check_claims

    docs = [d for d in yaml.safe_load_all(manifest) if d]
    if not any(d.get("kind") == "PersistentVolumeClaim" for d in docs):
        return
    # a claim that exists already is bound or pending on its own: only new claims are checked
    existing = kube.claim_names()
    docs = [d for d in docs if d["kind"] != "PersistentVolumeClaim" or d["metadata"]["name"] not in existing]
    for result in check_claims(docs, kube.persistent_volumes()):
        if not result.ok:
            raise CheckFailed(f"{result.reason}; nothing was installed")


@dataclass
class ScaleResult:
    release: str
    namespace: str
    summary: str
    revision: int


def scale(
    target: Target, replicas: int, adjust_hpa: bool, wait: bool = True, lock_timeout: float = 30.0
) -> ScaleResult:
    deadline = time.monotonic() + target.timeout
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
                    # Helm's --atomic turns --wait on: --no-wait returns once the values are applied
                    atomic=wait,
                    wait=wait,
                    timeout=target.timeout,
                    description=f"tfsctl scale: {change.summary}",
                )
            )
        if wait:
            # helm --wait returns once the Deployment is rolled out, before an HPA given a new
            # minimum has acted: wait for the pods themselves, Ready and serving the config.
            check = replica_count_check(store.kube, store.full, replicas if adjust_hpa else None)
            with FleetClient(timeout=min(10.0, target.timeout)) as fleet:
                wait_converged(store, fleet, deadline, check)
        return ScaleResult(store.release, store.namespace, change.summary, info.revision)


# ------------------------------------------------------------------ validate


@dataclass
class ValidationReport:
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def validate(
    values_files: list[Path],
    sets: list[str],
    model_repo: Path | None,
    model_config: Path | None,
    release: str = "validate",
    namespace: str = "default",
    chart: str | None = None,
    chart_version: str | None = None,
) -> ValidationReport:
    """Values (schema + chart rules via helm template), a model repository, a model config file."""
    report = ValidationReport()
    ref = charts.parse(chart, chart_version)
    if values_files or sets:
        report.checked.append("values: " + ", ".join(map(str, values_files)) + (" + --set" if sets else ""))
        try:
            values = load_values(values_files, sets)
        except NotFound:
            raise  # nothing to check: the file named is not there
        except ToolkitError as exc:
            report.problems.append(str(exc))
        else:
            with charts.materialize(ref) as chart_dir:
                if ref.kind != "packaged":
                    report.checked.append(f"against chart {ref.describe()}")
                report.problems += _schema_problems(values, chart_dir)
                if not report.problems:
                    report.problems += _template_problems(values, chart_dir, release, namespace)
    if model_config is not None:
        report.checked.append(f"model config: {model_config}")
        report.problems += _model_config_problems(model_config)
    if model_repo is not None:
        report.checked.append(f"model repository: {model_repo}")
        report.problems += _repository_problems(model_repo)
    if not report.checked:
        raise InvalidInput("nothing to validate: pass -f VALUES, --model-config FILE or --model-repo DIR")
    return report


def _schema_problems(values: dict[str, Any], chart_dir: Path) -> list[str]:
    import jsonschema

    schema_path = chart_dir / "values.schema.json"
    schema = json.loads(schema_path.read_text()) if schema_path.exists() else {}
    defaults = yaml.safe_load((chart_dir / "values.yaml").read_text()) or {}
    merged = merge_values(defaults, values)
    validator = jsonschema.Draft7Validator(schema)
    out = []
    for err in sorted(validator.iter_errors(merged), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        out.append(f"values {where}: {_schema_message(err)}")
    return out


def _schema_message(err: Any) -> str:
    """jsonschema's message, except for ``not``: its message dumps the whole sub-schema, so the
    chart's description of the forbidden combination is said instead."""
    value = err.validator_value
    if err.validator == "not" and isinstance(value, dict) and (description := value.get("description")):
        return f"not allowed: {description}"
    return str(err.message)


def _template_problems(
    values: dict[str, Any], chart_dir: Path, release: str = "validate", namespace: str = "default"
) -> list[str]:
    """The chart's own rules (``fail`` in its templates) and the HPA routes, by rendering it."""
    from tfsctl.release.helm import HelmAdapter, helm_client
    from tfsctl.release.routes import route_problems

    try:
        helm = HelmAdapter(helm_client(None), chart_dir, timeout=60)
        docs = asyncio.run(helm.template_docs(release, namespace, values))
    except ToolkitError as exc:
        if exc.detail:
            log.info("helm template: %s", exc.detail)
        return [str(exc)]
    return route_problems(docs)


def _model_config_problems(path: Path) -> list[str]:
    from tfsctl.serving.config import ServerConfig
    from tfsctl.serving.rules import unsupported_base_path

    try:
        config = ServerConfig.parse(Path(path).read_text(), source=str(path))
    except FileNotFoundError:
        raise NotFound(f"--model-config {path}: no such file") from None
    except ToolkitError as exc:
        return [str(exc)]
    out = []
    for name, model in config.models.items():
        if unsupported_base_path(model.base_path) is not None:
            out.append(
                f"{path}: model {name} base_path {model.base_path}: tensorflow_model_server 2.7 and later "
                "cannot read s3:// (no S3 file system); serve from a mounted volume"
            )
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
