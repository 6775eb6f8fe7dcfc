"""TF Serving's serving rules as pure functions: status codes, version dirs, labels.

The local server (``tfsbed.serve.core``) applies these; they are kept free of
I/O so they can be unit-tested directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# TF Serving status code -> HTTP status (http_server.cc ToHTTPStatusCode).
HTTP_STATUS: dict[str, int] = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}

CODE_NUMBERS: dict[str, int] = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}


class ServingError(Exception):
    """A TF Serving status: a canonical code name and the message clients see."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def version_dirs(names: Iterable[str]) -> list[int]:
    """Version numbers among the entries of a model base path (all-digit names), ascending."""
    return sorted({int(n) for n in names if n.isdigit()})


def unsupported_base_path(base_path: str) -> str | None:
    """Why TF Serving cannot read ``base_path``, or None.

    ``tensorflow_model_server`` 2.7 and later is built without TensorFlow's S3 file system
    (tensorflow/serving#1963): an ``s3://`` base path never finds a version, and
    ``FileSystemStoragePathSource`` logs this error on every poll.
    """
    if base_path.startswith("s3://"):
        return (
            f"Could not find base path {base_path} with error UNIMPLEMENTED: File system scheme 's3' "
            f"not implemented (file: '{base_path}')"
        )
    return None


def check_labels(
    model: str,
    new_labels: Mapping[str, int],
    old_labels: Mapping[str, int],
    states: Mapping[int, str],
    allow_unavailable: bool,
) -> None:
    """TF Serving's label rule; raises ``ServingError`` FAILED_PRECONDITION/INVALID_ARGUMENT.

    ``ServerCore::UpdateModelVersionLabelMap``: every label of the new config must point at
    a version that is AVAILABLE now (labels are assigned before the config's models load).
    With ``--allow_version_labels_for_unavailable_models`` a label may point at any version
    when it is new for the model or already points at that version; moving an existing
    label to a version that is not AVAILABLE still fails the whole reload.
    """
    for label, version in sorted(new_labels.items()):
        if allow_unavailable and old_labels.get(label, version) == version:
            continue
        if states.get(version) != "AVAILABLE":
            raise ServingError(
                "FAILED_PRECONDITION",
                f"Request to assign label to version {version} of model {model}, "
                "which is not currently available for inference",
            )


def input_mismatch_message(sent: Iterable[str], expected: Iterable[str]) -> str:
    """TF Serving's predict_util message for inputs that do not match the signature."""
    sent_set, expected_set = set(sent), set(expected)
    extra = ",".join(sorted(sent_set - expected_set))
    missing = ",".join(sorted(expected_set - sent_set))
    return (
        f"input size does not match signature: {len(sent_set)}!={len(expected_set)} "
        f"len({{{','.join(sorted(sent_set))}}}) != len({{{','.join(sorted(expected_set))}}}). "
        f"Sent extra: {{{extra}}}. Missing but required: {{{missing}}}."
    )
