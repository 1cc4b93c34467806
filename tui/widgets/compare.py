"""The comparison table: the current scenario, every preset and the pinned scenarios, against a baseline.

Each row takes two lines: the figures on the first, and under them the row's ratio to the baseline with
a mark that reads without colour (✓ better, ✗ worse); under the name the training plan, under the
hardware its fabrics. The baseline (the current scenario unless another row is chosen with `b`) stays at
the top whatever the sort. Rows can be hidden (`h`) and shown again (`H`); which columns show is chosen by
the width (they fit 80 columns) unless the user picks them. Cells are updated in place, and only those
whose text changed: re-rendering every visible cell costs far more than a keystroke may.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey
from whatif.engine.catalog import load_catalog
from whatif.engine.scenario import Scenario

from .. import format as fmt

CURRENT = "current"
BETTER, WORSE = "✓", "✗"


class Cell(Text):
    """Table text that also carries the number to sort by."""

    sort_value: float | str | None = None
    is_baseline: bool = False


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    source: str | None = None  # result column
    better: str | None = None  # "lower" / "higher": which way is better
    show: Callable[[object], str] = str
    unit: str = ""  # for the CSV header


def _ms(x) -> str:
    return fmt.DASH if not fmt._ok(x) else (f"{x:,.0f} ms" if x >= 100 else f"{x:.1f} ms")


def _days(x) -> str:
    return fmt.duration_days(x)


# In the order the width fills them: the first five fit 80 columns.
COLUMNS = (
    Column("name", "scenario / plan", 20),
    Column("hardware", "hardware / fabric", 17),
    Column("days", "days", 10, "train_wall_clock_days", "lower", _days, "days"),
    Column("cost", "cost", 9, "train_cost_usd", "lower", fmt.money, "USD"),
    Column("mfu", "MFU", 8, "train_mfu", "higher", fmt.pct, "fraction"),
    Column("ttft", "TTFT p99", 9, "infer_ttft_p99_ms", "lower", _ms, "ms"),
    Column("tpot", "TPOT p99", 9, "infer_tpot_p99_ms", "lower", _ms, "ms"),
    Column("gpu_hours", "GPU-h", 8, "train_gpu_hours", "lower", fmt.si, "GPU-hours"),
    Column("idle", "idle", 8, "train_idle_gpu_pct", "lower", fmt.pct_points, "%"),
    Column("mwh", "MWh", 8, "train_energy_mwh", "lower", fmt.number, "MWh"),
    Column("co2", "tCO2e", 8, "train_co2_t", "lower", fmt.number, "t"),
    Column("serve_tps", "serve tok/s", 11, "infer_tokens_per_s", "higher", fmt.si, "tokens/s"),
    Column("note", "note", 40),
)
BY_KEY = {c.key: c for c in COLUMNS}
FIGURES = tuple(c for c in COLUMNS if c.source)
CELL_PADDING = 1  # DataTable's, on each side of a cell


def fit_columns(width: int) -> list[str]:
    """The columns, in order, that fit `width` cells (name and hardware always)."""
    chosen, used = [], 2  # the table's own edge and scroll bar
    for col in COLUMNS:
        need = col.width + 2 * CELL_PADDING
        if col.key in ("name", "hardware") or used + need <= width:
            chosen.append(col.key)
            used += need
        else:
            break
    return chosen


def hardware(scenario: Scenario | None) -> str:
    if scenario is None:
        return fmt.DASH
    return f"{scenario.cluster.gpu_count:,} {scenario.cluster.gpu}"


def fabric(scenario: Scenario | None) -> str:
    """'nvlink4 / ib-ndr': the scale-up fabric (the GPU's own from the catalog unless set) and scale-out."""
    if scenario is None:
        return ""
    up = scenario.network.scale_up or load_catalog().accelerators[scenario.cluster.gpu].scale_up
    return f"{up} / {scenario.network.scale_out}"


def short_plan(row: dict | None) -> str:
    """'TP4 PP1 DP256' (the full plan is in the line under the table and in Details)."""
    r = row or {}
    if r.get("train_tp") is None or not r.get("train_fits"):
        return ""
    text = f"TP{r['train_tp']} PP{r['train_pp']} DP{r['train_dp']}"
    return text + (f" EP{r['train_ep']}" if (r.get("train_ep") or 1) > 1 else "")


def _ok(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def clip(text: str, width: int) -> str:
    """`text` cut to `width` cells with an ellipsis (a cell never wraps into the row's second line; the
    whole text is in the line under the table, the exports and Details)."""
    if cell_len(text) <= width:
        return text
    out = ""
    for ch in text:
        if cell_len(out + ch) >= width:
            break
        out += ch
    return out + "…"


def judge(col: Column, value, base) -> tuple[str, str]:
    """('x0.50', '✓') for a figure against the baseline's: the ratio, and better / worse / '' (within 1%)."""
    if not (_ok(value) and _ok(base)) or base == 0:
        return "", ""
    r = value / base
    better = (r < 0.99) if col.better == "lower" else (r > 1.01)
    worse = (r > 1.01) if col.better == "lower" else (r < 0.99)
    return fmt.ratio(value, base), BETTER if better else WORSE if worse else "="


def figure_cell(col: Column, value, base, is_baseline: bool) -> Cell:
    text = clip(col.show(value), col.width)
    cell = Cell(text)
    cell.sort_value = value if _ok(value) else None
    if is_baseline:
        cell.append("\nbaseline", style="italic")
        return cell
    ratio, mark = judge(col, value, base)
    if ratio:
        cell.append(f"\n{ratio} {mark}")
        if mark == BETTER:
            cell.stylize("bold green", len(text) + 1)
        elif mark == WORSE:
            cell.stylize("red", len(text) + 1)
    return cell


@dataclass(frozen=True)
class Entry:
    """One row: what it is called, what was evaluated, and the result (None: could not be evaluated)."""

    key: str
    name: str
    scenario: Scenario | None
    row: dict | None
    note: str = ""
    current: bool = False
    hardware_of: Scenario | None = None


def row_cells(entry: Entry, base: dict | None, is_baseline: bool) -> dict[str, Cell]:
    cells: dict[str, Cell] = {}
    mark = "◆ " if is_baseline else ("▶ " if entry.current else "  ")
    width = BY_KEY["name"].width
    name = clip(entry.name, width - 2)
    label = Cell(mark + name)
    plan = short_plan(entry.row) or ("no plan fits" if entry.row and entry.scenario and entry.scenario.training else "")
    label.append("\n  " + clip(plan, width - 2), style="dim")
    label.sort_value = entry.name.lower()
    label.is_baseline = is_baseline
    if entry.current:
        label.stylize("bold", 0, len(mark) + len(name))
    cells["name"] = label
    hw_scenario = entry.scenario or entry.hardware_of
    width = BY_KEY["hardware"].width
    hw = Cell(clip(hardware(hw_scenario), width))
    hw.append("\n" + clip(fabric(hw_scenario), width), style="dim")
    hw.sort_value = hw_scenario.cluster.gpu_count if hw_scenario else None
    cells["hardware"] = hw
    for col in FIGURES:
        value = (entry.row or {}).get(col.source)
        cells[col.key] = figure_cell(col, value, None if base is None else base.get(col.source), is_baseline)
    note = Cell(clip(entry.note, BY_KEY["note"].width))
    note.sort_value = entry.note
    cells["note"] = note
    return cells


class _Reversed:
    """Sorts in the opposite order of what it wraps (for descending sorts that keep the baseline first)."""

    def __init__(self, value) -> None:
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and other.value == self.value


class CompareTable(DataTable):
    """The comparison rows; `s` sorts by the column under the cursor, `b` makes a row the baseline."""

    BINDINGS = [
        Binding("s", "sort_column", "Sort", tooltip="Sort by the column under the cursor (again: reverse)"),
        Binding("b", "baseline", "Baseline", tooltip="Make the row under the cursor the baseline"),
        Binding("h", "hide_row", "Hide", tooltip="Hide the row under the cursor (H shows every row)"),
        Binding("H", "show_rows", "Show all", show=False, tooltip="Show every hidden row"),
    ]

    class Arranged(Message):
        """The baseline, the hidden rows, the sort or the columns changed (the caption says which)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="cell", zebra_stripes=True, cell_padding=CELL_PADDING, **kwargs)
        self._cells: dict[str, dict[str, str]] = {}
        self.entries: dict[str, Entry] = {}
        self.sort_key: str | None = None
        self.sort_reverse = False
        self.baseline = CURRENT
        self.hidden: set[str] = set()
        self.chosen: list[str] | None = None  # columns the user picked; None: as many as fit
        self.columns_shown: list[str] = []
        self._fit_width = 0

    def on_mount(self) -> None:
        self._set_columns(self.chosen or fit_columns(max(self.size.width, 80)))

    def on_resize(self) -> None:
        if self.chosen is None and self.size.width != self._fit_width:
            self._fit_width = self.size.width
            wanted = fit_columns(self.size.width)
            if wanted != self.columns_shown:
                self._set_columns(wanted)

    def _set_columns(self, keys: list[str]) -> None:
        self.columns_shown = [c.key for c in COLUMNS if c.key in keys]
        if self.sort_key not in self.columns_shown:  # sorted by a column now hidden (fitted, resized, toggled)
            self.sort_key = None
        self.clear(columns=True)
        self._cells.clear()
        for key in self.columns_shown:
            col = BY_KEY[key]
            label = col.label + ((" ▼" if self.sort_reverse else " ▲") if key == self.sort_key else "")
            self.add_column(label, width=col.width, key=key)
        self.fixed_columns = 1
        if self.entries:
            self.show(list(self.entries.values()))

    def toggle_column(self, key: str) -> None:
        shown = list(self.columns_shown)
        if key in shown and key != "name":
            shown.remove(key)
        elif key not in shown:
            shown.append(key)
        self.chosen = shown
        self._set_columns(shown)

    def fit_to_width(self) -> None:
        self.chosen = None
        self._set_columns(fit_columns(self.size.width))

    # -- rows ------------------------------------------------------------------------------------

    @property
    def baseline_entry(self) -> Entry | None:
        return self.entries.get(self.baseline) or self.entries.get(CURRENT)

    def show(self, entries: list[Entry]) -> int:
        """Bring the table to these rows, touching only cells whose text changed. Returns cells updated."""
        self.entries = {e.key: e for e in entries}
        if self.baseline not in self.entries:
            self.baseline = CURRENT
        self.hidden &= set(self.entries) - {self.baseline}
        base = self.baseline_entry.row if self.baseline_entry else None
        wanted = {e.key: row_cells(e, base, e.key == self.baseline) for e in entries if e.key not in self.hidden}
        changed = 0
        order_dirty = False
        for key in [k for k in self._cells if k not in wanted]:
            self.remove_row(key)
            del self._cells[key]
            order_dirty = True
        for key, cells in wanted.items():
            if key not in self._cells:
                self.add_row(*(cells[c] for c in self.columns_shown), key=key, height=2)
                self._cells[key] = {k: v.markup for k, v in cells.items()}
                changed += len(cells)
                order_dirty = True
                continue
            known = self._cells[key]
            for col_key in self.columns_shown:
                cell = cells[col_key]
                markup = cell.markup
                if known.get(col_key) != markup:
                    known[col_key] = markup
                    self.update_cell(key, col_key, cell)
                    changed += 1
                    order_dirty = order_dirty or col_key in (self.sort_key, "name")
        if order_dirty:
            self._apply_sort()
        return changed

    def _row_key_at_cursor(self) -> str | None:
        if self.row_count == 0:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def action_baseline(self) -> None:
        key = self._row_key_at_cursor()
        if key is None or key == self.baseline:
            return
        self.set_baseline(key)

    def set_baseline(self, key: str) -> None:
        self.baseline = key if key in self.entries else CURRENT
        self.hidden.discard(self.baseline)
        self.show(list(self.entries.values()))
        self.move_cursor(row=0)
        self.post_message(self.Arranged())

    def action_hide_row(self) -> None:
        key = self._row_key_at_cursor()
        if key is None or key == self.baseline:
            self.notify("The baseline row stays (b makes another row the baseline)", timeout=3)
            return
        self.hidden.add(key)
        self.show(list(self.entries.values()))
        self.post_message(self.Arranged())

    def action_show_rows(self) -> None:
        if self.hidden:
            self.hidden.clear()
            self.show(list(self.entries.values()))
            self.post_message(self.Arranged())

    def action_sort_column(self) -> None:
        key = self.columns_shown[self.cursor_column]
        self.sort_by(key, reverse=not self.sort_reverse if key == self.sort_key else False)

    def sort_by(self, key: str, reverse: bool = False) -> None:
        if key not in self.columns_shown:
            self.toggle_column(key)
        if self.sort_key and self.sort_key != key and self.sort_key in self.columns:
            self.columns[ColumnKey(self.sort_key)].label = Text(BY_KEY[self.sort_key].label)
        self.sort_key, self.sort_reverse = key, reverse
        self.columns[ColumnKey(key)].label = Text(BY_KEY[key].label + (" ▼" if reverse else " ▲"))
        self._apply_sort()
        self.post_message(self.Arranged())

    def _apply_sort(self) -> None:
        """The baseline first, then the others by the sort column (rows without the figure last)."""
        column = self.sort_key

        def order(cells):
            name, value = cells if column and column != "name" else (cells, cells)
            first = 0 if getattr(name, "is_baseline", False) else 1
            if not column:
                return (first, 0, 0)
            v = getattr(value, "sort_value", None)
            if v is None:
                return (first, 1, 0)
            v = (0, v) if isinstance(v, (int, float)) else (1, v)
            return (first, 0, _Reversed(v) if self.sort_reverse else v)

        columns = ("name", column) if column and column != "name" else ("name",)
        self.sort(*columns, key=order)

    # -- what the user reads under the table, and exports ------------------------------------

    def detail(self) -> str:
        """The full plan, fabric and note of the row under the cursor."""
        key = self._row_key_at_cursor()
        entry = self.entries.get(key) if key else None
        if entry is None:
            return ""
        r = entry.row or {}
        plan = fmt.plan(r) if r.get("train_fits") else (r.get("train_reason") or "")
        parts = [entry.name, f"plan {plan}" if plan else "", fabric(entry.scenario or entry.hardware_of)]
        serving = fmt.serving_plan(r) if r.get("infer_tp") is not None else ""
        parts += [f"serving {serving}" if serving else "", entry.note]
        return "; ".join(p for p in parts if p)

    def visible_entries(self) -> list[Entry]:
        """The rows shown, in their order on screen."""
        keys = [row.key.value for row in self.ordered_rows]
        return [self.entries[k] for k in keys if k in self.entries]

    def as_markdown(self) -> str:
        """The rows shown, every figure with its ratio to the baseline, as a Markdown table."""
        base = self.baseline_entry
        head = ["scenario", "hardware", "fabric", "plan", *(c.label for c in FIGURES), "note"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for e in self.visible_entries():
            cells = [("baseline: " if e.key == self.baseline else "") + e.name, hardware(e.scenario or e.hardware_of)]
            cells += [
                fabric(e.scenario or e.hardware_of),
                fmt.plan(e.row or {}) if (e.row or {}).get("train_fits") else "",
            ]
            for col in FIGURES:
                value = (e.row or {}).get(col.source)
                text = col.show(value)
                ratio, mark = judge(col, value, (base.row or {}).get(col.source) if base else None)
                if ratio and e.key != self.baseline:
                    text += f" ({ratio} {mark})"
                cells.append(text)
            cells.append(e.note)
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
        return "\n".join(lines) + "\n"

    def as_csv(self) -> str:
        """The rows shown with raw numbers (units in the header) and each figure's ratio to the baseline."""
        base = self.baseline_entry
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        head = ["scenario", "baseline", "gpus", "gpu", "fabric", "plan"]
        for col in FIGURES:
            head += [f"{col.key} ({col.unit})", f"{col.key} vs baseline"]
        writer.writerow(head + ["note"])
        for e in self.visible_entries():
            s = e.scenario or e.hardware_of
            r = e.row or {}
            row: list[Any] = [
                e.name,
                "yes" if e.key == self.baseline else "",
                s.cluster.gpu_count if s else "",
                s.cluster.gpu if s else "",
            ]
            row += [fabric(s), fmt.plan(r) if r.get("train_fits") else ""]
            for col in FIGURES:
                value = r.get(col.source)
                b = (base.row or {}).get(col.source) if base else None
                row += ["" if not _ok(value) else value, "" if not (_ok(value) and _ok(b) and b) else value / b]
            writer.writerow(row + [e.note])
        return out.getvalue()


def text_width(text: str) -> int:
    return max((cell_len(line) for line in text.splitlines()), default=0)
