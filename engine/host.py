"""The host CPUs: preparing the input on the host cores, and what the host draws (vectorized).

Preprocessing (docs/model.md, "Host CPUs and preprocessing"). Each step the node's GPUs take
`units = global batch x seq x gpus per node / GPUs used` units (samples, or tokens of text) and the host spends
`c_u` core-seconds on each (decode + augment of a sample, catalog/host_cpus.toml [preprocessing]; tokenising a
token, [text]; nothing for data stored ready to use). The cores it can give to that work are what the
framework leaves (ml-engineering's rule of thumb, H022):

    free cores = sockets x cores per socket - GPUs per node x framework_cores_per_gpu - os_cores_per_node
    t_prep     = units x c_u / free cores

Data-loader workers prepare the next batch while the GPUs compute, so (as for storage, engine/storage.py) the
step takes the longest of compute, reading and preparing. The share of steps that read storage waits
max(t_prep - max(step, t_io), 0) beyond its storage stall, the others (page-cache hits) max(t_prep - step, 0):
that is the host-preprocessing stall. More cores per GPU never lengthen it (t_prep falls with free cores).

GPU-side decoding (data.preprocess = "gpu-decode", DALI / nvJPEG) moves the decode off the host: each sample
costs the GPU `gpu_decode_ms` more (engine/workloads.py adds it to the step) and the host only augments.

Host power (codecarbon's model, H047 and H044): each socket draws TDP x max(load, cpu_idle_load_share), the
load being the cores busy (framework, OS and preprocessing) over all cores; the DIMMs (host_memory_gb /
dimm_gb of them) draw 5 W each for the first 4, 0.9x for the next 4, 0.8x to 16 and 0.7x beyond; memory inside
the socket's TDP (Grace) adds nothing. The rest of the node (fans, switches on the board, NICs, drives) is
the measured node power less the default host at the framework's load (`host_rest_w_per_gpu`, resolve.py).
"""

from __future__ import annotations

import numpy as np

from .catalog import Catalog
from .columns import Columns


def cpu_power_w(sockets, tdp_w, load, idle_share):
    """Sockets x TDP x max(load, idle share): codecarbon's CPU load model (H047)."""
    return np.asarray(sockets) * np.asarray(tdp_w) * np.maximum(np.asarray(load), idle_share)


def dram_power_w(dimms, cat: Catalog):
    """Watts of `dimms` DIMMs: w_per_dimm each, by tiers (catalog/host_cpus.toml [dram], codecarbon, H044)."""
    d = cat.host.dram
    n = np.asarray(dimms, dtype=float)
    edges = [0.0, *map(float, d.tier_dimms), np.inf]
    total = np.zeros_like(n)
    for lo, hi, factor in zip(edges[:-1], edges[1:], d.tier_factors, strict=True):
        total = total + np.clip(n - lo, 0.0, hi - lo) * factor
    return total * d.w_per_dimm


def dimms(host_memory_gb, cat: Catalog):
    return np.ceil(np.asarray(host_memory_gb) / cat.host.constant("dimm_gb"))


def sockets_per_node(c: Columns) -> np.ndarray:
    """The node's host sockets: as set, else the node type's sockets per GPU x GPUs per node (NaN: no host)."""
    return np.where(np.isnan(c.host_sockets), c.host_sockets_per_gpu * c.gpn, c.host_sockets)


def reserved_cores(c: Columns, cat: Catalog) -> np.ndarray:
    """Cores per node the framework keeps: one per GPU's training process and a few for the OS (H022)."""
    k = cat.host.constant
    return c.gpn * k("framework_cores_per_gpu") + k("os_cores_per_node")


def preprocessing(c: Columns, cat: Catalog) -> None:
    """Adds the host's time to prepare one step's input, the stall it causes beyond storage's, the cores per
    GPU it needs and has, and the host's load. Reads the compute step (step_time_s before any input wait),
    t_io_s and storage_read_share from storage.data_loading."""
    step = c.step_time_s
    cores = sockets_per_node(c) * c.host_cores
    free = np.maximum(cores - reserved_cores(c, cat), 0.0)
    used = np.maximum(np.where(c.is_samples == 1, c.n_gpus, c.n_used), 1.0)
    units_node = c.gbs * c.seq * c.gpn / used
    work = units_node * c.host_core_s_per_unit  # core-seconds per node per step
    has_host = np.isfinite(cores) & (cores > 0)  # NaN: no host CPU known; 0: a CPU device is its own host
    modelled = has_host & (work > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_prep = np.where(modelled, np.where(free > 0, work / free, np.inf), 0.0)
    share = c.storage_read_share
    reading = np.maximum(step, c.t_io_s)
    stall = share * np.maximum(t_prep - reading, 0.0) + (1.0 - share) * np.maximum(t_prep - step, 0.0)
    c.t_host_prep_s = t_prep
    c.t_host_stall_s = np.where(modelled, stall, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c.host_cores_needed_per_gpu = np.where(has_host, work / np.maximum(step, 1e-30) / c.gpn, np.nan)
    c.host_cores_free_per_gpu = np.where(has_host, free / c.gpn, np.nan)
    # Load for the power model: the reserved cores and the preprocessing cores' busy share of the final step.
    final = step + c.t_storage_stall_s + c.t_host_stall_s
    with np.errstate(divide="ignore", invalid="ignore"):
        busy = np.where(modelled & (free > 0), free * np.minimum(t_prep / np.maximum(final, 1e-30), 1.0), 0.0)
        load = np.clip((np.minimum(reserved_cores(c, cat), cores) + busy) / cores, 0.0, 1.0)
    c.host_load = np.where(has_host, load, np.nan)


def base_load(c: Columns, cat: Catalog) -> np.ndarray:
    """The host's load with no preprocessing: the framework's reserved cores over all cores."""
    cores = sockets_per_node(c) * c.host_cores
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(np.minimum(reserved_cores(c, cat), cores) / cores, 0.0, 1.0)


def host_w_per_gpu(c: Columns, cat: Catalog, load=None) -> np.ndarray:
    """Host power per GPU: the node's sockets at `load` (default: the framework's base load) and its DIMMs,
    over its GPUs, plus the rest of the node (resolve.py host_rest_w_per_gpu). A node without a modelled host
    keeps the rest alone (the measured node figure); a CPU compute device's own power is the device's."""
    load = base_load(c, cat) if load is None else load
    sockets = sockets_per_node(c)
    has = np.isfinite(sockets) & (sockets > 0)
    idle = cat.host.constant("cpu_idle_load_share")
    busy = np.where(has, np.nan_to_num(load), 0.0)
    cpu = cpu_power_w(np.where(has, sockets, 0.0), np.nan_to_num(c.host_tdp_w), busy, idle)
    modelled = np.isfinite(sockets) | (c.is_cpu == 1)
    dram = np.where(modelled & (c.host_dram_in_tdp == 0), dram_power_w(dimms(c.host_mem_gb, cat), cat), 0.0)
    return (cpu + dram) / np.maximum(c.gpn, 1) + c.host_rest_w_per_gpu


def add_host_power(c: Columns, cat: Catalog) -> None:
    """host_w_per_gpu at the framework's base load, for every row (serving and the training default)."""
    c.host_w_per_gpu = host_w_per_gpu(c, cat)
