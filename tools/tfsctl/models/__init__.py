"""Model repository: example models, validation, version listing and atomic publish.

Only ``tfsctl.models.example`` imports TensorFlow; everything else reads the
SavedModel and warmup protos through a runtime-free proto import.
"""

from __future__ import annotations
