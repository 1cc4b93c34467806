"""The figures `compare`, `sweep` and `goal` show: an id to choose them by, a label, the result column, how
to print it, and which way is better. The headline set is the compact default of `compare`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from whatif.engine.cost import basis_label

from .. import format as fmt


@dataclass(frozen=True)
class Figure:
    id: str
    label: str
    kind: str | None  # "training", "inference", or None (the cluster)
    column: str | None  # the result column; None for rows built from several columns
    show: Callable[[dict], str]
    better: str | None = None  # "lower", "higher", or None (text, or no better way)
    change: str = "relative"  # "relative" (percent) or "points" (a percentage's difference in points)
    headline: bool = False

    def value(self, row: dict):
        return row.get(self.column) if self.column else None


def _num(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _col(name: str, show: Callable) -> Callable[[dict], str]:
    return lambda r: show(r.get(name))


def _training_plan(r: dict) -> str:
    if r.get("train_fits") is False:
        return f"no plan fits: {r.get('train_reason')}"
    return fmt.plan(r)


def _serving_plan(r: dict) -> str:
    if r.get("infer_fits") is False:
        return f"no plan fits: {r.get('infer_reason')}"
    return fmt.serving_plan(r)


def _unit(unit: str, digits: int = 3) -> Callable:
    return lambda x: f"{fmt.number(x, digits)} {unit}" if _num(x) else fmt.DASH


def _text(x) -> str:
    return x or fmt.DASH


def _tok_s(x) -> str:
    return fmt.si(x, " tok/s")


def _fig(id_, label, kind, column, show, better=None, change="relative", headline=False) -> Figure:
    """A figure read from one column (`show` formats the value) or built from the row (column None)."""
    row_show = show if column is None else _col(column, show)
    return Figure(id_, label, kind, column, row_show, better, change, headline)


TR, SV = "training", "inference"
LOW, HIGH = "lower", "higher"
FIGURES: list[Figure] = [
    Figure("gpus", "GPUs", None, "n_gpus", fmt.devices, headline=True),
    _fig("plan", "plan", TR, None, _training_plan, headline=True),
    _fig("days", "wall clock", TR, "train_wall_clock_days", fmt.duration_days, LOW, headline=True),
    _fig("gpu_hours", "GPU-hours", TR, "train_gpu_hours", fmt.si, LOW, headline=True),
    _fig("cost", "cost", TR, "train_cost_usd", fmt.money, LOW, headline=True),
    _fig("mfu", "MFU", TR, "train_mfu", fmt.pct, HIGH, headline=True),
    _fig("idle", "idle GPU", TR, "train_idle_gpu_pct", fmt.pct_points, LOW, "points", headline=True),
    _fig("energy", "energy (facility)", TR, "train_energy_mwh", _unit("MWh"), LOW, headline=True),
    _fig("bottleneck", "bottleneck", TR, "train_bottleneck", _text, headline=True),
    _fig("step_time", "step time", TR, "train_step_time_s", fmt.seconds, LOW),
    _fig("tokens_s", "tokens/s", TR, "train_tokens_per_s", fmt.si, HIGH),
    _fig("goodput", "goodput", TR, "train_goodput", fmt.pct, HIGH, "points"),
    _fig("hfu", "HFU", TR, "train_hfu", fmt.pct, HIGH),
    _fig("cost_basis", "cost basis", TR, None, lambda r: basis_label(r) or fmt.DASH),
    _fig("electricity", "electricity", TR, "train_electricity_usd", fmt.money, LOW),
    _fig("co2", "CO2e (location-based)", TR, "train_co2_t", _unit("t"), LOW),
    _fig("co2_market", "CO2e (market-based)", TR, "train_co2_market_t", _unit("t"), LOW),
    _fig("co2_embodied", "CO2e (embodied)", TR, "train_co2_embodied_t", _unit("t"), LOW),
    _fig("power", "peak power (facility)", TR, "train_peak_power_mw", _unit("MW"), LOW),
    _fig("racks", "racks", TR, "train_racks", fmt.number, LOW),
    _fig("interruptions", "interruptions", TR, "train_interruptions", fmt.number, LOW),
    _fig("memory", "memory per GPU", TR, "train_mem_gb", _unit("GB"), LOW),
    _fig("host_cpus", "host CPUs", TR, None, fmt.host_cpus),
    _fig("host_cores", "host cores per GPU needed", TR, "train_host_cores_needed_per_gpu", fmt.number, LOW),
    _fig(
        "host_stall",
        "idle on host preprocessing",
        TR,
        "train_idle_host_preprocessing_pct",
        fmt.pct_points,
        LOW,
        "points",
    ),
    _fig("training_why", "training bottleneck detail", TR, "train_bottleneck_detail", _text),
    _fig("serve_plan", "serving plan", SV, None, _serving_plan),
    # Column-read for the changes; shown from the row, so that an overloaded fleet's TTFT reads "unbounded".
    Figure("ttft_p50", "TTFT p50", SV, "infer_ttft_ms", lambda r: fmt.latency_ms(r, "infer_ttft_ms"), LOW),
    Figure(
        "ttft_p99",
        "TTFT p99",
        SV,
        "infer_ttft_p99_ms",
        lambda r: fmt.latency_ms(r, "infer_ttft_p99_ms"),
        LOW,
        headline=True,
    ),
    _fig("tpot_p50", "TPOT p50", SV, "infer_tpot_ms", fmt.ms, LOW),
    _fig("tpot_p99", "TPOT p99", SV, "infer_tpot_p99_ms", fmt.ms, LOW, headline=True),
    _fig("serve_tokens_s", "served tokens/s", SV, "infer_tokens_per_s", fmt.si, HIGH, headline=True),
    _fig("capacity", "capacity", SV, "infer_capacity_tokens_per_s", _tok_s, HIGH),
    _fig("slo_tokens_s", "tokens/s within p99 limits", SV, "infer_slo_tokens_per_s", _tok_s, HIGH, headline=True),
    _fig("slo_rps", "requests/s within p99 limits", SV, "infer_slo_rps", fmt.number, HIGH),
    _fig("max_batch", "max batch", SV, "infer_max_batch", fmt.number, HIGH),
    _fig("serve_idle", "idle GPU (serving)", SV, "infer_idle_gpu_pct", fmt.pct_points, LOW, "points"),
    _fig("serve_energy", "energy / 1k tokens", SV, "infer_energy_wh_per_1k_tokens", _unit("Wh"), LOW),
    _fig("serve_cost", "cost / 1M tokens", SV, "infer_cost_usd_per_1m_tokens", fmt.money_small, LOW, headline=True),
    _fig("serve_cost_basis", "serving cost basis", SV, None, lambda r: basis_label(r, "infer_") or fmt.DASH),
    _fig("serve_bottleneck", "serving bottleneck", SV, "infer_bottleneck", _text, headline=True),
    _fig("serving_why", "serving bottleneck detail", SV, "infer_bottleneck_detail", _text),
]
BY_ID = {f.id: f for f in FIGURES}
HEADLINE = [f for f in FIGURES if f.headline]


def choose(ids: str | None) -> list[Figure]:
    """Figures by comma-separated ids ("all" for every one); None: the headline set. Raises ValueError with
    the one-line message for an unknown id."""
    if ids is None:
        return HEADLINE
    if ids.strip() == "all":
        return FIGURES
    chosen = []
    for raw in ids.split(","):
        key = raw.strip()
        if key not in BY_ID:
            from whatif.engine.catalog import close_matches
            from whatif.engine.errors import printable

            near = close_matches(key, list(BY_ID), n=3)
            hint = f"did you mean {' or '.join(near)}? " if near else ""
            # The user's text is cut; the list of figures never is (it is the answer).
            shown = printable(repr(key))
            raise ValueError(f"--figures: unknown figure {shown}; {hint}allowed: all, {', '.join(BY_ID)}")
        chosen.append(BY_ID[key])
    return chosen


@dataclass(frozen=True)
class Change:
    """A figure against the baseline: relative (a fraction) where the baseline is a usable denominator,
    else absolute; `better` True/False where the figure has a better direction and moved."""

    relative: float | None
    absolute: float
    better: bool | None


# A change beyond these factors is shown as a difference, not a ratio (a near-zero baseline would
# otherwise print ratios like x187576296302).
RATIO_LIMITS = (1e-3, 1e3)


def change(figure: Figure, value, base) -> Change | None:
    """None where there is nothing to compare (text rows, or a missing value on either side)."""
    if figure.column is None:
        return None
    if not (_num(value) and _num(base)):
        return None
    diff = value - base
    better = None
    if figure.better and diff != 0:
        better = (diff < 0) == (figure.better == "lower")
    usable = base != 0 and figure.change == "relative" and RATIO_LIMITS[0] <= abs(value / base) <= RATIO_LIMITS[1]
    return Change(diff / base if usable else None, diff, better)


def change_text(figure: Figure, ch: Change | None) -> str:
    """'-12% ✓', '+3.1 pts ✗', '+$1.2M' (no usable ratio); '' where nothing compares."""
    if ch is None:
        return ""
    mark = "" if ch.better is None else (" ✓" if ch.better else " ✗")
    if ch.absolute == 0:
        return "same"
    if ch.relative is not None:
        if ch.relative >= 1.0:  # twice or more: a factor reads better than +240%
            return f"x{1 + ch.relative:.3g}{mark}"
        pct = 100 * ch.relative
        return f"{pct:+.0f}%{mark}" if abs(pct) >= 9.5 else f"{pct:+.1f}%{mark}"
    if figure.change == "points":
        # Engine convention: *_pct columns hold percentages, other shares are fractions.
        scale = 1.0 if (figure.column or "").endswith("_pct") else 100.0
        return f"{ch.absolute * scale:+.1f} pts{mark}"
    shown = figure.show({figure.column: abs(ch.absolute)})
    return ("+" if ch.absolute > 0 else "-") + shown + mark
