"""``tensorflow_model_server`` command-line flags, parsed the way ``tfsctl serve`` needs (pure).

Both ``--flag=value`` and ``--flag value`` are accepted; booleans also as a bare
``--flag``. Flags that only tune the C++ runtime are accepted and ignored; flags
whose feature this server does not have are rejected with a message saying so, so
a chart never silently runs with a setting that has no effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tfsctl.errors import InvalidInput


@dataclass
class ServeOptions:
    port: int = 8500
    rest_api_port: int = 0
    rest_api_timeout_in_ms: int = 30000
    model_name: str = "default"
    model_base_path: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    file_system_poll_wait_seconds: int = 1
    allow_version_labels_for_unavailable_models: bool = False
    monitoring_config_file: str = ""
    batching_parameters_file: str = ""
    enable_batching: bool = False
    grpc_channel_arguments: str = ""
    grpc_socket_path: str = ""
    enable_serialization_as_tensor_content: bool = False
    enable_signature_method_name_check: bool = False
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    ssl_config_file: str = ""
    saved_model_tags: str = "serve"
    enable_model_warmup: bool = True
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    tensorflow_session_parallelism: int = 0
    grpc_max_threads: int = 0
    rest_api_num_threads: int = 0
    version: bool = False
    ignored: list[str] = field(default_factory=list)

    def channel_arguments(self) -> list[tuple[str, Any]]:
        """``--grpc_channel_arguments=k=v,k2=v2`` as gRPC server options (ints where numeric)."""
        options: list[tuple[str, Any]] = []
        for item in filter(None, (p.strip() for p in self.grpc_channel_arguments.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise InvalidInput(f"--grpc_channel_arguments: {item!r} is not key=value")
            options.append((key, int(value) if value.lstrip("-").isdigit() else value))
        return options


# flag -> type, for the flags ServeOptions carries.
_TYPES: dict[str, type] = {
    name: type(default) for name, default in ServeOptions().__dict__.items() if name != "ignored"
}
# Accepted, no effect here (runtime tuning of the C++ server).
_HARMLESS: dict[str, type] = {
    "flush_filesystem_caches": bool,
    "num_load_threads": int,
    "num_unload_threads": int,
    "per_process_gpu_memory_fraction": float,
    "xla_cpu_compilation_enabled": bool,
    "enable_profiler": bool,
    "remove_unused_fields_from_bundle_metagraph": bool,
    "rest_api_enable_cors_support": bool,
    "skip_initialize_tpu": bool,
    "mixed_precision": str,
    "enable_grpc_healthcheck_service": bool,
    "num_request_iterations_for_warmup": int,
    "num_tflite_interpreters_per_pool": int,
    "num_tflite_pools": int,
    "xla_gpu_compilation_enabled": bool,
}
# Accepted only at their default (the feature is not implemented here). With the
# options above this is every flag of tensorflow_serving/model_servers/main.cc
# (plus use_tflite_model, renamed prefer_tflite_model in later releases); any
# other flag is refused as unknown, as tensorflow::Flags::Parse does.
_UNSUPPORTED: dict[str, tuple[type, Any, str]] = {
    "platform_config_file": (str, "", "custom platform configs; use --model_config_file"),
    "prefer_tflite_model": (bool, False, "TFLite models"),
    "use_tflite_model": (bool, False, "TFLite models"),
    "use_alts_credentials": (bool, False, "ALTS credentials"),
    "thread_pool_factory_config_file": (str, "", "custom thread pools"),
    "tensorflow_session_config_file": (str, "", "a custom SessionConfig file"),
    "enable_per_model_batching_parameters": (bool, False, "per-model batching_params.pbtxt files"),
}

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _convert(flag: str, kind: type, raw: str) -> Any:
    if kind is bool:
        low = raw.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise InvalidInput(f"--{flag}: {raw!r} is not a boolean (true or false)")
    try:
        return kind(raw)
    except ValueError as exc:
        raise InvalidInput(f"--{flag}: {raw!r} is not a valid {kind.__name__}") from exc


def parse_flags(argv: Sequence[str]) -> ServeOptions:
    """Parse ``tensorflow_model_server`` flags; raises ``InvalidInput`` naming the flag."""
    options = ServeOptions()
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            raise InvalidInput(f"unexpected argument {arg!r}: tensorflow_model_server takes only --flags")
        name, has_value, value = arg.lstrip("-").partition("=")
        name = name.replace("-", "_")
        kind = (
            _TYPES.get(name)
            or _HARMLESS.get(name)
            or (_UNSUPPORTED[name][0] if name in _UNSUPPORTED else None)
        )
        if kind is None:
            raise InvalidInput(f"unknown flag --{name}: tensorflow_model_server has no such flag")
        if not has_value:
            if kind is bool:
                if i < len(args) and args[i].lower() in _TRUE | _FALSE:
                    value = args[i]
                    i += 1
                else:
                    value = "true"
            else:
                if i >= len(args):
                    raise InvalidInput(f"--{name}: missing value")
                value = args[i]
                i += 1
        converted = _convert(name, kind, value)
        if name in _UNSUPPORTED:
            _, default, feature = _UNSUPPORTED[name]
            if converted != default:
                raise InvalidInput(f"--{name} is not supported by tfsctl serve ({feature})")
            continue
        if name in _HARMLESS:
            options.ignored.append(name)
            continue
        setattr(options, name, converted)
    _validate(options)
    return options


def _validate(options: ServeOptions) -> None:
    if options.version:
        return
    for flag in ("port", "rest_api_port"):
        value = getattr(options, flag)
        if not 0 <= value <= 65535:
            raise InvalidInput(f"--{flag}: {value} is not a TCP port")
    if options.port == 0 and not options.grpc_socket_path:
        # Server::BuildAndStart's rule.
        raise InvalidInput("--port: at least one of --port or --grpc_socket_path must be set")
    if options.port and options.port == options.rest_api_port:
        raise InvalidInput(f"--port and --rest_api_port are both {options.port}: they must differ")
    if options.model_config_file and options.model_base_path:
        raise InvalidInput("--model_config_file and --model_base_path are mutually exclusive")
    if not options.model_config_file and not options.model_base_path:
        raise InvalidInput("give --model_config_file, or --model_name and --model_base_path")
    if options.rest_api_timeout_in_ms < 0:
        raise InvalidInput("--rest_api_timeout_in_ms: must be >= 0")
    if (
        options.tensorflow_intra_op_parallelism > 0
        and options.tensorflow_inter_op_parallelism > 0
        and options.tensorflow_session_parallelism > 0
    ):
        # Server::BuildAndStart refuses the three together.
        raise InvalidInput(
            "--tensorflow_session_parallelism, --tensorflow_intra_op_parallelism and "
            "--tensorflow_inter_op_parallelism: configure the first or the other two, not all three"
        )
    options.channel_arguments()


def session_threads(options: ServeOptions) -> tuple[int, int]:
    """(intra, inter) op threads as ``Server::BuildAndStart`` picks them (0: TensorFlow's default):
    intra/inter when either is set, else ``--tensorflow_session_parallelism`` for both."""
    if options.tensorflow_intra_op_parallelism > 0 or options.tensorflow_inter_op_parallelism > 0:
        return options.tensorflow_intra_op_parallelism, options.tensorflow_inter_op_parallelism
    return options.tensorflow_session_parallelism, options.tensorflow_session_parallelism
