"""Cron schedules as CronJob validation parses them (robfig/cron v3 ``ParseStandard``).

Five fields (minute hour day-of-month month day-of-week) with ``*``/``?``, ranges,
steps, lists and month/weekday names, or a descriptor (``@hourly``, ``@every 1h30m``…).
``parse_schedule`` returns the error text upstream would show, or None.
"""
from __future__ import annotations

import re

_MONTHS = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (min, max, names) per field, in order
_BOUNDS = ((0, 59, None), (0, 23, None), (1, 31, None), (1, 12, _MONTHS), (0, 6, _DAYS))
_DESCRIPTORS = frozenset(("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"))
_INT64_MAX = 2 ** 63 - 1
_DURATION_UNITS = {"ns": 1, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")


def _atoi(expr: str) -> tuple[int | None, str | None]:
    """Go strconv.Atoi with its error text."""
    body = expr[1:] if expr[:1] in ("+", "-") else expr
    if not body or not body.isascii() or not body.isdigit():
        return None, f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": invalid syntax'
    v = int(expr)
    if v > _INT64_MAX or v < -_INT64_MAX - 1:
        return None, f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": value out of range'
    if v < 0:
        return None, f"negative number ({v}) not allowed: {expr}"
    return v, None


def _int_or_name(expr: str, names: dict | None) -> tuple[int | None, str | None]:
    if names is not None:
        v = names.get(expr.lower())
        if v is not None:
            return v, None
    return _atoi(expr)


def _range(expr: str, lo: int, hi: int, names: dict | None) -> str | None:
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    single = len(low_high) == 1
    if low_high[0] in ("*", "?"):
        start, end = lo, hi
    else:
        start, err = _int_or_name(low_high[0], names)
        if err:
            return err
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end, err = _int_or_name(low_high[1], names)
            if err:
                return err
        else:
            return f"too many hyphens: {expr}"
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step, err = _atoi(range_and_step[1])
        if err:
            return err
        if single:
            end = hi
    else:
        return f"too many slashes: {expr}"
    if start < lo:
        return f"beginning of range ({start}) below minimum ({lo}): {expr}"
    if end > hi:
        return f"end of range ({end}) above maximum ({hi}): {expr}"
    if start > end:
        return f"beginning of range ({start}) beyond end of range ({end}): {expr}"
    if step == 0:
        return f"step of range should be a positive number: {expr}"
    return None


def _go_duration_error(s: str) -> str | None:
    """time.ParseDuration's error for ``s``, or None when it parses."""
    orig = s
    if s[:1] in ("+", "-"):
        s = s[1:]
    if s == "0":
        return None
    if not s:
        return f'time: invalid duration "{orig}"'
    while s:
        m = _DURATION_PART.match(s)
        num, unit = m.group(1), m.group(2)
        if not num or num == ".":
            return f'time: invalid duration "{orig}"'
        if not unit:
            return f'time: missing unit in duration "{orig}"'
        if unit not in _DURATION_UNITS:
            return f'time: unknown unit "{unit}" in duration "{orig}"'
        s = s[m.end():]
    return None


def parse_schedule(spec: str) -> str | None:
    """None when ``spec`` parses, else robfig/cron's error message."""
    if not spec:
        return "empty spec string"
    if spec.startswith("TZ=") or spec.startswith("CRON_TZ="):
        i = spec.find(" ")
        if i == -1:
            return f"invalid timezone specification: {spec}"
        eq = spec.find("=")
        tz = spec[eq + 1:i]
        if tz_error(tz):
            return f"provided bad location {tz}: unknown time zone {tz}"
        spec = spec[i:].strip()
    if spec.startswith("@"):
        if spec in _DESCRIPTORS:
            return None
        if spec.startswith("@every "):
            err = _go_duration_error(spec[len("@every "):])
            return f"failed to parse duration {spec}: {err}" if err else None
        return f"unrecognized descriptor: {spec}"
    fields = spec.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    for field, (lo, hi, names) in zip(fields, _BOUNDS):
        for expr in (e for e in field.split(",") if e):
            err = _range(expr, lo, hi, names)
            if err:
                return err
    return None


def tz_error(tz: str) -> str | None:
    """time.LoadLocation's error for ``tz`` (None when it loads)."""
    if tz in ("", "UTC", "Local"):
        return None
    try:
        import zoneinfo
        zoneinfo.ZoneInfo(tz)
        return None
    except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError for odd keys
        return f"unknown time zone {tz}"
