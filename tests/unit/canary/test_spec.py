"""The canary check spec: defaults per profile, thresholds that turn off, one line per bad field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfsctl.canary import spec
from tfsctl.errors import InvalidInput


def test_classifier_defaults_judge_top_k_and_absolute_differences() -> None:
    s = spec.parse({})
    assert s.profile == "classifier"
    assert s.outputs.top_k is not None and s.outputs.top_k.k == 1
    assert s.outputs.max_abs_diff is not None and s.outputs.max_rel_diff is None
    assert (s.label, s.stable_label) == ("canary", "stable")


def test_regressor_defaults_judge_relative_differences_without_top_k() -> None:
    s = spec.parse({"profile": "regressor"})
    assert s.outputs.top_k is None
    assert s.outputs.max_rel_diff is not None and s.outputs.max_abs_diff is None


def test_a_partial_top_k_under_the_regressor_profile_gets_the_missing_keys() -> None:
    s = spec.parse({"profile": "regressor", "outputs": {"topK": {"k": 3}}})
    assert s.outputs.top_k is not None and (s.outputs.top_k.k, s.outputs.top_k.min_agreement) == (3, 0.99)


def test_null_turns_a_check_off_and_other_defaults_stay() -> None:
    s = spec.parse({"latency": {"maxP99Ratio": None}})
    assert s.latency.max_p99_ratio is None
    assert s.latency.max_p50_ratio == spec.defaults()["latency"]["maxP50Ratio"]


def test_an_unknown_key_is_one_line_naming_where_it_is() -> None:
    with pytest.raises(InvalidInput, match=r"latency: Additional properties .*maxP95Ratio"):
        spec.parse({"latency": {"maxP95Ratio": 2}})


def test_a_threshold_of_the_wrong_type_names_the_field() -> None:
    with pytest.raises(InvalidInput, match=r"outputs\.maxDifferingShare: 2 is greater than the maximum of 1"):
        spec.parse({"outputs": {"maxDifferingShare": 2}})


def test_file_inputs_need_a_file() -> None:
    with pytest.raises(InvalidInput, match=r"inputs\.file is not set"):
        spec.parse({"inputs": {"source": "file"}})


def test_the_same_label_for_canary_and_stable_is_refused() -> None:
    with pytest.raises(InvalidInput, match="label and stableLabel are both 'stable'"):
        spec.parse({"label": "stable"})


def test_load_merges_cli_overrides_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("profile: regressor\nbakeSeconds: 5\nmaxRequestRate: 3\n")
    s = spec.load(path, {"bakeSeconds": 9})
    assert (s.profile, s.bake_seconds, s.max_request_rate) == ("regressor", 9.0, 3.0)
    assert s.to_json()["bakeSeconds"] == 9


def test_load_reports_a_missing_file_and_bad_yaml_with_the_flag(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"--spec .*nope.yaml: no such file"):
        spec.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1\n")
    with pytest.raises(InvalidInput, match=r"--spec .*bad.yaml: line \d+: not valid YAML"):
        spec.load(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n")
    with pytest.raises(InvalidInput, match="top level must be a map"):
        spec.load(listed)
