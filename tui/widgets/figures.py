"""The live figures of the Explore view: headline numbers, where the GPU-hours go, plan and bottleneck.

Each figure is a `Figure` that repaints only when its text changes. Figures read result rows (the engine's
flat columns); keys the engine adds later (an error band, a runner-up plan, a cost breakdown) are shown
when present and left out when absent. Meaning never rests on colour: stale figures say so in their
group title, pass/fail against a latency limit is a mark and a word.
"""

from __future__ import annotations

import re

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, VerticalScroll
from textual.content import Content
from textual.style import Style
from textual.widget import Widget
from textual.widgets import Label, Static
from whatif.engine.cost import basis_label

from .. import format as fmt
from .sizing import forget_growth, refresh_growing, update_static

PASS, FAIL = "✓", "✗"


def _mwh(x) -> str:
    return fmt.DASH if fmt.DASH == fmt.number(x) else f"{fmt.number(x)} MWh"


def _tonnes(x) -> str:
    return fmt.DASH if fmt.DASH == fmt.number(x) else f"{fmt.number(x)} t"


def duration(days) -> str:
    """'189.6 days', '22.0 hours', '40.0 min': the unit written out, since it switches with the size."""
    if not fmt._ok(days):
        return fmt.DASH
    if days >= 1:
        return f"{days:,.1f} days"
    hours = days * 24
    return f"{hours:.1f} hours" if hours >= 1 else f"{hours * 60:.1f} min"


def with_band(text: str, band_pct) -> str:
    """'189.6 days ±12%' where the engine gives the figure's error band."""
    if text == fmt.DASH or not fmt._ok(band_pct):
        return text
    return f"{text} ±{band_pct:.0f}%"


def cost_basis(training: dict, rental_usd_per_gpu_h: float | None = None) -> str:
    """What the training cost includes, in words, from the JSON record's training section: the engine's
    own `cost_basis` when it gives one, else the parts of its `cost_breakdown_usd`, else electricity
    (plus GPU rental when the scenario prices it), which is what the engine charges today."""
    basis = training.get("cost_basis")
    if isinstance(basis, str) and basis:
        return basis
    if isinstance(basis, dict) and basis:
        return " + ".join(str(k).replace("_", " ") for k in basis)
    parts = training.get("cost_breakdown_usd")
    if isinstance(parts, dict):
        named = [str(k).replace("_", " ") for k, v in parts.items() if isinstance(v, (int, float)) and v]
        if named:
            return " + ".join(named)
    return "electricity + GPU rental" if rental_usd_per_gpu_h else "electricity only"


# An overloaded fleet's TTFT: its queue grows without bound (a '-' there read as "not computed").
OVERLOADED = "∞ (overloaded)"


def latency(p50, p99, limit) -> str:
    """'110/446 ms' and, with a p99 limit, whether it is met: '✓ ≤500' or '✗ >300'."""
    if p50 is None and p99 is None:
        return fmt.DASH
    num = lambda x: fmt.DASH if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.1f}")  # noqa: E731
    text = f"{num(p50)}/{num(p99)} ms"
    if fmt._ok(limit) and fmt._ok(p99):
        text += f" {PASS} ≤{limit:g}" if p99 <= limit else f" {FAIL} >{limit:g}"
    return text


def p99_band(r: dict) -> str:
    """'610-∞/29-50 ms': the TTFT and TPOT p99s if capacity were off by the serving error band (∞: past
    saturation, no bound; one ∞ for a TTFT unbounded at both ends, an overloaded fleet); '-' where no band
    applies (offline, a fixed-concurrency client, disaggregated)."""
    num = lambda x: "∞" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x < 10 else f"{x:.0f}")  # noqa: E731
    if not fmt._ok(r.get("infer_tpot_p99_low_ms")):
        return fmt.DASH
    ends = []
    for key in ("infer_ttft_p99", "infer_tpot_p99"):
        low, high = r.get(f"{key}_low_ms"), r.get(f"{key}_high_ms")
        low = low if fmt._ok(low) else None
        high = high if fmt._ok(high) else None
        ends.append(num(low) if low is None or num(low) == num(high) else f"{num(low)}-{num(high)}")
    return "/".join(ends) + " ms"


def _per_s(x) -> str:
    return fmt.DASH if not fmt._ok(x) else f"{fmt.si(x)} tok/s"


# (id, label, how to read it from a result row and the scenario's extra facts)
TRAINING = (
    ("days", "time", lambda r, x: with_band(duration(r.get("train_wall_clock_days")), x.get("band_pct"))),
    ("gpu_hours", "GPU-h", lambda r, x: fmt.si(r.get("train_gpu_hours"))),
    ("mfu", "MFU", lambda r, x: fmt.pct(r.get("train_mfu"))),
    ("idle", "idle GPU", lambda r, x: fmt.pct_points(r.get("train_idle_gpu_pct"))),
    ("mwh", "energy", lambda r, x: _mwh(r.get("train_energy_mwh"))),
    ("cost", "cost", lambda r, x: fmt.money(r.get("train_cost_usd"))),
    ("electricity", "electric", lambda r, x: fmt.money(r.get("train_electricity_usd"))),
    ("co2", "CO2e", lambda r, x: _tonnes(r.get("train_co2_t"))),
    ("train_tps", "tok/s", lambda r, x: fmt.si(r.get("train_tokens_per_s"))),
)
SERVING = (
    (
        "ttft",
        "TTFT p50/99",
        lambda r, x: (
            OVERLOADED
            if r.get("infer_overloaded") and r.get("infer_fits") and r.get("infer_ttft_p99_ms") is None
            else latency(r.get("infer_ttft_ms"), r.get("infer_ttft_p99_ms"), x.get("ttft_limit"))
        ),
    ),
    (
        "tpot",
        "TPOT p50/99",
        lambda r, x: latency(r.get("infer_tpot_ms"), r.get("infer_tpot_p99_ms"), x.get("tpot_limit")),
    ),
    ("p99_band", "p99 band", lambda r, x: p99_band(r)),
    ("infer_tps", "tok/s", lambda r, x: fmt.si(r.get("infer_tokens_per_s"))),
    (
        "slo_tps",
        "in limits",
        lambda r, x: _per_s(r.get("infer_slo_tokens_per_s")) if x.get("has_limits") else "no limits set",
    ),
    ("replicas", "replicas", lambda r, x: fmt.number(r.get("infer_replicas"))),
    ("wh", "Wh/1k tok", lambda r, x: fmt.number(r.get("infer_energy_wh_per_1k_tokens"))),
    ("serve_cost_1m", "$/1M tok", lambda r, x: fmt.money_small(r.get("infer_cost_usd_per_1m_tokens"))),
)

# Where GPU-hours go: result column suffixes (summed), legend name, bar glyph (distinct glyphs read
# without colour). Failures are the downtime of restarts plus the work redone after them.
IDLE_PARTS = (
    (("communication",), "comm", "▓"),
    (("pipeline_bubble",), "bubble", "▒"),
    (("storage_stall",), "storage", "░"),
    (("host_preprocessing",), "host CPU", "┼"),
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
    parts: list[tuple[str, str, float | None]] = [
        (name, glyph, _share(row, suffixes)) for suffixes, name, glyph in IDLE_PARTS
    ]
    # Causes the engine adds later appear under their own names ('unused gpus').
    parts += [(suffix.replace("_", " "), "·", row.get(f"train_idle_{suffix}_pct")) for suffix in extra]
    if row.get("train_wall_clock_days") is None:
        return [("compute", "█", None), *((n, g, None) for n, g, _ in parts)]
    idle = sum(v for _, _, v in parts if v is not None)
    return [("compute", "█", max(0.0, 100.0 - idle))] + parts


def runner_up(second) -> str:
    """'TP8 PP2 DP64 mb1 ZeRO-1, 3.1% slower: more pipeline bubble' from the record's
    `training.runner_up` (an object with plan, step_time_s, slower_pct, why); '' when there is none."""
    if not isinstance(second, dict) or second.get("plan") is None:
        return ""
    plan = second["plan"]
    if isinstance(plan, dict):
        plan = fmt.plan({f"train_{k}": v for k, v in plan.items()}) if "tp" in plan else str(plan)
    text = str(plan)
    if fmt._ok(second.get("slower_pct")):
        text += f", {second['slower_pct']:.1f}% slower"
    if fmt._ok(second.get("step_time_s")):
        text += f" ({fmt.seconds(second['step_time_s'])} a step)"
    return text + (f": {second['why']}" if second.get("why") else "")


def cost_basis_line(row: dict, prefix: str = "train_") -> str:
    """'cost, rental at $6.88/GPU-h (2026-01); electricity in the price': what the cost figure rests on, and
    whether the electricity line is part of it (engine/cost.py). With prefix 'infer_', the serving cost's
    ('serving cost, ...'), for a scenario that trains nothing (both workloads share one basis)."""
    label = basis_label(row, prefix)
    key = "train_cost_usd" if prefix == "train_" else "infer_cost_usd_per_1m_tokens"
    if not label or row.get(key) is None:
        return ""
    where = "in the price" if row.get("cost_model") == "rental" else "part of the cost"
    return f"{'cost' if prefix == 'train_' else 'serving cost'}, {label}; electricity {where}"


class Figure(Static):
    """Text that repaints only when it changes (a figure, a title, a status line), with a layout pass only
    when its height changes. A stale figure is drawn in the `figure--stale` style of the widget itself: a
    class on the grid around it would restyle every widget in the grid (4-9 ms each, at every keystroke
    that makes a scenario valid or invalid)."""

    COMPONENT_CLASSES = {"figure--stale"}

    def __init__(self, id: str, text: str = fmt.DASH, classes: str = "figure") -> None:
        super().__init__(text, id=id, classes=classes, markup=False)
        self.text = text
        self.stale = False

    def show(self, text: str) -> None:
        if text != self.text:
            self.text = text
            update_static(self, text)

    def set_stale(self, stale: bool) -> None:
        if stale != self.stale:
            self.stale = stale
            self.refresh()

    def render(self):
        if not self.stale:
            return super().render()
        style = Style.from_rich_style(self.get_component_rich_style("figure--stale"))
        return Content(self.text).stylize(style)


class Words(Figure):
    """A sentence under the figures (the plan, its runner-up, the bottleneck) whose wrapped height varies
    from edit to edit: its height only grows while the width stays (sizing.refresh_growing)."""

    def show(self, text: str) -> None:
        if text != self.text:
            self.text = text
            self.update(text, layout=False)
            refresh_growing(self)


class GpuHoursBar(Widget):
    """A one-line stacked bar of where the GPU-hours go, and its legend."""

    DEFAULT_CSS = "GpuHoursBar { height: auto; }"
    COMPONENT_CLASSES = {
        "bar--compute",
        "bar--comm",
        "bar--bubble",
        "bar--storage",
        "bar--host",
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
            refresh_growing(self)  # its legend wraps to more or fewer lines

    def _style(self, name: str):
        key = f"bar--{name.split()[0]}"
        return self.get_component_rich_style(key if key in self.COMPONENT_CLASSES else "bar--other")

    def render(self) -> Text:
        width = max(self.size.width, 10)
        text = Text()
        known = [(n, g, v) for n, g, v in self.shares if v is not None and v]
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
        for i, (n, g, share) in enumerate(self.shares):
            if i:
                text.append("  ")
            text.append(g, style=self._style(n))
            shown = fmt.DASH if share is None else f"{share:.0f}%" if share >= 1 or share == 0 else f"{share:.1f}%"
            text.append(f"\u00a0{n}\u00a0{shown}")  # no line break inside one legend entry
        return text


# Width of one label + value pair in the figure grids; the grids take as many pairs a row as fit.
PAIR_WIDTH = 34
LABEL_WIDTH = 12


class FiguresPanel(VerticalScroll):
    """Headline figures for the current scenario, live or marked stale (per workload)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.figures: dict[str, Figure] = {}
        self._pairs = 0
        self._width = 0
        # The figure groups drawn stale ("training", "serving"): their last valid figures, in the stale style.
        self.stale_parts: frozenset[str] = frozenset()

    def compose(self) -> ComposeResult:
        yield Figure("status", "", classes="")
        yield Figure("train-title", "Training", classes="group-title")
        with Grid(classes="figures", id="train-figures"):
            for fid, label, _ in TRAINING:
                yield Label(label, classes="figure-label")
                yield self._figure(fid)
        yield Figure("cost-basis", "", classes="words -quiet")
        yield Figure("serve-title", "Serving", classes="group-title")
        with Grid(classes="figures", id="serve-figures"):
            for fid, label, _ in SERVING:
                yield Label(label, classes="figure-label")
                yield self._figure(fid)
        yield Static("Where the GPU-hours go", classes="group-title", markup=False)
        yield GpuHoursBar(id="gpu-hours-bar")
        yield Words("plan", "", classes="words")
        yield Words("runner-up", "", classes="words -quiet")
        yield Words("bottleneck", "", classes="words")

    def on_resize(self, event) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            for widget in [*self.query(Words), *self.query(GpuHoursBar)]:
                forget_growth(widget)
        self._layout_grids()

    def on_mount(self) -> None:
        self._layout_grids()

    def _layout_grids(self) -> None:
        """As many label/value pairs a row as the width takes (1 at 80 columns, up to 4 on wide screens)."""
        pairs = max(1, min(4, (self.size.width - 2) // PAIR_WIDTH))
        if pairs == self._pairs:
            return
        self._pairs = pairs
        for grid in self.query(".figures"):
            grid.styles.grid_size_columns = 2 * pairs
            grid.styles.grid_columns = " ".join([f"{LABEL_WIDTH} 1fr"] * pairs)

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
        serve_stale: bool = False,
        extra: dict | None = None,
    ) -> None:
        """Figures from `train_row` and `serve_row` (each the last valid one when its workload is stale);
        notes say what they describe or why something is missing. `extra` holds scenario facts the rows
        do not (latency limits, the rental price)."""
        extra = extra or {}
        self._set("status", status)
        # The status line is one widget: its class is cheap to change (see Figure for the figures').
        self.query_one("#status").set_class(stale or train_stale or serve_stale, "-stale")
        self._set("train-title", "Training" + (f"  {train_note}" if train_note else ""))
        self._set("serve-title", "Serving" + (f"  {serve_note}" if serve_note else ""))
        self.stale_parts = frozenset(
            part for part, on in (("training", stale or train_stale), ("serving", stale or serve_stale)) if on
        )
        for fid, _, _ in TRAINING:
            self.figures[fid].set_stale("training" in self.stale_parts)
        for fid, _, _ in SERVING:
            self.figures[fid].set_stale("serving" in self.stale_parts)
        tr = train_row or {}
        for fid, _, read in TRAINING:
            self.figures[fid].show(read(tr, extra))
        sr = serve_row or {}
        self._set("cost-basis", cost_basis_line(tr) or cost_basis_line(sr, "infer_"))
        for fid, _, read in SERVING:
            self.figures[fid].show(read(sr, extra))
        self.query_one(GpuHoursBar).show(gpu_hour_shares(tr))
        plan = fmt.plan(tr) if tr.get("train_wall_clock_days") is not None else fmt.DASH
        searched = tr.get("train_plans_searched")
        if plan != fmt.DASH and searched and searched > 1:
            plan += f"  (best of {searched:,} plans)"
        self._set("plan", f"Plan  {plan}")
        second = runner_up(extra.get("runner_up")) if plan != fmt.DASH else ""
        self._set("runner-up", f"Runner-up  {second}" if second else "")
        words = tr.get("train_bottleneck_detail") or fmt.DASH
        serving = sr.get("infer_bottleneck_detail") or sr.get("infer_bottleneck")
        self._set("bottleneck", f"Bottleneck  {words}" + (f"\nServing  {serving}" if serving else ""))
