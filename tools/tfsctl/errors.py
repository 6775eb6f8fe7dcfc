"""Exit statuses and the error hierarchy every layer of tfsctl raises.

Adapters translate library errors (helm, kubernetes, grpc, oss2) into these;
``tfsctl.cli.main`` is the one place that catches them, prints
``tfsctl: error: <message>`` and exits with the carried status.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence


class ExitStatus(enum.IntEnum):
    """Process exit codes, stable for scripts and CI jobs (``tfsctl --help`` prints the table)."""

    SUCCESS = 0
    ERROR = 1
    USAGE = 2
    NOT_FOUND = 3
    UNAVAILABLE = 4
    TIMEOUT = 5
    CONFLICT = 6
    CHECK_FAILED = 7
    INTERRUPTED = 130

    @property
    def meaning(self) -> str:
        """What a script may conclude from this status (one line, for the help epilog)."""
        return _MEANINGS[self]


_MEANINGS = {
    ExitStatus.SUCCESS: "done",
    ExitStatus.ERROR: "unexpected failure (an internal error or a tool that failed in an unknown way)",
    ExitStatus.USAGE: "a flag, file, value or credential is wrong: the message names it",
    ExitStatus.NOT_FOUND: "a release, model, label, version or file does not exist",
    ExitStatus.UNAVAILABLE: "a cluster, server or bucket cannot be reached, or a version is not loaded",
    ExitStatus.TIMEOUT: "waited the whole --timeout without the change completing",
    ExitStatus.CONFLICT: "another operation holds the release (a promotion, a pending helm upgrade, an HPA)",
    ExitStatus.CHECK_FAILED: "a check did not hold (values, fleet consistency, thresholds, autoscaling)",
    ExitStatus.INTERRUPTED: "interrupted (Ctrl-C)",
}


def exit_status_table() -> str:
    """``code  meaning`` lines for every exit status, as ``tfsctl --help`` shows them."""
    return "\n".join(f"{int(s):>3}  {s.meaning}" for s in ExitStatus)


class ToolkitError(Exception):
    """Base class: a one-line, user-facing message and an exit status.

    ``message`` is the single line a user sees: what is wrong, the value, file, flag, release,
    pod or cluster to look at and, where there is one, the command that fixes it. ``detail`` is
    what the adapter dropped to keep it one line (a tool's full stderr, a location); ``tfsctl
    -v`` shows it.
    """

    exit_status: ExitStatus = ExitStatus.ERROR

    def __init__(
        self, message: str, *, exit_status: ExitStatus | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message)
        if exit_status is not None:
            self.exit_status = exit_status
        self.detail = detail


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


def first_of(problems: Sequence[object]) -> CheckFailed:
    """One line for several findings: the first, how many more, and every one behind ``-v``."""
    more = len(problems) - 1
    suffix = f" (and {more} more problem(s): -v or -o json lists them)" if more > 0 else ""
    detail = "\n".join(f"problem: {p}" for p in problems) if more > 0 else None
    return CheckFailed(f"{problems[0]}{suffix}", detail=detail)
