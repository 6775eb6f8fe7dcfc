from __future__ import annotations

import pytest

from tfsctl.errors import InvalidInput
from tfsctl.serving.config import ModelConfig, ServerConfig, VersionPolicy

TEXT = """
model_config_list {
  config {
    name: "fashion"
    base_path: "/models/fashion"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
  config { name: "other" base_path: "/models/other" model_version_policy { all {} } }
  config { name: "third" base_path: "/models/third" model_version_policy { latest { num_versions: 2 } } }
}
"""


def test_parse_reads_policies_labels_and_defaults() -> None:
    config = ServerConfig.parse(TEXT)
    fashion = config.models["fashion"]
    assert fashion.policy == VersionPolicy.specific(1, 2)
    assert fashion.labels == {"stable": 1, "canary": 2}
    assert config.models["other"].policy.kind == "all"
    assert config.models["third"].policy == VersionPolicy.latest(2)
    assert config.models["other"].platform == "tensorflow"


def test_to_text_round_trips_through_parse() -> None:
    config = ServerConfig.parse(TEXT)
    assert ServerConfig.parse(config.to_text()) == config


def test_model_without_policy_serves_latest_one() -> None:
    config = ServerConfig.parse('model_config_list { config { name: "m" base_path: "/m" } }')
    assert config.models["m"].policy == VersionPolicy.latest(1)


def test_parse_error_is_the_text_format_error_of_model_server_config() -> None:
    with pytest.raises(InvalidInput) as err:
        ServerConfig.parse('model_config_list { config { nme: "m" } }', source="model_config.pbtxt")
    message = str(err.value)
    # TF Serving's two strings (ParseProtoTextFile, protobuf's parser; testBadModelConfig greps the second).
    assert message.startswith("Invalid protobuf file: 'model_config.pbtxt': ")
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig: " in message
    assert 'has no field named "nme"' in message
    assert "1:" in message  # line:column of the error


def test_parse_rejects_duplicate_models_and_missing_base_path() -> None:
    dup = 'model_config_list { config { name: "m" base_path: "/a" } config { name: "m" base_path: "/b" } }'
    with pytest.raises(InvalidInput, match="model 'm': duplicate model name"):
        ServerConfig.parse(dup)
    with pytest.raises(InvalidInput, match="model 'm': base_path is empty"):
        ServerConfig.parse('model_config_list { config { name: "m" } }')


@pytest.mark.parametrize("name", ["bad-label", "a.b", "ü", "with space"])
def test_parse_takes_any_label_name_as_tf_serving_does(name: str) -> None:
    """ServerCore::UpdateModelVersionLabelMap copies every version_labels key as given."""
    text = (
        'model_config_list { config { name: "m" base_path: "/m" '
        f'version_labels {{ key: "{name}" value: 1 }} }} }}'
    )
    parsed = ServerConfig.parse(text)
    assert parsed.models["m"].labels == {name: 1}
    assert ServerConfig.parse(parsed.to_text()).models["m"].labels == {name: 1}


def test_model_names_that_break_rest_paths_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="model name"):
        ModelConfig("a/b", "/m")


@pytest.mark.parametrize(
    ("policy", "on_disk", "expected"),
    [
        (VersionPolicy.latest(), [1, 3, 2], [3]),
        (VersionPolicy.latest(2), [1, 3, 2], [2, 3]),
        (VersionPolicy.all(), [2, 1], [1, 2]),
        (VersionPolicy.specific(1, 5), [1, 2, 3], [1]),
        (VersionPolicy.latest(), [], []),
    ],
)
def test_version_policy_selects_served_versions(
    policy: VersionPolicy, on_disk: list[int], expected: list[int]
) -> None:
    assert policy.select(on_disk) == expected


def test_specific_policy_needs_versions() -> None:
    with pytest.raises(InvalidInput, match="specific"):
        VersionPolicy("specific")


def test_with_labels_keeps_everything_else() -> None:
    model = ModelConfig("m", "/m", policy=VersionPolicy.specific(1, 2), labels={"stable": 1})
    moved = model.with_labels({"stable": 2})
    assert moved.labels == {"stable": 2} and moved.policy == model.policy and model.labels == {"stable": 1}
