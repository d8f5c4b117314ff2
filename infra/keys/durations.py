"""Durations on the command line: `90s`, `15m`, `24h`, `30d`, or combinations such as `1h30m`."""

from __future__ import annotations

import re
from datetime import timedelta

_PART_RE = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """Parses a duration or raises ValueError saying what a valid one looks like."""
    cleaned = text.strip().lower()
    if not cleaned or _PART_RE.sub("", cleaned):
        raise ValueError(f"{text!r} is not a duration; write a number with a unit s, m, h or d, e.g. 90s, 15m, 24h, 1h30m")
    total = timedelta()
    for amount, unit in _PART_RE.findall(cleaned):
        total += timedelta(**{_UNITS[unit]: int(amount)})
    return total


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{seconds}s" if seconds and not days else ""]
    return sign + ("".join(parts) or "0s")
