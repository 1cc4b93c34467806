"""Power by activity, racks, energy, water and carbon of a training run (vectorized; docs/model.md, "Power").

GPU board power by what the GPU does (constants.toml; reference kernels power.csv):

    limit     P_max  = min(TDP, power cap)                         (never exceeded)
    compute   P_c(u) = P_max x [f_mem + (1 - f_mem) x min(1, u / u_sat)]
              u = tensor utilisation of the compute phases (hardware FLOPs / (compute seconds x dense peak)),
              f_mem = serving_decode_power_fraction (memory-bound work), u_sat = gpu_power_saturation_utilisation
    wait      P_w    = min(gpu_wait_power_fraction x TDP, P_max)    exposed communication, pipeline bubbles,
                                                                  stragglers, storage and checkpoint stalls (P0)
    idle      idle_w                                              restarts (the job is down), unused GPUs

Host power per node, from the catalog (hosts.toml and host_cpus.toml for the CPUs, constants.toml, storage.toml):

    host DC  = sockets x CPU TDP x max(host_cpu_load_fraction, load) + DIMMs x dram_w_per_dimm
               + NIC ports x nic_w_per_400gbps_port x speed / 400 Gb/s (compute and storage NICs)
               + drives x (idle W + (active W - idle W) x share of time reading) + baseboard W per GPU x GPUs
    node wall = (GPUs' power + host DC) / (1 - server fan share of the cooling kind) / psu_efficiency

The sockets are the chosen host CPU's (cluster.host_cpu, or the GPU type's server), so energy follows that
choice; `load` is the share of their cores the framework and the input preparation keep busy (engine/host.py):
a working host draws at least codecarbon's constant-mode half of TDP, and TDP x load above it. No DIMMs where
the CPU's memory is inside its TDP (Grace). A CPU compute device has no host sockets (its power is the
device's: TDP while it computes, the constant-mode half while it waits).

The scale-out fabric draws switch_w_per_port x speed / 400 Gb/s per port of a non-blocking fat tree (2 x tiers
- 1 per NIC port); the shared file system shared_fs_w_per_gb_s x its bandwidth.

    IT energy = nodes + switches + storage;  facility = IT x PUE (site PUE x the cooling kind's factor)
    water     = IT kWh x WUE x the cooling kind's water factor (The Green Grid's WUE is per IT kWh)
    CO2e      = facility kWh x grid factor (location-based) or x contractual factor (market-based);
                embodied = (GPUs x kg per GPU + servers x kg per server) x wall-clock / (life x use share)

Peak power has every GPU at P_max; rack power = node peak x nodes per rack, against the cooling kind's limit
(racks needed = nodes / nodes that fit; floor area = racks x floor_m2_per_rack).
"""

from __future__ import annotations

import numpy as np

from . import host
from .catalog import Catalog
from .columns import Columns
from .storage import nodes

J_PER_MWH = 3.6e9
HOURS_PER_YEAR = 8760.0


def switch_ports(c: Columns, cat: Catalog) -> np.ndarray:
    """Switch ports of a non-blocking fat tree over the job's NIC ports (none for a single node)."""
    k = cat.constant("switch_radix")
    n_nodes = nodes(c)
    endpoints = n_nodes * c.nics
    tiers = np.where(endpoints <= k, 1.0, np.where(endpoints <= k * k / 2.0, 2.0, 3.0))
    return np.where(n_nodes > 1, endpoints * (2.0 * tiers - 1.0), 0.0)


def _peak_flops(c: Columns) -> np.ndarray:
    return np.where(c.prec == 2, c.fp4_peak_tflops, np.where(c.prec == 1, c.fp8_tflops, c.bf16_tflops)) * 1e12


def gpu_power_w(c: Columns, cat: Catalog, utilisation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Board power (W) of one GPU while it computes at tensor utilisation `utilisation`, while it waits in P0,
    and at idle; none above the power cap. A NaN utilisation (unknown FLOPs) counts as compute-bound."""
    p_max = c.power_cap_w_eff
    f_mem = cat.constant("serving_decode_power_fraction")
    u_sat = cat.constant("gpu_power_saturation_utilisation")
    u = np.where(np.isnan(utilisation), 1.0, np.clip(utilisation, 0.0, None))
    p_compute = p_max * (f_mem + (1.0 - f_mem) * np.minimum(1.0, u / u_sat))
    p_wait = np.minimum(cat.constant("gpu_wait_power_fraction") * c.tdp_w, p_max)
    # A CPU socket as the compute device: every core busy while it computes, TDP x load at load 1, and the
    # constant-mode half of TDP while it waits (codecarbon's conventions, reference host_cpu.csv H047).
    cpu = c.is_cpu == 1
    p_compute = np.where(cpu, p_max, p_compute)
    p_wait = np.where(cpu, np.minimum(cat.constant("host_cpu_load_fraction") * c.tdp_w, p_max), p_wait)
    p_idle = np.minimum(c.idle_w, p_max)
    return p_compute, p_wait, p_idle


def host_cpu_w(c: Columns, cat: Catalog, load=None) -> np.ndarray:
    """The node's host CPUs (W): its sockets of the chosen CPU, each at TDP x max(host_cpu_load_fraction, load).
    `load` is the share of their cores the run keeps busy (engine/host.py; NaN or None: not modelled). A CPU
    compute device has no host sockets: its power is the device's."""
    floor = cat.constant("host_cpu_load_fraction")
    share = np.full(c.n, floor) if load is None else np.fmax(np.nan_to_num(load, nan=floor), floor)
    return host.sockets_per_node(c) * c.host_tdp_w * share


def host_node_w(c: Columns, cat: Catalog, drive_active_share=0.0, cpu_load=None) -> dict[str, np.ndarray]:
    """DC power of one node's host parts (W), by part: CPUs, memory, NICs, local drives, baseboard."""
    k = cat.constant
    per_400 = k("nic_w_per_400gbps_port") / 400.0
    cpus = host_cpu_w(c, cat, cpu_load)
    dram = np.where(c.dram_in_cpu == 1, 0.0, c.host_mem_gb / k("dram_dimm_gb") * k("dram_w_per_dimm"))
    compute_nics = c.nics * c.nic_gb_s * 8.0 * per_400
    storage_nics = np.where(c.storage_nics > 0, c.node_storage_gb_s * 8.0 * per_400, 0.0)
    idle = k("nvme_idle_w")
    active = np.maximum(c.nvme_active_w, idle)
    drives = c.nvme_drives * (idle + (active - idle) * np.clip(drive_active_share, 0.0, 1.0))
    drives = np.where(c.nvme_read_gb_s > 0, drives, 0.0)
    board = k("board_w_per_gpu") * c.gpn
    return {"cpus": cpus, "memory": dram, "nics": compute_nics + storage_nics, "drives": drives, "board": board}


def wall_factor(c: Columns, cat: Catalog) -> np.ndarray:
    """Node wall power / DC power of its GPUs and host: server fans (the cooling kind's share) and supplies."""
    return 1.0 / ((1.0 - c.fan_share) * cat.constant("psu_efficiency"))


def storage_w(c: Columns, cat: Catalog) -> np.ndarray:
    """The shared file system's own power, for the whole run (none without one)."""
    return cat.constant("shared_fs_w_per_gb_s") * np.maximum(c.fs_read_gb_s, c.fs_write_gb_s)


def switch_w(c: Columns, cat: Catalog) -> np.ndarray:
    return switch_ports(c, cat) * cat.constant("switch_w_per_port") * c.nic_gb_s * 8.0 / 400.0


def training_utilisation(c: Columns) -> np.ndarray:
    """Tensor utilisation while the GPUs compute: hardware FLOPs of a step per working GPU over its compute
    seconds at the dense peak (NaN where a sample workload publishes no FLOPs)."""
    working = np.where(c.is_samples == 1, c.n_gpus, c.n_used)
    flops = np.where(c.is_samples == 1, c.sample_flops * c.gbs, c.hw_flops_per_token * c.tokens_per_step)
    busy = np.maximum(c.t_compute_s + c.t_optimizer_s, 1e-30)
    return flops / np.maximum(working, 1.0) / busy / _peak_flops(c)


def training_energy(c: Columns, cat: Catalog) -> None:
    t = c.train_time_s
    step = c.step_time_s
    busy_step = c.t_compute_s + c.t_optimizer_s
    step_busy = np.clip(busy_step / step, 0.0, 1.0)
    c.gpu_utilisation = training_utilisation(c)
    p_compute, p_wait, p_idle = gpu_power_w(c, cat, c.gpu_utilisation)
    # Seconds per working GPU in each state; they sum to the wall-clock. Redone work runs the same mix of
    # compute and waiting as a normal step; evaluation computes.
    compute_s = c.steps * busy_step + c.eval_time_s + c.idle_lost_s * step_busy
    wait_s = c.steps * (step - busy_step) + c.idle_ckpt_s + c.idle_lost_s * (1.0 - step_busy)
    idle_s = np.maximum(t - compute_s - wait_s, 0.0)
    used = np.where(c.is_samples == 1, c.n_gpus, c.n_used)
    gpu_j = used * (p_compute * compute_s + p_wait * wait_s + p_idle * idle_s) + (c.n_gpus - used) * p_idle * t

    n_nodes = nodes(c)
    # Local drives are busy while they feed the input (local NVMe as the data source).
    reading = np.where(c.data_source == 1, c.storage_read_share * np.minimum(c.t_io_s / step, 1.0), 0.0)
    host_parts = host_node_w(c, cat, reading * c.work_s / np.maximum(t, 1e-30), cpu_load=c.host_load)
    c.host_cpu_w = host_parts["cpus"]
    host_w = sum(host_parts.values())
    host_j = n_nodes * host_w * t
    wall = wall_factor(c, cat)
    node_j = (gpu_j + host_j) * wall
    fans_j = (gpu_j + host_j) * c.fan_share / (1.0 - c.fan_share)
    psu_j = node_j - (gpu_j + host_j) - fans_j
    sw_w = switch_w(c, cat)
    fs_w = storage_w(c, cat)
    it_j = node_j + (sw_w + fs_w) * t

    c.gpu_compute_w, c.gpu_wait_w = p_compute, p_wait
    # The steady-state step's power per working GPU (the figure MFU and tokens/s describe).
    c.gpu_step_w = p_compute * step_busy + p_wait * (1.0 - step_busy)
    c.gpu_busy_share = compute_s / t
    c.gpu_avg_w = gpu_j / (c.n_gpus * t)
    c.gpu_energy_mwh = gpu_j / J_PER_MWH
    c.host_energy_mwh = host_j / J_PER_MWH
    c.fan_energy_mwh = fans_j / J_PER_MWH
    c.psu_loss_energy_mwh = psu_j / J_PER_MWH
    c.switch_energy_mwh = sw_w * t / J_PER_MWH
    c.storage_energy_mwh = fs_w * t / J_PER_MWH
    c.it_energy_mwh = it_j / J_PER_MWH
    c.energy_mwh = c.it_energy_mwh * c.pue
    c.it_power_mw = it_j / t / 1e6
    c.facility_power_mw = c.it_power_mw * c.pue
    c.host_w_per_gpu = host_w / c.gpn

    # Peak: every GPU at its power limit.
    node_peak_w = (c.gpn * c.power_cap_w_eff + host_w) * wall
    c.peak_it_kw = (n_nodes * node_peak_w + sw_w + fs_w) / 1000.0
    c.peak_facility_power_mw = c.peak_it_kw * c.pue / 1000.0
    node_kw = node_peak_w / 1000.0
    c.node_peak_kw = node_kw
    c.rack_kw = node_kw * c.nodes_per_rack
    c.rack_over_limit = c.rack_kw > c.rack_limit_kw
    fit = np.clip(np.floor(c.rack_limit_kw / node_kw), 1.0, c.nodes_per_rack)
    c.racks = np.ceil(n_nodes / fit)
    c.floor_m2 = c.racks * cat.constant("floor_m2_per_rack")
    c.node_over_limit = node_kw > c.rack_limit_kw

    kwh = c.energy_mwh * 1000.0
    c.water_m3 = c.it_energy_mwh * 1000.0 * c.wue_l_per_kwh * c.water_factor / 1000.0
    c.co2_t = kwh * c.gco2_per_kwh / 1e6
    c.co2_market_t = kwh * c.gco2_market_per_kwh / 1e6
    c.co2_embodied_t = embodied_t(c, cat, t)
    c.tokens_per_kwh = np.where(c.is_samples == 1, np.nan, c.tokens / np.maximum(kwh, 1e-30))


def embodied_t(c: Columns, cat: Catalog, seconds) -> np.ndarray:
    """Tonnes CO2e of manufacturing the job's GPUs and servers charged to `seconds` of their use."""
    k = cat.constant
    kg = c.n_gpus * (k("embodied_kgco2e_per_gpu") + k("embodied_kgco2e_per_server") / 8.0)
    share = np.asarray(seconds) / 3600.0 / (k("embodied_lifetime_years") * HOURS_PER_YEAR * k("embodied_use_share"))
    return kg * share / 1000.0
