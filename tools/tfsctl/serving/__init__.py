"""TensorFlow Serving protocol layer: protos, config model, client and a local model server.

Nothing in this package imports the TensorFlow runtime at import time; only the
server process (``tfsbed.serve.server`` when it loads a model) does.
"""

from __future__ import annotations
