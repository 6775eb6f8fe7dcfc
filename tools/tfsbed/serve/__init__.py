"""The drop-in model server behind ``tfsctl serve``: a stand-in for ``tensorflow_model_server``.

Its behaviour follows TF Serving's own sources (tests/e2e/serving/FIDELITY.md).
The client side it shares with the product stays in ``tfsctl.serving`` (protos,
the model config, tensors, the client, TF Serving's pure rules); the server side
(flags, the core that loads versions, servables, batching, TLS, metrics, the
server itself, and test fixtures that run it) lives here. TensorFlow is imported
only when a model is loaded.
"""

from __future__ import annotations
