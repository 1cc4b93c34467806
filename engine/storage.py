"""Storage: reading the training input and writing checkpoints (vectorized; seconds, bytes, GB/s).

Input. A step reads `gbs x seq x unit_bytes` unique bytes (a text unit is one token id: 2 or 4 bytes, the
Megatron-LM indexed-dataset width; a sample workload's unit is one sample). Data-loader workers prefetch the
next batch while the GPUs compute, so a step takes max(compute step, I/O time) and the difference is storage
stall (the MLPerf Storage / DLIO model: accelerator utilisation = compute / step). Supply:

    shared file system:  min(aggregate read GB/s, nodes x node storage network GB/s)
    local NVMe:          nodes x drives x per-drive read GB/s

A dataset that fits in one node's host memory is read from storage once and then served by the page cache,
so only 1/epochs of the steps wait on storage.

Checkpoints. Size = parameters x checkpoint_bytes_per_param (16-bit weights + fp32 master weights and Adam
moments). A synchronous checkpoint stalls for size / write bandwidth (shared file system, or local NVMe where
there is none). An asynchronous one stalls for the measured blocking time of an asynchronous checkpointer
(PyTorch DCP: planning, staging, collectives; constant checkpoint_async_blocking_s) plus each GPU's copy of
its shard to host memory over its host link; the write then drains in the background at a sustainable share
of the write bandwidth (checkpoint_write_share), not at its peak.
"""

from __future__ import annotations

import numpy as np

from . import host
from .catalog import Catalog
from .columns import Columns

GB = 1e9
GIB = 2.0**30


def nodes(c: Columns) -> np.ndarray:
    return np.ceil(c.n_gpus / np.maximum(c.gpn, 1))


def read_supply_gb_s(c: Columns) -> np.ndarray:
    """GB/s the chosen data source delivers to the whole job; an empty source falls back to the other."""
    n = nodes(c)
    shared = np.minimum(c.fs_read_gb_s, n * c.node_storage_gb_s)
    local = n * c.nvme_drives * c.nvme_read_gb_s
    chosen = np.where(c.data_source == 1, local, shared)
    other = np.where(c.data_source == 1, shared, local)
    return np.where(chosen > 0, chosen, other)


def gpus_supported(supply_gb_s, demand_gb_s_per_gpu, au_threshold) -> np.ndarray:
    """GPUs a storage supply keeps at or above an accelerator-utilisation threshold.

    A GPU computing at utilisation AU consumes AU x its full-speed demand, so supply / (AU x demand)
    GPUs fit (the MLPerf Storage definition of "supported accelerators", as a real number)."""
    return np.asarray(supply_gb_s) / (np.asarray(au_threshold) * np.asarray(demand_gb_s_per_gpu))


def data_loading(c: Columns, cat: Catalog) -> None:
    """Adds the input demand, supply, storage stall per step and the GPUs the storage can feed; then the host's
    preprocessing of that input (engine/host.py: t_host_prep_s, t_host_stall_s)."""
    step = c.step_time_s  # the compute-and-communication step, before any wait on input
    step_bytes = c.gbs * c.seq * c.unit_bytes
    supply = read_supply_gb_s(c)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_io = np.where(supply > 0, step_bytes / (supply * GB), np.inf)
    train_bytes = c.tokens * c.unit_bytes
    dataset_bytes = np.where(np.isnan(c.dataset_gb), train_bytes, c.dataset_gb * GB)
    epochs = np.maximum(train_bytes / np.maximum(dataset_bytes, 1.0), 1.0)
    cached = dataset_bytes <= c.host_mem_gb * GIB
    from_storage = np.where(cached, 1.0 / epochs, 1.0)

    c.t_io_s = t_io
    c.storage_read_share = from_storage
    c.t_storage_stall_s = from_storage * np.maximum(t_io - step, 0.0)
    c.data_demand_gb_s_per_gpu = step_bytes / np.maximum(c.n_gpus, 1) / step / GB
    c.data_supply_gb_s = supply
    c.storage_bound_gpus = gpus_supported(supply, c.data_demand_gb_s_per_gpu, cat.constant("storage_au_threshold"))
    # The host cores that decode, augment or tokenise the same input, and their stall beyond storage's.
    host.preprocessing(c, cat)


def checkpoint_costs(c: Columns, cat: Catalog) -> None:
    """Checkpoint size, write and read-back time for the whole job, and each GPU's copy to host memory."""
    n = nodes(c)
    size = c.m_params * cat.constant("checkpoint_bytes_per_param")
    shared_write = np.minimum(c.fs_write_gb_s, n * c.node_storage_gb_s)
    shared_read = np.minimum(c.fs_read_gb_s, n * c.node_storage_gb_s)
    # Checkpoints go to the shared file system (they must outlive a node); without one, to local NVMe.
    write = np.where(shared_write > 0, shared_write, n * c.nvme_drives * c.nvme_write_gb_s)
    read = np.where(shared_read > 0, shared_read, n * c.nvme_drives * c.nvme_read_gb_s)
    with np.errstate(divide="ignore"):
        c.ckpt_write_s = np.where(write > 0, size / (write * GB), np.inf)
        c.ckpt_read_s = np.where(read > 0, size / (read * GB), np.inf)
    c.ckpt_gb = size / GB
    c.ckpt_copy_s = size / np.maximum(c.n_gpus, 1) / (c.host_link_gb_s * GB)
    c.ckpt_async_stall_s = c.ckpt_blocking_s + c.ckpt_copy_s
    with np.errstate(divide="ignore"):
        c.ckpt_bg_write_s = np.where(write > 0, size / (write * c.ckpt_write_share * GB), np.inf)
