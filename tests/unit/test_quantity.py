"""Resource quantities: parsing, rounding, caps and canonical strings as apimachinery's Quantity."""
from fractions import Fraction

import pytest

from skube.api.quantity import (BINARY_SI, DECIMAL_EXPONENT, DECIMAL_SI, ERR_FORMAT_WRONG, ERR_SUFFIX,
                                canonical_quantity, cpu_millis, format_quantity, memory_bytes,
                                parse_quantity, parse_quantity_format, round_up_milli)

REGEX_MESSAGE = ("quantities must match the regular expression "
                 "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


@pytest.mark.parametrize("text,value,fmt", [
    ("0", Fraction(0), DECIMAL_SI),
    ("1", Fraction(1), DECIMAL_SI),
    ("100m", Fraction(1, 10), DECIMAL_SI),
    ("0.5", Fraction(1, 2), DECIMAL_SI),
    ("1.5", Fraction(3, 2), DECIMAL_SI),
    ("250u", Fraction(1, 4000), DECIMAL_SI),
    ("3n", Fraction(3, 10 ** 9), DECIMAL_SI),
    ("2k", Fraction(2000), DECIMAL_SI),
    ("1M", Fraction(10 ** 6), DECIMAL_SI),
    ("1G", Fraction(10 ** 9), DECIMAL_SI),
    ("1T", Fraction(10 ** 12), DECIMAL_SI),
    ("1P", Fraction(10 ** 15), DECIMAL_SI),
    ("1E", Fraction(10 ** 18), DECIMAL_SI),
    ("1Ki", Fraction(1024), BINARY_SI),
    ("128Mi", Fraction(128 * 2 ** 20), BINARY_SI),
    ("1.5Gi", Fraction(3 * 2 ** 29), BINARY_SI),
    ("1Ti", Fraction(2 ** 40), BINARY_SI),
    ("1Pi", Fraction(2 ** 50), BINARY_SI),
    ("1Ei", Fraction(2 ** 60), BINARY_SI),
    ("1e3", Fraction(1000), DECIMAL_EXPONENT),
    ("1E3", Fraction(1000), DECIMAL_EXPONENT),
    ("5e-2", Fraction(5, 100), DECIMAL_EXPONENT),
    ("1e+3", Fraction(1000), DECIMAL_EXPONENT),
    ("-1.5", Fraction(-3, 2), DECIMAL_SI),
    ("+2", Fraction(2), DECIMAL_SI),
    (".5", Fraction(1, 2), DECIMAL_SI),
    ("1.", Fraction(1), DECIMAL_SI),
    ("007", Fraction(7), DECIMAL_SI),
    ("  250m ", Fraction(1, 4), DECIMAL_SI),
    (2, Fraction(2), DECIMAL_SI),
    (0.25, Fraction(1, 4), DECIMAL_SI),
])
def test_parse(text, value, fmt):
    assert parse_quantity(text) == value
    assert parse_quantity_format(text) == (value, fmt)


@pytest.mark.parametrize("text,value", [
    ("0.1n", Fraction(1, 10 ** 9)),             # rounded up to a nano
    ("1.0000000001", Fraction(10 ** 9 + 1, 10 ** 9)),
    ("-0.1n", Fraction(-1, 10 ** 9)),           # away from zero
    ("1e-20", Fraction(1, 10 ** 9)),
    ("999999Ei", Fraction(2 ** 63 - 1)),        # binary SI is capped at 2^63-1
    ("1e30", Fraction(2 ** 63 - 1)),            # so is the exponent form
    ("100E", Fraction(10 ** 20)),               # decimal SI is not capped
])
def test_parse_rounds_and_caps(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text,message", [
    ("", REGEX_MESSAGE),
    ("abc", REGEX_MESSAGE),
    ("1Qi", REGEX_MESSAGE),
    ("1.2.3", REGEX_MESSAGE),
    ("1 Gi", REGEX_MESSAGE),
    ("1Gi ", None),
    ("1kk", "unable to parse quantity's suffix"),
    ("1e", "unable to parse quantity's suffix"),
    ("1Mi3", "unable to parse quantity's suffix"),
    ("1mi", "unable to parse quantity's suffix"),
    (True, REGEX_MESSAGE),
    (float("nan"), REGEX_MESSAGE),
])
def test_parse_errors(text, message):
    if message is None:
        parse_quantity(text)
        return
    with pytest.raises(ValueError) as e:
        parse_quantity(text)
    assert str(e.value) == message


def test_error_messages_are_upstreams():
    assert ERR_FORMAT_WRONG == REGEX_MESSAGE
    assert ERR_SUFFIX == "unable to parse quantity's suffix"


@pytest.mark.parametrize("text,canonical", [
    ("0", "0"),
    ("0Mi", "0"),
    ("100m", "100m"),
    ("0.1", "100m"),
    ("0.5", "500m"),
    ("1000m", "1"),
    ("1500m", "1500m"),
    ("1.5", "1500m"),
    ("2000", "2k"),
    ("1.2345", "1234500u"),
    ("12e3", "12e3"),
    ("1e3", "1e3"),
    ("1.5e3", "1500"),
    ("5E-2", "50e-3"),
    ("1024Mi", "1Gi"),
    ("100Mi", "100Mi"),
    ("0.5Gi", "512Mi"),
    ("1.5Ki", "1536"),
    ("1023Ki", "1023Ki"),
    ("512", "512"),
    ("1Ei", "1Ei"),
    ("-1.5", "-1500m"),
    ("+1", "1"),
    ("1000000000000000000000", "1000E"),
    (128, "128"),
])
def test_canonical(text, canonical):
    assert canonical_quantity(text) == canonical


@pytest.mark.parametrize("value,binary,text", [
    (Fraction(1, 10), False, "100m"),
    (Fraction(3, 2), False, "1500m"),
    (Fraction(1500), False, "1500"),
    (Fraction(2 ** 30), True, "1Gi"),
    (Fraction(2 ** 30), False, "1073741824"),
    (Fraction(1000), True, "1k"),          # below 1024: decimal SI, as upstream
    (Fraction(3, 2), True, "1500m"),        # fractional: decimal SI
    (Fraction(1, 3), False, "333333334n"),  # rounded up to a nano
    (0, False, "0"),
    ("250m", False, "250m"),
])
def test_format(value, binary, text):
    assert format_quantity(value, binary) == text


@pytest.mark.parametrize("text,rounded", [
    ("0.5m", "1m"), ("1.0001", "1001m"), ("100m", "100m"), ("-0.5m", "-1m"), ("3", "3"),
])
def test_round_up_milli(text, rounded):
    assert format_quantity(round_up_milli(parse_quantity(text))) == rounded


@pytest.mark.parametrize("q,millis", [("250m", 250), ("1", 1000), ("0.1", 100), ("1.5", 1500),
                                      ("1n", 1), (2, 2000), ("0", 0)])
def test_cpu_millis(q, millis):
    assert cpu_millis(q) == millis


@pytest.mark.parametrize("q,nbytes", [("1Ki", 1024), ("128Mi", 134217728), ("1G", 10 ** 9), ("1.5", 2),
                                      ("500m", 1), (42, 42)])
def test_memory_bytes(q, nbytes):
    assert memory_bytes(q) == nbytes


def test_fraction_passes_through():
    f = Fraction(7, 3)
    assert parse_quantity(f) is f
