"""Container logs the way the kubelet serves them (``GET /containerLogs/{ns}/{pod}/{container}``).

Pure: query parsing and selecting the bytes to return. A container's output is
kept as raw bytes (``<ns>_<pod>_<container>.log``, readable as it is) next to an
index of ``<offset> <unix time>`` lines, one per chunk the agent copied from the
container's stdout/stderr, which gives each line its arrival time for
``timestamps`` and ``sinceSeconds``/``sinceTime``. The file of the previous run is
kept as ``*.previous.log`` for ``previous=true``.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from dataclasses import dataclass

from tfsctl.errors import InvalidInput

Index = list[tuple[int, float]]  # (byte offset where a chunk starts, arrival time), ascending offsets

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def _flag(params: dict[str, list[str]], name: str) -> bool:
    value = (params.get(name) or [""])[-1].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidInput(f"query parameter {name}={value!r}: expected true or false")


def _count(params: dict[str, list[str]], name: str, minimum: int) -> int | None:
    values = params.get(name)
    if not values:
        return None
    try:
        number = int(values[-1])
    except ValueError:
        raise InvalidInput(f"query parameter {name}={values[-1]!r}: expected an integer") from None
    if number < minimum:
        raise InvalidInput(f"query parameter {name}={number}: must be at least {minimum}")
    return number


def parse_rfc3339(text: str) -> float:
    """Unix time of an RFC 3339 stamp (``2024-01-02T03:04:05.123456789Z`` or with an offset)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    if "." in value:  # Python parses at most microseconds
        head, _, rest = value.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        value = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"query parameter sinceTime={text!r}: expected an RFC 3339 time") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    return stamp.timestamp()


def format_rfc3339_nano(when: float) -> str:
    """The kubelet's timestamp prefix: RFC 3339 with nanoseconds in UTC."""
    stamp = dt.datetime.fromtimestamp(when, dt.timezone.utc)
    nanos = round((when - int(when)) * 1e9) if when >= 0 else 0
    nanos = min(nanos, 999_999_999)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


@dataclass(frozen=True)
class LogQuery:
    """The kubelet's ``PodLogOptions`` as query parameters (what the API server forwards)."""

    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None
    since: float | None = None  # unix time; lines that arrived earlier are skipped

    @classmethod
    def parse(cls, params: dict[str, list[str]], now: float) -> LogQuery:
        since_seconds = _count(params, "sinceSeconds", 1)
        since_time = (params.get("sinceTime") or [""])[-1]
        if since_seconds is not None and since_time:
            raise InvalidInput("query parameters sinceSeconds and sinceTime are exclusive")
        since = now - since_seconds if since_seconds is not None else None
        if since_time:
            since = parse_rfc3339(since_time)
        return cls(
            follow=_flag(params, "follow"),
            previous=_flag(params, "previous"),
            timestamps=_flag(params, "timestamps"),
            tail_lines=_count(params, "tailLines", 0),
            limit_bytes=_count(params, "limitBytes", 1),
            since=since,
        )


def parse_index(text: str) -> Index:
    """The index file's entries; a torn last line (written concurrently) is ignored."""
    out: Index = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        try:
            out.append((int(parts[0]), float(parts[1])))
        except ValueError:
            continue
    return out


def time_at(index: Index, offset: int, default: float) -> float:
    """Arrival time of the byte at ``offset``: the time of the chunk that contains it."""
    position = bisect.bisect_right(index, (offset, float("inf"))) - 1
    return index[position][1] if position >= 0 else default


def split_lines(data: bytes, base: int = 0) -> list[tuple[int, bytes]]:
    """``(offset, line)`` for each line of ``data`` (newline kept; the last one may lack it)."""
    lines = []
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end == -1 else end + 1
        lines.append((base + start, data[start:end]))
        start = end
    return lines


def render_lines(lines: list[tuple[int, bytes]], index: Index, timestamps: bool, default: float) -> bytes:
    if not timestamps:
        return b"".join(line for _, line in lines)
    return b"".join(
        format_rfc3339_nano(time_at(index, offset, default)).encode() + b" " + line for offset, line in lines
    )


def select(data: bytes, index: Index, query: LogQuery, default_time: float) -> bytes:
    """What a non-follow request returns for a log holding ``data`` (``sinceX``, tail, timestamps, limit).

    ``default_time`` dates bytes the index does not cover (a log written before indexing).
    """
    lines = split_lines(data)
    if query.since is not None:
        since = query.since
        lines = [(o, line) for o, line in lines if time_at(index, o, default_time) >= since]
    if query.tail_lines is not None:
        lines = lines[len(lines) - query.tail_lines :] if query.tail_lines else []
    out = render_lines(lines, index, query.timestamps, default_time)
    if query.limit_bytes is not None:
        out = out[: query.limit_bytes]
    return out


def follow_start(data: bytes, index: Index, query: LogQuery, default_time: float) -> tuple[bytes, int]:
    """(the bytes to send first, the file offset to follow from) for ``follow=true``.

    Only complete lines go out; a trailing partial line is sent once it is finished.
    """
    complete = data[: data.rfind(b"\n") + 1]
    unlimited = dataclasses.replace(query, limit_bytes=None)
    return select(complete, index, unlimited, default_time), len(complete)
