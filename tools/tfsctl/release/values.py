"""Helm values merging and ``--set`` parsing, with Helm's semantics (pure).

``merge_values`` merges like ``helm -f a.yaml -f b.yaml``: maps merge deep, any
other value (lists included) from a later file replaces the earlier one. pyhelm3
concatenates lists when it merges several dicts, so callers merge here and hand
pyhelm3 exactly one dict.

``apply_set`` follows Helm's ``strvals`` parser for what users write on the
command line: ``a.b=c``, several assignments separated by commas, list indices
(``a[0].b=c``), list literals (``a={x,y}``), backslash escapes (``a\\.b=c``,
``a=x\\,y``) and type inference (``true``/``false`` -> bool, ``null`` -> None,
integers -> int; ``--set-string`` keeps everything a string, ``--set-json``
parses the value as JSON).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

from tfsctl.errors import InvalidInput

# Helm refuses list indices above this (strvals MaxIndex); so do we.
MAX_INDEX = 65536
_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")

Values = dict[str, Any]
PathSegment = str | int


class _HelmYamlLoader(yaml.SafeLoader):
    """YAML as helm reads values files (go-yaml v2, YAML 1.1): ``y``/``n`` are booleans too."""


_YAML11_SHORT_BOOLS = {"y": True, "Y": True, "n": False, "N": False}
_HelmYamlLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))


def _construct_bool(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> bool:
    value = str(loader.construct_scalar(node))
    if value in _YAML11_SHORT_BOOLS:
        return _YAML11_SHORT_BOOLS[value]
    return bool(loader.bool_values[value.lower()])


_HelmYamlLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)


def parse_values(text: str) -> Any:
    """One values file's text, read the way helm reads it."""
    return yaml.load(text, Loader=_HelmYamlLoader)  # a SafeLoader subclass


def merge_values(*layers: Mapping[str, Any] | None) -> Values:
    """Merge values layers left to right: maps merge deep, everything else replaces."""
    merged: Values = {}
    for layer in layers:
        if layer is None:
            continue
        if not isinstance(layer, Mapping):
            raise InvalidInput(f"values must be a map at the top level, got {type(layer).__name__}")
        merged = _merge(merged, layer)
    return merged


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> Values:
    out: Values = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def typed_value(text: str) -> Any:
    """Infer a value's type the way ``helm --set`` does (strvals ``typedVal``)."""
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if lowered == "null":
        return None
    if _INT.match(text):
        return int(text)
    return text


def apply_set(values: Mapping[str, Any], expression: str, *, kind: str = "set") -> Values:
    """Return ``values`` with one ``--set`` expression applied (kind: set | set-string | set-json)."""
    if kind not in ("set", "set-string", "set-json"):
        raise ValueError(f"unknown --set kind {kind!r}")
    out: Values = copy.deepcopy(dict(values))
    for path, value in _Parser(expression, kind).assignments():
        _assign(out, path, value, expression)
    return out


def parse_set(expression: str, *, kind: str = "set") -> Values:
    """Parse one ``--set`` expression into a values dict."""
    return apply_set({}, expression, kind=kind)


class _Parser:
    """A small cursor-based reader of strvals expressions."""

    def __init__(self, text: str, kind: str) -> None:
        self.text = text
        self.kind = kind
        self.pos = 0

    def error(self, message: str) -> InvalidInput:
        return InvalidInput(f"--{self.kind} {self.text!r}: {message}")

    def assignments(self) -> list[tuple[list[PathSegment], Any]]:
        result: list[tuple[list[PathSegment], Any]] = []
        if not self.text:
            raise self.error("empty expression")
        while self.pos < len(self.text):
            path = self.key_path()
            value = self.value()
            result.append((path, value))
            if self.pos < len(self.text):
                if self.text[self.pos] != ",":
                    raise self.error(f"unexpected {self.text[self.pos]!r} at position {self.pos}")
                self.pos += 1
        return result

    def key_path(self) -> list[PathSegment]:
        path: list[PathSegment] = []
        key = ""
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\\" and self.pos + 1 < len(text):
                key += text[self.pos + 1]
                self.pos += 2
            elif ch == ".":
                if not key and (not path or isinstance(path[-1], str)):
                    raise self.error("empty key")
                if key:
                    path.append(key)
                key = ""
                self.pos += 1
            elif ch == "[":
                if key:
                    path.append(key)
                    key = ""
                if not path:
                    raise self.error("list index without a key")
                end = text.find("]", self.pos)
                if end < 0:
                    raise self.error("unterminated list index")
                raw = text[self.pos + 1 : end]
                if not raw.isdigit():
                    raise self.error(f"list index {raw!r} is not a non-negative integer")
                index = int(raw)
                if index > MAX_INDEX:
                    raise self.error(f"list index {index} is larger than {MAX_INDEX}")
                path.append(index)
                self.pos = end + 1
            elif ch == "=":
                if key:
                    path.append(key)
                if not path:
                    raise self.error("missing key before '='")
                self.pos += 1
                return path
            elif ch == ",":
                raise self.error(f"key {key or '.'.join(map(str, path))!r} has no value (missing '=')")
            else:
                key += ch
                self.pos += 1
        raise self.error(f"key {key or '.'.join(map(str, path))!r} has no value (missing '=')")

    def value(self) -> Any:
        text = self.text
        if self.kind == "set-json":
            return self._json_value()
        if self.pos < len(text) and text[self.pos] == "{":
            self.pos += 1
            items: list[Any] = []
            while True:
                item, stop = self._scalar(stops=",}")
                items.append(self._typed(item))
                if stop == "}":
                    return items
                if stop is None:
                    raise self.error("unterminated list: missing '}'")
        raw, _ = self._scalar(stops=",")
        if self.pos < len(text):
            self.pos -= 1  # leave the separating comma for the caller
        return self._typed(raw)

    def _scalar(self, stops: str) -> tuple[str, str | None]:
        out = ""
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\\" and self.pos + 1 < len(text):
                out += text[self.pos + 1]
                self.pos += 2
                continue
            self.pos += 1
            if ch in stops:
                return out, ch
            out += ch
        return out, None

    def _json_value(self) -> Any:
        decoder = json.JSONDecoder()
        try:
            value, end = decoder.raw_decode(self.text, self.pos)
        except json.JSONDecodeError as exc:
            raise self.error(f"value is not JSON: {exc.msg}") from None
        self.pos = end
        return value

    def _typed(self, raw: str) -> Any:
        return raw if self.kind == "set-string" else typed_value(raw)


def _assign(root: Values, path: list[PathSegment], value: Any, expression: str) -> None:
    node: Any = root
    for i, segment in enumerate(path):
        last = i == len(path) - 1
        nxt = None if last else path[i + 1]
        empty: Any = [] if isinstance(nxt, int) else {}
        if isinstance(segment, str):
            if not isinstance(node, dict):
                raise InvalidInput(f"--set {expression!r}: {segment!r} is not inside a map")
            if last:
                node[segment] = value
                return
            child = node.get(segment)
            if not isinstance(child, (dict, list)) or isinstance(child, list) != isinstance(nxt, int):
                child = empty
                node[segment] = child
            node = child
        else:
            if not isinstance(node, list):
                raise InvalidInput(f"--set {expression!r}: index [{segment}] is not inside a list")
            while len(node) <= segment:
                node.append(None)
            if last:
                node[segment] = value
                return
            child = node[segment]
            if not isinstance(child, (dict, list)) or isinstance(child, list) != isinstance(nxt, int):
                child = empty
                node[segment] = child
            node = child


def get_path(values: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """Read ``a.b.c`` from nested maps; ``default`` when any step is missing."""
    node: Any = values
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return node
