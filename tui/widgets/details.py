"""The Details view: every figure of `whatif eval --json` for the current scenario, in sections.

It is built from the nested JSON record (engine/report.py `records()`) and nothing else: each object is a
section, each value a line, labelled from its key and formatted by the unit its name carries (`_s`, `_ms`,
`_gb`, `_pct`, `_usd`...). A key the engine adds later appears here without any change to the UI.
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static
from whatif.engine.errors import printable

from .. import format as fmt


def _num(v: float) -> str:
    """Four significant digits, thousands grouped: 189.6, 4,659,572, 0.1284."""
    return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:,.4g}"


# Keys holding a fraction (0.44), shown as a percentage.
FRACTIONS = {"mfu", "hfu", "goodput", "utilization"}
# Unit suffixes, longest first: (suffix, how to show a value, whether the label drops the suffix).
_UNITS = (
    ("_gb_s_per_gpu", lambda v: f"{fmt.si(v * 1e9, 'B/s')} per GPU", True),
    ("_usd_per_1m_tokens", lambda v: f"{fmt.money_small(v)} per 1M tokens", False),
    ("_wh_per_1k_tokens", lambda v: f"{_num(v)} Wh per 1k tokens", False),
    ("tokens_per_s", lambda v: f"{fmt.si(v)} tok/s", False),
    ("tokens_per_kwh", lambda v: f"{fmt.si(v)} tok/kWh", False),
    ("requests_per_s", lambda v: f"{_num(v)} req/s", False),
    ("samples_per_s", lambda v: f"{_num(v)} samples/s", False),
    ("_gb_s", lambda v: fmt.si(v * 1e9, "B/s"), True),
    ("_band_pct", lambda v: f"±{v:.0f}%", False),
    ("_pct", lambda v: f"{v:.2f}%", True),
    ("_usd", fmt.money_small, True),
    ("_mwh", lambda v: f"{_num(v)} MWh", True),
    ("_mw", lambda v: f"{_num(v)} MW", True),
    ("_kw", lambda v: f"{_num(v)} kW", True),
    ("_ms", fmt.ms, True),
    ("_min", lambda v: f"{_num(v)} min", True),
    ("_gb", lambda v: f"{_num(v)} GB", True),
    ("_w", lambda v: f"{_num(v)} W", True),
    ("_h", lambda v: f"{_num(v)} h", True),
    ("_s", fmt.seconds, True),
    ("_days", lambda v: f"{_num(v)} days", True),
    ("_t", lambda v: f"{_num(v)} t", True),
)
_TITLES = {"training": "Training", "inference": "Serving"}


def _unit_of(key: str) -> tuple[str, Any, bool] | None:
    for suffix, show, strip in _UNITS:
        if key.endswith(suffix) and (len(key) > len(suffix) or not suffix.startswith("_")):
            return suffix, show, strip
    return None


def label(key: str) -> str:
    """'step time' from 'step_time_s', 'memory' from 'memory_gb', 'tokens per s' as it is."""
    unit = _unit_of(key)
    if unit and unit[0] == "_band_pct":
        key = key[: -len("_pct")]  # 'error band'
    elif unit and unit[2]:
        key = key[: -len(unit[0])]
    return key.replace("_", " ").strip() or key


def value_text(key: str, value: Any, unit_hint: str | None = None) -> str:
    """One value as text, by the unit its key (or its section's key) names."""
    if value is None:
        return fmt.DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and key.endswith("_ms"):  # a latency band: [low, high], high None past saturation
            low, high = value
            return f"{value_text(key, low)} to {'unbounded' if high is None else value_text(key, high)}"
        return ", ".join(value_text(key, v, unit_hint) for v in value)
    if not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
        return str(value)
    if key in FRACTIONS:
        return fmt.pct(value)
    unit = _unit_of(key)
    if unit is None and unit_hint:
        unit = _unit_of("x" + unit_hint)
    if unit is not None:
        return unit[1](value)
    if isinstance(value, int):
        return f"{value:,}"
    return _num(value)


def _rows(data: dict, depth: int, hint: str | None, out: list[tuple[int, str, str, bool]]) -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            unit = _unit_of(key)
            out.append((depth, label(key), "", True))
            _rows(value, depth + 1, unit[0] if unit else hint, out)
        else:
            out.append((depth, label(key), value_text(key, value, hint), False))


def flatten(record: dict) -> list[tuple[str, list[tuple[int, str, str, bool]]]]:
    """(section title, [(depth, label, value, is_heading)]) for each non-empty section of a record."""
    sections = []
    for key, value in record.items():
        if isinstance(value, dict):
            rows: list[tuple[int, str, str, bool]] = []
            _rows(value, 0, None, rows)
            sections.append((_TITLES.get(key, label(key)), rows))
    return sections


class DetailsView(VerticalScroll):
    """Every figure of the JSON record, one section per workload (absent workloads say so)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._key: Any = None
        self.lines: list[str] = []  # "section > label: value" for every line shown (tests read these)

    def compose(self):
        yield Static("", id="details-caption", markup=False)
        yield Static("", id="details-body")

    def show(self, record: dict | None, caption: str, stale: frozenset[str] = frozenset()) -> None:
        key = (repr(record), caption, stale)
        if key == self._key:
            return
        self._key = key
        self.query_one("#details-caption", Static).update(caption)
        if record is None:
            self.query_one("#details-body", Static).update("no figures yet")
            return
        parts: list[Text | Table] = []
        lines: list[str] = []
        for name, section in (("training", record.get("training")), ("inference", record.get("inference"))):
            title = _TITLES[name] + ("  (stale: from the last valid input)" if name in stale else "")
            parts.append(Text(title, style="bold"))
            if section is None:
                parts.append(Text(f"  no {_TITLES[name].lower()} workload", style="dim"))
                continue
            table = Table.grid(padding=(0, 2))
            table.add_column(no_wrap=True)
            table.add_column()
            trail: list[str] = []
            for _, rows in flatten({name: section}):
                for depth, text, value, heading in rows:
                    trail = trail[:depth] + [text]
                    if heading:
                        table.add_row(Text("  " * depth + text, style="bold"), "")
                    else:
                        # Text, not str: a Rich table reads a str as markup, and a value may be a name.
                        table.add_row(Text("  " * depth + text), Text(printable(value, None)))
                        lines.append(f"{_TITLES[name]} > {' > '.join(trail)}: {value}")
            parts.append(table)
            parts.append(Text(""))
        self.lines = lines
        self.query_one("#details-body", Static).update(Group(*parts))
