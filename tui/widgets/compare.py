"""The comparison table: the current scenario against every preset (and pinned scenarios).

Each figure cell holds the value and its ratio to the current scenario, coloured better or worse. Cells
are updated in place, and only those whose text changed: re-rendering every visible cell of a table costs
far more than a keystroke may (see the design notes). Sorting re-orders rows only when the sort column's
values changed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable
from whatif.engine.scenario import Scenario

from .. import format as fmt
from ..session import Comparison

CURRENT = "current"


class Cell(Text):
    """Table text that also carries the number to sort by."""

    sort_value: float | str | None = None


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    source: str | None = None  # result column
    better: str | None = None  # "lower" / "higher": which way is better
    show: Callable[[object], str] = str


COLUMNS = (
    Column("name", "scenario", 22),
    Column("hardware", "hardware", 16),
    Column("days", "days", 15, "train_wall_clock_days", "lower", fmt.duration_days),
    Column("cost", "cost", 15, "train_cost_usd", "lower", fmt.money),
    Column("gpu_hours", "GPU-h", 14, "train_gpu_hours", "lower", fmt.si),
    Column("mfu", "MFU", 13, "train_mfu", "higher", fmt.pct),
    Column("idle", "idle GPU", 13, "train_idle_gpu_pct", "lower", fmt.pct_points),
    Column("mwh", "MWh", 14, "train_energy_mwh", "lower", fmt.number),
    Column("co2", "tCO2e", 14, "train_co2_t", "lower", fmt.number),
    Column("ttft", "TTFT", 14, "infer_ttft_ms", "lower", fmt.ms),
    Column("tpot", "TPOT", 14, "infer_tpot_ms", "lower", fmt.ms),
    Column("serve_tps", "serve tok/s", 14, "infer_tokens_per_s", "higher", fmt.si),
    Column("note", "note", 60),
)
BY_KEY = {c.key: c for c in COLUMNS}


def hardware(scenario: Scenario | None) -> str:
    if scenario is None:
        return fmt.DASH
    return f"{scenario.cluster.gpu_count:,}x {scenario.cluster.gpu}"


def _ok(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def figure_cell(col: Column, value, base) -> Cell:
    text = col.show(value)
    cell = Cell(text)
    cell.sort_value = value if _ok(value) else None
    if base is not None and _ok(value) and _ok(base) and base != 0:
        r = value / base
        cell.append(f" {fmt.ratio(value, base)}")
        better = (r < 0.99) if col.better == "lower" else (r > 1.01)
        worse = (r > 1.01) if col.better == "lower" else (r < 0.99)
        if better:
            cell.stylize("bold green", len(text) + 1)
        elif worse:
            cell.stylize("red", len(text) + 1)
    return cell


def row_cells(
    name: str,
    scenario: Scenario | None,
    row: dict | None,
    base: dict | None,
    note: str,
    current: bool = False,
    hardware_of: Scenario | None = None,
) -> dict[str, Cell]:
    cells: dict[str, Cell] = {}
    label = Cell(("▶ " if current else "  ") + name[:20])
    label.sort_value = name.lower()
    if current:
        label.stylize("bold")
    cells["name"] = label
    hw_scenario = scenario or hardware_of
    hw = Cell(hardware(hw_scenario))
    hw.sort_value = hw_scenario.cluster.gpu_count if hw_scenario else None
    cells["hardware"] = hw
    for col in COLUMNS:
        if col.source is None:
            continue
        value = (row or {}).get(col.source)
        cells[col.key] = figure_cell(col, value, None if current or base is None else base.get(col.source))
    note_cell = Cell(note)
    note_cell.sort_value = note
    cells["note"] = note_cell
    return cells


def _note(scenario: Scenario | None, row: dict | None, error: str | None) -> str:
    if error:
        return error
    if row is None or scenario is None:
        return ""
    if scenario.training is not None and not row.get("train_fits"):
        return f"training does not fit: {row.get('train_reason') or 'no plan'}"
    return ""


class CompareTable(DataTable):
    """Current scenario and comparisons; `s` sorts by the column under the cursor."""

    BINDINGS = [
        Binding("s", "sort_column", "Sort", tooltip="Sort by the column under the cursor (again: reverse)"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="cell", zebra_stripes=True, **kwargs)
        self._cells: dict[str, dict[str, str]] = {}
        self.sort_key: str | None = None
        self.sort_reverse = False

    def on_mount(self) -> None:
        for col in COLUMNS:
            self.add_column(col.label, width=col.width, key=col.key)
        self.fixed_columns = 1

    def show(self, scenario: Scenario, current: dict, comparisons: list[tuple[Comparison, dict | None]]) -> int:
        """Bring the table to these rows, touching only cells whose text changed. Returns cells updated."""
        wanted: dict[str, dict[str, Cell]] = {
            CURRENT: row_cells(
                f"current: {scenario.name}", scenario, current, None, _note(scenario, current, None), current=True
            )
        }
        for comp, row in comparisons:
            wanted[comp.preset.key] = row_cells(
                comp.preset.label,
                comp.scenario,
                row,
                current,
                _note(comp.scenario, row, comp.error),
                hardware_of=comp.preset.scenario,
            )
        changed = 0
        sort_dirty = False
        for key in [k for k in self._cells if k not in wanted]:
            self.remove_row(key)
            del self._cells[key]
            sort_dirty = True
        for key, cells in wanted.items():
            if key not in self._cells:
                self.add_row(*(cells[c.key] for c in COLUMNS), key=key)
                self._cells[key] = {k: v.markup for k, v in cells.items()}
                changed += len(cells)
                sort_dirty = True
                continue
            known = self._cells[key]
            for col_key, cell in cells.items():
                markup = cell.markup
                if known.get(col_key) != markup:
                    known[col_key] = markup
                    self.update_cell(key, col_key, cell)
                    changed += 1
                    sort_dirty = sort_dirty or col_key == self.sort_key
        if sort_dirty and self.sort_key:
            self._apply_sort()
        return changed

    def action_sort_column(self) -> None:
        key = COLUMNS[self.cursor_column].key
        self.sort_by(key, reverse=not self.sort_reverse if key == self.sort_key else False)

    def sort_by(self, key: str, reverse: bool = False) -> None:
        if self.sort_key and self.sort_key != key:
            self.columns[self.sort_key].label = Text(BY_KEY[self.sort_key].label)
        self.sort_key, self.sort_reverse = key, reverse
        self.columns[key].label = Text(BY_KEY[key].label + (" ▼" if reverse else " ▲"))
        self._apply_sort()

    def _apply_sort(self) -> None:
        def order(cell: Cell):
            value = getattr(cell, "sort_value", None)
            if value is None:  # rows without the figure go last, whichever the direction
                return (1, 0, "") if not self.sort_reverse else (-1, 0, "")
            return (0, value, "") if isinstance(value, (int, float)) else (0, 0, value)

        self.sort(self.sort_key, key=order, reverse=self.sort_reverse)
