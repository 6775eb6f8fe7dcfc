"""Which optional extra brings which third-party module (pure).

The core of tfsctl (deploy, promote, rollback, scale, status, validate, upload to a
directory) needs none of these; a command that does needs its extra, and says so in
one line when the module is missing.
"""

from __future__ import annotations

from tfsctl.errors import ToolkitError

# top-level module -> the extra (in pyproject.toml) that installs it
EXTRA_OF: dict[str, str] = {
    "tensorflow": "tensorflow",
    "tensorflow_serving": "grpc",
    "grpc": "grpc",
    "locust": "load",
    "gevent": "load",
    "matplotlib": "load",
    "oss2": "oss",
}


class MissingExtra(ToolkitError):
    """An optional dependency of the command is not installed."""


def missing_extra(exc: ModuleNotFoundError) -> MissingExtra | None:
    """The one-line error for ``exc`` when an extra provides the module, else None."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRA_OF.get(top)
    if extra is None:
        return None
    return MissingExtra(
        f"this command needs the [{extra}] extra (module {top} is not installed): "
        f"pip install 'tfsctl[{extra}]'"
    )
