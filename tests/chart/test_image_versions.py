"""The server flags the chart renders, held to the TF Serving release that introduced each one.

The first release of each flag comes from tensorflow/serving's history of
``tensorflow_serving/model_servers/main.cc`` (``git log -S'"<flag>"'``, then the first release
tag containing that commit); tests/e2e/serving/FIDELITY.md cites them. 1.15.0 is the newest of
these, so the chart refuses older release tags and renders every flag for 1.15.0 and later.
"""

from __future__ import annotations

from typing import Any

import pytest

from support.chart_render import PRESETS_DIR, HelmError, find, merge_values, render_chart, server_container

pytestmark = pytest.mark.chart

# flag -> first TF Serving release whose main.cc defines it (commit that added it).
FLAG_FIRST_RELEASE = {
    "--port": (0, 5, 0),
    "--enable_batching": (0, 5, 0),  # 27a9c35
    "--file_system_poll_wait_seconds": (0, 5, 0),  # 8da2f76
    "--tensorflow_session_parallelism": (0, 5, 0),  # c61ce90
    "--model_name": (0, 5, 0),
    "--model_base_path": (0, 5, 0),
    "--model_config_file": (0, 6, 0),  # 1be938e
    "--batching_parameters_file": (0, 6, 0),  # ac6894d
    "--grpc_channel_arguments": (1, 6, 0),  # 7b59d39
    "--rest_api_port": (1, 8, 0),  # 5aac486
    "--rest_api_timeout_in_ms": (1, 8, 0),  # 5aac486
    "--rest_api_num_threads": (1, 8, 0),  # 5aac486
    "--ssl_config_file": (1, 10, 0),  # b5d90c7
    "--monitoring_config_file": (1, 11, 0),  # 021efbd
    "--tensorflow_intra_op_parallelism": (1, 13, 0),  # 71092e4
    "--tensorflow_inter_op_parallelism": (1, 13, 0),  # 71092e4
    "--allow_version_labels_for_unavailable_models": (1, 15, 0),  # e6d91e7
    "--model_config_file_poll_wait_seconds": (1, 15, 0),  # c3eeed4
}
OLDEST = (1, 15, 0)

EVERY_FEATURE: dict[str, Any] = {
    "models": {
        "m": {
            "basePath": "/models/m",
            "versionLabels": {"stable": 1},
            "versionPolicy": {"specific": {"versions": [1]}},
        }
    },
    "modelConfig": {"allowVersionLabelsForUnavailableModels": True},
    "server": {
        "restApiTimeoutMs": 5000,
        "batching": {"enabled": True},
        "monitoring": {"enabled": True},
        "tls": {"enabled": True, "secretName": "tfserving-grpc-tls"},
        "threading": {"intraOpParallelism": 2, "interOpParallelism": 2, "restApiNumThreads": 4},
        "grpcChannelArguments": {"grpc.max_connection_age_ms": 60000},
    },
}


def flag_names(docs: list[dict[str, Any]]) -> set[str]:
    return {arg.split("=", 1)[0] for arg in server_container(docs)["args"]}


def newest_flag_release(flags: set[str]) -> tuple[int, int, int]:
    unknown = flags - FLAG_FIRST_RELEASE.keys()
    assert not unknown, f"flags without a recorded first release (add them from main.cc's history): {unknown}"
    return max(FLAG_FIRST_RELEASE[f] for f in flags)


def test_every_feature_renders_only_flags_the_oldest_accepted_release_has() -> None:
    flags = flag_names(render_chart(merge_values(EVERY_FEATURE, {"image": {"tag": "1.15.0"}})))
    assert newest_flag_release(flags) == OLDEST
    single = flag_names(
        render_chart({"model": {"name": "m", "basePath": "/models/m"}, "image": {"tag": "1.15.0"}})
    )
    assert "--rest_api_port" in single and newest_flag_release(single) <= OLDEST


def test_the_ack_eci_guide_image_renders_only_flags_1_15_accepts() -> None:
    docs = render_chart(values_files=[PRESETS_DIR / "ack-eci-bert-oss.yaml"])
    assert server_container(docs)["image"] == "tensorflow/serving:1.15.0-gpu"
    assert newest_flag_release(flag_names(docs)) <= OLDEST


@pytest.mark.parametrize("tag", ["1.14.0", "1.14.0-gpu", "1.8.0"])
def test_a_release_older_than_1_15_is_refused_naming_image_tag(tag: str) -> None:
    values = {"image": {"tag": tag}, "gpu": {"count": 1 if "gpu" in tag else 0}}
    with pytest.raises(HelmError) as err:
        render_chart(values)
    assert f"image.tag ({tag}) is older than 1.15.0" in err.value.stderr


@pytest.mark.parametrize(
    "image",
    [
        {"tag": "latest"},
        {"tag": "nightly"},
        {"tag": "2.19.1"},
        {"tag": "1.15.0"},
        {"tag": "1.0.0", "digest": "sha256:" + "a" * 64},
    ],
)
def test_current_tags_and_digests_render(image: dict[str, str]) -> None:
    find(render_chart({"image": image}), "Deployment")
