from __future__ import annotations

from datetime import timedelta

import pytest

from infra.keys.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", timedelta(seconds=90)), ("15m", timedelta(minutes=15)), ("24h", timedelta(hours=24)), ("30d", timedelta(days=30)), ("1h30m", timedelta(minutes=90)), ("0s", timedelta(0))],
)
def test_parse(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "24", "h", "1w", "-5m", "5 m", "1h30"])
def test_bad_durations_say_what_a_good_one_looks_like(text):
    with pytest.raises(ValueError, match="e.g. 90s, 15m, 24h"):
        parse_duration(text)


def test_format():
    assert format_duration(timedelta(days=2, hours=3, minutes=4)) == "2d3h4m"
    assert format_duration(timedelta(seconds=75)) == "1m15s"
    assert format_duration(timedelta(0)) == "0s"
    assert format_duration(-timedelta(minutes=5)) == "-5m"
