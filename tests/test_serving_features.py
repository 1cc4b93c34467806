"""Serving features worked out by hand (issue 10): FP4 ceilings and the small-M shape curve, speculative
decoding's accepted tokens, prefix caching, disaggregated KV transfer, DP attention and EP memory, sliding-window
KV, length profiles, paged KV preemption and offload, and the messages for keys that do not go together; plus
the physical properties the issue lists (hypothesis, derandomized)."""

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from tiers import examples
from whatif.engine import Scenario, ScenarioError, load_catalog, resolve
from whatif.engine.columns import Columns
from whatif.engine.serving import physics, serve
from whatif.engine.text import parse_scenario

GIB = 2.0**30
CAT = load_catalog()


def _scenario(gpu="h100-sxm", gpus=8, per_node=8, **inference):
    return Scenario(cluster={"gpu": gpu, "gpu_count": gpus, "gpus_per_node": per_node}, inference=inference)


def _run(s: Scenario) -> dict:
    out = serve(Columns.from_frame(resolve([s])), CAT)
    return {k: v[0] for k, v in out.items()}


def _one(**kw) -> dict:
    return _run(_scenario(**kw))


def _column(s: Scenario, name: str) -> float:
    return resolve([s])[name][0]


# --- FP4: its own measured ceiling and a steeper small-M curve (defect 1) --------------------------------------


def test_fp4_reads_its_own_measured_ceiling_and_shape_curve():
    """GB200 NVFP4 16384^3 reaches 7,627.6 TFLOP/s (reference kernels/gemm.csv G081, Azure ND GB200); FP8 on the
    same part 3,615.6 (G019, MAMF). B200 has no FP4 sweep: Blackwell's measured FP4 share of peak, 7,627.6 / 10,000
    = 0.763, times its 9,000 TFLOP/s FP4 peak = 6,864.8 (not FP8's ceiling doubled). The FP4 curve's d_half is 256
    tokens against FP8's 128 (Azure cuBLASLt tall-skinny sweeps): a decode GEMM of a few tokens gains far less than
    the 2x peak."""
    gb = _scenario(gpu="gb200", gpus=8, per_node=4, model="llama-3.1-70b", precision="fp4")
    assert _column(gb, "i_gemm_tflops") == pytest.approx(7627.6)
    gb8 = _scenario(gpu="gb200", gpus=8, per_node=4, model="llama-3.1-70b", precision="fp8")
    assert _column(gb8, "i_gemm_tflops") == pytest.approx(3615.6)
    b = _scenario(gpu="b200", model="llama-3.1-70b", precision="fp4")
    assert _column(b, "i_gemm_tflops") == pytest.approx(0.763 * 9000.0)
    assert _column(b, "i_gemm_d_half") == 256.0 and _column(gb8, "i_gemm_d_half") == 128.0
    # Per FLOP at a 4-token decode batch: FP4 (4 + 256) / 7,627.6 against FP8 (4 + 128) / 3,615.6: 0.93x the
    # time, where the peaks promise 0.5x.
    assert (4 + 256) / 7627.6 / ((4 + 128) / 3615.6) == pytest.approx(0.934, abs=1e-3)


def test_fp4_speeds_compute_bound_prefill_by_less_than_its_ceilings_ratio():
    """Offline prompt-heavy serving (2,048-token prompts, 2-token answers) on GB200, one GPU per replica: FP4
    runs faster than FP8 but by no more than the GEMM ceilings' ratio 7,627.6 / 3,615.6 = 2.11 (attention and
    the output projection stay in 16 bits)."""
    kw = dict(gpu="gb200", gpus=8, per_node=4, model="llama-3.1-70b", prompt_tokens=2048, output_tokens=2)
    kw |= dict(concurrency=64, request_rate_per_s=0.0, tp=1)
    fp8, fp4 = _one(precision="fp8", **kw), _one(precision="fp4", **kw)
    ratio = fp4["infer_capacity_tokens_per_s"] / fp8["infer_capacity_tokens_per_s"]
    assert 1.2 < ratio < 7627.6 / 3615.6


# --- speculative decoding ------------------------------------------------------------------------------------


def test_speculative_decoding_accepts_the_leviathan_expectation():
    """3 drafted tokens each accepted with probability 0.7 given the previous: (1 - 0.7^4) / (1 - 0.7) =
    0.7599 / 0.3 = 2.533 tokens per target pass (Leviathan et al. 2023, eq. 1); acceptance 0 gives 1,
    acceptance 1 gives 4."""
    kw = dict(model="llama-3.1-70b", concurrency=8, tp=8, speculative="mtp")
    assert _one(spec_acceptance_rate=0.7, **kw)["infer_accepted_tokens"] == pytest.approx(2.533, abs=1e-9)
    assert _one(spec_acceptance_rate=0.0, **kw)["infer_accepted_tokens"] == pytest.approx(1.0)
    assert _one(spec_acceptance_rate=1.0, **kw)["infer_accepted_tokens"] == pytest.approx(4.0)


def test_speculation_pays_at_small_batch_and_costs_at_acceptance_zero():
    """At batch 1 decode streams the weights once per pass whatever the tokens: 2.5 tokens per pass cut the TPOT
    (by less than 2.5x: the draft head and the verified tokens' compute); accepting none only adds the drafts."""
    kw = dict(model="llama-3.1-70b", concurrency=1, tp=8, request_rate_per_s=0.05)
    plain = _one(**kw)["infer_tpot_mean_ms"]
    fast = _one(speculative="mtp", spec_acceptance_rate=0.7, **kw)["infer_tpot_mean_ms"]
    none = _one(speculative="mtp", spec_acceptance_rate=0.0, **kw)["infer_tpot_mean_ms"]
    assert plain / 2.533 < fast < plain
    assert none > plain


def test_a_draft_model_holds_its_weights_and_kv_cache():
    """Llama 3.1 8B drafting for 70B in FP8 over TP8: its 8.03e9 weights at 1 byte split over 8 GPUs add 0.935 GiB
    per GPU (the 16-bit embeddings are not split out here: the draft model's own weights at serving precision)."""
    kw = dict(model="llama-3.1-70b", concurrency=8, tp=8)
    base = _one(**kw)
    draft = _one(speculative="draft", spec_draft_model="llama-3.1-8b", spec_acceptance_rate=0.6, **kw)
    added = draft["infer_mem_weights_gb"] - base["infer_mem_weights_gb"]
    assert added == pytest.approx(8.03e9 * 1.0 / 8 / GIB, rel=1e-3)
    assert draft["infer_max_batch"] < base["infer_max_batch"]


# --- prefix caching ------------------------------------------------------------------------------------------


def test_prefix_cache_hit_rate_zero_equals_no_cache():
    """With no hits the host share of hits does nothing either: every output is the same as without a cache."""
    kw = dict(model="llama-3.1-8b", gpus=1, per_node=1, concurrency=64, prompt_tokens=4096, kv_offload="host")
    a = _one(**kw)
    b = _one(prefix_cache_hit_rate=0.0, prefix_cache_host_share=0.8, **kw)
    for key, value in a.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(b[key]), key
        else:
            assert b[key] == value, key


def test_prefix_cache_hits_skip_their_prefill_but_count_as_input():
    """Half the prompt found in the cache: the prompt work of a lone request roughly halves (attention to the
    cached half still runs), capacity rises, and input tokens/s still count whole prompts (what a benchmark
    reports: rate x 4,096 / GPUs)."""
    kw = dict(model="llama-3.1-8b", gpus=1, per_node=1, concurrency=64, prompt_tokens=4096, output_tokens=64)
    cold = _one(request_rate_per_s=0.2, **kw)
    warm = _one(request_rate_per_s=0.2, prefix_cache_hit_rate=0.5, **kw)
    assert 0.4 < warm["infer_ttft_ms"] / cold["infer_ttft_ms"] < 0.75
    assert warm["infer_input_tokens_per_s_per_gpu"] == pytest.approx(0.2 * 4096)
    assert (
        _one(request_rate_per_s=0.0, prefix_cache_hit_rate=0.5, **kw)["infer_capacity_rps"]
        > _one(request_rate_per_s=0.0, **kw)["infer_capacity_rps"]
    )


def test_prefix_hits_from_host_memory_add_their_read_time():
    """Hits read back from host memory cross the host link: Llama 3.1 8B at BF16, 2,048 hit tokens x 32 layers x
    2 x 8 x 128 x 2 B = 268,435,456 B over PCIe 5 x16 (64 GB/s per direction, fabrics.toml) = 4.19 ms more TTFT."""
    kw = dict(model="llama-3.1-8b", precision="bf16", gpus=1, per_node=1, concurrency=64, prompt_tokens=4096)
    kw |= dict(request_rate_per_s=0.2, prefix_cache_hit_rate=0.5, kv_offload="host")
    gpu_hits = _one(**kw)
    host_hits = _one(prefix_cache_host_share=1.0, **kw)
    link = CAT.fabrics[CAT.accelerators["h100-sxm"].host_link].gb_s_per_direction
    expected_ms = 2048 * 32 * 2 * 8 * 128 * 2 / (link * 1e9) * 1e3
    assert host_hits["infer_ttft_ms"] - gpu_hits["infer_ttft_ms"] == pytest.approx(expected_ms, rel=1e-6)


# --- disaggregated prefill and decode ------------------------------------------------------------------------


HANDSHAKE_MS = CAT.fitted["serving_pd_handshake_ms"].value


def test_kv_transfer_inside_one_nvlink_domain():
    """Llama 3.1 70B in FP8 (KV cache in FP8): a 1,024-token prompt's KV is 1,024 x 80 layers x 2 x 8 heads x 128
    x 1 B = 167,772,160 B. A TP4 prefill replica and a TP4 decode replica fit one 8-GPU NVLink 4 domain: each of
    the 4 prefill GPUs sends its quarter at 450 GB/s x 0.82 (nccl-tests busbw efficiency, fabrics.toml) =
    0.114 ms, plus the fitted handshake."""
    s = _scenario(
        gpus=8,
        model="llama-3.1-70b",
        prompt_tokens=1024,
        concurrency=64,
        tp=4,
        disaggregated=True,
        prefill_gpu_count=4,
        prefill_tp=4,
    )
    r = _run(s)
    expected = 167_772_160 / (4 * 450e9 * 0.82) * 1e3 + HANDSHAKE_MS
    assert r["infer_kv_transfer_ms"] == pytest.approx(expected, rel=1e-9)
    assert r["infer_prefill_replicas"] == 1 and r["infer_replicas"] == 1


def test_kv_transfer_between_nodes_goes_over_the_nics():
    """TP8 prefill and TP8 decode replicas need two 8-GPU nodes: the KV crosses InfiniBand NDR, 8 NICs of 50 GB/s
    x 0.94 per 8-GPU node, one NIC's share per GPU: 167,772,160 B / (8 x 47 GB/s) = 0.446 ms + handshake."""
    s = _scenario(
        gpus=16,
        model="llama-3.1-70b",
        prompt_tokens=1024,
        concurrency=64,
        tp=8,
        disaggregated=True,
        prefill_gpu_count=8,
        prefill_tp=8,
    )
    r = _run(s)
    expected = 167_772_160 / (8 * 50e9 * 0.94) * 1e3 + HANDSHAKE_MS
    assert r["infer_kv_transfer_ms"] == pytest.approx(expected, rel=1e-9)


def test_disaggregated_decode_never_sees_prompts():
    """The decode pool's iterations carry no prompt chunks, so at the same per-replica load its p99 TPOT is no
    worse than a colocated replica's that mixes 8,192-token prompts in (both fleets two TP4 decode replicas)."""
    kw = dict(model="llama-3.1-70b", concurrency=64, prompt_tokens=8192, output_tokens=256, request_rate_per_s=2.0)
    colocated = _one(gpus=8, tp=4, **kw)
    split = _one(gpus=16, tp=4, disaggregated=True, prefill_gpu_count=8, prefill_tp=4, **kw)
    assert split["infer_tpot_p99_ms"] < colocated["infer_tpot_p99_ms"]


# --- MoE: expert parallelism and data-parallel attention -----------------------------------------------------


def _dsv3(**kw):
    base = dict(gpu="h200-sxm", model="deepseek-v3", precision="fp8", concurrency=256, tp=8, ep="tp")
    return _one(**(base | kw))


def test_dp_attention_replicates_attention_weights_and_splits_the_latent_cache():
    """DeepSeek-V3 in FP8 on 8 H200: with TP attention each GPU holds 1/8 of the attention weights but the whole
    512 + 64 latent KV of every sequence (MLA's latent has no heads to split); with DP attention it holds all the
    attention weights (61 layers of MLA projections: 7,168 x 1,536 + 1,536 x 128 x 192 + 7,168 x 576 +
    512 x 128 x 256 + 128 x 128 x 7,168 = 187.1M parameters each, 1 B in FP8: 7/8 x 61 x 187.1M B = 9.30 GiB
    more) and only its own sequences' cache, so the batch that fits grows about 8x the KV room ratio."""
    tp_attn, dp_attn = _dsv3(), _dsv3(dp_attention=True)
    added = dp_attn["infer_mem_weights_gb"] - tp_attn["infer_mem_weights_gb"]
    assert added == pytest.approx(7 / 8 * 61 * 187_105_280 / GIB, rel=2e-3)  # scaled to the published 671B
    usable = tp_attn["infer_mem_usable_gb"]
    room_ratio = (usable - dp_attn["infer_mem_weights_gb"]) / (usable - tp_attn["infer_mem_weights_gb"])
    assert dp_attn["infer_max_batch"] / tp_attn["infer_max_batch"] == pytest.approx(8 * room_ratio, rel=0.02)


def test_expert_parallel_streams_whole_local_experts():
    """EP over the 8 GPUs (32 whole experts each) or experts tensor-parallel (each GPU 1/8 of all 256): the same
    bytes per GPU, so the weights and the batch that fits do not change; ep must divide tp."""
    a, b = _dsv3(ep="tp"), _dsv3(ep=1)
    assert a["infer_mem_weights_gb"] == pytest.approx(b["infer_mem_weights_gb"])
    assert a["infer_ep"] == 8 and b["infer_ep"] == 1
    with pytest.raises(ValidationError, match="ep 3 does not divide tp 8"):
        _scenario(gpu="h200-sxm", model="deepseek-v3", tp=8, ep=3)


# --- sliding-window layers -----------------------------------------------------------------------------------


def test_sliding_window_layers_hold_at_most_their_window():
    """gpt-oss-120b: 36 layers, half of them banded to 128 tokens (model card sec. 2), 8 KV heads of 64. A
    sequence of 8,192 tokens at BF16 KV holds 2 x 8 x 64 x 2 B x (18 x 8,192 + 18 x 128) = 306,708,480 B, about
    half what full attention in every layer would (603,979,776 B)."""
    s = _scenario(gpu="h200-sxm", model="gpt-oss-120b", precision="bf16", tp=1, gpus=1, per_node=1)
    c = Columns.from_frame(resolve([s]))
    assert physics.kv_bytes_per_seq(c, np.array([8192.0]), c.i_layers)[0] == pytest.approx(306_708_480)
    assert physics.kv_bytes_per_seq(c, np.array([100.0]), c.i_layers)[0] == pytest.approx(2048 * 36 * 100)


# --- length distributions ------------------------------------------------------------------------------------


def test_a_length_profile_sets_means_and_spreads():
    """ShareGPT as vLLM's benchmark samples it (lengths.toml): 215-token prompts, 121-token answers, and their
    spreads as E[X^2]/E[X]^2 = 1 + cv^2."""
    s = _scenario(model="llama-3.1-8b", length_profile="sharegpt")
    f = resolve([s]).row(0, named=True)
    prof = CAT.lengths["sharegpt"]
    assert (f["i_prompt"], f["i_output"]) == (215, 121)
    assert f["i_prompt_m2"] == pytest.approx(1 + prof.prompt_cv**2)
    assert f["i_output_m2"] == pytest.approx(1 + prof.output_cv**2)


def test_spread_lengths_hold_more_kv_per_request_than_fixed_ones():
    """Paged KV holds a request's prompt and on average half its output length-biased (E[O^2]/2E[O]): at output
    cv 1 a decoding request holds P + O rather than P + O/2, so fewer fit."""
    kw = dict(model="llama-3.1-70b", concurrency=4096, prompt_tokens=512, output_tokens=2048, tp=8)
    fixed, spread = _one(**kw), _one(output_tokens_cv=1.0, **kw)
    ratio = fixed["infer_max_batch"] / spread["infer_max_batch"]
    assert ratio == pytest.approx((512 + 2048 + 8) / (512 + 1024 + 8), rel=0.01)


# --- paged KV: preemption and offload (defect 3) -------------------------------------------------------------


def test_reserved_admission_never_preempts_and_paged_admission_can():
    """A cache that holds 60 mean-occupancy requests with a batch limit of 64: some of the time the requests in
    the system need more blocks than it has, and the newest are preempted; reserving whole contexts never
    preempts (but admits fewer)."""
    kw = dict(
        model="llama-3.1-70b", tp=4, gpus=4, per_node=4, prompt_tokens=1024, output_tokens=4096, request_rate_per_s=0.0
    )
    paged = _one(concurrency=4096, **kw)
    limit = int(paged["infer_max_batch"])
    over = _one(concurrency=limit, **kw)
    reserve = _one(concurrency=limit, kv_admission="reserve", **kw)
    assert over["infer_preempted_pct"] > 0.0
    assert reserve["infer_preempted_pct"] == 0.0
    assert reserve["infer_max_batch"] < paged["infer_max_batch"]
    roomy = _one(concurrency=max(limit // 4, 1), **kw)
    assert roomy["infer_preempted_pct"] < over["infer_preempted_pct"]


def test_host_offload_swaps_preempted_kv_instead_of_recomputing():
    """A preempted request's KV copied out and back over PCIe 5 (64 GB/s) rather than recomputed as a 3,000-token
    prompt: its extra TPOT differs, and the share preempted does not."""
    kw = dict(
        model="llama-3.1-70b", tp=4, gpus=4, per_node=4, prompt_tokens=1024, output_tokens=4096, request_rate_per_s=0.0
    )
    limit = int(_one(concurrency=4096, **kw)["infer_max_batch"])
    recompute = _one(concurrency=limit, **kw)
    swap = _one(concurrency=limit, kv_offload="host", **kw)
    assert swap["infer_preempted_pct"] == pytest.approx(recompute["infer_preempted_pct"])
    assert swap["infer_tpot_mean_ms"] != recompute["infer_tpot_mean_ms"]


def test_gpu_memory_fraction_caps_the_engine_footprint():
    """vLLM's gpu_memory_utilization 0.9: the engine's whole footprint is 0.9 x HBM, its KV cache what the weights
    and the runtime reserve leave of that; TensorRT-LLM's kv_cache_free_gpu_mem_fraction 0.9: the KV cache is 0.9
    of what the weights and reserve leave of the whole GPU."""
    kw = dict(model="llama-3.1-8b", precision="bf16", gpus=1, per_node=1, tp=1, concurrency=4096)
    trt = _one(kv_cache_memory_fraction=0.9, **kw)
    vllm = _one(gpu_memory_fraction=0.9, **kw)
    hbm = trt["infer_hbm_gb"]
    reserve = CAT.constant("memory_reserve_gb")
    w = trt["infer_mem_weights_gb"]
    trt_room = (trt["infer_mem_usable_gb"] - w) * 0.9
    vllm_room = min(trt["infer_mem_usable_gb"], hbm * 0.9 - reserve) - w
    assert vllm["infer_max_batch"] / trt["infer_max_batch"] == pytest.approx(vllm_room / trt_room, rel=0.01)


# --- keys that do not go together ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inference", "field", "words"),
    [
        ({"speculative": "mtp"}, "spec_acceptance_rate", "needed with speculative"),
        ({"speculative": "draft", "spec_acceptance_rate": 0.5}, "spec_draft_model", "needed with speculative"),
        ({"prefix_cache_hit_rate": 0.5, "prefix_cache_host_share": 0.5}, "prefix_cache_host_share", "kv_offload"),
        ({"length_profile": "sharegpt", "prompt_tokens": 100}, "prompt_tokens", "set by length_profile"),
        ({"length_profile": "sharegtp"}, "length_profile", "allowed: sharegpt"),
        ({"disaggregated": True}, "prefill_gpu_count", "needed with disaggregated"),
        ({"prefill_tp": 4}, "prefill_tp", "needs disaggregated"),
        ({"kv_admission": "eager"}, "kv_admission", "allowed"),
        ({"speculative": "eagle"}, "speculative", "allowed"),
        ({"prefix_cache_hit_rate": 1.0}, "prefix_cache_hit_rate", "at most 0.999"),
    ],
)
def test_serving_keys_that_clash_name_the_field_and_what_is_allowed(inference, field, words):
    lines = ["[inference]"] + [f"{k} = {_toml(v)}" for k, v in inference.items()]
    with pytest.raises(ScenarioError) as err:
        parse_scenario("\n".join(lines), "case.toml")
    text = str(err.value)
    assert f"inference.{field}" in text and words in text, text


def _toml(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return f'"{v}"' if isinstance(v, str) else str(v)


# --- properties (issue 10, "Prove it") -----------------------------------------------------------------------


PROPERTY = settings(
    max_examples=examples(30), deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def serving(draw):
    gpu = draw(st.sampled_from(["h100-sxm", "h200-sxm", "b200", "mi300x"]))
    return dict(
        gpu=gpu,
        gpus=8,
        model=draw(st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "qwen3-8b"])),
        precision=draw(st.sampled_from(["bf16", "fp8"])),
        prompt_tokens=draw(st.integers(16, 8192)),
        output_tokens=draw(st.integers(2, 2048)),
        prompt_tokens_cv=draw(st.sampled_from([0.0, 0.5, 1.4])),
        output_tokens_cv=draw(st.sampled_from([0.0, 0.6])),
        concurrency=draw(st.integers(1, 512)),
        tp=draw(st.sampled_from([1, 2, 4, 8])),
        request_rate_per_s=draw(st.floats(0.01, 30.0)),
        kv_admission=draw(st.sampled_from(["paged", "reserve"])),
    )


@PROPERTY
@given(serving(), st.sampled_from(["mtp", "draft"]), st.integers(1, 6))
def test_speculation_with_acceptance_zero_is_never_faster(kw, kind, drafts):
    """Drafting tokens that are never accepted only adds work: TPOT never lower, capacity never higher."""
    spec = dict(speculative=kind, spec_acceptance_rate=0.0, spec_draft_tokens=drafts)
    if kind == "draft":
        spec["spec_draft_model"] = "llama-3.1-8b"
    base, slow = _one(**kw), _one(**(kw | spec))
    if not (base["infer_fits"] and slow["infer_fits"]):
        return
    assert slow["infer_capacity_rps"] <= base["infer_capacity_rps"] * (1 + 1e-9)
    if np.isfinite(base["infer_tpot_mean_ms"]) and np.isfinite(slow["infer_tpot_mean_ms"]):
        assert slow["infer_tpot_mean_ms"] >= base["infer_tpot_mean_ms"] * (1 - 1e-9)


@PROPERTY
@given(serving(), st.floats(1.2, 4.0))
def test_more_request_rate_never_lowers_p99_tpot(kw, factor):
    """More load means bigger batches and more prompt chunks in each iteration: p99 TPOT never falls (up to the
    moment expansion's 3%, as for the bandwidth property in test_inference.py)."""
    low = _one(**kw)
    high = _one(**(kw | {"request_rate_per_s": kw["request_rate_per_s"] * factor}))
    if not low["infer_fits"] or low["infer_overloaded"] or high["infer_overloaded"]:
        return
    assert high["infer_tpot_p99_ms"] >= low["infer_tpot_p99_ms"] * (1 - 0.03)


@PROPERTY
@given(serving(), st.floats(0.05, 0.95))
def test_prefix_hits_never_slow_the_first_token(kw, hit):
    cold = _one(**kw)
    warm = _one(**(kw | {"prefix_cache_hit_rate": hit}))
    if not cold["infer_fits"] or cold["infer_overloaded"]:
        return
    assert warm["infer_ttft_mean_ms"] <= cold["infer_ttft_mean_ms"] * (1 + 1e-6)
    assert warm["infer_capacity_rps"] >= cold["infer_capacity_rps"] * (1 - 1e-9)


def test_batch_of_serving_scenarios_matches_one_at_a_time_with_features():
    """Every feature in one vectorised call gives the same figures as each scenario alone."""
    scenarios = [
        _scenario(model="llama-3.1-70b", speculative="mtp", spec_acceptance_rate=0.6, concurrency=32),
        _scenario(model="llama-3.1-70b", prefix_cache_hit_rate=0.4, kv_offload="host", prefix_cache_host_share=0.5),
        _scenario(gpus=16, model="llama-3.1-70b", tp=4, disaggregated=True, prefill_gpu_count=4),
        _scenario(gpu="h200-sxm", model="deepseek-v3", tp=8, ep="tp", dp_attention=True, concurrency=128),
        _scenario(model="llama-3.1-8b", length_profile="mooncake-conversation", concurrency=16),
        _scenario(gpu="h200-sxm", model="gpt-oss-120b", precision="bf16", expert_precision="fp4", tp=2),
    ]
    together = serve(Columns.from_frame(resolve(scenarios)), CAT)
    for i, s in enumerate(scenarios):
        alone = _run(s)
        for key in ("infer_tp", "infer_tpot_ms", "infer_ttft_p99_ms", "infer_capacity_rps", "infer_max_batch"):
            a, b = together[key][i], alone[key]
            assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, rel=1e-9), (i, key)
    frame = pl.DataFrame({k: v for k, v in together.items() if v.dtype.kind == "f"})
    assert frame.height == len(scenarios)


def test_serving_regimes_name_generation_kind_and_features():
    from whatif.engine.serving.regimes import serving_groups

    s = _scenario(gpu="h200-sxm", model="deepseek-v3", speculative="mtp", spec_acceptance_rate=0.7, output_tokens_cv=1)
    assert serving_groups(s, CAT) == {
        "generation": "NVIDIA Hopper",
        "kind": "MoE",
        "feature": "speculative+length spread",
    }
    assert serving_groups(_scenario(model="llama-3.1-8b"), CAT)["feature"] == "plain"
