"""Number formatting shared by the command line and the explorer: short, unit-bearing, never 'nan'."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

DASH = "-"


def field(r: Mapping[str, Any], key: str) -> Any:
    """A result row's figure: a number, text, or None where missing (checked with `_ok` before use)."""
    return r.get(key)


def _ok(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def si(x, unit: str = "", digits: int = 3) -> str:
    """1234567 -> '1.23 M' (with unit appended)."""
    if not _ok(x):
        return DASH
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.{digits}g} {prefix}{unit}".rstrip()
    return f"{x:.{digits}g} {unit}".rstrip()


def number(x, digits: int = 3) -> str:
    if not _ok(x):
        return DASH
    if abs(x) >= 1e5:
        return f"{x:,.0f}"
    return f"{x:,.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"


def devices(r: Mapping[str, Any]) -> str:
    """The cluster's compute devices: '1,024' for GPUs (and other accelerators), '10 CPU sockets' where a CPU
    is the compute device, so that a CPU row next to a GPU row does not read as GPUs."""
    count = number(r.get("n_gpus"))
    return f"{count} CPU sockets" if r.get("device_kind") == "cpu" and count != DASH else count


def pct(fraction, digits: int = 1) -> str:
    return DASH if not _ok(fraction) else f"{100 * fraction:.{digits}f}%"


def pct_points(value, digits: int = 1) -> str:
    return DASH if not _ok(value) else f"{value:.{digits}f}%"


def duration_days(days) -> str:
    if not _ok(days):
        return DASH
    if days >= 1:
        return f"{days:,.1f} d"
    hours = days * 24
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.1f} min"


def seconds(s) -> str:
    if not _ok(s):
        return DASH
    if s >= 1:
        return f"{s:.2f} s"
    return f"{s * 1e3:.1f} ms" if s >= 1e-3 else f"{s * 1e6:.0f} us"


def money(usd) -> str:
    if not _ok(usd):
        return DASH
    for factor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(usd) >= factor:
            return f"${usd / factor:.2f}{suffix}"
    return f"${usd:,.0f}"


def ms(x) -> str:
    return DASH if not _ok(x) else (f"{x:,.0f} ms" if x >= 100 else f"{x:.1f} ms")


UNBOUNDED = "unbounded (offered load above capacity)"


def latency_ms(r: dict, column: str) -> str:
    """A latency from `column` of result row `r`; 'unbounded (...)' where an overloaded fleet has none (the
    queue grows without limit: a '-' there read as "not computed" beside "fits: yes")."""
    value = r.get(column)
    if not _ok(value) and r.get("infer_overloaded") and r.get("infer_fits"):
        return UNBOUNDED
    return ms(value)


def ratio(new, old) -> str:
    """'x1.23' / 'x0.81' change of new against old."""
    if not (_ok(new) and _ok(old)) or old == 0:
        return DASH
    return f"x{new / old:.2f}"


def plan(r: dict) -> str:
    """'TP8 PP4 DP32 mb1 ZeRO-1 v2 recompute selective' from a result row (keys it lacks are left out)."""
    if r.get("train_tp") is None:
        return DASH
    parts = [f"TP{r['train_tp']}"]
    if (r.get("train_cp") or 1) > 1:  # context parallel, where the engine plans it
        parts.append(f"CP{r['train_cp']}")
    parts += [f"{name}{r[key]}" for name, key in (("PP", "train_pp"), ("DP", "train_dp")) if r.get(key) is not None]
    if (r.get("train_ep") or 1) > 1:
        parts.append(f"EP{r['train_ep']}")
    if r.get("train_microbatch") is not None:
        parts.append(f"mb{r['train_microbatch']}")
    if r.get("train_zero") is not None:
        parts.append(f"ZeRO-{r['train_zero']}")
    if (r.get("train_interleave") or 1) > 1:
        parts.append(f"v{r['train_interleave']}")
    rc = r.get("train_recompute")
    if rc and rc != "none":
        parts.append(f"recompute {rc}")
    if r.get("train_global_batch_adjusted"):
        parts.append(f"batch {r['train_global_batch_seqs']:,} seqs")
    return " ".join(parts)


IDLE_LABELS = (
    ("communication", "comm"),
    ("pipeline_bubble", "bubble"),
    ("storage_stall", "storage"),
    ("host_preprocessing", "host CPU"),
    ("checkpoint_stall", "checkpoints"),
    ("failure_downtime", "restarts"),
    ("lost_work", "lost work"),
)


def idle_parts(r: dict) -> str:
    """'comm 1.6, restarts 0.3' from the idle breakdown columns; parts under 0.05 points are left out."""
    parts = [(label, field(r, f"train_idle_{key}_pct")) for key, label in IDLE_LABELS]
    shown = [f"{label} {value:.1f}" for label, value in parts if _ok(value) and value >= 0.05]
    if not any(_ok(v) for _, v in parts):
        return DASH
    return ", ".join(shown) + " (% of GPU-hours)" if shown else "none"


def input_data(r: dict) -> str:
    need, gpus = field(r, "train_data_demand_gb_s_per_gpu"), field(r, "train_storage_bound_gpus")
    if not _ok(need):
        return DASH
    if not _ok(gpus) or gpus > 1e6:
        return f"{si(need * 1e9, 'B/s')} per GPU; storage is far from the limit"
    return f"{si(need * 1e9, 'B/s')} per GPU; storage keeps {gpus:,.0f} GPUs >= 90% busy"


def host_cpus(r: dict) -> str:
    """'2x xeon-8480c: 5.7 of 12.5 free cores per GPU at 3,175 core-us per sample' (text: per token)."""
    need, free, cost = (
        field(r, "train_host_cores_needed_per_gpu"),
        field(r, "train_host_cores_free_per_gpu"),
        field(r, "train_host_core_us_per_unit"),
    )
    cpu = r.get("host_cpu")
    if not cpu:
        return DASH
    sockets = r.get("train_host_sockets_per_node")
    if sockets == 0:
        return f"the compute devices ({cpu}) are their own host"
    name = f"{number(sockets)}x {cpu}" if _ok(sockets) else cpu
    if not (_ok(need) and _ok(free) and _ok(cost)):
        return name
    unit = "token" if r.get("train_tokens_per_s") is not None else "sample"
    per = f"{cost:,.0f}" if cost >= 10 else f"{cost:.2f}"
    busy = f"{need:.2f}" if need < 1 else f"{need:.1f}"
    return f"{name}: {busy} of {free:.1f} free cores per GPU at {per} core-us per {unit}"


def checkpoints(r: dict) -> str:
    size, every, stall = (
        field(r, "train_checkpoint_gb"),
        field(r, "train_checkpoint_interval_min"),
        field(r, "train_checkpoint_stall_s"),
    )
    if not _ok(every):
        return "none" if _ok(size) else DASH
    return f"{number(size)} GB every {duration_days(every / 1440)}, {seconds(stall)} stall each"


def interruptions(r: dict) -> str:
    n, mtbf, restart = field(r, "train_interruptions"), field(r, "train_mtbf_h"), field(r, "train_restart_min")
    if not _ok(n):
        return DASH
    if not _ok(mtbf):
        return "none modelled"
    return f"{n:,.1f} expected (one per {duration_days(mtbf / 24)}), {restart:.1f} min restart each"


def power(r: dict) -> str:
    peak, avg = r.get("train_peak_power_mw"), r.get("train_avg_power_mw")
    if not _ok(peak):
        return DASH
    return f"{peak:.3g} MW peak, {avg:.3g} MW average (PUE {r.get('train_pue', 0):.2f})"


def _float(x: Any) -> float:
    return float(x) if _ok(x) else math.nan


def racks(r: dict) -> str:
    """'16 at up to 38.8 kW (limit 132 kW)'; over the limit, the nodes each rack really holds and what the full
    rack would draw: '22 at up to 31.4 kW (3 nodes each: 4 would draw 41.8 kW, over the 40 kW limit)'."""
    keys = ("train_racks", "train_rack_kw", "train_rack_limit_kw", "train_node_peak_kw")
    n, kw, limit, node = (_float(r.get(k)) for k in keys)
    if not all(math.isfinite(v) for v in (n, kw, limit)):
        return DASH
    if not r.get("train_rack_over_limit") or not node > 0:
        return f"{n:,.0f} at up to {kw:.1f} kW (limit {limit:.0f} kW)"
    full = max(1, round(kw / node))
    if node > limit:
        return f"{n:,.0f} at {node:.1f} kW (one node each, itself over the {limit:.0f} kW limit)"
    fit = max(1, min(full, math.floor(limit / node)))
    return (
        f"{n:,.0f} at up to {fit * node:.1f} kW ({fit} nodes each: {full} would draw {kw:.1f} kW,"
        f" over the {limit:.0f} kW limit)"
    )


def pair_ms(p50, p99, overloaded: bool = False) -> str:
    """'68.6 ms / 74.6 ms' (a median and its p99); `overloaded`: an unbounded latency says so."""
    if not _ok(p50) and not _ok(p99):
        return UNBOUNDED if overloaded else DASH
    return f"{ms(p50)} / {ms(p99)}"


def latency_band(r: dict) -> str:
    """'TTFT p99 90.4 ms to unbounded, TPOT p99 30.2-128 ms': the p99s if capacity were off by the serving
    error band (engine/serving/fleet.latency_band); '-' where none applies."""
    parts = []
    for name, key in (("TTFT", "infer_ttft_p99"), ("TPOT", "infer_tpot_p99")):
        low, high = field(r, f"{key}_low_ms"), field(r, f"{key}_high_ms")
        if not _ok(low):
            continue
        parts.append(f"{name} p99 {ms(low)} to {ms(high) if _ok(high) else 'unbounded'}")
    band = field(r, "infer_error_band_pct")
    if not parts or not _ok(band):
        return DASH
    return ", ".join(parts) + f" (capacity +/-{band:.0f}%)"


def money_small(usd) -> str:
    """Dollars with cents for small amounts ('$0.42'), else like money()."""
    if not _ok(usd):
        return DASH
    return f"${usd:,.2f}" if abs(usd) < 1000 else money(usd)


def serving_plan(r: dict) -> str:
    """'TP8 x 128 replicas' (PP shown when above 1)."""
    if r.get("infer_tp") is None:
        return DASH
    pp = f" PP{int(r['infer_pp'])}" if (r.get("infer_pp") or 1) > 1 else ""
    return f"TP{int(r['infer_tp'])}{pp} x {int(r['infer_replicas'] or 0)} replicas"


def cost_with_basis(r: dict, prefix: str = "train_") -> str:
    """'$24.88M, rental at $6.88/GPU-h (2026-01)': the cost and what it rests on (engine/cost.py)."""
    from whatif.engine.cost import basis_label

    key = "train_cost_usd" if prefix == "train_" else "infer_cost_usd_per_1m_tokens"
    value = money(r.get(key)) if prefix == "train_" else money_small(r.get(key))
    label = basis_label(r, prefix)
    return value if value == DASH or not label else f"{value}, {label}"


def electricity(r: dict, prefix: str = "train_") -> str:
    """The metered electricity's price, and whether the cost includes it on top (owned) or in the rental."""
    key = "train_electricity_usd" if prefix == "train_" else "infer_electricity_usd_per_1m_tokens"
    value = money(r.get(key)) if prefix == "train_" else money_small(r.get(key))
    if value == DASH:
        return value
    where = "in the rental price" if r.get("cost_model") == "rental" else "part of the cost"
    if r.get("cost_model") == "rental" and not _ok(r.get("usd_per_gpu_hour")):
        where = "metered; no catalog price for CPU sockets"
    rate = r.get("usd_per_kwh")
    at = f" at ${rate:g}/kWh" if _ok(rate) else ""
    return f"{value}{' per 1M tokens' if prefix != 'train_' else ''}{at} ({where})"


def carbon(r: dict) -> str:
    """'1,947 t location-based, 1,947 t market-based; + 31 t embodied'."""
    loc, market, embodied = r.get("train_co2_t"), r.get("train_co2_market_t"), r.get("train_co2_embodied_t")
    if not _ok(loc):
        return DASH
    text = f"{number(loc)} t location-based"
    if _ok(market):
        text += f", {number(market)} t market-based"
    if _ok(embodied):
        text += f"; + {number(embodied)} t embodied"
    return text
