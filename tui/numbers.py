"""Numbers as people type and read them: 15T, 2k, 1.5e13, 15_000, "80 GB".

`parse` turns text into a number or raises `NumberError` with a message that says what was not understood
and what is allowed; it never guesses (an unknown suffix is an error, not a number with the suffix
dropped). `show` writes a number back in the same engineering form ("15 T"), short enough to edit.
Nothing here imports Textual.
"""

from __future__ import annotations

import math
import re

# SI prefixes that a number may end with. Lower-case "m" (milli) and "b"/"B" (billion or bytes?) are not
# accepted: each is read two ways, so it is an error that says which to type instead.
PREFIXES = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
AMBIGUOUS = {
    "m": "'m' could mean milli or million: write M for million, or the decimal (0.001)",
    "b": "'b' could mean billion or bytes: write G for a billion (1e9)",
    "B": "'B' could mean billion or bytes: write G for a billion (1e9)",
}
EXAMPLES = "such as 15T, 2k, 1.5e13 or 15_000"

_NUMBER = re.compile(
    r"""^(?P<sign>[+-]?)
        (?P<mantissa>(\d[\d_,]*)?(\.\d*)?)
        (?P<exponent>[eE][+-]?\d+)?
        \s*(?P<suffix>[A-Za-z]?)$""",
    re.VERBOSE,
)


class NumberError(ValueError):
    """Text that is not a number; the message says why and what is allowed."""


def parse(text: str, unit: str = "") -> float:
    """The number `text` means. Thousands separators (`,` or `_`) are dropped, one SI suffix (k, M, G, T,
    P) multiplies, and a trailing `unit` equal to the field's own is allowed ("80 GB" in a GB field)."""
    s = str(text).strip()
    if unit and s.lower().endswith(unit.lower()) and len(s) > len(unit):
        s = s[: -len(unit)].rstrip()
    if not s:
        raise NumberError("empty")
    m = _NUMBER.match(s)
    if m is None or not any(ch.isdigit() for ch in m.group("mantissa")):
        raise NumberError(f"'{text}' is not a number; allowed: a number {EXAMPLES}")
    mantissa = m.group("mantissa")
    if "," in mantissa or "_" in mantissa:
        whole = mantissa.split(".")[0]
        groups = re.split(r"[,_]", whole)
        # 1,024 and 15_000 are separators; "1,5" (a decimal comma?) is not read as 15.
        if any(len(g) != 3 for g in groups[1:]) or not groups[0]:
            raise NumberError(f"'{text}': digits are grouped in threes (1,024 or 15_000); the decimal mark is '.'")
    suffix = m.group("suffix")
    if suffix in ("e", "E"):
        raise NumberError(f"'{text}' is not a number: an exponent needs digits (1e12)")
    if suffix in AMBIGUOUS:
        raise NumberError(AMBIGUOUS[suffix])
    if suffix and suffix not in PREFIXES:
        raise NumberError(f"'{text}': unknown suffix '{suffix}'; allowed: k, M, G, T or P ({EXAMPLES})")
    value = float(m.group("sign") + mantissa.replace(",", "").replace("_", "") + (m.group("exponent") or ""))
    value *= PREFIXES.get(suffix, 1.0)
    if not math.isfinite(value):
        raise NumberError(f"'{text}' is too large")
    return value


def parse_int(text: str, unit: str = "") -> int:
    """A whole number (2k is 2000; 1.5 is an error, never rounded)."""
    value = parse(text, unit)
    if not float(value).is_integer():
        raise NumberError(f"'{text}' is not a whole number")
    return int(value)


def _trim(x: float, digits: int) -> str:
    text = f"{x:.{digits}g}"
    if "e" in text:  # too many digits for %g: write them out
        text = f"{x:.{max(digits - 1, 0)}f}".rstrip("0").rstrip(".")
    return text


def show(value: float | int | None, digits: int = 4) -> str:
    """A number as the user would type it: 2048, 0.0862, 15 T, 250 k; '' for None.

    Large round numbers take an SI suffix when that keeps every digit (15e12 -> '15 T', 16384 stays
    '16384': '16.384 k' would be harder to edit); everything else is written plainly, never as 1.5e+13."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    x = float(value)
    if not math.isfinite(x):
        return str(value)
    if x == 0:
        return "0"
    for prefix in ("P", "T", "G", "M", "k"):
        factor = PREFIXES[prefix]
        if abs(x) >= max(factor, 1e4):
            scaled = x / factor
            text = _trim(scaled, digits)
            if math.isclose(float(text), scaled, rel_tol=1e-12, abs_tol=0):
                return f"{text} {prefix}"
            break
    if abs(x) >= 1e15 or (abs(x) < 1e-4):
        return f"{x:.{digits}g}"
    if x.is_integer():
        return str(int(x))
    return _trim(x, 6)


def grouped(value: float | int | None) -> str:
    """1,024 (a count for reading, not editing)."""
    if value is None:
        return ""
    x = float(value)
    return f"{x:,.0f}" if x.is_integer() else f"{x:,.6g}"


__all__ = ["NumberError", "parse", "parse_int", "show", "grouped"]
