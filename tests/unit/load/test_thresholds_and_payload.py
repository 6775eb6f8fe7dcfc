from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfsctl.errors import InvalidInput
from tfsctl.load import options, payload, thresholds

FASHION_METADATA = {
    "model_spec": {"name": "fashion", "version": "2"},
    "metadata": {
        "signature_def": {
            "signature_def": {
                "serving_default": {
                    "inputs": {
                        "images": {
                            "dtype": "DT_FLOAT",
                            "tensor_shape": {
                                "dim": [{"size": "-1"}, {"size": "28"}, {"size": "28"}, {"size": "1"}],
                                "unknown_rank": False,
                            },
                            "name": "images:0",
                        }
                    },
                    "outputs": {"scores": {"dtype": "DT_FLOAT"}},
                    "method_name": "tensorflow/serving/predict",
                }
            }
        }
    },
}


class TestThresholds:
    def test_a_run_within_every_limit_passes(self) -> None:
        summary = thresholds.Summary(requests=100, failures=0, p95_ms=50, p99_ms=80)
        assert thresholds.check(summary, thresholds.Thresholds(p95_ms=100, p99_ms=200)).passed

    def test_each_violation_names_the_measure_value_and_limit(self) -> None:
        summary = thresholds.Summary(requests=100, failures=5, p95_ms=150, p99_ms=400)
        verdict = thresholds.check(
            summary, thresholds.Thresholds(max_failure_ratio=0.01, p95_ms=100, p99_ms=300)
        )
        assert not verdict.passed
        assert verdict.violations == (
            "failure ratio 5.00% (5/100) > 1.00%",
            "p95 150 ms > 100 ms",
            "p99 400 ms > 300 ms",
        )

    def test_disabled_latency_limits_are_not_checked(self) -> None:
        summary = thresholds.Summary(requests=10, failures=0, p95_ms=1e6, p99_ms=1e6)
        assert thresholds.check(summary, thresholds.Thresholds(p95_ms=None, p99_ms=None)).passed

    def test_a_run_without_requests_fails(self) -> None:
        verdict = thresholds.check(thresholds.Summary(0, 0, 0, 0), thresholds.Thresholds())
        assert verdict.violations == ("requests 0 < minimum 1",)

    def test_zero_disables_a_latency_limit_from_options(self) -> None:
        class Opts:
            max_failure_ratio = 0.05
            p95_ms = 0.0
            p99_ms = 250.0

        assert options.limits_from(Opts()) == thresholds.Thresholds(0.05, None, 250.0)


class TestPayload:
    def test_inputs_follow_the_signature_with_the_batch_as_first_dimension(self) -> None:
        built = payload.from_metadata(FASHION_METADATA, batch_size=3)
        (tensor,) = built.tensors
        assert (tensor.name, tensor.dtype, tensor.shape) == ("images", "DT_FLOAT", (3, 28, 28, 1))
        body = json.loads(built.rest_json())
        assert body["signature_name"] == "serving_default"
        assert len(body["inputs"]["images"]) == 3
        assert len(body["inputs"]["images"][0][0]) == 28

    def test_generated_payloads_are_deterministic(self) -> None:
        assert (
            payload.from_metadata(FASHION_METADATA).rest_json()
            == payload.from_metadata(FASHION_METADATA).rest_json()
        )

    def test_unknown_signature_names_the_known_ones(self) -> None:
        with pytest.raises(InvalidInput, match=r"--signature 'predict_images'.*serving_default"):
            payload.from_metadata(FASHION_METADATA, signature="predict_images")

    def test_request_file_instances_take_dtypes_from_the_signature(self, tmp_path: Path) -> None:
        path = tmp_path / "request.json"
        path.write_text(json.dumps({"instances": [[[[0]] * 28] * 28]}))
        specs = payload.signature_inputs(FASHION_METADATA)
        built = payload.from_request_file(path, specs=specs)
        (tensor,) = built.tensors
        assert (tensor.name, tensor.dtype, tensor.shape) == ("images", "DT_FLOAT", (1, 28, 28, 1))
        assert "instances" in built.rest_body

    def test_request_file_must_be_a_predict_body(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.json"
        path.write_text('{"examples": []}')
        with pytest.raises(
            InvalidInput, match=r"--request-file .*bad.json: expected an 'instances' or 'inputs'"
        ):
            payload.from_request_file(path)

    def test_missing_request_file_is_named(self, tmp_path: Path) -> None:
        with pytest.raises(InvalidInput, match="no such file"):
            payload.from_request_file(tmp_path / "absent.json")


class TestOptions:
    @pytest.mark.parametrize(
        ("version", "label", "name", "path"),
        [
            (None, "stable", "predict:fashion@stable", "/v1/models/fashion/labels/stable:predict"),
            (2, None, "predict:fashion/2", "/v1/models/fashion/versions/2:predict"),
            (None, None, "predict:fashion", "/v1/models/fashion:predict"),
        ],
    )
    def test_request_names_and_paths_name_model_and_label(
        self, version: int | None, label: str | None, name: str, path: str
    ) -> None:
        assert options.request_name("fashion", version, label) == name
        assert options.rest_path("fashion", version, label, "predict") == path

    def test_settings_keep_the_token_off_the_command_line(self) -> None:
        settings = options.LoadSettings(host="http://h:8501", token="Bearer s3cret", label="stable")
        assert "s3cret" not in " ".join(settings.to_argv())
        assert "s3cret" not in repr(settings)
        assert settings.to_env()["TFSCTL_LOAD_TOKEN"] == "Bearer s3cret"
        assert settings.to_env()["TFSCTL_LOAD_LABEL"] == "stable"

    def test_every_knob_has_an_environment_fallback(self) -> None:
        assert all(k.env.startswith("TFSCTL_LOAD_") for k in options.KNOBS)
        assert len({k.env for k in options.KNOBS}) == len(options.KNOBS)


def test_every_knob_is_a_tfsctl_option_and_a_settings_field_under_one_name() -> None:
    """The knob table generates tfsctl's options and maps to LoadSettings: no second declaration."""
    import click

    from tfsctl.cli import cli
    from tfsctl.load import options

    fields = set(options.LoadSettings.__dataclass_fields__)
    for name in ("loadtest", "verify-autoscaling"):
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        flags = {o for p in command.params for o in p.opts}
        for knob in options.KNOBS:
            assert knob.attr.split(".")[0] in fields, f"{knob.flag}: LoadSettings has no {knob.attr}"
            if not knob.secret:
                assert knob.flag in flags, f"tfsctl {name} lacks {knob.flag}"
    settings = options.LoadSettings.from_knobs(
        "http://h", {"model_label": "stable", "model_version": None, "request_timeout": 3.5, "p95_ms": 0.0}
    )
    assert (settings.label, settings.version, settings.request_timeout) == ("stable", None, 3.5)
    assert settings.limits.p95_ms is None
    argv = settings.to_argv()
    assert argv[argv.index("--request-timeout") + 1] == "3.5"
    assert argv[argv.index("--model-label") + 1] == "stable" and "--model-version" not in argv
