"""The scale view: training days and cost against GPU count, for the current hardware and workload.

Two charts (textual-plot, pinned: it reads a private Textual module) over a log axis of GPU counts, with a
point at every whole-node count of the sweep (three per doubling, see session.sweep_counts): days on a log
axis, cost on a linear axis from zero. The current point is marked ◆, counts where no plan fits x, and
an optional target (days) and budget (USD), typed above the charts, are drawn as lines. A table under the
charts gives every point's numbers. The rows come from the same engine call as the current scenario and
the comparisons (see session.py). textual-plot is imported when the view is first shown (it takes a
quarter of a second, which the first screen does not wait for).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from rich.table import Table
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Static

from .. import format as fmt
from .. import numbers
from .editor import FieldInput

CURRENT_MARK, NO_PLAN_MARK = "◆", "x"


def short_count(n: float) -> str:
    n = round(n)
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    return str(n)


def _ok(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def _short(x: float) -> str:
    """'400k', '1.2M', '300', '0.5': three significant digits at most, for axis labels."""
    for factor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.3g}{suffix}"
    return f"{x:.3g}"


def _nice_log_ticks(lo: float, hi: float, most: int) -> list[float]:
    """Values of 1, 2 and 5 times a power of ten between lo and hi (as many as fit), for a log axis."""
    if not (lo > 0 and hi > lo):
        return [lo] if lo > 0 else []
    for steps in ((1, 2, 5), (1, 3), (1,)):
        ticks = [
            m * 10**e
            for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
            for m in steps
            if lo <= m * 10**e <= hi
        ]
        if len(ticks) <= most:
            return ticks
    return ticks[:: math.ceil(len(ticks) / most)]


def _rich_colour(value: str | None, fallback: str) -> str:
    """A theme colour as the chart's styles take it (Rich's syntax): the ANSI themes name their colours
    'ansi_blue', which Rich cannot read ('color(4)' is its name for the same)."""
    from textual.color import Color, ColorParseError

    if not value:
        return fallback
    try:
        return Color.parse(value).rich_color.name
    except ColorParseError:
        return fallback


def _formatters():
    """Axis formatters for textual-plot: GPU counts on a log2 axis, days on a log10 axis."""
    from textual_plot.axis_formatter import AxisFormatter

    class GpuAxis(AxisFormatter):
        def get_ticks(self, min_, max_, max_ticks=8):
            ks = list(range(math.ceil(min_), math.floor(max_) + 1))
            step = max(1, math.ceil(len(ks) / max(max_ticks, 1)))
            return [float(k) for k in ks[::step]]

        def get_labels_for_ticks(self, ticks):
            return [short_count(2**t) for t in ticks]

    class DaysAxis(AxisFormatter):
        def get_ticks(self, min_, max_, max_ticks=8):
            return [math.log10(v) for v in _nice_log_ticks(10**min_, 10**max_, max(2, max_ticks // 2))]

        def get_labels_for_ticks(self, ticks):
            return [_short(10**t) + " d" for t in ticks]

    class MoneyAxis(AxisFormatter):
        def get_ticks(self, min_, max_, max_ticks=8):
            span = max_ - min_
            if span <= 0:
                return [min_]
            raw = span / max(max_ticks // 2, 1)  # every other row at most: labels never touch
            mag = 10 ** math.floor(math.log10(raw))
            step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
            return [k * step for k in range(math.ceil(min_ / step), math.floor(max_ / step) + 1)]

        def get_labels_for_ticks(self, ticks):
            return ["$" + _short(t) for t in ticks]

    return GpuAxis, DaysAxis, MoneyAxis


class ScaleView(VerticalScroll):
    """Days and cost vs GPU count; the current point, and the target and budget lines."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._key: tuple | None = None
        self._rows: tuple | None = None
        self._charts = False
        self.target_days: float | None = None
        self.budget_usd: float | None = None
        self.points: dict[str, list[tuple[int, float]]] = {}  # what each chart plots (tests read these)

    def compose(self) -> ComposeResult:
        yield Static("", id="scale-caption", markup=False)
        with Horizontal(id="scale-targets"):
            yield Label("target", classes="scale-label")
            yield FieldInput(
                "", placeholder="none", id="scale-target", compact=True, select_on_focus=False, classes="scale-input"
            )
            yield Label("days", classes="scale-unit")
            yield Label("budget", classes="scale-label")
            yield FieldInput(
                "", placeholder="none", id="scale-budget", compact=True, select_on_focus=False, classes="scale-input"
            )
            yield Label("USD", classes="scale-unit")
        yield Static("", id="scale-target-error", classes="field-error", markup=False)
        yield Static("", id="scale-charts")
        yield Static("", id="scale-table", markup=False)

    def set_cursor_blink(self, blink: bool) -> None:
        for box in self.query(FieldInput):
            box.cursor_blink = blink

    def on_resize(self) -> None:
        if self._charts:
            self._size_charts()
        if self._rows is not None:
            self._key = None
            self.show(*self._rows)

    def _size_charts(self) -> None:
        height = max(7, (self.size.height - 3) // 2)
        for chart in self.query(".scale-chart"):
            chart.styles.height = height

    def _ensure_charts(self) -> bool:
        """Mount the charts on first use; True once they can be drawn on (after their mount)."""
        if self._charts:
            return self._charts_ready
        from textual_plot import PlotWidget

        self._charts = True
        holder = self.query_one("#scale-charts")
        days = PlotWidget(id="days-chart", classes="scale-chart", allow_pan_and_zoom=False)
        cost = PlotWidget(id="cost-chart", classes="scale-chart", allow_pan_and_zoom=False)

        async def mounted() -> None:
            await self.mount(days, cost, after=holder)
            self._size_charts()
            self._charts_ready = True
            self._key = None
            if self._rows is not None:
                self.show(*self._rows)

        self.call_later(mounted)
        return False

    _charts_ready = False

    @on(Input.Changed, "#scale-target, #scale-budget")
    def _targets(self, event: Input.Changed) -> None:
        event.stop()
        errors: list[str] = []
        values: dict[str, float | None] = {}
        for box_id, what, unit in (("scale-target", "target", "days"), ("scale-budget", "budget", "USD")):
            text = self.query_one(f"#{box_id}", Input).value.strip().lstrip("$")
            if not text:
                values[what] = None
                continue
            value: float | None
            try:
                value = numbers.parse(text, unit)
            except numbers.NumberError as exc:
                errors.append(f"Scale > {what}: {exc}")
                values[what] = getattr(self, "target_days" if what == "target" else "budget_usd")
                continue
            if value is not None and value <= 0:
                errors.append(f"Scale > {what}: must be more than 0 (empty: none)")
                value = None
            values[what] = value
        self.target_days, self.budget_usd = values["target"], values["budget"]
        error = self.query_one("#scale-target-error", Static)
        error.update("; ".join(errors))
        error.set_class(bool(errors), "-shown")
        if self._rows is not None:
            self._key = None
            self.show(*self._rows)

    def show(self, rows: list[dict], current_gpus: int, gpu: str, gpus_per_node: int) -> None:
        """Draw `rows` (sorted by GPU count); mark the row with `current_gpus`."""
        self._rows = (rows, current_gpus, gpu, gpus_per_node)
        key = (
            tuple((r["n_gpus"], r.get("train_wall_clock_days"), r.get("train_cost_usd")) for r in rows),
            current_gpus,
            gpu,
            gpus_per_node,
            self.size,
            self.target_days,
            self.budget_usd,
            self.app.theme,
        )
        if key == self._key or not rows:
            return
        self._key = key
        ready = self._ensure_charts()
        fits = [r for r in rows if _ok(r.get("train_wall_clock_days"))]
        caption = (
            f"{gpu}, {gpus_per_node} per node: {len(rows)} whole-node counts from {short_count(rows[0]['n_gpus'])} "
            f"to {short_count(rows[-1]['n_gpus'])} GPUs (log axis). Training days (log axis) and cost (from $0); "
            f"{CURRENT_MARK} current ({current_gpus:,})"
        )
        if not fits:
            caption += "; no plan fits at any count"
        elif len(fits) < len(rows):
            caption += f"; {NO_PLAN_MARK}: no plan fits"
        self.query_one("#scale-caption", Static).update(caption)
        if ready:
            self._chart("days", rows, current_gpus, self.target_days)
            self._chart("cost", rows, current_gpus, self.budget_usd)
        self.query_one("#scale-table", Static).update(self._table(rows, current_gpus))

    def _chart(self, name: str, rows: list[dict], current: int, line: float | None) -> None:
        from textual_plot import HiResMode, PlotWidget

        gpu_axis, days_axis, money_axis = _formatters()
        chart = self.query_one(f"#{name}-chart", PlotWidget)
        chart.clear()
        column = "train_wall_clock_days" if name == "days" else "train_cost_usd"
        theme = self.app.current_theme
        colour = {
            "line": _rich_colour(theme.primary, "blue"),
            "point": _rich_colour(theme.foreground, "white"),
            "current": _rich_colour(theme.accent or theme.primary, "blue"),
            "target": _rich_colour(theme.error, "red"),
            "none": _rich_colour(theme.warning, "yellow"),
        }
        good = [(r["n_gpus"], r[column]) for r in rows if _ok(r.get(column))]
        self.points[name] = good
        log = name == "days"
        y = (lambda v: math.log10(v)) if log else float
        x = [math.log2(n) for n, _ in good]
        ys = [y(v) for _, v in good]
        x_all = [math.log2(r["n_gpus"]) for r in rows]
        chart.set_x_formatter(gpu_axis())
        chart.set_y_formatter(days_axis() if log else money_axis())
        chart.set_xlimits(min(x_all), max(x_all))
        values = [v for _, v in good] + ([line] if line else [])
        if log:
            lo, hi = (min(values), max(values)) if values else (1.0, 10.0)
            pad = 0.05 * (math.log10(hi) - math.log10(lo) or 1)
            chart.set_ylimits(math.log10(lo) - pad, math.log10(hi) + pad)
        else:
            hi = max(values) if values else 1.0
            chart.set_ylimits(0.0, hi * 1.05)  # the cost axis starts at zero
        # No axis titles (they cost three rows of a short chart): the tick labels carry the units, the
        # caption says which axes are logarithmic.
        chart.margin_top = 0
        chart.margin_bottom = 2
        # One line per run of points that fit: the curve does not bridge counts where no plan fits.
        run: list[tuple[float, float]] = []
        for r in [*rows, None]:
            value: Any = None if r is None else r.get(column)  # a number, or None (checked with _ok)
            if r is not None and _ok(value):
                run.append((math.log2(r["n_gpus"]), y(value)))
                continue
            if len(run) > 1:
                chart.plot(
                    [p[0] for p in run], [p[1] for p in run], line_style=colour["line"], hires_mode=HiResMode.BRAILLE
                )
            run = []
        if good:
            chart.scatter(x, ys, marker="•", marker_style=colour["point"])
        missing = [math.log2(r["n_gpus"]) for r in rows if not _ok(r.get(column))]
        if missing and good:
            floor = chart._y_min
            chart.scatter(missing, [floor] * len(missing), marker=NO_PLAN_MARK, marker_style=colour["none"])
        if line:
            chart.plot(
                [min(x_all), max(x_all)], [y(line)] * 2, line_style=colour["target"], hires_mode=HiResMode.BRAILLE
            )
        here = [(math.log2(n), y(v)) for n, v in good if n == current]
        if here:
            chart.scatter([here[0][0]], [here[0][1]], marker=CURRENT_MARK, marker_style=f"bold {colour['current']}")

    def _table(self, rows: list[dict], current: int) -> Table:
        table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
        columns: tuple[tuple[str, Literal["left", "right"]], ...] = (
            ("GPUs", "right"),
            ("days", "right"),
            ("cost", "right"),
            ("MFU", "right"),
            ("idle", "right"),
            ("plan", "left"),
        )
        for col, justify in columns:
            table.add_column(col, justify=justify, no_wrap=True)
        for r in rows:
            fits = _ok(r.get("train_wall_clock_days"))
            mark = f"{CURRENT_MARK} " if r["n_gpus"] == current else ("" if fits else f"{NO_PLAN_MARK} ")
            plan = fmt.plan(r) if fits else (r.get("train_reason") or "no plan fits")
            days: Any = r.get("train_wall_clock_days")  # a number where `fits`
            within = ""
            if self.target_days and fits:
                within = " ✓" if days <= self.target_days else " ✗"
            table.add_row(
                mark + f"{r['n_gpus']:,}",
                fmt.duration_days(days) + within,
                fmt.money(r.get("train_cost_usd")),
                fmt.pct(r.get("train_mfu")),
                fmt.pct_points(r.get("train_idle_gpu_pct")),
                plan,
                style="bold" if r["n_gpus"] == current else (None if fits else "dim"),
            )
        return table
