"""Private shim: TF and TF Serving protos without the TensorFlow runtime.

``tfsctl.serving.protos`` (serving engineer) is the shared home of this trick;
until every caller moves there, the models package keeps its own copy so that
``tfsctl models validate`` never imports TensorFlow. The trick: install a bare
``tensorflow`` package module (same ``__path__``, no ``__init__`` side effects)
while the generated ``*_pb2`` modules import, then remove it so a later real
``import tensorflow`` still works.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

_lock = threading.Lock()
_loaded: dict[str, Any] = {}


def load(module: str) -> Any:
    """Import a generated proto module (``tensorflow.core...`` or ``tensorflow_serving...``)."""
    with _lock:
        if module in _loaded:
            return _loaded[module]
        if "tensorflow" in sys.modules and not isinstance(sys.modules["tensorflow"], _Stub):
            _loaded[module] = importlib.import_module(module)  # real TF already loaded
            return _loaded[module]
        spec = importlib.util.find_spec("tensorflow")
        if spec is None or spec.submodule_search_locations is None:
            raise ImportError("the tensorflow package is not installed")
        stub = _Stub("tensorflow")
        stub.__path__ = list(spec.submodule_search_locations)
        sys.modules["tensorflow"] = stub
        try:
            _loaded[module] = importlib.import_module(module)
        finally:
            if sys.modules.get("tensorflow") is stub:
                del sys.modules["tensorflow"]
        return _loaded[module]


class _Stub(types.ModuleType):
    """Marker type for the temporary stand-in package."""


def saved_model_pb2() -> Any:
    return load("tensorflow.core.protobuf.saved_model_pb2")


def prediction_log_pb2() -> Any:
    return load("tensorflow_serving.apis.prediction_log_pb2")
