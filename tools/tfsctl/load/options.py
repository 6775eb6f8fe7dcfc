"""The locustfile's knobs: Locust command-line options with environment fallbacks (pure).

One table serves every caller, under the same names: the locustfile registers it
on Locust's parser (``@events.init_command_line_parser``); ``tfsctl loadtest`` and
``verify-autoscaling`` generate their click options from it (``tfsctl.cli.loadtest``)
and build a ``LoadSettings`` from what they parsed (``LoadSettings.from_knobs``),
which turns back into the same Locust command line (so the library run and
``locust -f`` parse identically); and the distributed manifests pass the settings
to master and workers as ``TFSCTL_LOAD_*`` environment variables.
The token is a secret: it travels through the environment (or a Secret in the
cluster), never on a command line that ``ps`` shows, and the web UI masks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tfsctl.load import shapes, thresholds

TRANSPORTS = ("rest", "grpc")


@dataclass(frozen=True)
class Knob:
    flag: str
    env: str
    help: str
    default: Any = None
    type: Any = str
    choices: tuple[str, ...] | None = None
    secret: bool = False
    # the LoadSettings attribute it sets (dotted into ``limits``); default: the flag's name
    field: str = ""
    # how tfsctl's command line parses it when that differs from Locust's (a string there):
    # "int" (empty = unset) or "path" (a file that must exist)
    cli: str = ""

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def attr(self) -> str:
        return self.field or self.dest


KNOBS: tuple[Knob, ...] = (
    Knob("--model", "TFSCTL_LOAD_MODEL", "Model name to load.", "fashion"),
    Knob(
        "--model-version",
        "TFSCTL_LOAD_VERSION",
        "Model version (default: the server's default).",
        "",
        field="version",
        cli="int",
    ),
    Knob("--model-label", "TFSCTL_LOAD_LABEL", "Model version label, e.g. stable.", "", field="label"),
    Knob("--signature", "TFSCTL_LOAD_SIGNATURE", "Signature name.", "serving_default"),
    Knob("--transport", "TFSCTL_LOAD_TRANSPORT", "User type: rest or grpc.", "rest", choices=TRANSPORTS),
    Knob(
        "--grpc-target",
        "TFSCTL_LOAD_GRPC_TARGET",
        "host:port of the gRPC API (default: the --host's host, port 8500).",
        "",
    ),
    Knob(
        "--resolve",
        "TFSCTL_LOAD_RESOLVE",
        "HOST:PORT:ADDRESS: connect REST to ADDRESS for --host's HOST:PORT, keeping the name in the URL "
        "and Host header (curl's --resolve), e.g. an Ingress host at a node's address.",
        "",
    ),
    Knob("--token", "TFSCTL_LOAD_TOKEN", "Bearer token sent as the Authorization header.", "", secret=True),
    Knob(
        "--request-file",
        "TFSCTL_LOAD_REQUEST_FILE",
        "JSON REST predict body to send (default: built from the model's /metadata signature).",
        "",
        cli="path",
    ),
    Knob("--batch-size", "TFSCTL_LOAD_BATCH_SIZE", "Rows per generated request.", 1, type=int),
    Knob(
        "--reconnect-every",
        "TFSCTL_LOAD_RECONNECT_EVERY",
        "Open a new connection (REST) or channel (gRPC) every N requests; 0 keeps one per user.",
        0,
        type=int,
    ),
    Knob(
        "--user-rps",
        "TFSCTL_LOAD_USER_RPS",
        "Requests per second per user (constant throughput); 0 sends back to back.",
        0.0,
        type=float,
    ),
    Knob("--request-timeout", "TFSCTL_LOAD_REQUEST_TIMEOUT", "Seconds per request.", 10.0, type=float),
    Knob("--shape", "TFSCTL_LOAD_SHAPE", "Load shape.", "constant", choices=shapes.SHAPES),
    Knob(
        "--shape-params",
        "TFSCTL_LOAD_SHAPE_PARAMS",
        "Shape parameters k=v,k=v (step: steps; spike: spike_users, spike_at, spike_for; soak: ramp).",
        "",
    ),
    Knob(
        "--max-failure-ratio",
        "TFSCTL_LOAD_MAX_FAILURE_RATIO",
        "Fail the run above this failure ratio.",
        thresholds.DEFAULT_MAX_FAILURE_RATIO,
        type=float,
        field="limits.max_failure_ratio",
    ),
    Knob(
        "--p95-ms",
        "TFSCTL_LOAD_P95_MS",
        "Fail above this p95 (ms); 0 disables.",
        thresholds.DEFAULT_P95_MS,
        float,
        field="limits.p95_ms",
    ),
    Knob(
        "--p99-ms",
        "TFSCTL_LOAD_P99_MS",
        "Fail above this p99 (ms); 0 disables.",
        thresholds.DEFAULT_P99_MS,
        float,
        field="limits.p99_ms",
    ),
)


def register(parser: Any) -> None:
    """Add the knobs to Locust's argument parser (a ``LocustArgumentParser``).

    They go on the parser itself (not a group): only there does Locust honour
    ``is_secret`` (masked in the web UI) and show them in the web UI's form.
    """
    for knob in KNOBS:
        kwargs: dict[str, Any] = {
            "type": knob.type,
            "default": knob.default,
            "env_var": knob.env,
            "help": knob.help,
        }
        if knob.choices:
            kwargs["choices"] = knob.choices
        if knob.secret:
            kwargs["is_secret"] = True
        parser.add_argument(knob.flag, **kwargs)


def limits_from(options: Any) -> thresholds.Thresholds:
    """``Thresholds`` from parsed options (0 disables a latency limit)."""
    return thresholds.Thresholds(
        max_failure_ratio=float(options.max_failure_ratio),
        p95_ms=float(options.p95_ms) or None,
        p99_ms=float(options.p99_ms) or None,
    )


@dataclass(frozen=True)
class LoadSettings:
    """Everything a run needs; ``to_argv``/``to_env`` feed Locust's parser or a pod's environment."""

    host: str
    model: str = "fashion"
    version: int | None = None
    label: str | None = None
    transport: str = "rest"
    grpc_target: str = ""
    resolve: str = ""
    token: str | None = field(default=None, repr=False)
    request_file: str = ""
    batch_size: int = 1
    reconnect_every: int = 0
    user_rps: float = 0.0
    request_timeout: float = 10.0
    signature: str = "serving_default"
    shape: str = "constant"
    shape_params: str = ""
    users: int = 4
    spawn_rate: float | None = None
    duration: float = 10.0
    limits: thresholds.Thresholds = field(default_factory=thresholds.Thresholds)

    @classmethod
    def from_knobs(cls, host: str, values: Mapping[str, Any], **rest: Any) -> LoadSettings:
        """Settings from parsed knob values keyed by ``Knob.dest`` (the token comes in ``rest``)."""
        flat: dict[str, Any] = {}
        limits: dict[str, Any] = {}
        for knob in KNOBS:
            if knob.secret or knob.dest not in values:
                continue
            value = values[knob.dest]
            if knob.attr in ("version", "label") and value in ("", None):
                value = None
            elif knob.attr in ("limits.p95_ms", "limits.p99_ms"):
                value = float(value) or None  # 0 disables a latency limit
            elif value is None:
                value = knob.default
            if knob.attr.startswith("limits."):
                limits[knob.attr.removeprefix("limits.")] = value
            else:
                flat[knob.attr] = value
        return cls(host=host, limits=thresholds.Thresholds(**limits), **flat, **rest)

    def knob_values(self) -> dict[str, str]:
        """Knob flag -> value for every knob that differs from empty (the token excluded)."""
        values: dict[str, str] = {}
        for knob in KNOBS:
            if knob.secret:
                continue
            value: Any = self
            for part in knob.attr.split("."):
                value = getattr(value, part)
            if value is None:  # unset: empty for a string knob, 0 (= no limit) for a number
                value = "" if knob.type is str else knob.type(0)
            values[knob.flag] = repr(value) if isinstance(value, float) else str(value)
        return {k: v for k, v in values.items() if v != ""}

    def common_argv(self) -> list[str]:
        argv = ["--host", self.host, "--users", str(self.users), "--run-time", f"{self.duration:g}s"]
        if self.spawn_rate is not None:
            argv += ["--spawn-rate", f"{self.spawn_rate:g}"]
        return argv

    def to_argv(self) -> list[str]:
        """Locust command-line arguments (headless); the token is not included (see ``to_env``)."""
        argv = ["--headless", *self.common_argv()]
        for flag, value in self.knob_values().items():
            argv += [flag, value]
        return argv

    def to_env(self) -> dict[str, str]:
        """The knobs as ``TFSCTL_LOAD_*`` variables (token included: put it in a Secret)."""
        by_flag = {k.flag: k for k in KNOBS}
        env = {by_flag[flag].env: value for flag, value in self.knob_values().items()}
        if self.token:
            env["TFSCTL_LOAD_TOKEN"] = self.token
        return env

    def token_env(self) -> Mapping[str, str]:
        return {"TFSCTL_LOAD_TOKEN": self.token} if self.token else {}

    def build_shape(self) -> shapes.Shape:
        return shapes.build(
            self.shape,
            users=self.users,
            duration=self.duration,
            spawn_rate=self.spawn_rate,
            params=self.shape_params,
        )


def request_name(
    model: str, version: int | str | None = None, label: str | None = None, method: str = "predict"
) -> str:
    """``predict:fashion@stable``, ``predict:fashion/2`` or ``predict:fashion``."""
    if label:
        return f"{method}:{model}@{label}"
    if version not in (None, ""):
        return f"{method}:{model}/{version}"
    return f"{method}:{model}"


def rest_path(model: str, version: int | str | None = None, label: str | None = None, verb: str = "") -> str:
    """``/v1/models/m[/versions/v|/labels/l][:verb]``."""
    path = f"/v1/models/{model}"
    if label:
        path += f"/labels/{label}"
    elif version not in (None, ""):
        path += f"/versions/{version}"
    return path + (f":{verb}" if verb else "")
