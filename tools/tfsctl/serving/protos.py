"""TF Serving's generated protos and gRPC stubs (the [grpc] extra), without the TensorFlow runtime.

What needs them: the gRPC transport of the client (``--transport grpc``, a reload
through HandleReloadConfigRequest), gRPC load tests, and building example models.
The core's own reads and writes (the model config, SavedModel and warmup checks) use
``tfsctl.serving.schema`` instead, so the core installs without
``tensorflow-serving-api`` and the TensorFlow it depends on.

``tensorflow_serving.apis`` imports ``tensorflow.core.*_pb2`` modules, which makes
Python run ``tensorflow/__init__.py`` (5-8 s, the whole runtime). We install an
empty stand-in ``tensorflow`` package whose ``__path__`` is the real one for the
duration of the import, so only the generated ``*_pb2`` modules load (~0.2 s).
The stand-in is removed afterwards: the pb2 modules stay in ``sys.modules``, and a
later real ``import tensorflow`` reuses them (same files, same descriptors), so
mixing both in one process is safe.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Iterator, Sequence


class _RebindSubmodules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """When the real ``tensorflow`` is imported later, re-attach the pb2 subpackages.

    Python sets ``parent.child`` only when it loads ``child``; the subpackages we
    loaded under the stub are already in ``sys.modules``, so without this the real
    module would lack e.g. ``tensorflow.core`` as an attribute.
    """

    def __init__(self) -> None:
        self._inner: importlib.machinery.ModuleSpec | None = None

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow" or self._inner is not None:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("tensorflow")
        if spec is None or spec.loader is None:
            return None
        self._inner = spec
        spec.loader = self
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        assert self._inner is not None
        source_loader = importlib.machinery.SourceFileLoader("tensorflow", str(self._inner.origin))
        source_loader.exec_module(module)
        for name, sub in list(sys.modules.items()):
            child = name.split(".", 1)[-1]
            if name.count(".") == 1 and name.startswith("tensorflow.") and not hasattr(module, child):
                setattr(module, child, sub)


@contextlib.contextmanager
def _tensorflow_stub() -> Iterator[None]:
    if "tensorflow" in sys.modules:  # the real runtime (or a stub) is already there
        yield
        return
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or spec.submodule_search_locations is None:
        # the [grpc] extra brings tensorflow-serving-api (and the TensorFlow it depends on)
        raise ModuleNotFoundError(
            "No module named 'tensorflow_serving' (TF Serving's protos)", name="tensorflow_serving"
        )
    stub = types.ModuleType("tensorflow")
    stub.__path__ = list(spec.submodule_search_locations)
    sys.modules["tensorflow"] = stub
    try:
        yield
    finally:
        if sys.modules.get("tensorflow") is stub:
            del sys.modules["tensorflow"]
            sys.meta_path.insert(0, _RebindSubmodules())


with _tensorflow_stub():
    from tensorflow.core.example import example_pb2, feature_pb2
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow.core.protobuf import error_codes_pb2, meta_graph_pb2, saved_model_pb2
    from tensorflow_serving.apis import (
        classification_pb2,
        get_model_metadata_pb2,
        get_model_status_pb2,
        inference_pb2,
        input_pb2,
        model_management_pb2,
        model_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_log_pb2,
        prediction_service_pb2_grpc,
        regression_pb2,
    )
    from tensorflow_serving.config import model_server_config_pb2

__all__ = [
    "classification_pb2",
    "error_codes_pb2",
    "example_pb2",
    "feature_pb2",
    "get_model_metadata_pb2",
    "get_model_status_pb2",
    "inference_pb2",
    "input_pb2",
    "meta_graph_pb2",
    "model_management_pb2",
    "model_pb2",
    "model_server_config_pb2",
    "model_service_pb2_grpc",
    "predict_pb2",
    "prediction_log_pb2",
    "prediction_service_pb2_grpc",
    "regression_pb2",
    "saved_model_pb2",
    "tensor_pb2",
    "tensor_shape_pb2",
    "types_pb2",
]
