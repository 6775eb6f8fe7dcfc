from __future__ import annotations

import pytest

from tfsctl.errors import InvalidInput
from tfsctl.release.values import apply_set, get_path, merge_values, parse_set


class TestMergeValues:
    def test_maps_merge_deep(self) -> None:
        merged = merge_values({"a": {"b": 1, "c": 2}}, {"a": {"c": 3, "d": 4}})
        assert merged == {"a": {"b": 1, "c": 3, "d": 4}}

    def test_later_lists_replace_earlier_lists(self) -> None:
        merged = merge_values(
            {"server": {"command": ["tensorflow_model_server"]}}, {"server": {"command": ["tfsctl", "serve"]}}
        )
        assert merged["server"]["command"] == ["tfsctl", "serve"]

    def test_scalar_replaces_map_and_map_replaces_scalar(self) -> None:
        assert merge_values({"a": {"b": 1}}, {"a": 5}) == {"a": 5}
        assert merge_values({"a": 5}, {"a": {"b": 1}}) == {"a": {"b": 1}}

    def test_null_overrides_and_none_layers_are_skipped(self) -> None:
        assert merge_values({"a": 1}, None, {"a": None}) == {"a": None}

    def test_inputs_are_not_mutated(self) -> None:
        base = {"a": {"b": [1]}}
        merge_values(base, {"a": {"c": 2}})
        assert base == {"a": {"b": [1]}}

    def test_non_map_layer_is_rejected(self) -> None:
        with pytest.raises(InvalidInput, match="map at the top level"):
            merge_values({"a": 1}, ["x"])  # type: ignore[list-item]


class TestSet:
    def test_nested_key(self) -> None:
        assert parse_set("models.fashion.basePath=/models/fashion") == {
            "models": {"fashion": {"basePath": "/models/fashion"}}
        }

    def test_several_assignments_and_types(self) -> None:
        assert parse_set("a=1,b=true,c=null,d=1.5,e=007,f=text") == {
            "a": 1,
            "b": True,
            "c": None,
            "d": "1.5",
            "e": "007",
            "f": "text",
        }

    def test_set_string_keeps_strings(self) -> None:
        assert parse_set("a=1,b=true", kind="set-string") == {"a": "1", "b": "true"}

    def test_list_literal(self) -> None:
        assert parse_set("server.command={tfsctl,serve}") == {"server": {"command": ["tfsctl", "serve"]}}

    def test_list_literal_followed_by_more(self) -> None:
        assert parse_set("a={1,2},b=x") == {"a": [1, 2], "b": "x"}

    def test_indices_grow_lists_and_nest_maps(self) -> None:
        assert parse_set("tolerations[1].key=gpu") == {"tolerations": [None, {"key": "gpu"}]}

    def test_escapes(self) -> None:
        assert parse_set(r"podAnnotations.prometheus\.io/scrape=a\,b") == {
            "podAnnotations": {"prometheus.io/scrape": "a,b"}
        }

    def test_set_json(self) -> None:
        assert parse_set('models.m.versionPolicy={"specific": {"versions": [1, 2]}}', kind="set-json") == {
            "models": {"m": {"versionPolicy": {"specific": {"versions": [1, 2]}}}}
        }

    def test_apply_set_overrides_existing_values(self) -> None:
        values = {"replicaCount": 1, "models": {"m": {"versionLabels": {"stable": 1}}}}
        out = apply_set(values, "models.m.versionLabels.stable=2")
        assert out["models"]["m"]["versionLabels"] == {"stable": 2}
        assert values["models"]["m"]["versionLabels"] == {"stable": 1}

    @pytest.mark.parametrize(
        ("expression", "message"),
        [
            ("novalue", "missing '='"),
            ("a.b", "missing '='"),
            ("=x", "missing key"),
            ("a[x]=1", "not a non-negative integer"),
            ("a={1,2", "unterminated list"),
            ("a=1;b", None),
            ('a={"x": ', "not JSON"),
        ],
    )
    def test_bad_expressions_name_the_problem(self, expression: str, message: str | None) -> None:
        kind = "set-json" if expression.startswith('a={"') else "set"
        if message is None:
            assert parse_set(expression) == {"a": "1;b"}
            return
        with pytest.raises(InvalidInput, match=message):
            parse_set(expression, kind=kind)

    def test_get_path(self) -> None:
        assert get_path({"a": {"b": {"c": 3}}}, "a.b.c") == 3
        assert get_path({"a": {}}, "a.b.c", "d") == "d"
