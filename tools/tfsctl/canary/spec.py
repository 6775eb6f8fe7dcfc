"""The canary check spec (pure): a small YAML document, like Flagger's metric templates.

Every check has a threshold; a threshold set to ``null`` turns that check off. ``profile``
picks defaults that make sense for a classifier (class scores: top-k agreement, tight
tolerances on probabilities) or a regressor (one number per input: relative tolerance, no
top-k). Unknown keys are refused, naming the key, before anything touches the fleet::

    profile: classifier
    bakeSeconds: 60
    outputs: {maxDifferingShare: 0.0, topK: {k: 1, minAgreement: 1.0}}
    latency: {maxP99Ratio: 2.5}
    prometheus: {url: http://prometheus.monitoring:9090}
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from tfsctl.errors import InvalidInput

Profile = Literal["classifier", "regressor"]
InputSource = Literal["auto", "warmup", "file", "signature"]


def _num(description: str, maximum: float | None = None, nullable: bool = True) -> dict[str, Any]:
    node: dict[str, Any] = {"description": description, "type": ["number", "null"] if nullable else "number"}
    node["minimum"] = 0
    if maximum is not None:
        node["maximum"] = maximum
    return node


def _obj(description: str, properties: dict[str, Any], nullable: bool = False) -> dict[str, Any]:
    return {
        "description": description,
        "type": ["object", "null"] if nullable else "object",
        "additionalProperties": False,
        "properties": properties,
    }


#: JSON schema of the spec file (``additionalProperties: false`` everywhere: a typo is an error).
#: The chart's ``canary.spec`` schema is this one (a chart test keeps them equal).
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "description": "The tfsctl canary check spec: every threshold, null turning a check off.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "profile": {
            "description": "Defaults for class scores or for numbers.",
            "enum": ["classifier", "regressor"],
        },
        "label": {"description": "The canary label.", "type": "string", "minLength": 1},
        "stableLabel": {"description": "The label promoted on success.", "type": "string", "minLength": 1},
        "bakeSeconds": {"description": "Seconds of analysis.", "type": "number", "minimum": 0},
        "intervalSeconds": {
            "description": "Seconds between health samples.",
            "type": "number",
            "exclusiveMinimum": 0,
        },
        "loadTimeoutSeconds": {
            "description": "Seconds for VERSION to load everywhere.",
            "type": "number",
            "exclusiveMinimum": 0,
        },
        "maxRequestRate": {
            "description": "Requests per second the analysis sends to the whole service, both labels.",
            "type": "number",
            "exclusiveMinimum": 0,
        },
        "keepPrevious": {
            "description": "Keep the old stable version loaded on promotion.",
            "type": "boolean",
        },
        "inputs": _obj(
            "What the shadow comparison sends.",
            {
                "source": {
                    "description": "auto: warmup records if readable, else the signature.",
                    "enum": ["auto", "warmup", "file", "signature"],
                },
                "file": {
                    "description": "A REST predict body or a warmup TFRecord file.",
                    "type": ["string", "null"],
                },
                "count": {
                    "description": "Inputs generated or read.",
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 10000,
                },
                "batchSize": {
                    "description": "Rows per generated input.",
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 1024,
                },
                "signature": {"description": "Signature to call.", "type": "string", "minLength": 1},
                "seed": {"description": "Seed of generated inputs.", "type": "integer"},
            },
        ),
        "outputs": _obj(
            "Output comparison.",
            {
                "absTolerance": _num("An element differs beyond |c - s| > abs + rel * |s|.", nullable=False),
                "relTolerance": _num("Relative part of the tolerance.", nullable=False),
                "maxAbsDiff": _num("Largest absolute difference allowed."),
                "maxRelDiff": _num("Largest relative difference allowed."),
                "maxDifferingShare": _num("Largest share of inputs beyond tolerance.", maximum=1),
                "topK": _obj(
                    "Top-k agreement of class scores.",
                    {
                        "k": {
                            "description": "How many top classes must agree.",
                            "type": "integer",
                            "minimum": 1,
                        },
                        "minAgreement": {
                            "description": "Smallest share of rows whose top-k agree.",
                            "type": "number",
                            "minimum": 0,
                            "maximum": 1,
                        },
                        "output": {"description": "Output holding class scores.", "type": ["string", "null"]},
                    },
                    nullable=True,
                ),
            },
        ),
        "latency": _obj(
            "Latency of the same requests, canary over stable.",
            {
                "maxP50Ratio": _num("Largest p50 ratio."),
                "maxP99Ratio": _num("Largest p99 ratio."),
                "minSamples": {
                    "description": "Fewest samples per label to judge.",
                    "type": "integer",
                    "minimum": 1,
                },
            },
        ),
        "errors": _obj(
            "Errors of the same requests.",
            {"maxCanaryErrorRate": _num("Largest share of failed canary requests.", maximum=1)},
        ),
        "health": _obj(
            "Both versions AVAILABLE on every replica.",
            {"required": {"description": "Judge health.", "type": "boolean"}},
        ),
        "prometheus": _obj(
            "Live traffic of the model, bake window against the window before.",
            {
                "url": {
                    "description": "Prometheus base URL; null: no live check.",
                    "type": ["string", "null"],
                },
                "selector": {"description": "Extra PromQL label matchers.", "type": ["string", "null"]},
                "maxErrorRate": _num("Largest live error rate.", maximum=1),
                "maxP99Ratio": _num("Largest live p99 ratio."),
                "minRequests": {
                    "description": "Fewest live requests to judge.",
                    "type": "number",
                    "minimum": 0,
                },
                "timeoutSeconds": {
                    "description": "Seconds per query.",
                    "type": "number",
                    "exclusiveMinimum": 0,
                },
            },
        ),
    },
}

_COMMON: dict[str, Any] = {
    "label": "canary",
    "stableLabel": "stable",
    "bakeSeconds": 60,
    "intervalSeconds": 2,
    "loadTimeoutSeconds": 120,
    "maxRequestRate": 20,
    "keepPrevious": False,
    "inputs": {
        "source": "auto",
        "file": None,
        "count": 16,
        "batchSize": 1,
        "signature": "serving_default",
        "seed": 0,
    },
    "latency": {"maxP50Ratio": 1.5, "maxP99Ratio": 2.5, "minSamples": 20},
    "errors": {"maxCanaryErrorRate": 0.0},
    "health": {"required": True},
    "prometheus": {
        "url": None,
        "selector": None,
        "maxErrorRate": 0.01,
        "maxP99Ratio": 2.0,
        "minRequests": 20,
        "timeoutSeconds": 10,
    },
}

#: per profile: what "the same function within tolerance" means for its outputs
PROFILE_OUTPUTS: dict[str, dict[str, Any]] = {
    # Probabilities in [0, 1]: a tight absolute tolerance, and the predicted class must agree.
    "classifier": {
        "absTolerance": 1e-4,
        "relTolerance": 1e-3,
        "maxAbsDiff": 0.01,
        "maxRelDiff": None,
        "maxDifferingShare": 0.01,
        "topK": {"k": 1, "minAgreement": 0.99, "output": None},
    },
    # Unbounded numbers: relative tolerance decides, there are no classes to rank.
    "regressor": {
        "absTolerance": 1e-6,
        "relTolerance": 1e-3,
        "maxAbsDiff": None,
        "maxRelDiff": 0.01,
        "maxDifferingShare": 0.01,
        "topK": None,
    },
}


@dataclass(frozen=True)
class InputsSpec:
    source: InputSource
    file: str | None
    count: int
    batch_size: int
    signature: str
    seed: int


@dataclass(frozen=True)
class TopKSpec:
    k: int
    min_agreement: float
    output: str | None


@dataclass(frozen=True)
class OutputsSpec:
    abs_tolerance: float
    rel_tolerance: float
    max_abs_diff: float | None
    max_rel_diff: float | None
    max_differing_share: float | None
    top_k: TopKSpec | None


@dataclass(frozen=True)
class LatencySpec:
    max_p50_ratio: float | None
    max_p99_ratio: float | None
    min_samples: int


@dataclass(frozen=True)
class PrometheusSpec:
    url: str | None
    selector: str | None  # extra PromQL label matchers, e.g. namespace="tfs"
    max_error_rate: float | None
    max_p99_ratio: float | None
    min_requests: float
    timeout: float


@dataclass(frozen=True)
class CanarySpec:
    """The checks and thresholds of one canary analysis, defaults filled in."""

    profile: Profile
    label: str
    stable_label: str
    bake_seconds: float
    interval_seconds: float
    load_timeout: float
    max_request_rate: float
    keep_previous: bool
    inputs: InputsSpec
    outputs: OutputsSpec
    latency: LatencySpec
    max_canary_error_rate: float | None
    health_required: bool
    prometheus: PrometheusSpec
    document: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The effective spec in the file's own shape (what ``--print-spec`` prints)."""
        return copy.deepcopy(self.document)


def defaults(profile: Profile = "classifier") -> dict[str, Any]:
    """The full default document for ``profile`` (what ``tfsctl canary --print-spec`` shows)."""
    doc = copy.deepcopy(_COMMON)
    doc["profile"] = profile
    doc["outputs"] = copy.deepcopy(PROFILE_OUTPUTS[profile])
    return doc


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _where(error: Any) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def parse(data: Mapping[str, Any] | None, source: str = "spec") -> CanarySpec:
    """Validate ``data`` against ``SCHEMA`` and fill in the profile's defaults."""
    import jsonschema

    data = dict(data or {})
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        raise InvalidInput(f"{source}: {_where(first)}: {first.message}")
    profile: Profile = data.get("profile", "classifier")
    doc = _merge(defaults(profile), data)
    if data.get("outputs", {}).get("topK") is not None and doc["outputs"]["topK"] is not None:
        # a partial topK under the regressor profile (whose default is null) still needs k and minAgreement
        doc["outputs"]["topK"] = {"k": 1, "minAgreement": 0.99, "output": None, **data["outputs"]["topK"]}
    i, o, lat, prom = doc["inputs"], doc["outputs"], doc["latency"], doc["prometheus"]
    if i["source"] == "file" and not i["file"]:
        raise InvalidInput(f"{source}: inputs.source is file but inputs.file is not set")
    if doc["label"] == doc["stableLabel"]:
        raise InvalidInput(f"{source}: label and stableLabel are both {doc['label']!r}")
    top = o["topK"]
    return CanarySpec(
        profile=profile,
        label=doc["label"],
        stable_label=doc["stableLabel"],
        bake_seconds=float(doc["bakeSeconds"]),
        interval_seconds=float(doc["intervalSeconds"]),
        load_timeout=float(doc["loadTimeoutSeconds"]),
        max_request_rate=float(doc["maxRequestRate"]),
        keep_previous=bool(doc["keepPrevious"]),
        inputs=InputsSpec(
            i["source"], i["file"], int(i["count"]), int(i["batchSize"]), i["signature"], int(i["seed"])
        ),
        outputs=OutputsSpec(
            float(o["absTolerance"]),
            float(o["relTolerance"]),
            o["maxAbsDiff"],
            o["maxRelDiff"],
            o["maxDifferingShare"],
            None if top is None else TopKSpec(int(top["k"]), float(top["minAgreement"]), top.get("output")),
        ),
        latency=LatencySpec(lat["maxP50Ratio"], lat["maxP99Ratio"], int(lat["minSamples"])),
        max_canary_error_rate=doc["errors"]["maxCanaryErrorRate"],
        health_required=bool(doc["health"]["required"]),
        prometheus=PrometheusSpec(
            prom["url"] or None,
            prom["selector"] or None,
            prom["maxErrorRate"],
            prom["maxP99Ratio"],
            float(prom["minRequests"]),
            float(prom["timeoutSeconds"]),
        ),
        document=doc,
    )


def load(path: Path | None, overrides: Mapping[str, Any] | None = None) -> CanarySpec:
    """The spec in ``path`` (None: the defaults), with ``overrides`` (CLI flags) on top."""
    data: dict[str, Any] = {}
    source = "canary spec"
    if path is not None:
        source = f"--spec {path}"
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise InvalidInput(f"{source}: no such file") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            raise InvalidInput(f"{source}: {where}not valid YAML") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise InvalidInput(f"{source}: top level must be a map")
        data = loaded or {}
    if overrides:
        data = _merge(data, overrides)
    return parse(data, source)
