from __future__ import annotations

import pytest

from tfsctl.errors import InvalidInput
from tfsctl.serving.flags import parse_flags, resolve_path

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
    assert "max_num_load_retries" in options.ignored


def test_unknown_flag_is_rejected_by_name() -> None:
    with pytest.raises(InvalidInput, match="unknown flag --modle_name"):
        parse_flags(["--modle_name=m", "--model_base_path=/x"])


def test_unsupported_feature_flags_are_rejected_unless_default() -> None:
    with pytest.raises(InvalidInput, match="--grpc_socket_path is not supported by tfsctl serve"):
        parse_flags([*BASE, "--grpc_socket_path=/tmp/tfs.sock"])
    assert parse_flags([*BASE, "--use_tflite_model=false"]).model_name == "m"


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


def test_fs_root_resolves_absolute_paths_only() -> None:
    assert resolve_path("/models/m", "/srv/root") == "/srv/root/models/m"
    assert resolve_path("relative/m", "/srv/root") == "relative/m"
    assert resolve_path("/models/m", "") == "/models/m"
