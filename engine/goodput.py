"""Goodput: checkpoints, failures and restarts turn the steady-state run into its wall-clock (vectorized).

Failures arrive as a Poisson process at rate  n_gpus / gpu_mtbf + n_nodes / node_mtbf  (both derived from the
Llama 3 interruption counts, constants.toml); the job's mean time between interruptions is M = 1 / rate.

Each checkpoint stalls the GPUs for delta (storage.py): the write for a synchronous checkpoint; the measured
blocking time plus the shard's copy to host memory for an asynchronous one, whose write then drains in the
background at a sustainable share of the storage bandwidth. The interval between checkpoints, tau (work time), is
fixed or, on "auto", Daly's higher-order optimum (J. T. Daly, "A higher order estimate of the optimum
checkpoint interval for restart dumps", Future Generation Computer Systems 22 (2006) 303-312):

    tau = sqrt(2 delta M) [1 + sqrt(delta / (2M)) / 3 + delta / (18 M)] - delta     (delta < 2M; else M)

kept no shorter than one step, and for asynchronous checkpoints no shorter than the background write.
A restart costs R = detection and rescheduling (restart_min) + start-up growing with the job
(restart_s_per_gpu x GPUs: launch and NCCL initialisation) + reading the checkpoint back at the storage read
rate (+ the background write time for an asynchronous checkpoint, whose newest snapshot is lost if the failure
strikes before it is written: that much more work is redone on average). The expected wall-clock of W seconds of work
cut into segments of tau (Daly 2006; exponential failures, which may also strike during a restart):

    T = M e^(R/M) (e^((tau + delta)/M) - 1) W / tau          (no failures: T = W (tau + delta) / tau)

Without checkpoints the whole run is one segment (tau = W, delta = 0): a failure restarts it from the start.
T - W splits into checkpoint stalls (W delta / tau), restarts (expected failures T / M times R) and the rest,
work lost since the last checkpoint and redone.
"""

from __future__ import annotations

import numpy as np

from .catalog import Catalog
from .columns import Columns
from .storage import checkpoint_costs, nodes

# exp() of more than this overflows a float64: such a run does not finish in any useful time.
_MAX_EXP = 700.0


def daly_interval_s(delta_s, mtbf_s) -> np.ndarray:
    """Daly's (2006) optimum compute time between checkpoints; infinite when failures never happen."""
    delta = np.asarray(delta_s, dtype=float)
    m = np.asarray(mtbf_s, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = delta / (2.0 * m)
        tau = np.sqrt(2.0 * delta * m) * (1.0 + np.sqrt(x) / 3.0 + x / 9.0) - delta
    return np.where(np.isinf(m), np.inf, np.where(delta < 2.0 * m, tau, m))


def wall_clock_s(work_s, tau_s, delta_s, restart_s, mtbf_s) -> np.ndarray:
    """Daly's expected wall-clock for `work_s` seconds of work (see the module docstring)."""
    work, tau, delta, r, m = (np.asarray(v, dtype=float) for v in (work_s, tau_s, delta_s, restart_s, mtbf_s))
    segments = work / tau
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        expo = (tau + delta) / m
        failing = m * np.exp(np.minimum(r / m, _MAX_EXP)) * np.expm1(np.minimum(expo, _MAX_EXP)) * segments
        failing = np.where((expo > _MAX_EXP) | (r / m > _MAX_EXP), np.inf, failing)
    return np.where(np.isinf(m), segments * (tau + delta), failing)


def run(c: Columns, cat: Catalog) -> None:
    """Adds the whole-run wall-clock (train_time_s) and its idle parts, from the steady-state work."""
    checkpoint_costs(c, cat)
    n_nodes = nodes(c)
    # Only the GPUs (and nodes) the plan runs on can interrupt it.
    used = np.where(c.is_samples == 1, c.n_gpus, c.n_used)
    n_nodes = n_nodes * used / np.maximum(c.n_gpus, 1)
    rate_per_h = c.fail_on * (used / c.gpu_mtbf_h + n_nodes / c.node_mtbf_h)
    with np.errstate(divide="ignore"):
        mtbf_s = np.where(rate_per_h > 0, 3600.0 / rate_per_h, np.inf)

    work = c.work_s
    mode = c.ckpt_mode  # 0 none, 1 sync, 2 async
    delta = np.where(mode == 1, c.ckpt_write_s, np.where(mode == 2, c.ckpt_async_stall_s, 0.0))
    drain = c.ckpt_bg_write_s
    floor = np.maximum(c.step_time_s, np.where(mode == 2, drain, 0.0))
    auto = np.maximum(daly_interval_s(delta, mtbf_s), floor)
    tau = np.where(np.isnan(c.ckpt_interval_min), auto, c.ckpt_interval_min * 60.0)
    tau = np.where(mode == 0, work, np.minimum(tau, work))
    # An asynchronous snapshot cannot start before the previous one has drained to storage.
    delta = np.where(mode == 2, delta + np.maximum(drain - tau, 0.0), np.where(mode == 0, 0.0, delta))
    restart = c.restart_s + cat.constant("restart_s_per_gpu") * used + np.where(mode > 0, c.ckpt_read_s, 0.0)
    # An asynchronous snapshot only counts once written: a failure while it drains falls back one more
    # interval, which adds the write time to the work lost per failure on average.
    lag = np.where(mode == 2, np.minimum(drain, tau), 0.0)

    total = wall_clock_s(work, tau, delta, restart + lag, mtbf_s)
    ckpt = work / tau * delta
    lost_all = np.maximum(total - work - ckpt, 0.0)
    failures = np.where(np.isinf(mtbf_s), 0.0, total / mtbf_s)
    down = np.minimum(failures * restart, lost_all)

    c.mtbf_h = mtbf_s / 3600.0
    c.ckpt_interval_s = np.where(mode == 0, np.nan, tau)
    c.ckpt_stall_s = np.where(mode == 0, np.nan, delta)
    c.restart_total_s = restart
    c.interruptions = failures
    c.train_time_s = total
    c.idle_ckpt_s = ckpt
    c.idle_restart_s = down
    c.idle_lost_s = lost_all - down
    with np.errstate(invalid="ignore", divide="ignore"):
        c.goodput = work / total


def idle_breakdown(c: Columns) -> dict[str, np.ndarray]:
    """Seconds of the wall-clock in which the cluster's GPUs do no useful work, by cause, averaged over all
    GPUs (a GPU the plan leaves unused is idle throughout); with the useful time they sum to the wall-clock."""
    steps = c.steps
    used = np.where(c.is_samples == 1, 1.0, c.n_used / np.maximum(c.n_gpus, 1))
    parts = {
        "communication": steps * (c.t_tp_s + c.t_cp_s + c.t_ep_s + c.t_pp_s + c.t_dp_s + c.t_nic_wait_s),
        "pipeline_bubble": steps * c.t_bubble_s,
        "stragglers": steps * c.t_sync_s,
        "storage_stall": steps * c.t_storage_stall_s,
        "host_preprocessing": steps * c.t_host_stall_s,
        "checkpoint_stall": c.idle_ckpt_s,
        "failure_downtime": c.idle_restart_s,
        "lost_work": c.idle_lost_s,
    }
    parts = {k: v * used for k, v in parts.items()}
    parts["unused_gpus"] = c.train_time_s * (1.0 - used)
    return parts
