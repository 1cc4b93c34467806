"""Resolution: validated scenarios -> one polars row per scenario, every catalog key replaced by numbers.

This is the only place that reads the catalog on behalf of a scenario. Overrides in the scenario win over
catalog values. Plan fields the user left to the search are -1. Column names are the engine's vocabulary
and are listed, with units, in docs/model.md ("Frame columns").
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import polars as pl

from .catalog import Accelerator, Catalog, ModelShape, Workload, load_catalog
from .scenario import Inference, ModelSpec, Scenario, Training

AUTO = -1
RECOMPUTE_CODES = {"auto": AUTO, "none": 0, "selective": 1, "full": 2}
CHECKPOINT_CODES = {"none": 0, "sync": 1, "async": 2}
DATA_SOURCE_CODES = {"shared-fs": 0, "local-nvme": 1}


def _shape(model: str | ModelSpec, catalog: Catalog) -> ModelShape | ModelSpec:
    return catalog.models[model] if isinstance(model, str) else model


def model_columns(prefix: str, model: ModelShape | ModelSpec) -> dict[str, float]:
    """Numbers describing a model shape. Parameter counts: published if given, else from the shape."""
    kv_heads = model.kv_heads or model.heads
    ffn = model.ffn_hidden or 4 * model.hidden
    head_dim = model.hidden / model.heads
    n_mats = 3 if model.ffn_kind == "swiglu" else 2
    attn = model.hidden * (model.hidden + 2 * kv_heads * head_dim) + model.hidden * model.hidden
    moe_layers = model.moe_layers if model.experts else 0
    expert = n_mats * model.hidden * model.expert_ffn_hidden
    dense_mlp = n_mats * model.hidden * ffn
    embed = model.vocab * model.hidden * (1 if model.tied_embeddings else 2)
    layers_params = (
        model.layers * attn
        + (model.layers - moe_layers) * dense_mlp
        + moe_layers * (model.experts + model.shared_experts) * expert
    )
    computed_total = layers_params + embed
    computed_active = computed_total - moe_layers * max(model.experts - model.experts_per_token, 0) * expert
    total = (model.params_total_b * 1e9) if model.params_total_b else computed_total
    active = (
        (model.params_active_b * 1e9)
        if model.params_active_b
        else (total * computed_active / computed_total if model.experts else total)
    )
    expert_total = moe_layers * model.experts * expert * total / computed_total
    return {
        f"{prefix}layers": model.layers,
        f"{prefix}hidden": model.hidden,
        f"{prefix}heads": model.heads,
        f"{prefix}kv_heads": kv_heads,
        f"{prefix}ffn": ffn,
        f"{prefix}vocab": model.vocab,
        f"{prefix}mats": n_mats,
        f"{prefix}params": total,
        f"{prefix}params_active": active,
        f"{prefix}params_expert": expert_total,
        f"{prefix}params_embed": embed,
        f"{prefix}experts": model.experts,
        f"{prefix}topk": model.experts_per_token if model.experts else 0,
        f"{prefix}moe_layers": moe_layers,
        f"{prefix}expert_ffn": model.expert_ffn_hidden,
        f"{prefix}shared": model.shared_experts if model.experts else 0,
        f"{prefix}kv_width": model.kv_cache_width or 2 * kv_heads * head_dim,
    }


def _sample_seconds(workload: Workload, gpu: Accelerator, catalog: Catalog) -> float:
    """Seconds one GPU computes one sample at full speed. Architectures the benchmark measured use their
    figure; others scale the newest measured architecture by HBM bandwidth (docs/model.md, "Sample workloads")."""
    per_batch = workload.compute_s_per_batch
    if gpu.arch in per_batch:
        return per_batch[gpu.arch] / workload.batch_samples
    newest = max(per_batch, key=lambda arch: catalog.accelerators[workload.reference_gpu[arch]].launch_year)
    ref = catalog.accelerators[workload.reference_gpu[newest]]
    return per_batch[newest] / workload.batch_samples * ref.hbm_tb_s / gpu.hbm_tb_s


def _sample_columns(s: Scenario, t: Training, workload: Workload, gpu: Accelerator, catalog: Catalog) -> dict:
    """A sample workload rides on the training stages as a one-layer stand-in model under pure data
    parallelism (no TP/PP); engine/workloads.py replaces its step time with the per-sample compute."""
    d = s.data
    stand_in = ModelSpec(
        name=workload.name,
        layers=1,
        hidden=64,
        heads=1,
        vocab=64,
        ffn_hidden=256,
        params_total_b=(workload.params_m or 0.001) / 1000.0,
    )
    batch = t.global_batch_samples or workload.batch_samples * s.cluster.gpu_count
    sample_bytes = d.sample_mb * 1e6 if d.sample_mb else workload.sample_bytes
    per_sample_s = 1.0 / d.samples_per_gpu_s if d.samples_per_gpu_s else _sample_seconds(workload, gpu, catalog)
    return model_columns("m_", stand_in) | {
        "is_samples": 1,
        "unit_bytes": sample_bytes,
        "sample_s": per_sample_s,
        "sample_flops": (workload.train_gflop_per_sample or math.nan) * 1e9,
        "tokens": t.train_samples or 5.0 * workload.dataset_samples,
        "seq": 1,
        "gbs": batch,
        "dataset_gb": (d.dataset_gb if d.dataset_gb is not None else workload.dataset_samples * sample_bytes / 1e9),
        "p_tp": 1,
        "p_pp": 1,
        "p_dp": AUTO,
        "p_mb": 1,
        "p_zero": 0,
        "p_v": 1,
        "p_ep": 1,
        "p_rc": 0,
    }


def _plan(training: Training) -> dict[str, int]:
    p = training.parallelism
    get = (lambda k: AUTO) if p == "auto" else (lambda k: AUTO if getattr(p, k) is None else getattr(p, k))
    return {
        "p_tp": get("tp"),
        "p_pp": get("pp"),
        "p_dp": get("dp"),
        "p_mb": get("microbatch"),
        "p_zero": get("zero"),
        "p_v": get("interleave"),
        "p_ep": get("ep"),
        "p_rc": RECOMPUTE_CODES[training.recompute],
    }


def _row(index: int, s: Scenario, catalog: Catalog) -> dict:
    c, n, st, co, f = s.cluster, s.network, s.storage, s.cooling, s.facility
    gpu = catalog.accelerators[c.gpu]
    arch = catalog.efficiency[gpu.arch]
    su = catalog.fabrics[n.scale_up or gpu.scale_up]
    so = catalog.fabrics[n.scale_out]
    nvme = catalog.nvme[st.nvme]
    fs = catalog.shared_fs[st.shared_fs]
    cool = catalog.cooling[co.kind]
    default_eff = catalog.constant("default_busbw_efficiency")
    bf16 = c.bf16_tflops or gpu.bf16_tflops
    fp8 = c.fp8_tflops or gpu.fp8_tflops or math.nan
    clock = cool.sustained_clock_factor if gpu.tdp_w >= cool.clock_loss_min_tdp_w else 1.0
    node_kw = gpu.node_max_kw or catalog.constant("node_overhead_ratio") * gpu.tdp_w * 8 / 1000
    # What the vendor's 8-GPU node draws while training (measured below its rating), less its GPUs at their
    # busy power: CPUs, memory, fans, NVSwitches, NICs and local drives, per GPU.
    node_training_w = node_kw * 1000 * catalog.constant("node_training_power_fraction")
    busy_w = gpu.tdp_w * catalog.constant("gpu_busy_power_fraction")
    r = s.reliability
    row = {
        "scenario": index,
        "name": s.name,
        "gpu_key": c.gpu,
        "n_gpus": c.gpu_count,
        "gpn": c.gpus_per_node,
        "nodes_per_rack": c.nodes_per_rack,
        "hbm_gb": c.hbm_gb or gpu.hbm_gb,
        "hbm_tb_s": gpu.hbm_tb_s,
        "bf16_tflops": bf16,
        "fp8_tflops": fp8,
        "tdp_w": gpu.tdp_w,
        "idle_w": gpu.idle_w,
        "host_w_per_gpu": max(node_training_w / 8 - busy_w, 0.0),
        "host_link_gb_s": catalog.fabrics[gpu.host_link].gb_s_per_direction,
        "gemm_eff": arch.gemm_efficiency,
        "fp8_gemm_eff": arch.fp8_gemm_efficiency,
        "mem_eff": arch.memory_efficiency,
        "clock": clock,
        "su_gb_s": n.scale_up_gb_s or su.gb_s_per_direction,
        "su_eff": su.busbw_efficiency or default_eff,
        "su_lat_us": n.scale_up_latency_us or su.latency_us,
        "su_domain": max(gpu.scale_up_domain_gpus, 1),
        "nic_gb_s": (n.nic_gbps / 8) if n.nic_gbps else so.gb_s_per_direction,
        "nics": n.nics_per_node,
        "so_eff": so.busbw_efficiency or default_eff,
        "so_lat_us": n.scale_out_latency_us or so.latency_us,
        "host_mem_gb": c.host_memory_gb,
        "nvme_read_gb_s": nvme.read_gb_s,
        "nvme_write_gb_s": nvme.write_gb_s,
        "nvme_drives": st.nvme_drives_per_node,
        "fs_read_gb_s": fs.read_gb_s if st.shared_fs_read_gb_s is None else st.shared_fs_read_gb_s,
        "fs_write_gb_s": fs.write_gb_s if st.shared_fs_write_gb_s is None else st.shared_fs_write_gb_s,
        "ckpt_async": int(st.checkpoint_mode == "async"),
        "ckpt_mode": CHECKPOINT_CODES[st.checkpoint_mode],
        "ckpt_interval_min": math.nan if st.checkpoint_interval_min == "auto" else st.checkpoint_interval_min,
        "node_storage_gb_s": (st.node_network_gbps or catalog.constant("storage_network_gbps_per_node")) / 8,
        "data_source": DATA_SOURCE_CODES[s.data.source],
        "fail_on": int(r.interruptions),
        "gpu_mtbf_h": r.gpu_mtbf_hours or catalog.constant("gpu_mtbf_hours"),
        "node_mtbf_h": r.node_mtbf_hours or catalog.constant("node_mtbf_hours"),
        "restart_s": 60.0 * (catalog.constant("restart_min") if r.restart_min is None else r.restart_min),
        "pue": co.pue or cool.pue,
        "rack_limit_kw": co.rack_limit_kw or cool.rack_limit_kw,
        "usd_per_kwh": f.electricity_usd_per_kwh,
        "gco2_per_kwh": f.grid_gco2_per_kwh,
        "gpu_hour_usd": f.gpu_hour_usd,
    }
    t = s.training
    row["has_train"] = int(t is not None)
    t = t or Training()
    row |= {
        "fp8": int(t.precision == "fp8"),
        "flash": int(t.attention == "flash"),
        "sp": int(t.sequence_parallel),
        "tp_overlap": int(t.tp_comm_overlap),
        "dropout": int(t.dropout),
        "eval_tokens": t.eval_tokens,
    }
    if isinstance(t.model, str) and t.model in catalog.workloads:
        row |= _sample_columns(s, t, catalog.workloads[t.model], gpu, catalog)
    else:
        shape = _shape(t.model, catalog)
        per_token = s.data.bytes_per_token or (2.0 if shape.vocab < catalog.constant("uint16_token_max_vocab") else 4.0)
        row |= (
            model_columns("m_", shape)
            | {
                "is_samples": 0,
                "unit_bytes": per_token,  # bytes read per trained token
                "sample_s": math.nan,
                "sample_flops": math.nan,
                "tokens": t.train_tokens,
                "seq": t.seq_len_tokens,
                "gbs": t.global_batch_seqs,
                "dataset_gb": math.nan if s.data.dataset_gb is None else s.data.dataset_gb,
            }
            | _plan(t)
        )
    i = s.inference
    row["has_infer"] = int(i is not None)
    i = i or Inference()
    shape = _shape(i.model, catalog)
    row |= model_columns("i_", shape)
    row |= {
        "i_precision_bytes": PRECISION_BYTES[i.precision],
        "i_peak_tflops": {"bf16": bf16, "fp8": fp8, "fp4": gpu.fp4_tflops or fp8}[i.precision],
        "i_prompt": i.prompt_tokens,
        "i_output": i.output_tokens,
        "i_concurrency": i.concurrency,
        "i_rate": i.request_rate_per_s,
        "i_tp": AUTO if i.tp == "auto" else i.tp,
    } | _serving(i, shape, c.gpu_count)
    return row


PRECISION_BYTES = {"bf16": 2.0, "fp8": 1.0, "fp4": 0.5}


def _serving(i: Inference, shape: ModelShape | ModelSpec, cluster_gpus: int) -> dict[str, float]:
    """Serving-only inputs. KV precision "auto" follows the weights but stays at 8 bits or more; the KV cache
    splits over TP by KV heads (MLA's shared latent does not split: one shard)."""
    kv = i.kv_cache_precision
    if kv == "auto":
        kv = "bf16" if i.precision == "bf16" else "fp8"
    return {
        "i_pp": i.pp,
        "i_gpus": i.gpu_count or cluster_gpus,
        "i_kv_bytes": PRECISION_BYTES[kv],
        "i_kv_shards": 1 if shape.attention == "mla" else (shape.kv_heads or shape.heads),
        # Attention width: heads x (query-key + value width); MLA attends over its cached latent.
        "i_attn_width": (
            shape.heads * 2.0 * shape.kv_cache_width
            if shape.attention == "mla" and shape.kv_cache_width
            else 2.0 * shape.hidden
        ),
        "i_chunk": i.prefill_chunk_tokens if i.chunked_prefill else math.inf,
        "i_kv_fraction": i.kv_cache_memory_fraction,
        "i_ttft_limit_ms": i.ttft_p99_limit_ms or math.nan,
        "i_tpot_limit_ms": i.tpot_p99_limit_ms or math.nan,
    }


def resolve(scenarios: Iterable[Scenario], catalog: Catalog | None = None) -> pl.DataFrame:
    """One row per scenario, in order; `scenario` is the row's index."""
    catalog = catalog or load_catalog()
    rows = [_row(i, s, catalog) for i, s in enumerate(scenarios)]
    frame = pl.DataFrame(rows, infer_schema_length=None)
    # The engine computes in float64: store numbers that way so reading a column is a zero-copy view.
    ints = ("scenario", "n_gpus")
    return frame.with_columns(
        pl.col(n).cast(pl.Float64) for n, d in frame.schema.items() if d.is_numeric() and n not in ints
    )
