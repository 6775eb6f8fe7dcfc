from __future__ import annotations

import pytest

from tfsbed.serve.flags import parse_flags, session_threads
from tfsctl.errors import InvalidInput

BASE = ["--model_name=m", "--model_base_path=/models/m"]


def test_both_flag_syntaxes_are_accepted() -> None:
    options = parse_flags(
        ["--port", "9000", "--rest_api_port=9001", "--model_name", "m", "--model_base_path=/x"]
    )
    assert (options.port, options.rest_api_port, options.model_name, options.model_base_path) == (
        9000,
        9001,
        "m",
        "/x",
    )


def test_defaults_match_tensorflow_model_server() -> None:
    options = parse_flags(BASE)
    assert options.port == 8500
    assert options.rest_api_port == 0  # REST off unless asked for
    assert options.file_system_poll_wait_seconds == 1
    assert options.model_config_file_poll_wait_seconds == 0
    assert options.rest_api_timeout_in_ms == 30000


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--allow_version_labels_for_unavailable_models"], True),
        (["--allow_version_labels_for_unavailable_models=true"], True),
        (["--allow_version_labels_for_unavailable_models=false"], False),
        (["--allow_version_labels_for_unavailable_models", "true"], True),
        (["--allow_version_labels_for_unavailable_models", "0"], False),
    ],
)
def test_boolean_flags(args: list[str], expected: bool) -> None:
    assert parse_flags([*BASE, *args]).allow_version_labels_for_unavailable_models is expected


def test_every_documented_flag_is_accepted() -> None:
    options = parse_flags(
        [
            "--port=1",
            "--rest_api_port=2",
            "--model_config_file=/etc/tfserving/model_config.pbtxt",
            "--model_config_file_poll_wait_seconds=2",
            "--file_system_poll_wait_seconds=5",
            "--allow_version_labels_for_unavailable_models=true",
            "--monitoring_config_file=/etc/mon.pbtxt",
            "--batching_parameters_file=/etc/batch.pbtxt",
            "--enable_batching",
            "--rest_api_timeout_in_ms=1000",
            "--grpc_channel_arguments=grpc.max_connection_age_ms=1000,grpc.lb_policy_name=x",
            "--tensorflow_intra_op_parallelism=2",
            "--max_num_load_retries=3",
            "--rest_api_num_threads=4",
        ]
    )
    assert options.model_config_file_poll_wait_seconds == 2
    assert options.enable_batching is True
    assert options.channel_arguments() == [("grpc.max_connection_age_ms", 1000), ("grpc.lb_policy_name", "x")]
    assert options.max_num_load_retries == 3  # LoaderHarness retries: honoured, not ignored


def test_unknown_flag_is_rejected_by_name() -> None:
    with pytest.raises(InvalidInput, match="unknown flag --modle_name"):
        parse_flags(["--modle_name=m", "--model_base_path=/x"])


def test_unsupported_feature_flags_are_rejected_unless_default() -> None:
    with pytest.raises(
        InvalidInput, match="--tensorflow_session_config_file is not supported by tfsctl serve"
    ):
        parse_flags([*BASE, "--tensorflow_session_config_file=/tmp/s.pbtxt"])
    assert parse_flags([*BASE, "--use_tflite_model=false"]).model_name == "m"


# Every flag tensorflow_serving/model_servers/main.cc declares (tensorflow::Flag(...)), with a value
# TF Serving's own integration tests or the chart use.
MAIN_CC_FLAGS: dict[str, str] = {
    "port": "8500",
    "grpc_socket_path": "/tmp/tfs.sock",
    "rest_api_port": "8501",
    "rest_api_num_threads": "4",
    "rest_api_timeout_in_ms": "30000",
    "rest_api_enable_cors_support": "false",
    "enable_batching": "false",
    "enable_per_model_batching_parameters": "false",
    "allow_version_labels_for_unavailable_models": "true",
    "batching_parameters_file": "",
    "model_config_file": "",
    "model_config_file_poll_wait_seconds": "1",
    "model_name": "m",
    "model_base_path": "/x",
    "num_load_threads": "0",
    "num_unload_threads": "0",
    "max_num_load_retries": "5",
    "load_retry_interval_micros": "60000000",
    "file_system_poll_wait_seconds": "1",
    "flush_filesystem_caches": "true",
    "tensorflow_session_parallelism": "0",
    "tensorflow_intra_op_parallelism": "0",
    "tensorflow_inter_op_parallelism": "0",
    "tensorflow_session_config_file": "",
    "ssl_config_file": "",
    "platform_config_file": "",
    "per_process_gpu_memory_fraction": "0",
    "saved_model_tags": "serve",
    "grpc_channel_arguments": "grpc.max_connection_age_ms=1000",
    "grpc_max_threads": "0",
    "enable_model_warmup": "true",
    "num_request_iterations_for_warmup": "1",
    "version": "false",
    "monitoring_config_file": "",
    "remove_unused_fields_from_bundle_metagraph": "true",
    "prefer_tflite_model": "false",
    "num_tflite_pools": "1",
    "num_tflite_interpreters_per_pool": "1",
    "enable_signature_method_name_check": "false",
    "xla_cpu_compilation_enabled": "false",
    "xla_gpu_compilation_enabled": "false",
    "enable_profiler": "true",
    "mixed_precision": "",
    "skip_initialize_tpu": "true",
    "enable_grpc_healthcheck_service": "false",
    "thread_pool_factory_config_file": "",
    "use_alts_credentials": "false",
    "enable_serialization_as_tensor_content": "false",
}


@pytest.mark.parametrize("flag", sorted(MAIN_CC_FLAGS))
def test_every_flag_of_main_cc_is_accepted_at_a_harmless_value(flag: str) -> None:
    """main.cc's flag list: each is known here (accepted, or refused only when it asks for more)."""
    options = parse_flags([*BASE, f"--{flag}={MAIN_CC_FLAGS[flag]}"])
    assert options.model_name == "m"


@pytest.mark.parametrize(
    "flag", ["allow_version_labels", "response_tensor_serialization_option", "tensorflow_use_tfrt"]
)
def test_flags_main_cc_never_had_are_unknown(flag: str) -> None:
    with pytest.raises(
        InvalidInput, match=f"unknown flag --{flag}: tensorflow_model_server has no such flag"
    ):
        parse_flags([*BASE, f"--{flag}=true"])


def test_grpc_socket_path_alone_may_replace_the_port() -> None:
    """Server::BuildAndStart needs a gRPC port or a socket path."""
    options = parse_flags(
        ["--port=0", "--grpc_socket_path=/tmp/tfs.sock", "--model_name=m", "--model_base_path=/x"]
    )
    assert (options.port, options.grpc_socket_path) == (0, "/tmp/tfs.sock")
    with pytest.raises(InvalidInput, match="at least one of --port or --grpc_socket_path"):
        parse_flags(["--port=0", "--model_name=m", "--model_base_path=/x"])


def test_ssl_config_file_is_carried_to_the_server() -> None:
    assert parse_flags([*BASE, "--ssl_config_file", "/etc/ssl.pbtxt"]).ssl_config_file == "/etc/ssl.pbtxt"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port=abc", *BASE], "--port: 'abc' is not a valid int"),
        (["--model_name=m"], "give --model_config_file, or --model_name and --model_base_path"),
        ([*BASE, "--model_config_file=/c"], "mutually exclusive"),
        ([*BASE, "--port=9", "--rest_api_port=9"], "must differ"),
        ([*BASE, "stray"], "unexpected argument 'stray'"),
        ([*BASE, "--grpc_channel_arguments=novalue"], "not key=value"),
        ([*BASE, "--enable_batching=maybe"], "not a boolean"),
        (["--model_name"], "--model_name: missing value"),
    ],
)
def test_bad_flags_name_the_flag(args: list[str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_flags(args)


def test_session_parallelism_with_both_intra_and_inter_is_refused() -> None:
    """Server::BuildAndStart: "Either configure ... tensorflow_session_parallelism or (...) separately"."""
    with pytest.raises(InvalidInput, match="configure the first or the other two, not all three"):
        parse_flags(
            [
                *BASE,
                "--tensorflow_session_parallelism=2",
                "--tensorflow_intra_op_parallelism=1",
                "--tensorflow_inter_op_parallelism=1",
            ]
        )


@pytest.mark.parametrize(
    ("flags", "threads"),
    [
        (["--tensorflow_session_parallelism=3"], (3, 3)),
        (["--tensorflow_session_parallelism=3", "--tensorflow_intra_op_parallelism=2"], (2, 0)),
        (["--tensorflow_inter_op_parallelism=4"], (0, 4)),
        ([], (0, 0)),
    ],
)
def test_session_threads_follow_build_and_start(flags: list[str], threads: tuple[int, int]) -> None:
    assert session_threads(parse_flags([*BASE, *flags])) == threads
