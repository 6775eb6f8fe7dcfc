"""``tfsctl predict | model-status | metadata | reload-config``: talk to one TF Serving endpoint.

Imports neither TensorFlow nor the Kubernetes client: these start fast. The
``Authorization`` token is read from an environment variable (``--token-env``,
default ``TFSCTL_SERVING_TOKEN``), never from the command line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from tfsctl.cli.output import OUTPUT, structured
from tfsctl.errors import InvalidInput, NotFound

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Target:
    """Which server and model a command talks to."""

    host: str
    grpc_port: int
    rest_port: int
    token_env: str
    tls: bool
    ca_file: str | None
    timeout: float
    transport: str
    cert_file: str | None = None
    key_file: str | None = None

    def client(self) -> Any:
        from tfsctl.serving.client import Endpoint, ServingClient

        if (self.cert_file is None) != (self.key_file is None):
            raise InvalidInput("--cert-file and --key-file go together (a client certificate and its key)")
        token = os.environ.get(self.token_env) or None
        # A CA or client certificate only makes sense over TLS: either one turns it on.
        tls = self.tls or self.ca_file is not None or self.cert_file is not None
        endpoint = Endpoint(
            self.host,
            self.grpc_port,
            self.rest_port,
            token,
            tls=tls,
            ca_file=self.ca_file,
            cert_file=self.cert_file,
            key_file=self.key_file,
        )
        return ServingClient(endpoint, timeout=self.timeout)


def endpoint_options(default_transport: str) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        options = [
            click.option("--host", default="127.0.0.1", show_default=True, help="Server host or IP."),
            click.option("--grpc-port", default=8500, show_default=True, type=click.IntRange(1, 65535)),
            click.option("--rest-port", default=8501, show_default=True, type=click.IntRange(1, 65535)),
            click.option(
                "--transport",
                type=click.Choice(["grpc", "rest"]),
                default=default_transport,
                show_default=True,
            ),
            click.option(
                "--token-env",
                default="TFSCTL_SERVING_TOKEN",
                show_default=True,
                help="Env var holding the Authorization token (PAI-EAS style).",
            ),
            click.option(
                "--tls",
                is_flag=True,
                help="TLS on the chosen transport (TF Serving's --ssl_config_file secures gRPC only).",
            ),
            click.option(
                "--ca-file",
                type=click.Path(exists=True, dir_okay=False),
                help="PEM CA bundle that signs the server certificate (implies --tls; default: system CAs).",
            ),
            click.option(
                "--cert-file",
                type=click.Path(exists=True, dir_okay=False),
                help="PEM client certificate, for servers with client_verify: true (implies --tls).",
            ),
            click.option(
                "--key-file",
                type=click.Path(exists=True, dir_okay=False),
                help="PEM private key of --cert-file.",
            ),
            click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.1)),
            OUTPUT,
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _target(kw: dict[str, Any]) -> Target:
    return Target(
        kw.pop("host"),
        kw.pop("grpc_port"),
        kw.pop("rest_port"),
        kw.pop("token_env"),
        kw.pop("tls"),
        kw.pop("ca_file"),
        kw.pop("timeout"),
        kw.pop("transport"),
        kw.pop("cert_file"),
        kw.pop("key_file"),
    )


def _version_label(version: int | None, label: str | None) -> None:
    if version is not None and label is not None:
        raise InvalidInput("--version and --label are mutually exclusive")


@click.command("model-status")
@click.argument("model")
@click.option("--version", type=int, help="One version only.")
@click.option("--label", help="The version a label points at.")
@endpoint_options("grpc")
def model_status(model: str, version: int | None, label: str | None, **kw: Any) -> None:
    """Status of every version of MODEL (or of one version or label)."""
    output = kw.pop("output")
    target = _target(kw)
    _version_label(version, label)
    with target.client() as client:
        if label is not None:  # TF Serving's GetModelStatus ignores labels: resolve it first
            version = client.label_version(model, label, transport=target.transport)
        rows = client.model_status(model, version, transport=target.transport)
    if structured(output, [row.__dict__ for row in rows]):
        return
    click.echo(f"{'VERSION':>10}  {'STATE':<12}  {'ERROR':<10}  MESSAGE")
    for row in rows:
        click.echo(f"{row.version:>10}  {row.state:<12}  {row.error_code:<10}  {row.error_message}")


@click.command("metadata")
@click.argument("model")
@click.option("--version", type=int)
@click.option("--label")
@endpoint_options("grpc")
def metadata(model: str, version: int | None, label: str | None, **kw: Any) -> None:
    """Signatures of MODEL (inputs and outputs with dtypes and shapes)."""
    output = kw.pop("output")
    target = _target(kw)
    _version_label(version, label)
    with target.client() as client:
        data = client.metadata(model, version, label, transport=target.transport)
    if structured(output, data):
        return
    spec = data.get("model_spec", {})
    click.echo(f"model {spec.get('name', model)} version {spec.get('version', '?')}")
    sigs = data.get("metadata", {}).get("signature_def", {}).get("signature_def", {})
    for name, sig in sorted(sigs.items()):
        click.echo(f"signature {name} ({sig.get('method_name', '')})")
        for kind in ("inputs", "outputs"):
            for key, info in sorted(sig.get(kind, {}).items()):
                dims = info.get("tensor_shape", {}).get("dim", [])
                shape = (
                    "?"
                    if info.get("tensor_shape", {}).get("unknown_rank")
                    else [int(d["size"]) for d in dims]
                )
                click.echo(f"  {kind[:-1]:<6} {key}: {info.get('dtype', '')} {shape}")


@click.command("predict")
@click.argument("model")
@click.option("--data", "-d", required=True, help="JSON rows (or columnar tensors), or @FILE.")
@click.option("--columnar", is_flag=True, help="Send 'inputs' (whole tensors) instead of 'instances'.")
@click.option("--signature", default="serving_default", show_default=True)
@click.option("--version", type=int)
@click.option("--label")
@endpoint_options("rest")
def predict(
    model: str, data: str, columnar: bool, signature: str, version: int | None, label: str | None, **kw: Any
) -> None:
    """Run a prediction on MODEL; prints predictions (json) or one row per line (table)."""
    output = kw.pop("output")
    target = _target(kw)
    _version_label(version, label)
    raw = data
    if data.startswith("@"):
        try:
            raw = Path(data[1:]).read_text()
        except FileNotFoundError:
            raise NotFound(f"--data @{data[1:]}: no such file") from None
        except OSError as exc:
            raise InvalidInput(f"--data: cannot read {data[1:]}: {exc.strerror}") from exc
    try:
        inputs = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--data: not JSON: {exc}") from exc
    if isinstance(inputs, dict) and ("instances" in inputs or "inputs" in inputs):
        columnar = "inputs" in inputs
        inputs = inputs.get("inputs", inputs.get("instances"))
    with target.client() as client:
        result = client.predict(
            model, inputs, version, label, signature, transport=target.transport, columnar=columnar
        )
    if structured(output, result):
        return
    values = result.get("predictions", result.get("outputs"))
    for row in values if isinstance(values, list) else [values]:
        click.echo(json.dumps(row))


@click.command("reload-config")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@endpoint_options("grpc")
def reload_config(config_file: Path, **kw: Any) -> None:
    """Replace the server's whole model config with CONFIG_FILE (HandleReloadConfigRequest)."""
    from tfsctl.serving.config import ServerConfig

    output = kw.pop("output")
    target = _target(kw)
    config = ServerConfig.parse(config_file.read_text(), source=str(config_file))
    with target.client() as client:
        client.reload_config(config)
    if not structured(output, {"reloaded": True, "models": sorted(config.models)}):
        click.echo(f"reloaded: {', '.join(sorted(config.models)) or '(no models)'}")
