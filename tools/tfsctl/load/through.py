"""``verify-autoscaling --through service|ingress``: where the load enters the release.

``service`` (the default): the Service's LoadBalancer address, or ``--target``.
``ingress``: the release's Ingress, by its first rule host (``http(s)://<host><path>``),
connecting to the address its controller published in ``status.loadBalancer`` as
curl's ``--resolve`` does; an explicit ``--resolve`` wins. REST only. No Locust import
here, so the CLI checks the flags before the load machinery loads.
"""

from __future__ import annotations

from tfsctl.errors import InvalidInput
from tfsctl.load.kube import ClusterView, ReleaseObjects
from tfsctl.load.options import LoadSettings
from tfsctl.load.target import Resolve

THROUGH = ("service", "ingress")


def check_through(through: str, target: str | None, transport: str) -> None:
    """One line for a ``--through`` that cannot be combined with the other flags."""
    if through not in THROUGH:
        raise InvalidInput(f"--through {through!r}: expected one of {', '.join(THROUGH)}")
    if through != "ingress":
        return
    if target:
        raise InvalidInput(
            f"--through ingress and --target {target} conflict: the Ingress gives the URL; "
            "drop --target, or use --through service with --target"
        )
    if transport == "grpc":
        raise InvalidInput(
            "--through ingress loads over REST only; --transport grpc goes through the Service "
            "(use --through service)"
        )


def load_route(
    through: str,
    target: str | None,
    settings: LoadSettings,
    release: str,
    view: ClusterView,
    objects: ReleaseObjects,
) -> tuple[str, str, dict[str, str]]:
    """(REST URL, --resolve entry, how the load reached the pods for the report) for ``through``."""
    check_through(through, target, settings.transport)
    resolve = settings.resolve
    if through == "ingress":
        route = view.ingress_route(release, objects, need_address=not resolve)
        if resolve:
            Resolve.for_url(resolve, route.url)  # an explicit one must name the Ingress host and port
        resolve = resolve or route.resolve
        return route.url, resolve, {"through": "ingress", "ingress": route.name, "resolve": resolve}
    host = target or objects.rest_url
    if not host:
        raise InvalidInput(
            f"Service {objects.service} has no LoadBalancer ingress address yet; pass --target http://HOST:PORT"
        )
    return host, resolve, {"through": "service", "resolve": resolve}
