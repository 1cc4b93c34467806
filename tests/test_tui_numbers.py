"""Numbers as typed in the explorer's fields: read exactly, or an error that says why (never a guess)."""

import pytest
from whatif.tui import numbers


@pytest.mark.parametrize(
    "text, value",
    [
        ("15T", 15e12),
        ("15 T", 15e12),
        ("2k", 2000),
        ("2K", 2000),
        ("1.5e13", 1.5e13),
        ("15_000", 15000),
        ("1,024", 1024),
        ("0.0862", 0.0862),
        (".5", 0.5),
        ("3M", 3e6),
        ("1.2G", 1.2e9),
        ("-3", -3),
    ],
)
def test_engineering_notation_is_read_exactly(text, value):
    assert numbers.parse(text) == pytest.approx(value, rel=1e-15)


def test_a_trailing_unit_equal_to_the_fields_own_is_allowed():
    assert numbers.parse("80 GB", "GB") == 80
    assert numbers.parse("15T tokens", "tokens") == 15e12
    with pytest.raises(numbers.NumberError):
        numbers.parse("80 GB", "tokens")


@pytest.mark.parametrize(
    "text, words",
    [
        ("15x", "unknown suffix 'x'"),
        ("15t", "unknown suffix 't'"),
        ("15m", "milli or million"),
        ("7B", "billion or bytes"),
        ("1,5", "grouped in threes"),
        ("abc", "not a number"),
        ("", "empty"),
        ("1e400", "too large"),
    ],
)
def test_what_cannot_be_read_is_an_error_never_another_number(text, words):
    with pytest.raises(numbers.NumberError, match=words):
        numbers.parse(text)


def test_whole_numbers_are_never_rounded():
    assert numbers.parse_int("2k") == 2000
    with pytest.raises(numbers.NumberError, match="whole"):
        numbers.parse_int("1.5")


@pytest.mark.parametrize(
    "value, shown",
    [(15e12, "15 T"), (2048, "2048"), (16384, "16384"), (250_000, "250 k"), (0.0862, "0.0862"), (1e7, "10 M")],
)
def test_numbers_are_shown_in_the_form_they_are_typed(value, shown):
    assert numbers.show(value) == shown
    assert numbers.parse(shown) == pytest.approx(value)


def test_shown_numbers_read_back_to_the_same_value():
    for value in (1978.9, 989.4, 1.5e13, 123456789, 2e-5, 3.25e14, 7, 0.9):
        assert numbers.parse(numbers.show(value)) == pytest.approx(value, rel=1e-12)
