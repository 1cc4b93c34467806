"""The scale view: training days and cost against GPU count, for the current hardware and workload.

The curves are Textual's built-in Sparkline (cheap, and it reads well at 80 columns) drawn on a log scale,
each sweep point widened to a few columns so that an axis with GPU counts and a marker under the current
point line up with it. A table under the curves gives the numbers. The rows come from the same engine
call as the current scenario and the comparisons (see session.py).
"""

from __future__ import annotations

import math

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Sparkline, Static

from .. import format as fmt


def short_count(n: int) -> str:
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    return str(n)


def _ok(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


class ScaleView(VerticalScroll):
    """Days and cost vs GPU count; the current point marked."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._key: tuple | None = None
        self._width = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="scale-caption", markup=False)
        yield Static("training days (log scale)", classes="chart-title", markup=False)
        yield Sparkline([], id="days-line", summary_function=max)
        yield Static("", id="days-axis", classes="chart-axis", markup=False)
        yield Static("cost (lowest to highest)", classes="chart-title", markup=False)
        yield Sparkline([], id="cost-line", summary_function=max)
        yield Static("", id="cost-axis", classes="chart-axis", markup=False)
        yield Static("", id="scale-table", markup=False)

    def on_resize(self) -> None:
        if self._rows is not None and self.size.width != self._width:
            self._key = None
            self.show(*self._rows)

    _rows: tuple | None = None

    def show(self, rows: list[dict], current_gpus: int, gpu: str, gpus_per_node: int) -> None:
        """Draw `rows` (sorted by GPU count); mark the row with `current_gpus`."""
        self._rows = (rows, current_gpus, gpu, gpus_per_node)
        key = (
            tuple((r["n_gpus"], r.get("train_wall_clock_days"), r.get("train_cost_usd")) for r in rows),
            current_gpus,
            gpu,
            gpus_per_node,
            self.size.width,
        )
        if key == self._key:
            return
        self._key = key
        self._width = self.size.width
        fits = [i for i, r in enumerate(rows) if _ok(r.get("train_wall_clock_days"))]
        caption = (
            f"{gpu}, {gpus_per_node} per node, {short_count(rows[0]['n_gpus'])} to "
            f"{short_count(rows[-1]['n_gpus'])} GPUs; ▲ current ({current_gpus:,})"
        )
        # The curves span the GPU counts where a plan fits (points without one inside that span: x).
        shown = rows[fits[0] : fits[-1] + 1] if fits else []
        if fits and len(shown) < len(rows):
            caption += f"; a plan fits from {short_count(shown[0]['n_gpus'])} to {short_count(shown[-1]['n_gpus'])}"
        elif not fits:
            caption += "; no plan fits at any count"
        self.query_one("#scale-caption", Static).update(caption)
        cell = max(1, min(6, (max(self.size.width, 40) - 2) // max(len(shown), 1)))
        self._curve("days", shown, "train_wall_clock_days", cell, current_gpus, log=True)
        self._curve("cost", shown, "train_cost_usd", cell, current_gpus, log=False)
        self.query_one("#scale-table", Static).update(self._table(rows, current_gpus))

    def _curve(self, name: str, rows: list[dict], column: str, cell: int, current: int, log: bool) -> None:
        values = [r.get(column) for r in rows]
        scale = math.log10 if log else float
        good = [scale(v) for v in values if _ok(v)]
        line = self.query_one(f"#{name}-line", Sparkline)
        if not good:
            line.data = []
            self.query_one(f"#{name}-axis", Static).update("no point fits")
            return
        floor = min(good) - 0.05 * (max(good) - min(good) or 1)
        data = []
        for v in values:
            data += [scale(v) if _ok(v) else floor] * cell
        line.styles.width = len(data)
        line.data = data
        marks = Text()
        labels = Text()
        for i, r in enumerate(rows):
            is_current = r["n_gpus"] == current
            glyph = "▲" if is_current else ("x" if not _ok(values[i]) else " ")
            marks.append(glyph.center(cell), style="bold" if is_current else "dim")
        every = max(1, math.ceil(6 / cell))
        pos = 0
        for i, r in enumerate(rows):
            if i % every == 0 and pos <= i * cell:
                label = short_count(r["n_gpus"])
                pad = i * cell - pos
                labels.append(" " * pad + label)
                pos = i * cell + len(label)
        lo, hi = min(v for v in values if _ok(v)), max(v for v in values if _ok(v))
        show = fmt.duration_days if name == "days" else fmt.money
        text = Text.assemble(marks, "\n", labels, "\n", (f"from {show(hi)} down to {show(lo)}", "dim"))
        self.query_one(f"#{name}-axis", Static).update(text)

    def _table(self, rows: list[dict], current: int) -> Table:
        table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
        for col, justify in (
            ("GPUs", "right"),
            ("days", "right"),
            ("cost", "right"),
            ("MFU", "right"),
            ("idle", "right"),
            ("plan", "left"),
        ):
            table.add_column(col, justify=justify, no_wrap=True)
        for r in rows:
            fits = _ok(r.get("train_wall_clock_days"))
            mark = "▲ " if r["n_gpus"] == current else ""
            plan = fmt.plan(r) if fits else (r.get("train_reason") or "no plan fits")
            table.add_row(
                mark + f"{r['n_gpus']:,}",
                fmt.duration_days(r.get("train_wall_clock_days")),
                fmt.money(r.get("train_cost_usd")),
                fmt.pct(r.get("train_mfu")),
                fmt.pct_points(r.get("train_idle_gpu_pct")),
                plan,
                style="bold" if mark else (None if fits else "dim"),
            )
        return table
