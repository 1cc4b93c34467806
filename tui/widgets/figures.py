"""Live figures: the headline numbers, where the GPU-hours go, the plan and the bottleneck in words.

Each figure is its own small widget and is only re-rendered when its text changes, so an edit that moves
three numbers repaints three cells, not the panel. Every value is read from the result row with `.get`:
columns that the engine does not (yet) produce show as "-".
"""

from __future__ import annotations

import re

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, VerticalScroll
from textual.widget import Widget
from textual.widgets import Label, Static
from whatif.engine.cost import basis_label

from .. import format as fmt


def _mwh(x) -> str:
    return fmt.DASH if fmt.DASH == fmt.number(x) else f"{fmt.number(x)} MWh"


def _tonnes(x) -> str:
    return fmt.DASH if fmt.DASH == fmt.number(x) else f"{fmt.number(x)} t"


def _pair(a, b) -> str:
    """'110/446': p50/p99 in milliseconds (the unit is in the label), short enough for the 80-column
    layout's figure cells."""
    if a is None and b is None:
        return fmt.DASH
    num = lambda x: fmt.DASH if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.1f}")  # noqa: E731
    return f"{num(a)}/{num(b)}"


# (id, label, how to read it from a result row)
TRAINING = (
    ("days", "days", lambda r: fmt.duration_days(r.get("train_wall_clock_days"))),
    ("gpu_hours", "GPU-h", lambda r: fmt.si(r.get("train_gpu_hours"))),
    ("mfu", "MFU", lambda r: fmt.pct(r.get("train_mfu"))),
    ("idle", "idle GPU", lambda r: fmt.pct_points(r.get("train_idle_gpu_pct"))),
    ("mwh", "energy", lambda r: _mwh(r.get("train_energy_mwh"))),
    ("cost", "cost", lambda r: fmt.money(r.get("train_cost_usd"))),
    ("electricity", "electric", lambda r: fmt.money(r.get("train_electricity_usd"))),
    ("co2", "CO2e", lambda r: _tonnes(r.get("train_co2_t"))),
    ("train_tps", "tok/s", lambda r: fmt.si(r.get("train_tokens_per_s"))),
)
SERVING = (
    ("ttft", "TTFT ms", lambda r: _pair(r.get("infer_ttft_ms"), r.get("infer_ttft_p99_ms"))),
    ("tpot", "TPOT ms", lambda r: _pair(r.get("infer_tpot_ms"), r.get("infer_tpot_p99_ms"))),
    ("infer_tps", "tok/s", lambda r: fmt.si(r.get("infer_tokens_per_s"))),
    ("replicas", "replicas", lambda r: fmt.number(r.get("infer_replicas"))),
)

# Where GPU-hours go: result column suffixes (summed), legend name, bar glyph (distinct glyphs read
# without colour). Failures are the downtime of restarts plus the work redone after them.
IDLE_PARTS = (
    (("communication",), "comm", "▓"),
    (("pipeline_bubble",), "bubble", "▒"),
    (("storage_stall",), "storage", "░"),
    (("checkpoint_stall",), "ckpt", "╳"),
    (("failure_downtime", "lost_work"), "failures", "×"),
)
_IDLE = re.compile(r"^train_idle_(\w+)_pct$")


def _share(row: dict, suffixes: tuple[str, ...]) -> float | None:
    values = [row.get(f"train_idle_{s}_pct") for s in suffixes]
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def gpu_hour_shares(row: dict) -> list[tuple[str, str, float | None]]:
    """(name, glyph, % of GPU-hours) for compute and each idle cause the row has; None where not modelled."""
    known = {s for suffixes, _, _ in IDLE_PARTS for s in suffixes}
    extra = sorted(m.group(1) for k in row if (m := _IDLE.match(k)) and m.group(1) not in known | {"gpu"})
    parts = [(name, glyph, _share(row, suffixes)) for suffixes, name, glyph in IDLE_PARTS]
    parts += [(suffix, "·", row.get(f"train_idle_{suffix}_pct")) for suffix in extra]
    if row.get("train_wall_clock_days") is None:
        return [("compute", "█", None)] + [(n, g, None) for n, g, _ in parts]
    idle = sum(v for _, _, v in parts if v is not None)
    return [("compute", "█", max(0.0, 100.0 - idle))] + parts


def cost_basis_line(row: dict) -> str:
    """'cost, rental at $6.88/GPU-h (2026-01); electricity in the price': what the cost figure rests on, and
    whether the electricity line is part of it (engine/cost.py)."""
    label = basis_label(row)
    if not label or row.get("train_cost_usd") is None:
        return ""
    where = "in the price" if row.get("cost_model") == "rental" else "part of the cost"
    return f"cost, {label}; electricity {where}"


class Figure(Static):
    """Text that repaints only when it changes (a figure, a title, a status line)."""

    def __init__(self, id: str, text: str = fmt.DASH, classes: str = "figure") -> None:
        super().__init__(text, id=id, classes=classes, markup=False)
        self.text = text

    def show(self, text: str) -> None:
        if text != self.text:
            self.text = text
            self.update(text)


class GpuHoursBar(Widget):
    """A one-line stacked bar of where the GPU-hours go, and its legend."""

    DEFAULT_CSS = "GpuHoursBar { height: auto; }"
    COMPONENT_CLASSES = {
        "bar--compute",
        "bar--comm",
        "bar--bubble",
        "bar--storage",
        "bar--ckpt",
        "bar--failures",
        "bar--other",
    }

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.shares: list[tuple[str, str, float | None]] = []

    def show(self, shares: list[tuple[str, str, float | None]]) -> None:
        rounded = [(n, g, None if v is None else round(v, 1)) for n, g, v in shares]
        if rounded != self.shares:
            self.shares = rounded
            self.refresh(layout=True)

    def _style(self, name: str):
        key = f"bar--{name}"
        return self.get_component_rich_style(key if key in self.COMPONENT_CLASSES else "bar--other")

    def render(self) -> Text:
        width = max(self.size.width, 10)
        text = Text()
        known = [(n, g, v) for n, g, v in self.shares if v]
        if not known:
            text.append("·" * width + "\n", style="dim")
        else:
            total = sum(v for _, _, v in known)
            cells, used = [], 0
            for n, g, v in known:
                k = round(width * v / total)
                cells.append((n, g, k))
                used += k
            n0, g0, k0 = cells[0]
            cells[0] = (n0, g0, max(0, k0 + width - used))
            for n, g, k in cells:
                text.append(g * k, style=self._style(n))
            text.append("\n")
        for i, (n, g, v) in enumerate(self.shares):
            if i:
                text.append("  ")
            text.append(g, style=self._style(n))
            shown = fmt.DASH if v is None else f"{v:.0f}%" if v >= 1 or v == 0 else f"{v:.1f}%"
            text.append(f"\u00a0{n}\u00a0{shown}")  # no line break inside one legend entry
        return text


class FiguresPanel(VerticalScroll):
    """Headline figures for the current scenario, live or marked stale."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.figures: dict[str, Figure] = {}

    def compose(self) -> ComposeResult:
        yield Figure("status", "", classes="")
        yield Figure("train-title", "Training", classes="group-title")
        with Grid(classes="figures", id="train-figures"):
            for fid, label, _ in TRAINING:
                yield Label(label, classes="figure-label")
                yield self._figure(fid)
        yield Figure("cost-basis", "", classes="")
        yield Figure("serve-title", "Serving p50/p99", classes="group-title")
        with Grid(classes="figures", id="serve-figures"):
            for fid, label, _ in SERVING:
                yield Label(label, classes="figure-label")
                yield self._figure(fid)
        yield Static("Where the GPU-hours go", classes="group-title", markup=False)
        yield GpuHoursBar(id="gpu-hours-bar")
        yield Figure("plan", "", classes="words")
        yield Figure("bottleneck", "", classes="words")

    def _figure(self, fid: str) -> Figure:
        figure = Figure(f"fig-{fid}")
        self.figures[fid] = figure
        return figure

    def _set(self, widget_id: str, text: str) -> None:
        self.query_one(f"#{widget_id}", Figure).show(text)

    def show(
        self,
        train_row: dict | None,
        serve_row: dict | None,
        *,
        train_note: str = "",
        serve_note: str = "",
        status: str = "",
        stale: bool = False,
        train_stale: bool = False,
    ) -> None:
        """Figures from `train_row` (the last one that fits) and `serve_row`; notes say what they describe
        or why something is missing."""
        self._set("status", status)
        self.set_class(stale, "-stale")
        self.query_one("#status").set_class(stale or train_stale, "-stale")
        self._set("train-title", "Training" + (f"  {train_note}" if train_note else ""))
        self._set("serve-title", "Serving p50/p99" + (f"  {serve_note}" if serve_note else ""))
        self.query_one("#train-figures").set_class(train_stale, "-stale")
        tr = train_row or {}
        for fid, _, read in TRAINING:
            self.figures[fid].show(read(tr))
        self._set("cost-basis", cost_basis_line(tr))
        self.query_one("#cost-basis").set_class(train_stale, "-stale")
        sr = serve_row or {}
        for fid, _, read in SERVING:
            self.figures[fid].show(read(sr))
        self.query_one(GpuHoursBar).show(gpu_hour_shares(tr))
        plan = fmt.plan(tr) if tr.get("train_wall_clock_days") is not None else fmt.DASH
        searched = tr.get("train_plans_searched")
        if plan != fmt.DASH and searched and searched > 1:
            plan += f"  (best of {searched:,} plans)"
        self._set("plan", f"Plan  {plan}")
        words = tr.get("train_bottleneck_detail") or fmt.DASH
        serving = sr.get("infer_bottleneck")
        self._set("bottleneck", f"Bottleneck  {words}" + (f"\nServing  {serving}" if serving else ""))
