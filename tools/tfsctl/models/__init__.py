"""Model repository: example models, validation, version listing and atomic publish.

Only ``tfsctl.models.example`` imports TensorFlow (the [tensorflow] extra); everything
else reads SavedModels and warmup records with the core's own message declarations
(``tfsctl.serving.schema``), so it works where TensorFlow is not installed.
"""

from __future__ import annotations
