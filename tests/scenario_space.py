"""Random valid scenarios over (nearly) the whole schema, for the invariant tests and for fuzzing by hand.

`scenario_data(source)` draws one scenario as plain data (what a TOML file holds) from a `Source`: either a
hypothesis `draw` (tests shrink a failure to its smallest scenario) or a seeded `random.Random` (a fuzzing
run: `python tests/scenario_space.py 20000`). Values span each key's whole range, extremes included: tiny
and huge clusters, overrides far from real hardware, explicit model shapes, every serving feature.
"""

from __future__ import annotations

import math
import random
import sys

from whatif.engine import load_catalog

CAT = load_catalog()
GPUS = list(CAT.accelerators)
SCALE_OUT = [k for k, f in CAT.fabrics.items() if f.kind == "scale-out"]
SCALE_UP = [k for k, f in CAT.fabrics.items() if f.kind == "scale-up"]
MODELS = list(CAT.models)
WORKLOADS = list(CAT.workloads)
LENGTHS = ["fixed", *CAT.lengths]


class Source:
    """Random choices from a hypothesis `draw` or a `random.Random`."""

    def __init__(self, draw=None, rng: random.Random | None = None):
        self._draw, self._rng = draw, rng

    def unit(self) -> float:
        if self._draw is not None:
            from hypothesis import strategies as st

            return self._draw(st.integers(0, 10_000)) / 10_000
        return self._rng.random()

    def chance(self, p: float) -> bool:
        return self.unit() < p

    def pick(self, seq):
        seq = list(seq)
        return seq[min(int(self.unit() * len(seq)), len(seq) - 1)]

    def integer(self, lo: int, hi: int) -> int:
        return lo + min(int(self.unit() * (hi - lo + 1)), hi - lo)

    def log(self, lo: float, hi: float) -> float:
        return lo * (hi / lo) ** self.unit()

    def log_int(self, lo: int, hi: int) -> int:
        return max(lo, min(hi, round(self.log(lo, hi))))

    def pow2(self, lo: int, hi: int) -> int:
        return 2 ** self.integer(int(math.log2(lo)), int(math.log2(hi)))


def _precision(s: Source, gpu: str, allow_fp4: bool = True) -> str:
    acc = CAT.accelerators[gpu]
    options = ["bf16"] + (["fp8"] if acc.fp8_tflops else []) + (["fp4"] if acc.fp4_tflops and allow_fp4 else [])
    return s.pick(options)


def model_shape(s: Source) -> dict:
    """An explicit model shape, tiny to huge, dense or MoE, MHA/GQA/MLA; counts consistent with the shape."""
    heads = s.pow2(1, 128)
    head_dim = s.pick([64, 128])
    layers = s.log_int(1, 160)
    shape = {
        "name": s.pick(["tiny", "custom", "x"]),
        "layers": layers,
        "hidden": heads * head_dim,
        "heads": heads,
        "vocab": s.log_int(1, 262_144),
        "ffn_kind": s.pick(["gelu", "swiglu"]),
        "tied_embeddings": s.chance(0.5),
    }
    if s.chance(0.5):
        shape["kv_heads"] = s.pick([k for k in (1, 2, 4, 8, heads) if heads % k == 0])
    if s.chance(0.5):
        shape["ffn_hidden"] = s.log_int(1, 65_536)
    if s.chance(0.3):
        experts = s.pow2(2, 256)
        shape |= {
            "experts": experts,
            "experts_per_token": s.integer(1, min(8, experts)),
            "moe_layers": s.integer(1, layers),
            "expert_ffn_hidden": s.log_int(1, 16_384),
            "shared_experts": s.integer(0, 2),
        }
    if s.chance(0.15):
        shape |= {
            "attention": "mla",
            "kv_lora_rank": s.pick([128, 512]),
            "q_lora_rank": s.pick([0, 1536]),
            "qk_nope_head_dim": 128,
            "qk_rope_head_dim": 64,
            "v_head_dim": 128,
        }
    if s.chance(0.1):
        shape |= {"sliding_window_tokens": s.log_int(16, 131_072), "sliding_window_layers": s.integer(0, layers)}
    if s.chance(0.2):
        # A published count near the shape's own (within the 25% the schema allows).
        from whatif.engine.resolve import shape_params
        from whatif.engine.scenario import ModelSpec

        try:
            implied = shape_params(ModelSpec.model_construct(**shape))
        except Exception:
            return shape
        shape["params_total_b"] = implied["total"] / 1e9 * s.pick([0.85, 1.0, 1.2])
    return shape


def training(s: Source, gpu: str, gpus: int) -> dict:
    kind = s.unit()
    if kind < 0.1:
        t: dict = {"model": s.pick(WORKLOADS)}
        if s.chance(0.5):
            t["global_batch_samples"] = s.log_int(1, 1_000_000)
        if s.chance(0.3):
            t["train_samples"] = s.log(1, 1e12)
        return t
    t = {"model": model_shape(s) if kind < 0.3 else s.pick(MODELS)}
    t["train_tokens"] = s.log(1e3, 1e16)
    t["seq_len_tokens"] = s.log_int(16, 131_072)
    t["global_batch_seqs"] = s.log_int(1, 65_536)
    t["precision"] = _precision(s, gpu)
    if s.chance(0.5):
        plan = {}
        for key, lo, hi in (("tp", 1, 64), ("pp", 1, 32), ("dp", 1, 4096), ("microbatch", 1, 16), ("ep", 1, 64)):
            if s.chance(0.5):
                plan[key] = s.pow2(lo, hi)
        if s.chance(0.5):
            plan["zero"] = s.integer(0, 3)
        if s.chance(0.2):
            plan["interleave"] = s.pick([1, 2, 4])
        if s.chance(0.1):
            plan["cp"] = s.pow2(1, 8)
        t["parallelism"] = plan or "auto"
    t["recompute"] = s.pick(["auto", "none", "selective", "full"])
    t["attention"] = s.pick(["flash", "flash2", "unfused"])
    for key in ("sequence_parallel", "tp_comm_overlap", "dp_comm_overlap", "moe_a2a_overlap", "moe_dispatch_fp8"):
        if s.chance(0.3):
            t[key] = s.chance(0.5)
    if s.chance(0.2):
        t["moe_dispatcher"] = s.pick(["alltoall", "deepep"])
    if s.chance(0.1):
        t["eval_tokens"] = s.log(1, 1e12)
    if s.chance(0.1):
        t["moe_imbalance"] = s.log(1.0, 16.0)
    return t


def inference(s: Source, gpu: str, gpus: int) -> dict:
    i: dict = {"model": model_shape(s) if s.chance(0.2) else s.pick(MODELS)}
    i["precision"] = _precision(s, gpu)
    profile = s.pick(LENGTHS) if s.chance(0.2) else "fixed"
    if profile != "fixed":
        i["length_profile"] = profile
    else:
        i["prompt_tokens"] = s.log_int(1, 131_072)
        i["output_tokens"] = s.log_int(1, 16_384)
        if s.chance(0.2):
            i["prompt_tokens_cv"] = s.log(0.01, 10)
            i["output_tokens_cv"] = s.log(0.01, 10)
    i["concurrency"] = s.log_int(1, 4096)
    i["request_rate_per_s"] = 0.0 if s.chance(0.15) else s.log(1e-3, 1e6)
    i["tp"] = "auto" if s.chance(0.5) else s.pow2(1, 64)
    if s.chance(0.2):
        i["pp"] = s.pow2(1, 8)
    serving = gpus
    if s.chance(0.5):
        serving = s.integer(1, gpus)
        i["gpu_count"] = serving
    if s.chance(0.2):
        i["ttft_p99_limit_ms"] = s.log(1, 1e6)
    if s.chance(0.2):
        i["tpot_p99_limit_ms"] = s.log(0.1, 1e4)
    if s.chance(0.1):
        i["gpu_memory_fraction"] = s.log(0.05, 1.0)
    if s.chance(0.1):
        i["kv_cache_memory_fraction"] = s.log(0.05, 1.0)
    if s.chance(0.2):
        i["chunked_prefill"] = s.chance(0.5)
    if s.chance(0.2):
        i["prefill_chunk_tokens"] = s.log_int(16, 65_536)
    if s.chance(0.2):
        i["kv_admission"] = s.pick(["paged", "reserve"])
    if s.chance(0.15):
        i["kv_offload"] = "host"
        i["prefix_cache_host_share"] = s.unit()
    if s.chance(0.2):
        i["prefix_cache_hit_rate"] = s.unit() * 0.999
    if s.chance(0.15):
        i["speculative"] = s.pick(["draft", "mtp"])
        i["spec_acceptance_rate"] = s.unit()
        i["spec_draft_tokens"] = s.integer(1, 16)
        if i["speculative"] == "draft":
            i["spec_draft_model"] = s.pick(["llama-3.1-8b", "llama-2-7b", "qwen3-8b"])
    if s.chance(0.15):
        i["ep"] = "tp" if s.chance(0.5) else 1
        i["dp_attention"] = s.chance(0.5)
        i["moe_a2a_overlap"] = s.chance(0.5)
    if s.chance(0.1):
        i["expert_precision"] = s.pick(["auto", "bf16", "fp8", "fp4"])
    if serving >= 2 and s.chance(0.15):
        i["disaggregated"] = True
        i["prefill_gpu_count"] = s.integer(1, serving - 1)
        if s.chance(0.5):
            i["prefill_tp"] = s.pow2(1, 8)
    return i


def scenario_data(s: Source) -> dict:
    gpu = s.pick(GPUS)
    per_node = s.pick([1, 2, 4, 8, 8, 8])
    nodes = s.log_int(1, 4096)
    gpus = per_node * nodes
    cluster: dict = {"gpu": gpu, "gpu_count": gpus, "gpus_per_node": per_node, "nodes_per_rack": s.integer(1, 18)}
    # Overrides: mostly near real hardware, sometimes at the far ends of their ranges.
    for key, lo, hi in (("hbm_gb", 0.5, 65536), ("bf16_tflops", 0.1, 1e5), ("host_memory_gb", 1, 65536)):
        if s.chance(0.1):
            cluster[key] = s.log(lo, hi)
    if s.chance(0.05) and CAT.accelerators[gpu].fp8_tflops:
        cluster["fp8_tflops"] = s.log(cluster.get("bf16_tflops", CAT.accelerators[gpu].bf16_tflops), 1e5)
    if s.chance(0.1):
        cluster["power_cap_w"] = s.log(1, 5000)
    network: dict = {"scale_out": s.pick(SCALE_OUT), "nics_per_node": s.integer(1, 16)}
    if s.chance(0.1):
        network["scale_up"] = s.pick(SCALE_UP)
    for key, lo, hi in (
        ("nic_gbps", 0.1, 1e7),
        ("scale_up_gb_s", 0.01, 1e6),
        ("scale_up_latency_us", 1e-3, 1e7),
        ("scale_out_latency_us", 1e-3, 1e7),
        ("oversubscription", 1, 64),
    ):
        if s.chance(0.08):
            network[key] = s.log(lo, hi)
    if s.chance(0.1):
        network["pod_gpus"] = s.integer(1, gpus)
    storage: dict = {
        "nvme": s.pick(list(CAT.nvme)),
        "nvme_drives_per_node": s.integer(0, 16),
        "shared_fs": s.pick(list(CAT.shared_fs)),
        "checkpoint_mode": s.pick(["sync", "async", "none"]),
    }
    if s.chance(0.2):
        storage["checkpoint_interval_min"] = s.log(0.01, 100_000)
    for key in ("shared_fs_read_gb_s", "shared_fs_write_gb_s"):
        if s.chance(0.08):
            storage[key] = 0.0 if s.chance(0.3) else s.log(1e-3, 1e6)
    if s.chance(0.08):
        storage["node_network_gbps"] = s.log(1e-3, 1e7)
    data: dict = {"cluster": cluster, "network": network, "storage": storage, "name": "generated"}
    data["cooling"] = {"kind": s.pick(list(CAT.cooling))}
    if s.chance(0.1):
        data["data"] = {"source": s.pick(["shared-fs", "local-nvme"])}
        if s.chance(0.5):
            data["data"]["dataset_gb"] = s.log(1e-3, 1e10)
        if s.chance(0.5):
            data["data"]["bytes_per_token"] = s.log(0.01, 1e6)
    if s.chance(0.1):
        data["reliability"] = {"interruptions": s.chance(0.8)}
        if s.chance(0.5):
            data["reliability"]["gpu_mtbf_hours"] = s.log(1e-3, 1e9)
        if s.chance(0.5):
            data["reliability"]["restart_min"] = s.log(0.01, 100_000)
    if s.chance(0.1):
        data["facility"] = {"electricity_usd_per_kwh": s.log(1e-3, 10), "usd_per_gpu_hour": s.log(1e-3, 1000)}
    if s.chance(0.1):
        facility = data.setdefault("facility", {})
        facility["site"] = s.pick(list(CAT.sites))
        facility["cost_model"] = s.pick(["rental", "owned"])
        for key, lo, hi in (
            ("pue", 1.0, 3.0),
            ("server_usd_per_gpu", 1, 1e7),
            ("depreciation_years", 0.1, 50),
            ("facility_usd_per_kw_month", 0.01, 1e5),
        ):
            if s.chance(0.3):
                facility.pop("usd_per_gpu_hour", None) if key == "server_usd_per_gpu" else None
                facility[key] = s.log(lo, hi)
    # The host side (issue 15): another host CPU, more or fewer sockets, where the input is prepared.
    if s.chance(0.15):
        cluster["host_cpu"] = s.pick(list(CAT.host.cpus))
    if s.chance(0.1):
        cluster["host_cpus_per_node"] = s.integer(1, 64)
    if s.chance(0.1):
        prep = data.setdefault("data", {})
        prep["preprocess"] = s.pick(["cpu", "gpu-decode", "none"])
        for key in ("decode_core_ms", "augment_core_ms"):
            if s.chance(0.4):
                prep[key] = 0.0 if s.chance(0.2) else s.log(1e-3, 1e6)
    kinds = s.unit()
    if kinds < 0.75:
        data["training"] = training(s, gpu, gpus)
    if kinds > 0.4:
        data["inference"] = inference(s, gpu, gpus)
    return data


def valid(data: dict):
    """The scenario, or None where the draw breaks a rule that joins two keys (a few percent of draws)."""
    from whatif.engine import ScenarioError
    from whatif.tui.files import validated

    try:
        return validated(data, "generated")
    except ScenarioError:
        return None


if __name__ == "__main__":  # a fuzzing run: python tests/scenario_space.py [count] [seed]
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    made = [valid(scenario_data(Source(rng=rng))) for _ in range(count)]
    print(f"{sum(m is not None for m in made)} of {count} valid")
