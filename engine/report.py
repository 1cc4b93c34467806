"""Result rows as nested records: the stable JSON contract of `whatif eval --json`.

Keys are documented in docs/presets.md ("Output"); scripts may rely on them. Missing figures are None
(JSON null), never NaN or infinity.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from .cost import basis_label
from .evaluate import IDLE_CAUSES
from .serving.fleet import LATENCY_BAND

COST_PARTS = ("compute", "network", "storage", "facility", "electricity")


def cost_basis(r: dict, prefix: str) -> dict:
    """What a cost figure rests on: the cost model, the price (key, provider, term, date, source) and, when
    owned, the purchase price, depreciation, shares and facility price. The same for training and serving."""
    g = lambda key: _num(r.get(key))  # noqa: E731
    owned = r.get("cost_model") == "owned"
    out = {
        "label": basis_label(r, prefix),
        "model": r.get("cost_model"),
        # Both bases include the electricity in cost_usd: a rental price carries the provider's power bill, an
        # owned cost adds the metered electricity as its own part (cost_breakdown_usd.electricity).
        "includes_electricity": True,
        "electricity_counted": "metered, its own part" if owned else "in the rental price",
        "usd_per_gpu_hour": g(f"{prefix}cost_usd_per_gpu_hour") if owned else g("usd_per_gpu_hour"),
        "electricity_usd_per_kwh": g("usd_per_kwh"),
    }
    if not owned:
        out["price"] = {
            "key": r.get("price_key"),
            "provider": r.get("price_provider"),
            "term": r.get("price_term") or None,
            "date": r.get("price_date") or None,
            "source": r.get("price_source"),
            "priced_as": r.get("price_via") or None,
        }
    else:
        out["purchase"] = {
            "key": r.get("purchase_key"),
            "usd_per_gpu": g("server_usd_per_gpu"),
            "what": r.get("purchase_what"),
            "date": r.get("purchase_date") or None,
            "source": r.get("purchase_source"),
            "priced_as": r.get("purchase_via") or None,
        }
        out |= {
            "depreciation_years": g("depreciation_years"),
            "network_capex_share": g("network_capex_share"),
            "storage_capex_share": g("storage_capex_share"),
            "facility_usd_per_kw_month": g("usd_per_kw_month"),
        }
    return out


def _num(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _training(r: dict) -> dict:
    g = lambda key: _num(r.get(key))  # noqa: E731
    return {
        "fits": bool(r["train_fits"]),
        "reason": r["train_reason"],
        "plan": {
            "tp": r["train_tp"],
            "cp": r["train_cp"],
            "pp": r["train_pp"],
            "dp": r["train_dp"],
            "microbatch": r["train_microbatch"],
            "zero": r["train_zero"],
            "dp_shard": r["train_dp_shard"],
            "interleave": r["train_interleave"],
            "ep": r["train_ep"],
            "etp": r["train_etp"],
            "recompute": r["train_recompute"],
            "recompute_layers": r["train_recompute_layers"],
            "layers_per_stage": r["train_layers_per_stage"],
            "micro_batches": r["train_micro_batches"],
            "global_batch_seqs": r["train_global_batch_seqs"],
            "global_batch_adjusted": bool(r["train_global_batch_adjusted"]),
            "gpus_used": r["train_gpus_used"],
            "note": r.get("train_plan_note"),
            "plans_searched": r["train_plans_searched"],
        },
        "runner_up": None
        if r.get("train_runner_up_why_code", -1) in (-1, None)
        else {
            "plan": {
                k: r[f"train_runner_up_{k}"]
                for k in ("tp", "cp", "pp", "dp", "ep", "microbatch", "zero", "interleave", "recompute_layers")
            },
            "step_time_s": g("train_runner_up_step_time_s"),
            "slower_pct": g("train_runner_up_slower_pct"),
            "why": r.get("train_runner_up_why"),
        },
        "error_band_pct": g("train_error_band_pct"),
        "step_time_s": g("train_step_time_s"),
        "tokens_per_s": g("train_tokens_per_s"),
        "samples_per_s": g("train_samples_per_s"),
        "wall_clock_days": g("train_wall_clock_days"),
        "gpu_hours": g("train_gpu_hours"),
        "goodput": g("train_goodput"),
        "mfu": g("train_mfu"),
        "hfu": g("train_hfu"),
        "tflops_per_gpu": g("train_tflops_per_gpu"),
        "idle_gpu_pct": g("train_idle_gpu_pct"),
        "idle_breakdown_pct": {cause: g(f"train_idle_{cause}_pct") for cause in IDLE_CAUSES},
        "useful_gpu_pct": g("train_useful_gpu_pct"),
        "data": {
            "demand_gb_s_per_gpu": g("train_data_demand_gb_s_per_gpu"),
            "supply_gb_s": g("train_data_supply_gb_s"),
            "io_time_per_step_s": g("train_t_io_s"),
            "storage_stall_per_step_s": g("train_t_storage_stall_s"),
            "storage_bound_gpus": g("train_storage_bound_gpus"),
        },
        "host": {
            "cpu": r.get("host_cpu") or None,
            "sockets_per_node": g("train_host_sockets_per_node"),
            "core_us_per_unit": g("train_host_core_us_per_unit"),
            "unit": "sample"
            if r.get("train_samples_per_s") is not None and r.get("train_tokens_per_s") is None
            else "token",
            "cores_needed_per_gpu": g("train_host_cores_needed_per_gpu"),
            "cores_free_per_gpu": g("train_host_cores_free_per_gpu"),
            "preprocessing_per_step_s": g("train_t_host_prep_s"),
            "preprocessing_stall_per_step_s": g("train_t_host_stall_s"),
            "gpu_decode_per_step_s": g("train_t_gpu_decode_s"),
            "load": g("train_host_load"),
            "cpu_power_w_per_node": g("train_host_cpu_w_per_node"),
            "power_w_per_gpu": g("train_host_w_per_gpu"),
        },
        "checkpoint": {
            "size_gb": g("train_checkpoint_gb"),
            "write_s": g("train_checkpoint_write_s"),
            "stall_s": g("train_checkpoint_stall_s"),
            "interval_min": g("train_checkpoint_interval_min"),
            "background_write_s": g("train_checkpoint_background_write_s"),
        },
        "failures": {
            "mtbf_h": g("train_mtbf_h"),
            "interruptions": g("train_interruptions"),
            "restart_min": g("train_restart_min"),
        },
        "step_breakdown_s": {
            "compute": g("train_t_compute_s"),
            "tensor_parallel": g("train_t_tp_s"),
            "context_parallel": g("train_t_cp_s"),
            "expert_parallel": g("train_t_ep_s"),
            "pipeline_p2p": g("train_t_pp_s"),
            "data_parallel": g("train_t_dp_s"),
            "pipeline_bubble": g("train_t_bubble_s"),
            "optimizer": g("train_t_optimizer_s"),
            "nic_contention": g("train_t_nic_wait_s"),
            "stragglers": g("train_t_sync_s"),
        },
        "memory_gb": {
            "total": g("train_mem_gb"),
            "capacity": g("train_hbm_gb"),
            "weights": g("train_mem_weights_gb"),
            "gradients": g("train_mem_grads_gb"),
            "optimizer": g("train_mem_optimizer_gb"),
            "activations": g("train_mem_activations_gb"),
        },
        "energy_mwh": g("train_energy_mwh"),
        "it_energy_mwh": g("train_it_energy_mwh"),
        "cost_usd": g("train_cost_usd"),
        "cost_basis": cost_basis(r, "train_"),
        "cost_breakdown_usd": {
            part: g(f"train_cost_{part}_usd")
            for part in (COST_PARTS if r.get("cost_model") == "owned" else ("compute",))
        },
        "cost_usd_per_gpu_hour": g("train_cost_usd_per_gpu_hour"),
        "co2_t": g("train_co2_t"),
        "co2_breakdown_t": {
            "location_based": g("train_co2_t"),
            "market_based": g("train_co2_market_t"),
            "embodied": g("train_co2_embodied_t"),
        },
        "avg_power_mw": g("train_avg_power_mw"),
        "tokens_per_kwh": g("train_tokens_per_kwh"),
        "energy": {
            "facility_mwh": g("train_energy_mwh"),
            "it_mwh": g("train_it_energy_mwh"),
            "it_breakdown_mwh": {
                "gpus": g("train_gpu_energy_mwh"),
                "host": g("train_host_energy_mwh"),
                "fans": g("train_fan_energy_mwh"),
                "power_supply_losses": g("train_psu_loss_energy_mwh"),
                "network_switches": g("train_switch_energy_mwh"),
                "storage": g("train_storage_energy_mwh"),
            },
            "pue": g("train_pue"),
            "gpu_avg_w": g("train_gpu_avg_w"),
            "gpu_power_w": {
                "compute": g("train_gpu_compute_w"),
                "wait": g("train_gpu_wait_w"),
                "steady_step": g("train_gpu_step_w"),
                "compute_utilisation": g("train_gpu_utilisation"),
            },
            "host_w_per_gpu": g("train_host_w_per_gpu"),
            "peak_it_kw": g("train_peak_it_kw"),
            "electricity_usd": g("train_electricity_usd"),
            "water_m3": g("train_water_m3"),
            "peak_facility_mw": g("train_peak_power_mw"),
            "avg_facility_mw": g("train_avg_power_mw"),
            "tokens_per_kwh": g("train_tokens_per_kwh"),
            "cost_usd": g("train_cost_usd"),
            "co2_t": g("train_co2_t"),
        },
        "racks": {
            "node_peak_kw": g("train_node_peak_kw"),
            "rack_kw": g("train_rack_kw"),
            "rack_limit_kw": g("train_rack_limit_kw"),
            "over_limit": bool(r["train_rack_over_limit"]) if r.get("train_rack_over_limit") is not None else None,
            "racks_needed": g("train_racks"),
            "floor_m2": g("train_floor_m2"),
        },
        "bottleneck": r["train_bottleneck"],
        "bottleneck_detail": r["train_bottleneck_detail"],
    }


def _int(value: Any) -> Any:
    value = _num(value)
    return None if value is None else int(value)


def _latency_band(r: dict) -> dict | None:
    """[low, high] of each latency figure if capacity were error_band_pct higher or lower (high None: past
    saturation, no bound; both None: even the low end is past it); None where no band applies (offline, a
    fixed-concurrency client, disaggregated)."""
    if _num(r.get("infer_tpot_p99_low_ms")) is None:
        return None
    band: dict[str, Any] = {"capacity_error_pct": _num(r.get("infer_error_band_pct"))}
    for stem in LATENCY_BAND:
        band[f"{stem}_ms"] = [_num(r.get(f"infer_{stem}_low_ms")), _num(r.get(f"infer_{stem}_high_ms"))]
    return band


def _inference(r: dict) -> dict:
    """TTFT and TPOT are medians (p50) with their p99s beside them; tokens_per_s is the output tokens the
    whole serving fleet delivers at the offered rate (offline: at full batch). docs/model.md ("Serving")."""
    g = lambda key: _num(r.get(key))  # noqa: E731
    return {
        "fits": bool(r.get("infer_fits")),
        "reason": r.get("infer_reason"),
        "error_band_pct": g("infer_error_band_pct"),
        "plan": {
            "tp": _int(r.get("infer_tp")),
            "pp": _int(r.get("infer_pp")),
            "ep": _int(r.get("infer_ep")),
            "prefill_tp": _int(r.get("infer_prefill_tp")),
            "plans_searched": _int(r.get("infer_plans_searched")),
        },
        "replicas": _int(r.get("infer_replicas")),
        "prefill_replicas": _int(r.get("infer_prefill_replicas")),
        "max_batch": _int(r.get("infer_max_batch")),
        "paged_kv": bool(r.get("infer_paged")),
        "ttft_ms": g("infer_ttft_ms"),
        "ttft_p99_ms": g("infer_ttft_p99_ms"),
        "ttft_mean_ms": g("infer_ttft_mean_ms"),
        "queue_ms": g("infer_queue_ms"),
        "tpot_ms": g("infer_tpot_ms"),
        "tpot_p99_ms": g("infer_tpot_p99_ms"),
        "tpot_mean_ms": g("infer_tpot_mean_ms"),
        "latency_band": _latency_band(r),
        "tokens_per_s": g("infer_tokens_per_s"),
        "requests_per_s": g("infer_requests_per_s"),
        "capacity": {"tokens_per_s": g("infer_capacity_tokens_per_s"), "requests_per_s": g("infer_capacity_rps")},
        "per_gpu": {
            "input_tokens_per_s": g("infer_input_tokens_per_s_per_gpu"),
            "output_tokens_per_s": g("infer_output_tokens_per_s_per_gpu"),
            "decode_output_tokens_per_s": g("infer_decode_output_tokens_per_s_per_gpu"),
        },
        "within_latency_limits": {"tokens_per_s": g("infer_slo_tokens_per_s"), "requests_per_s": g("infer_slo_rps")},
        "latency_limits": {
            "ttft_p99_ms": g("infer_ttft_limit_ms"),
            "tpot_p99_ms": g("infer_tpot_limit_ms"),
            "met": None if _num(r.get("infer_meets_limits")) is None else bool(r["infer_meets_limits"]),
        },
        "accepted_tokens_per_step": g("infer_accepted_tokens"),
        "preempted_pct": g("infer_preempted_pct"),
        "kv_transfer_ms": g("infer_kv_transfer_ms"),
        "utilization": g("infer_utilization"),
        "overloaded": bool(r.get("infer_overloaded")),
        "batch": {"limit": _int(r.get("infer_batch_limit")), "mean": g("infer_batch_mean")},
        "memory_gb": {
            "weights": g("infer_mem_weights_gb"),
            "kv_cache": g("infer_mem_kv_gb"),
            "needed": g("infer_mem_needed_gb"),
            "usable": g("infer_mem_usable_gb"),
            "capacity": g("infer_hbm_gb"),
        },
        "busy_pct": g("infer_busy_pct"),
        "idle_gpu_pct": g("infer_idle_gpu_pct"),
        "power_kw": g("infer_power_kw"),
        "gpu_power_w": {
            "average": g("infer_gpu_power_w"),
            "running": g("infer_gpu_run_power_w"),
            "prefill_running": g("infer_prefill_gpu_run_power_w"),
        },
        "energy_wh_per_1k_tokens": g("infer_energy_wh_per_1k_tokens"),
        "cost_usd_per_1m_tokens": g("infer_cost_usd_per_1m_tokens"),
        "cost_basis": cost_basis(r, "infer_"),
        "electricity_usd_per_1m_tokens": g("infer_electricity_usd_per_1m_tokens"),
        "bottleneck": r.get("infer_bottleneck"),
        "bottleneck_detail": r.get("infer_bottleneck_detail"),
    }


def records(results: pl.DataFrame, has_training: list[bool], has_inference: list[bool]) -> list[dict]:
    """One nested record per result row; a scenario without a workload has null for that section."""
    out = []
    for r, train, infer in zip(results.iter_rows(named=True), has_training, has_inference, strict=True):
        out.append(
            {
                "name": r["name"],
                "training": _training(r) if train else None,
                "inference": _inference(r) if infer else None,
            }
        )
    return out
