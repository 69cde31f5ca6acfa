"""Kubernetes resource quantities (apimachinery ``resource.Quantity``) as exact Fractions.

A quantity is a signed decimal number with an optional suffix: decimal SI
(``n u m k M G T P E``), binary SI (``Ki Mi Gi Ti Pi Ei``) or an exponent
(``1e3``, ``5E-2``). Parsing follows upstream: values are rounded up (away from
zero) to nano precision, binary and exponent forms are capped at 2^63-1, and the
canonical string keeps the format family the value was written in (``1024Mi`` ->
``1Gi``, ``0.5`` -> ``500m``, ``1000m`` -> ``1``).
"""
from __future__ import annotations

import functools
from fractions import Fraction
from typing import Union

__all__ = [
    "DECIMAL_SI", "BINARY_SI", "DECIMAL_EXPONENT",
    "ERR_FORMAT_WRONG", "ERR_NUMERIC", "ERR_SUFFIX",
    "parse_quantity", "parse_quantity_format", "format_quantity", "canonical_quantity",
    "round_up_milli", "cpu_millis", "memory_bytes",
]

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

ERR_FORMAT_WRONG = ("quantities must match the regular expression "
                    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"

QuantityLike = Union[str, int, float, Fraction]

_DIGITS = frozenset("0123456789")
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12,
                     "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_NAMES = {v: k for k, v in _DECIMAL_SUFFIXES.items()}
_BINARY_NAMES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_NANO = 10 ** 9
_MAX_ALLOWED = Fraction(2 ** 63 - 1)
_ZERO = Fraction(0)


def _text(s: QuantityLike) -> str:
    if isinstance(s, str):
        return s.strip()
    if isinstance(s, bool):
        raise ValueError(ERR_FORMAT_WRONG)
    if isinstance(s, int):
        return str(s)
    if isinstance(s, float):
        return repr(s) if s == s and s not in (float("inf"), float("-inf")) else "x"
    raise ValueError(ERR_FORMAT_WRONG)


def _split(s: str) -> tuple[bool, str, str, str]:
    """(positive, integer digits, fraction digits, suffix) or ValueError."""
    end = len(s)
    pos = 0
    positive = True
    if pos < end and s[0] in "+-":
        positive = s[0] == "+"
        pos = 1
    while pos < end and s[pos] == "0":
        pos += 1
    if pos == end:
        return positive, "0", "", ""
    start = pos
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    num = s[start:pos] or "0"
    denom = ""
    if pos < end and s[pos] == ".":
        pos += 1
        start = pos
        while pos < end and s[pos] in _DIGITS:
            pos += 1
        denom = s[start:pos]
    suffix_start = pos
    while pos < end and s[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and s[pos] in "+-":
        pos += 1
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise ValueError(ERR_FORMAT_WRONG)
    return positive, num, denom, s[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """suffix -> (base, exponent, format)."""
    exp = _DECIMAL_SUFFIXES.get(suffix)
    if exp is not None:
        return 10, exp, DECIMAL_SI
    exp = _BINARY_SUFFIXES.get(suffix)
    if exp is not None:
        return 2, exp, BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        body = suffix[1:]
        digits = body[1:] if body[0] in "+-" else body
        if digits and all(c in _DIGITS for c in digits):
            return 10, int(body), DECIMAL_EXPONENT
    raise ValueError(ERR_SUFFIX)


@functools.lru_cache(maxsize=4096)
def _parse_text(s: str) -> tuple[Fraction, str]:
    if not s:
        raise ValueError(ERR_FORMAT_WRONG)
    if s == "0":
        return _ZERO, DECIMAL_SI
    positive, num, denom, suffix = _split(s)
    base, exp, fmt = _interpret(suffix)
    mantissa = int(num + denom) if (num + denom) else 0
    if mantissa == 0:
        return _ZERO, fmt
    scale = Fraction(1, 10 ** len(denom))
    if base == 2:
        value = mantissa * scale * (2 ** exp)
    elif exp > 40:          # far beyond any cap; avoid building huge integers
        value = _MAX_ALLOWED * 2 if fmt == DECIMAL_EXPONENT else mantissa * scale * 10 ** exp
    elif exp < -40:         # far below a nano: rounds up to one nano
        value = Fraction(1, _NANO)
    else:
        value = mantissa * scale * (Fraction(10) ** exp)
    # Round non-zero values up (away from zero) to nano precision: asking for a
    # tiny amount of something still gets some of it.
    if (value * _NANO).denominator != 1:
        value = Fraction(-((-value.numerator * _NANO) // value.denominator), _NANO)
    if fmt != DECIMAL_SI and value > _MAX_ALLOWED:
        value = _MAX_ALLOWED
    return (value if positive else -value), fmt


def parse_quantity_format(s: QuantityLike) -> tuple[Fraction, str]:
    """Parse a quantity; returns (value, format) where format is DecimalSI, BinarySI
    or DecimalExponent. Raises ValueError with upstream's message."""
    if isinstance(s, Fraction):
        return s, DECIMAL_SI
    return _parse_text(_text(s))


def parse_quantity(s: QuantityLike) -> Fraction:
    """Parse a Kubernetes quantity (``"100m"``, ``"1Gi"``, ``"1e3"``, ``2``) to a Fraction."""
    if isinstance(s, Fraction):
        return s
    return _parse_text(_text(s))[0]


def _round_up_nano(a: Fraction) -> Fraction:
    if (a * _NANO).denominator == 1:
        return a
    return Fraction(-((-a.numerator * _NANO) // a.denominator), _NANO)


def _format(value: Fraction, fmt: str) -> str:
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    a = _round_up_nano(-value if value < 0 else value)
    if fmt == BINARY_SI:
        if a < 1024 or a.denominator != 1:
            fmt = DECIMAL_SI
        else:
            n, e = a.numerator, 0
            while e < 6 and n % 1024 == 0:
                n //= 1024
                e += 1
            return f"{sign}{n}{_BINARY_NAMES[e]}"
    # a = m * 10^e, m an integer without trailing zeros, then e lowered to a multiple of 3
    m, e = (a * _NANO).numerator, -9
    while m % 10 == 0:
        m //= 10
        e += 1
    r = e % 3
    if r:
        m *= 10 ** r
        e -= r
    if fmt == DECIMAL_EXPONENT:
        return f"{sign}{m}" + (f"e{e}" if e else "")
    while e > 18:
        m *= 1000
        e -= 3
    return f"{sign}{m}{_DECIMAL_NAMES[e]}"


def format_quantity(value: QuantityLike, binary: bool = False) -> str:
    """Canonical string of a quantity value as upstream serialises it, in decimal SI
    (``"1500m"``, ``"2k"``) or, with ``binary``, binary SI (``"1Gi"``; values below
    1024 or with a fraction fall back to decimal SI as upstream does)."""
    return _format(parse_quantity(value), BINARY_SI if binary else DECIMAL_SI)


@functools.lru_cache(maxsize=4096)
def _canonical_text(s: str) -> str:
    value, fmt = _parse_text(s)
    return _format(value, fmt)


def canonical_quantity(s: QuantityLike) -> str:
    """Re-serialise a quantity in its canonical form, keeping its format family
    (``"0.5"`` -> ``"500m"``, ``"1024Mi"`` -> ``"1Gi"``, ``"1e3"`` -> ``"1e3"``)."""
    if isinstance(s, Fraction):
        return _format(s, DECIMAL_SI)
    return _canonical_text(_text(s))


def round_up_milli(value: Fraction) -> Fraction:
    """Round up (away from zero) to milli precision, as upstream defaulting does for
    every resource list (``SetDefaults_ResourceList``)."""
    if (value * 1000).denominator == 1:
        return value
    v = -value if value < 0 else value
    v = Fraction(-((-v.numerator * 1000) // v.denominator), 1000)
    return -v if value < 0 else v


def _ceil(f: Fraction) -> int:
    return -((-f.numerator) // f.denominator)


def cpu_millis(q: QuantityLike) -> int:
    """Milli-units of a quantity rounded up (``"250m"`` -> 250, ``"1"`` -> 1000)."""
    return _ceil(parse_quantity(q) * 1000)


def memory_bytes(q: QuantityLike) -> int:
    """Whole units of a quantity rounded up (``"1Ki"`` -> 1024, ``"1.5"`` -> 2)."""
    return _ceil(parse_quantity(q))
