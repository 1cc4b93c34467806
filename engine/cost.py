"""What a run (or an hour of serving) costs, on one stated basis (vectorized; docs/model.md, "Cost").

Rental (facility.cost_model = "rental"): GPU-hours x a dated catalog price per GPU-hour (prices.toml; the GPU
type's default unless facility.rental_price or facility.usd_per_gpu_hour says otherwise). The provider's
electricity, facility and network are in the price; the run's metered electricity is reported beside it.

    cost = GPU-hours x usd_per_gpu_hour

Owned (facility.cost_model = "owned"): the servers' purchase price per GPU (prices.toml, or
facility.server_usd_per_gpu), with the scale-out network and the shared storage as stated shares of it,
depreciated straight-line over depreciation_years; the facility at its price per kW-month of the cluster's
peak IT power (colocation prices the capacity, power is billed apart); and the electricity.

    compute     = GPU-hours x server price / (years x 8,760 h)
    network     = compute x network_capex_share;   storage = compute x storage_capex_share
    facility    = peak IT kW x usd_per_kw_month x wall-clock hours / 730
    electricity = facility kWh x usd_per_kwh
    cost        = compute + network + storage + facility + electricity;  per GPU-hour = cost / GPU-hours

Every result names its basis (cost_model, price key, provider, term, date, source: text columns from
resolve.py) so that a figure never travels without what it includes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .columns import Columns
from .energy import HOURS_PER_YEAR

HOURS_PER_MONTH = HOURS_PER_YEAR / 12.0


def capex_usd_per_gpu_hour(c: Columns) -> dict[str, np.ndarray]:
    """An owned GPU's capital cost per hour of its life, by part (servers, network, storage)."""
    servers = c.server_usd_per_gpu / (c.depreciation_years * HOURS_PER_YEAR)
    return {
        "compute": servers,
        "network": servers * c.network_capex_share,
        "storage": servers * c.storage_capex_share,
    }


def breakdown_usd(c: Columns, gpu_hours, hours, peak_it_kw, facility_kwh) -> dict[str, np.ndarray]:
    """Cost by part on each row's basis; the parts sum to the total (rental rows: compute only)."""
    owned = c.cost_owned == 1
    capex = capex_usd_per_gpu_hour(c)
    zero = np.zeros_like(np.asarray(gpu_hours, dtype=float))
    return {
        "compute": np.where(owned, gpu_hours * capex["compute"], gpu_hours * c.usd_per_gpu_hour),
        "network": np.where(owned, gpu_hours * capex["network"], zero),
        "storage": np.where(owned, gpu_hours * capex["storage"], zero),
        "facility": np.where(owned, peak_it_kw * c.usd_per_kw_month * hours / HOURS_PER_MONTH, zero),
        "electricity": np.where(owned, facility_kwh * c.usd_per_kwh, zero),
    }


def training_cost(c: Columns) -> None:
    """Adds cost_usd, its parts (cost_<part>_usd), cost per GPU-hour and the metered electricity's price."""
    hours = c.train_time_s / 3600.0
    kwh = c.energy_mwh * 1000.0
    parts = breakdown_usd(c, c.gpu_hours, hours, c.peak_it_kw, kwh)
    for name, value in parts.items():
        setattr(c, f"cost_{name}_usd", value)
    c.cost_usd = sum(parts.values())
    with np.errstate(invalid="ignore", divide="ignore"):
        c.cost_usd_per_gpu_hour = c.cost_usd / c.gpu_hours
    c.electricity_usd = kwh * c.usd_per_kwh


def serving_usd_per_hour(c: Columns, gpus, facility_w, peak_it_kw) -> np.ndarray:
    """What an hour of the serving fleet costs on the row's basis (rental: GPU-hours x price; owned: capex,
    facility and electricity as for training)."""
    parts = breakdown_usd(c, gpus, 1.0, peak_it_kw, facility_w / 1000.0)
    return sum(parts.values(), np.zeros(c.n))


def priced_as(row: dict, column: str = "price_via") -> str | None:
    """The GPU type whose catalog price stands in for the row's own (None: it has one of its own), read from
    price_via ('gaudi3 priced as h100-sxm: ...', engine/resolve.py), or purchase_via for the purchase price."""
    via = row.get(column) or ""
    return via.split(" priced as ")[1].split(":")[0] if " priced as " in via else None


def basis_label(row: dict, prefix: str = "train_") -> str:
    """'rental at $6.88/GPU-h (2026-01)', 'rental at $6.88/GPU-h (2026-01, priced as h100-sxm)' for a GPU type
    with no price of its own, or 'owned at $1.27/GPU-h (servers $31.9k/GPU 2025-01, 5 y)' (', priced as b200'
    after the server price where it is borrowed): what a
    cost figure rests on, for the explorer and the CLI (row: a result row with the basis text columns)."""
    model = row.get("cost_model")
    if model is None:
        return ""
    if model == "rental":
        price = row.get("usd_per_gpu_hour")
        date = row.get("price_date") or ""
        stand_in = f", priced as {other}" if (other := priced_as(row)) else ""
        when = f" ({date}{stand_in})" if date else " (set by the scenario)"
        return f"rental at ${price:,.2f}/GPU-h{when}" if _ok(price) else "rental"
    per_hour = row.get(f"{prefix}cost_usd_per_gpu_hour")
    server: Any = row.get("server_usd_per_gpu")  # a number where _ok
    date, years = row.get("purchase_date") or "", row.get("depreciation_years")
    rate = f" at ${per_hour:,.2f}/GPU-h" if _ok(per_hour) else ""
    bits = []
    if _ok(server):
        stand_in = f", priced as {other}" if (other := priced_as(row, "purchase_via")) else ""
        bits.append(f"servers ${server / 1000:,.1f}k/GPU" + (f" {date}" if date else "") + stand_in)
    if _ok(years):
        bits.append(f"{years:g} y")
    return f"owned{rate}" + (f" ({', '.join(bits)})" if bits else "")


def _ok(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)
