"""Parsing and formatting of durations and memory sizes for the options form.

A duration is normalized to whole seconds and a memory size to whole MiB,
both as ``int``, because those are what ``user_options`` stores and what
batch schedulers accept (Slurm's ``--time`` takes ``H:MM:SS`` and
``--mem`` takes MiB without a unit). Parsers raise ``ValueError`` with a
message that can follow a field's label, such as ``must be a duration such
as 90m, 2h, 1:30:00 or PT2H``.
"""

from __future__ import annotations

import re
from typing import Any

DURATION_RULE = "must be a duration such as 90m, 2h, 1h30m, 1:30:00 or PT2H"
MEMORY_RULE = "must be a memory size such as 512M, 4G or 1.5G (a number alone is MiB)"

# Maximum duration (366 days) and memory size (1 EiB) of a field that declares
# no max: beyond any batch job, and well inside a signed 64-bit integer.
MAX_DURATION_SECONDS = 366 * 24 * 3600
MAX_MEMORY_MIB = 2**40

# Maximum length of text that is parsed, so that a huge submission fails fast.
_MAX_UNIT_TEXT = 64

_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}

# "1d2h30m15s" and any subset, in that order, with optional spaces.
_UNITS_DURATION = re.compile(
    r"(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?\s*(?:(?P<m>\d+)\s*m(?:in)?)?\s*(?:(?P<s>\d+)\s*s)?",
    re.IGNORECASE | re.ASCII,
)
# "H:MM:SS" or "D-HH:MM:SS", as Slurm writes time limits.
_CLOCK_DURATION = re.compile(r"(?:(?P<d>\d+)-)?(?P<h>\d+):(?P<m>[0-5]\d):(?P<s>[0-5]\d)", re.ASCII)
# ISO 8601 durations with days and time parts only: years and months have no fixed length.
_ISO_DURATION = re.compile(
    r"P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?", re.IGNORECASE | re.ASCII
)

# Binary units, as Slurm reads --mem: 1G is 1024 MiB.
_MEMORY_UNIT_MIB = {"": 1, "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024**2, "p": 1024**3}
_MEMORY = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[kmgtp]?)(?:i?b)?", re.IGNORECASE | re.ASCII)


def parse_duration(value: Any) -> int:
    """Return a duration in whole seconds.

    Accepts an ``int`` of seconds (the stored form), or text: units
    (``90m``, ``2h``, ``1d12h``, ``45s``), a clock (``1:30:00``,
    ``2-00:00:00``) or ISO 8601 (``PT2H``, ``P1DT6H``). Text without a unit
    is rejected, because schedulers disagree on whether it means minutes or
    seconds. Raises ``ValueError`` with the rule otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(DURATION_RULE)
    if isinstance(value, int):
        return value

    text = value.strip()
    if not text or len(text) > _MAX_UNIT_TEXT:
        raise ValueError(DURATION_RULE)

    for pattern in (_CLOCK_DURATION, _ISO_DURATION, _UNITS_DURATION):
        match = pattern.fullmatch(text)
        if match and any(match.groupdict().values()):
            return sum(int(match[unit] or 0) * seconds for unit, seconds in _UNIT_SECONDS.items())
    raise ValueError(DURATION_RULE)


def parse_memory(value: Any) -> int:
    """Return a memory size in whole MiB.

    Accepts an ``int`` of MiB (the stored form), or text: a number with an
    optional binary unit K, M, G, T or P, optionally followed by ``B`` or
    ``iB`` (``512M``, ``4G``, ``1.5GiB``). A number alone is MiB. A size
    that is not a whole number of MiB is rejected. Raises ``ValueError``
    with the rule otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(MEMORY_RULE)
    if isinstance(value, int):
        return value

    text = value.strip()
    match = _MEMORY.fullmatch(text) if len(text) <= _MAX_UNIT_TEXT else None
    if not match:
        raise ValueError(MEMORY_RULE)

    # Whole and fractional parts are scaled separately to stay exact.
    whole, _, fraction = match["number"].partition(".")
    unit_kib = int(_MEMORY_UNIT_MIB[match["unit"].lower()] * 1024)
    kib = int(whole) * unit_kib
    if fraction:
        kib += int(fraction) * unit_kib // 10 ** len(fraction)
        exact = int(fraction) * unit_kib % 10 ** len(fraction) == 0
    else:
        exact = True
    if not exact or kib % 1024:
        raise ValueError("must be a whole number of MiB, such as 512M or 1.5G")
    return kib // 1024


def format_duration(seconds: int) -> str:
    """Return seconds in the shortest unit form, e.g. ``4h``, ``36h``, ``1h30m`` or ``0s``."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    remaining = abs(seconds)
    parts = []
    # Hours are the largest unit because walltimes are read in hours: 24h, not 1d.
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


def format_clock(seconds: int) -> str:
    """Return non-negative seconds as ``H:MM:SS`` (hours may exceed 24), as Slurm and PBS take them."""
    hours, rest = divmod(seconds, 3600)
    minutes, remainder = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{remainder:02d}"


def format_memory(mib: int) -> str:
    """Return MiB in the largest binary unit that keeps a whole number, e.g. ``4G`` or ``1536M``."""
    for unit, size in (("P", 1024**3), ("T", 1024**2), ("G", 1024)):
        if mib and mib % size == 0:
            return f"{mib // size}{unit}"
    return f"{mib}M"
