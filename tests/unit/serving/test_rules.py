from __future__ import annotations

import pytest

from tfsctl.serving.rules import (
    HTTP_STATUS,
    ServingError,
    check_labels,
    input_mismatch_message,
    unsupported_base_path,
    version_dirs,
)


def test_version_dirs_are_integer_names_sorted() -> None:
    assert version_dirs(["00000124", "123", ".staging-5", "tmp", "7"]) == [7, 123, 124]


def test_label_may_point_at_an_available_version() -> None:
    check_labels("m", {"stable": 1}, {}, {1: "AVAILABLE"}, allow_unavailable=False)


def test_label_to_unavailable_version_is_failed_precondition() -> None:
    with pytest.raises(ServingError) as err:
        check_labels("m", {"canary": 2}, {}, {1: "AVAILABLE", 2: "LOADING"}, allow_unavailable=False)
    assert err.value.code == "FAILED_PRECONDITION"
    assert err.value.message == (
        "Request to assign label to version 2 of model m, which is not currently available for inference"
    )


def test_allow_flag_lets_only_new_labels_point_at_unavailable_versions() -> None:
    check_labels("m", {"canary": 2}, {"stable": 1}, {1: "AVAILABLE"}, allow_unavailable=True)
    with pytest.raises(ServingError, match="version 2 of model m"):
        check_labels("m", {"stable": 2}, {"stable": 1}, {1: "AVAILABLE"}, allow_unavailable=True)


def test_allow_flag_keeps_a_label_that_already_points_at_a_version_no_longer_available() -> None:
    """UpdateModelVersionLabelMap: an unchanged label passes with the flag even if its version left."""
    check_labels("m", {"stable": 2}, {"stable": 2}, {1: "AVAILABLE"}, allow_unavailable=True)


def test_without_the_flag_every_label_of_a_reload_needs_an_available_version() -> None:
    """Labels are re-checked on every reload, unchanged ones too (the label map is rebuilt)."""
    with pytest.raises(ServingError, match="version 2 of model m"):
        check_labels("m", {"stable": 2}, {"stable": 2}, {1: "AVAILABLE"}, allow_unavailable=False)


def test_any_label_name_is_taken_as_tf_serving_does() -> None:
    """UpdateModelVersionLabelMap checks versions, never names."""
    check_labels("m", {"bad-name": 1, "a.b": 1}, {}, {1: "AVAILABLE"}, allow_unavailable=False)


def test_http_codes_follow_tf_serving() -> None:
    assert HTTP_STATUS["NOT_FOUND"] == 404
    assert HTTP_STATUS["FAILED_PRECONDITION"] == 400
    assert HTTP_STATUS["UNAVAILABLE"] == 503
    assert ServingError("DEADLINE_EXCEEDED", "x").http_status == 504


def test_input_mismatch_message_names_extra_and_missing() -> None:
    message = input_mismatch_message(["x", "z"], ["x", "y"])
    assert message == (
        "input size does not match signature: 2!=2 len({x,z}) != len({x,y}). "
        "Sent extra: {z}. Missing but required: {y}."
    )


def test_s3_base_paths_are_unreadable_with_tf_servings_message() -> None:
    """FileSystemStoragePathSource on 2.7+: "File system scheme 's3' not implemented"."""
    message = unsupported_base_path("s3://b/m")
    assert message is not None and "File system scheme 's3' not implemented (file: 's3://b/m')" in message
    assert unsupported_base_path("/models/m") is None
