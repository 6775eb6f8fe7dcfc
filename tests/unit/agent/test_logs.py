from __future__ import annotations

import pytest

from tfsbed.cluster.agent.logs import (
    LogQuery,
    follow_start,
    format_rfc3339_nano,
    parse_index,
    parse_rfc3339,
    select,
    time_at,
)
from tfsctl.errors import InvalidInput

DATA = b"one\ntwo\nthree\nfour\n"
# "one\ntwo\n" arrived at t=100, "three\n" at t=200, "four\n" at t=300
INDEX = [(0, 100.0), (8, 200.0), (14, 300.0)]


def query(**params: str) -> LogQuery:
    return LogQuery.parse({k: [v] for k, v in params.items()}, now=1000.0)


def test_plain_request_returns_the_whole_log() -> None:
    assert select(DATA, INDEX, query(), 0.0) == DATA


def test_tail_lines_keeps_the_last_lines_and_zero_keeps_none() -> None:
    assert select(DATA, INDEX, query(tailLines="2"), 0.0) == b"three\nfour\n"
    assert select(DATA, INDEX, query(tailLines="0"), 0.0) == b""
    assert select(DATA, INDEX, query(tailLines="10"), 0.0) == DATA


def test_limit_bytes_cuts_the_output_after_tail() -> None:
    assert select(DATA, INDEX, query(tailLines="2", limitBytes="8"), 0.0) == b"three\nfo"


def test_since_seconds_skips_lines_that_arrived_earlier() -> None:
    q = LogQuery.parse({"sinceSeconds": ["850"]}, now=1000.0)  # since t=150
    assert select(DATA, INDEX, q, 0.0) == b"three\nfour\n"


def test_since_time_accepts_rfc3339_with_nanoseconds() -> None:
    q = query(sinceTime="1970-01-01T00:04:10.123456789Z")  # t=250.123...
    assert select(DATA, INDEX, q, 0.0) == b"four\n"


def test_timestamps_prefix_each_line_with_its_arrival_time() -> None:
    out = select(DATA, INDEX, query(timestamps="true", tailLines="2"), 0.0)
    assert out == b"1970-01-01T00:03:20.000000000Z three\n1970-01-01T00:05:00.000000000Z four\n"


def test_unindexed_bytes_take_the_default_time() -> None:
    assert time_at([], 5, 42.0) == 42.0
    assert time_at([(10, 7.0)], 5, 42.0) == 42.0
    assert time_at(INDEX, 9, 0.0) == 200.0


def test_rfc3339_round_trip_keeps_microseconds() -> None:
    stamp = format_rfc3339_nano(1700000000.25)
    assert stamp == "2023-11-14T22:13:20.250000000Z"
    assert parse_rfc3339(stamp) == pytest.approx(1700000000.25)
    assert parse_rfc3339("2023-11-14T23:13:20+01:00") == 1700000000.0


def test_index_parsing_ignores_a_torn_last_line() -> None:
    assert parse_index("0 1.5\n10 2.5\n20") == [(0, 1.5), (10, 2.5)]


def test_follow_starts_with_complete_lines_and_resumes_at_the_partial_one() -> None:
    first, offset = follow_start(b"a\nb\npart", [], query(follow="true", tailLines="1"), 0.0)
    assert (first, offset) == (b"b\n", 4)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tailLines": "-1"}, "tailLines=-1: must be at least 0"),
        ({"limitBytes": "x"}, "limitBytes='x': expected an integer"),
        ({"follow": "maybe"}, "follow='maybe': expected true or false"),
        ({"sinceSeconds": "5", "sinceTime": "2024-01-01T00:00:00Z"}, "exclusive"),
        ({"sinceTime": "yesterday"}, "sinceTime='yesterday'"),
    ],
)
def test_bad_query_parameters_name_the_parameter(params: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        query(**params)
