"""Exit statuses and the error hierarchy every layer of tfsctl raises.

Adapters translate library errors (helm, kubernetes, grpc, oss2) into these;
``tfsctl.cli.main`` is the one place that catches them, prints
``tfsctl: error: <message>`` and exits with the carried status.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Process exit codes, stable for scripts and CI jobs."""

    SUCCESS = 0
    ERROR = 1
    USAGE = 2
    NOT_FOUND = 3
    UNAVAILABLE = 4
    TIMEOUT = 5
    CONFLICT = 6
    CHECK_FAILED = 7
    INTERRUPTED = 130


class ToolkitError(Exception):
    """Base class: a one-line, user-facing message and an exit status."""

    exit_status: ExitStatus = ExitStatus.ERROR

    def __init__(self, message: str, *, exit_status: ExitStatus | None = None) -> None:
        super().__init__(message)
        if exit_status is not None:
            self.exit_status = exit_status


class InvalidInput(ToolkitError):
    """A flag, file or value is wrong; the message names it."""

    exit_status = ExitStatus.USAGE


class NotFound(ToolkitError):
    """Something named by the user does not exist (release, model, label, version)."""

    exit_status = ExitStatus.NOT_FOUND


class ReleaseNotFound(NotFound):
    pass


class ModelNotFound(NotFound):
    pass


class VersionNotAvailable(ToolkitError):
    exit_status = ExitStatus.UNAVAILABLE


class Unavailable(ToolkitError):
    """A server, cluster or endpoint cannot be reached."""

    exit_status = ExitStatus.UNAVAILABLE


class Timeout(ToolkitError):
    exit_status = ExitStatus.TIMEOUT


class Conflict(ToolkitError):
    """Another operation holds the resource (pending release, promotion in progress)."""

    exit_status = ExitStatus.CONFLICT


class PromotionRejected(ToolkitError):
    exit_status = ExitStatus.CHECK_FAILED


class CheckFailed(ToolkitError):
    """A verification (autoscaling, thresholds, fleet consistency) did not hold."""

    exit_status = ExitStatus.CHECK_FAILED
