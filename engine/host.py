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

Host power (engine/energy.py, host_cpu_w): the node's sockets x TDP x max(host_cpu_load_fraction, load), the
load being the cores busy (framework, OS and preprocessing) over all cores (codecarbon's TDP x load model,
reference host_cpu.csv H047, above its constant-mode half of TDP for a working host).
"""

from __future__ import annotations

import numpy as np

from .catalog import Catalog
from .columns import Columns


def sockets_per_node(c: Columns) -> np.ndarray:
    """The node's host sockets: as set, else the server's sockets per GPU x GPUs per node (0: a CPU device)."""
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
