"""Parsing and formatting of durations and memory sizes."""

import pytest

from cylc_hub.spawners.form_units import (
    DURATION_RULE,
    MEMORY_RULE,
    format_clock,
    format_duration,
    format_memory,
    parse_duration,
    parse_memory,
)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90m", 5400),
        ("90min", 5400),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("1d12h", 129600),
        ("45s", 45),
        ("0m", 0),
        ("1:30:00", 5400),
        ("0:00:59", 59),
        ("2-00:00:00", 172800),
        ("100:00:00", 360000),
        ("PT2H", 7200),
        ("pt90m", 5400),
        ("P1DT6H", 108000),
        ("P2D", 172800),
        ("PT1H30M15S", 5415),
        (" 2H ", 7200),
        (7200, 7200),
    ],
)
def test_parse_duration_valid(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "value",
    ["", "90", "1:30", "1:60:00", "1:5:00", "h", "P", "PT", "P1Y", "P1M", "2 hours", "1.5h",
     "-2h", "2h90", "２h", "<b>2h</b>", "2h; rm -rf ~", "9" * 100 + "h", 1.5, True, None, [], {}],
)
def test_parse_duration_invalid(value):
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert str(caught.value) == DURATION_RULE


@pytest.mark.parametrize(
    "text, mib",
    [
        ("512M", 512),
        ("512", 512),
        ("4G", 4096),
        ("4g", 4096),
        ("4GB", 4096),
        ("4GiB", 4096),
        ("4 G", 4096),
        ("1.5G", 1536),
        ("0.5G", 512),
        ("2048K", 2),
        ("1T", 1048576),
        ("1P", 1024**3),
        (4096, 4096),
    ],
)
def test_parse_memory_valid(text, mib):
    assert parse_memory(text) == mib


@pytest.mark.parametrize(
    "value",
    ["", "G", "4X", "4 GB RAM", "-1G", "1e3M", "4,5G", "٤G", "<i>4G</i>", "9" * 100 + "G",
     1.5, True, None, [], {}],
)
def test_parse_memory_invalid(value):
    with pytest.raises(ValueError) as caught:
        parse_memory(value)
    assert str(caught.value) == MEMORY_RULE


@pytest.mark.parametrize("text", ["1K", "1.1G", "0.3M", "1500K"])
def test_parse_memory_not_whole_mib(text):
    with pytest.raises(ValueError) as caught:
        parse_memory(text)
    assert "whole number of MiB" in str(caught.value)


@pytest.mark.parametrize(
    "seconds, short, clock",
    [(0, "0s", "0:00:00"), (59, "59s", "0:00:59"), (5400, "1h30m", "1:30:00"),
     (86400, "24h", "24:00:00"), (90061, "25h1m1s", "25:01:01")],
)
def test_format_duration_and_clock(seconds, short, clock):
    assert format_duration(seconds) == short
    assert format_clock(seconds) == clock
    assert parse_duration(short) == seconds
    assert parse_duration(clock) == seconds


@pytest.mark.parametrize("mib, text", [(0, "0M"), (512, "512M"), (1536, "1536M"), (4096, "4G"),
                                       (1048576, "1T")])
def test_format_memory_round_trip(mib, text):
    assert format_memory(mib) == text
    assert parse_memory(text) == mib
