"""Power, racks, energy, cost and carbon of a training run, phase by phase (vectorized).

GPU power by phase: a GPU draws gpu_busy_power_fraction x TDP while it computes (useful steps, evaluation and
work that a failure later throws away) and its idle power while it waits (exposed communication, pipeline
bubbles, storage and checkpoint stalls, restarts). The host CPUs and their memory draw what the chosen CPU draws
at the load the run puts on it (engine/host.py: sockets x TDP x load, DIMMs); the rest of the node (fans,
NVSwitches, NICs, local drives) draws what the vendor's 8-GPU system measures while training (node maximum x
node_training_power_fraction, Latif et al. 2025) less its GPUs and its default host, all the time. The
scale-out fabric's switches draw switch_w_per_port for each port a non-blocking fat tree needs: 2 x tiers - 1
per NIC port.

    IT energy = GPUs + host + switches;  facility energy = IT x PUE (The Green Grid);  cost = facility kWh x
    price + GPU-hours x rental price;  CO2e = facility kWh x grid intensity.

Peak power has every GPU busy; rack power = node peak power x nodes per rack, checked against the cooling
kind's rack limit (racks needed = nodes / nodes that fit under the limit).
"""

from __future__ import annotations

import numpy as np

from . import host
from .catalog import Catalog
from .columns import Columns
from .storage import nodes

J_PER_MWH = 3.6e9


def switch_ports(c: Columns, cat: Catalog) -> np.ndarray:
    """Switch ports of a non-blocking fat tree over the job's NIC ports (none for a single node)."""
    k = cat.constant("switch_radix")
    n_nodes = nodes(c)
    endpoints = n_nodes * c.nics
    tiers = np.where(endpoints <= k, 1.0, np.where(endpoints <= k * k / 2.0, 2.0, 3.0))
    return np.where(n_nodes > 1, endpoints * (2.0 * tiers - 1.0), 0.0)


def training_energy(c: Columns, cat: Catalog) -> None:
    busy_w = c.tdp_w * cat.constant("gpu_busy_power_fraction")
    # Host power from the node's CPUs at the load this run puts on them (engine/host.py): the hook that takes
    # the place of a fixed per-node host figure.
    host_w = c.host_w_train_per_gpu = host.host_w_per_gpu(c, cat, load=c.host_load)
    t = c.train_time_s
    step_busy = np.clip((c.t_compute_s + c.t_optimizer_s) / c.step_time_s, 0.0, 1.0)
    # Redone work runs the same mix of compute and waiting as a normal step.
    busy_s = c.steps * (c.t_compute_s + c.t_optimizer_s) + c.eval_time_s + c.idle_lost_s * step_busy
    busy_s = np.minimum(busy_s, t)
    gpu_j = c.n_gpus * (busy_w * busy_s + c.idle_w * (t - busy_s))
    host_j = c.n_gpus * host_w * t
    switch_w = switch_ports(c, cat) * cat.constant("switch_w_per_port")
    switch_j = switch_w * t
    it_j = gpu_j + host_j + switch_j

    c.gpu_busy_share = busy_s / t
    c.gpu_avg_w = gpu_j / (c.n_gpus * t)
    c.gpu_energy_mwh = gpu_j / J_PER_MWH
    c.host_energy_mwh = host_j / J_PER_MWH
    c.switch_energy_mwh = switch_j / J_PER_MWH
    c.it_energy_mwh = it_j / J_PER_MWH
    c.energy_mwh = c.it_energy_mwh * c.pue
    c.it_power_mw = it_j / t / 1e6
    c.facility_power_mw = c.it_power_mw * c.pue
    peak_it_w = c.n_gpus * (busy_w + host_w) + switch_w
    c.peak_facility_power_mw = peak_it_w * c.pue / 1e6

    node_kw = c.gpn * (busy_w + host_w) / 1000.0
    c.node_peak_kw = node_kw
    c.rack_kw = node_kw * c.nodes_per_rack
    c.rack_over_limit = c.rack_kw > c.rack_limit_kw
    fit = np.clip(np.floor(c.rack_limit_kw / node_kw), 1.0, c.nodes_per_rack)
    c.racks = np.ceil(nodes(c) / fit)
    c.node_over_limit = node_kw > c.rack_limit_kw

    kwh = c.energy_mwh * 1000.0
    c.cost_usd = kwh * c.usd_per_kwh + c.gpu_hours * c.gpu_hour_usd
    c.co2_t = kwh * c.gco2_per_kwh / 1e6
    c.tokens_per_kwh = np.where(c.is_samples == 1, np.nan, c.tokens / np.maximum(kwh, 1e-30))
