"""The model server config (``tensorflow.serving.ModelServerConfig``) as plain data.

Pure: no I/O. ``ServerConfig.parse`` reads TF Serving's text format (what
``--model_config_file`` holds and what the chart renders into
``model_config.pbtxt``); ``to_text`` writes it back. Parse errors are the protobuf
text-format errors TF Serving itself would report for the same file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from tfsctl.errors import InvalidInput

PolicyKind = Literal["all", "latest", "specific"]


def text_format_error(message_type: str, source: str, error: Exception) -> str:
    """The one line for a text-format file that does not parse, with TF Serving's own words.

    ``ParseProtoTextFile`` (``tensorflow_serving/util/proto_util.h``) fails with "Invalid
    protobuf file: '<file>'" after protobuf's parser logged "Error parsing text-format <type>:
    <line>:<column>: ..."; operators grep for both.
    """
    return f"Invalid protobuf file: '{source}': Error parsing text-format {message_type}: {error}"


def validate_model_name(name: str) -> str:
    """Model names end up in URL paths (``/v1/models/<name>``): no ``/``, ``:`` or blanks."""
    if not name or re.search(r"[/:\s]", name):
        raise InvalidInput(f"model name {name!r}: must be non-empty without '/', ':' or whitespace")
    return name


@dataclass(frozen=True)
class VersionPolicy:
    """Which versions under a base path the server loads (``model_version_policy``)."""

    kind: PolicyKind = "latest"
    num_versions: int | None = None
    versions: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("all", "latest", "specific"):
            raise InvalidInput(f"version policy kind {self.kind!r}: must be all, latest or specific")
        if self.kind == "latest" and self.num_versions is not None and self.num_versions < 1:
            raise InvalidInput(f"version policy latest.num_versions {self.num_versions}: must be >= 1")
        if self.kind == "specific" and not self.versions:
            raise InvalidInput("version policy specific: versions must not be empty")
        if any(v < 0 for v in self.versions):
            raise InvalidInput(f"version policy specific.versions {list(self.versions)}: must be >= 0")

    @classmethod
    def latest(cls, num_versions: int = 1) -> VersionPolicy:
        return cls("latest", num_versions=num_versions)

    @classmethod
    def all(cls) -> VersionPolicy:
        return cls("all")

    @classmethod
    def specific(cls, *versions: int) -> VersionPolicy:
        return cls("specific", versions=tuple(sorted(set(versions))))

    def served(self, repository: Iterable[int] | None) -> frozenset[int] | None:
        """The versions this policy makes the server load, given the repository's (None: unknown).

        Unlike ``select``, a specific policy names its versions whether or not they are on disk:
        that is what a promotion plans against.
        """
        if self.kind == "specific":
            return frozenset(self.versions)
        if repository is None:
            return None
        return frozenset(self.select(list(repository)))

    def describe(self) -> str:
        if self.kind == "specific":
            return "specific [" + ", ".join(map(str, self.versions)) + "]"
        if self.kind == "latest":
            return f"latest {self.num_versions or 1}"
        return "all"

    def select(self, available: Iterable[int]) -> list[int]:
        """The versions to serve out of those present on disk, ascending."""
        found = sorted(set(available))
        if self.kind == "all":
            return found
        if self.kind == "specific":
            return [v for v in found if v in self.versions]
        return found[-(self.num_versions or 1) :] if found else []


@dataclass(frozen=True)
class ModelConfig:
    """One ``config { ... }`` entry of a ``model_config_list``."""

    name: str
    base_path: str
    platform: str = "tensorflow"
    policy: VersionPolicy = field(default_factory=VersionPolicy.latest)
    labels: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_model_name(self.name)
        # any label name: TF Serving takes every version_labels key as given
        # (ServerCore::UpdateModelVersionLabelMap); tfsctl's own rule is in release.plan

    def with_labels(self, labels: dict[str, int]) -> ModelConfig:
        return ModelConfig(self.name, self.base_path, self.platform, self.policy, dict(labels))

    def with_policy(self, policy: VersionPolicy) -> ModelConfig:
        return ModelConfig(self.name, self.base_path, self.platform, policy, dict(self.labels))


@dataclass(frozen=True)
class ServerConfig:
    """A whole ``ModelServerConfig`` with a ``model_config_list``, keyed by model name."""

    models: dict[str, ModelConfig] = field(default_factory=dict)

    @classmethod
    def single(cls, name: str, base_path: str) -> ServerConfig:
        """What ``--model_name``/``--model_base_path`` mean: one model, latest version."""
        return cls({name: ModelConfig(name, base_path)})

    @classmethod
    def parse(cls, text: str, source: str = "model config") -> ServerConfig:
        """Parse TF Serving's text format; errors are ``InvalidInput`` naming ``source``."""
        from google.protobuf import text_format

        from tfsctl.serving import schema

        message = schema.new("tensorflow.serving.ModelServerConfig")
        try:
            text_format.Parse(text, message)
        except text_format.ParseError as exc:
            raise InvalidInput(
                text_format_error("tensorflow.serving.ModelServerConfig", source, exc)
            ) from exc
        return cls.from_proto(message, source)

    @classmethod
    def from_proto(cls, message: Any, source: str = "model config") -> ServerConfig:
        """Build from a ``ModelServerConfig`` message (e.g. a HandleReloadConfigRequest's)."""
        if message.WhichOneof("config") == "custom_model_config":
            raise InvalidInput(f"{source}: custom_model_config is not supported, use model_config_list")
        models: dict[str, ModelConfig] = {}
        for entry in message.model_config_list.config:
            where = f"{source}: model {entry.name!r}"
            if not entry.name:
                raise InvalidInput(f"{source}: a config entry has no name")
            if entry.name in models:
                raise InvalidInput(f"{where}: duplicate model name")
            if not entry.base_path:
                raise InvalidInput(f"{where}: base_path is empty")
            try:
                models[entry.name] = ModelConfig(
                    name=entry.name,
                    base_path=entry.base_path,
                    platform=entry.model_platform or "tensorflow",
                    policy=_policy_from_proto(entry.model_version_policy),
                    labels=dict(entry.version_labels),
                )
            except InvalidInput as exc:
                raise InvalidInput(f"{where}: {exc}") from exc
        return cls(models)

    def to_proto(self) -> Any:
        """The ``ModelServerConfig`` message, of the core's own class (``tfsctl.serving.schema``)."""
        from tfsctl.serving import schema

        message = schema.new("tensorflow.serving.ModelServerConfig")
        configs = message.model_config_list.config
        for model in self.models.values():
            entry = configs.add()
            entry.name = model.name
            entry.base_path = model.base_path
            entry.model_platform = model.platform
            policy = entry.model_version_policy
            if model.policy.kind == "all":
                policy.all.SetInParent()
            elif model.policy.kind == "specific":
                policy.specific.versions.extend(model.policy.versions)
            else:
                policy.latest.num_versions = model.policy.num_versions or 1
            for label, version in sorted(model.labels.items()):
                entry.version_labels[label] = version
        if not self.models:
            message.model_config_list.SetInParent()
        return message

    def to_text(self) -> str:
        from google.protobuf import text_format

        return str(text_format.MessageToString(self.to_proto()))

    def with_model(self, model: ModelConfig) -> ServerConfig:
        return ServerConfig({**self.models, model.name: model})


def _policy_from_proto(policy: Any) -> VersionPolicy:
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return VersionPolicy.all()
    if kind == "specific":
        return VersionPolicy.specific(*policy.specific.versions)
    if kind == "latest":
        return VersionPolicy.latest(policy.latest.num_versions or 1)
    return VersionPolicy.latest()
