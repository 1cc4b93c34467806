"""The serving model: figures worked out by hand from published facts, and physical properties (hypothesis)."""

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiers import examples
from whatif.engine import Scenario, evaluate, load_catalog, resolve
from whatif.engine.columns import Columns
from whatif.engine.report import records
from whatif.engine.serving import serve

GIB = 2.0**30


def _scenario(gpu="h100-sxm", gpus=8, per_node=8, **inference):
    return Scenario(cluster={"gpu": gpu, "gpu_count": gpus, "gpus_per_node": per_node}, inference=inference)


def _serve(frame: pl.DataFrame) -> dict:
    return serve(Columns.from_frame(frame), load_catalog())


def _one(**kw) -> dict:
    out = _serve(resolve([_scenario(**kw)]))
    return {k: v[0] for k, v in out.items()}


# --- worked examples -----------------------------------------------------------------------------------------


OVERHEAD_MS = load_catalog().fitted["serving_iteration_overhead_ms"].value  # the engine's CPU work (fitted)


def test_batch_one_decode_is_the_memory_bandwidth_bound():
    """Llama 3.1 8B in BF16 alone on one H100 SXM: every output token streams the linear layers and the output
    projection once, and reads its own KV cache.

    Llama 3.1 8B (config.json): 8.03e9 parameters, vocabulary 128,256, hidden 4,096, 32 layers, 8 KV heads of
    128. Input embedding and output projection: 2 x 128,256 x 4,096 = 1,050,673,152 parameters.
      streamed weights = (8.03e9 - 1,050,673,152) x 2 B + 128,256 x 4,096 x 2 B = 15,009,326,848 B
      KV cache read    = (128 + 128/2) tokens x 32 layers x 2 x 8 x 128 x 2 B  =     25,165,824 B
    H100 SXM: 3.35 TB/s (NVIDIA datasheet), of which streaming kernels reach 80% (efficiency.toml, hopper):
      15,034,492,672 B / (3.35e12 x 0.80 B/s) = 5.610 ms,
    plus each GEMM kernel's fixed cost on the BF16 shape curve (kernels.toml t_fixed 8 us) for 32 layers x 4
    kernels (fused QKV, output, gate/up, down) and the output projection: 129 x 8 us = 1.032 ms; plus the
    engine's per-iteration overhead. No 128-row padding: the GEMMs at one token, padded by the curve's d_half
    (96 tokens), take about 2 ms, under the 5.6 ms of streaming.
    (vLLM measures 6.44 ms at short context on this part: reference inference_more VLLMBLOG-FP8KV-FIT-*.)"""
    r = _one(
        gpu="h100-sxm",
        gpus=1,
        per_node=1,
        model="llama-3.1-8b",
        precision="bf16",
        prompt_tokens=128,
        output_tokens=128,
        concurrency=1,
        request_rate_per_s=0.01,
        tp=1,
    )
    expected_ms = 15_034_492_672 / (3.35e12 * 0.80) * 1e3 + 129 * 8e-3 + OVERHEAD_MS
    assert r["infer_tpot_ms"] == pytest.approx(expected_ms, rel=0.005)
    # ...and never faster than streaming the weights at the full datasheet bandwidth.
    assert r["infer_tpot_ms"] > 15_009_326_848 / 3.35e12 * 1e3
    assert r["infer_bottleneck_code"] == 0  # weight streaming (HBM)


def test_more_hbm_bandwidth_speeds_small_batch_decode():
    """Defect 2: the same batch-one decode on an H200 (4.8 TB/s) streams its 15.03 GB in 15,034,492,672 /
    (4.8e12 x 0.8) = 3.915 ms instead of 5.610 ms; with the same 1.032 ms of kernel fixed costs and the
    overhead the TPOT ratio H100 / H200 is (5.610 + 1.032 + o) / (3.915 + 1.032 + o)."""
    base = dict(gpus=1, per_node=1, model="llama-3.1-8b", precision="bf16", prompt_tokens=128, output_tokens=128)
    base |= dict(concurrency=1, request_rate_per_s=0.01, tp=1)
    h100, h200 = _one(gpu="h100-sxm", **base), _one(gpu="h200-sxm", **base)
    ratio = (5.6099 + 1.032 + OVERHEAD_MS) / (15_034_492_672 / (4.8e12 * 0.8) * 1e3 + 1.032 + OVERHEAD_MS)
    assert h100["infer_tpot_ms"] / h200["infer_tpot_ms"] == pytest.approx(ratio, rel=0.005)


def test_max_batch_is_the_kv_cache_that_fits():
    """Llama 3.1 70B in FP8 on one H200 (141 GB), 128 prompt + 2,048 output tokens, KV fraction 0.95.
    weights  = (70.6e9 - 2,101,346,304) x 1 B + 2,101,346,304 x 2 B = 72,701,346,304 B
    room     = (141 x 2^30 - 3 x 2^30 reserve - 72,701,346,304) x 0.95  = 71,700,950,574 B
    Reserving each request's whole context (TensorRT-LLM's GUARANTEED_NO_EVICT):
      KV/seq = 2,176 tokens x 80 layers x 2 x 8 x 128 x 1 B = 356,515,840 B -> floor(room / that) = 201
    Paged (vLLM): a request holds on average its prompt, half its output and half a 16-token block:
      128 + 1,024 + 8 = 1,160 tokens x 163,840 B = 190,054,400 B -> 377."""
    base = dict(gpu="h200-sxm", gpus=1, per_node=1, model="llama-3.1-70b", precision="fp8", prompt_tokens=128)
    base |= dict(output_tokens=2048, concurrency=4096, request_rate_per_s=0.0, tp=1, kv_cache_memory_fraction=0.95)
    reserve = _one(**base, kv_admission="reserve")
    assert reserve["infer_max_batch"] == 201
    assert reserve["infer_mem_weights_gb"] == pytest.approx(72_701_346_304 / GIB)
    paged = _one(**base)
    assert paged["infer_max_batch"] == 377
    assert paged["infer_capacity_tokens_per_s"] > reserve["infer_capacity_tokens_per_s"]


def test_a_model_that_does_not_fit_says_so_with_its_numbers():
    """Llama 3.1 405B in BF16 on one 80 GB H100: 405e9 x 2 B = 810e9 B = 754.4 GiB of weights, plus one
    sequence's KV cache (2,048 + 256 tokens) x 126 layers x 2 x 8 x 128 x 2 B = 1.1 GiB: 755.5 GiB needed."""
    frame = resolve([_scenario(gpu="h100-sxm", gpus=1, per_node=1, model="llama-3.1-405b", precision="bf16", tp=1)])
    row = evaluate(frame).row(0, named=True)
    assert row["infer_fits"] is False
    assert row["infer_reason"].startswith("needs 755.5 GB per GPU (weights 754.4 GB")
    assert "has 77.0 GB usable of 80.0 GB" in row["infer_reason"]
    assert row["infer_bottleneck"] == "memory capacity"
    assert row["infer_bottleneck_detail"] == f"memory capacity: {row['infer_reason']}"
    assert row["infer_ttft_ms"] is None and row["infer_tokens_per_s"] is None


def test_auto_tp_finds_a_plan_that_fits_and_counts_replicas():
    """70B in BF16 (141 GB of weights) cannot sit on one or two 80 GB GPUs; on 8 GPUs the plan is TP4 or TP8."""
    r = _one(gpu="h100-sxm", gpus=8, model="llama-3.1-70b", precision="bf16", tp="auto", request_rate_per_s=2.0)
    assert r["infer_fits"] and r["infer_tp"] in (4, 8)
    assert r["infer_replicas"] == 8 / r["infer_tp"]
    assert r["infer_plans_searched"] >= 4


def test_kv_cache_precision_option_halves_the_cache():
    base = dict(
        gpu="h100-sxm",
        gpus=1,
        per_node=1,
        model="llama-3.1-8b",
        precision="bf16",
        prompt_tokens=1024,
        output_tokens=1024,
        concurrency=4096,
        request_rate_per_s=0.0,
        tp=1,
    )
    bf16 = _one(**base, kv_cache_precision="bf16")
    fp8 = _one(**base, kv_cache_precision="fp8")
    assert fp8["infer_max_batch"] == pytest.approx(2 * bf16["infer_max_batch"], abs=1)
    assert fp8["infer_capacity_tokens_per_s"] > bf16["infer_capacity_tokens_per_s"]


def test_chunked_prefill_trades_first_token_for_smoother_decode():
    """A 4,096-token prompt in 512-token chunks needs eight iterations before its first token, while the
    decode iterations of others never carry more than 512 prompt tokens."""
    base = dict(
        gpu="h100-sxm",
        gpus=8,
        model="llama-3.1-70b",
        precision="fp8",
        prompt_tokens=4096,
        output_tokens=256,
        concurrency=256,
        request_rate_per_s=4.0,
        tp=8,
    )
    whole = _one(**base, chunked_prefill=False)
    chunked = _one(**base, chunked_prefill=True, prefill_chunk_tokens=512)
    assert chunked["infer_ttft_ms"] > whole["infer_ttft_ms"]
    assert chunked["infer_tpot_p99_ms"] < whole["infer_tpot_p99_ms"]


def test_moe_decode_streams_only_the_experts_it_touches():
    """Mixtral 8x7B (Jiang et al. 2024: 32 layers, hidden 4,096, 8 KV heads of 128, 8 experts of width 14,336,
    2 per token, vocabulary 32,000) in FP8, alone on one H100 SXM. A token streams:
      attention  32 x (4,096 x (4,096 + 2 x 1,024) + 4,096^2)      = 1,342,177,280 params x 1 B
      experts    32 x 8 x 3 x 4,096 x 14,336 x 2/8                 = 11,274,289,152 params x 1 B
      output projection 32,000 x 4,096 (16-bit)                    =    131,072,000 params x 2 B
      KV cache   (128 + 64) tokens x 32 x 2 x 8 x 128 x 1 B        =     12,582,912 B
    = 12,891,193,344 B over 3.35 TB/s x 0.80 = 4.810 ms, a quarter of streaming all 46.7B parameters; plus the
    FP8 curve's 5 us per GEMM kernel for 32 x (QKV, output, router) and 32 x 2 grouped expert GEMMs (160) and
    the BF16 output projection's 8 us: 0.808 ms; plus the overhead."""
    r = _one(
        gpu="h100-sxm",
        gpus=1,
        per_node=1,
        model="mixtral-8x7b",
        precision="fp8",
        prompt_tokens=128,
        output_tokens=128,
        concurrency=1,
        request_rate_per_s=0.01,
        tp=1,
    )
    expected = 12_891_193_344 / (3.35e12 * 0.80) * 1e3 + 0.808 + OVERHEAD_MS
    assert r["infer_tpot_ms"] == pytest.approx(expected, rel=0.003)


def test_energy_per_token_is_facility_power_over_throughput():
    """Offline on a DGX H100 (busy all the time): each GPU draws its iteration's power, between the decode
    share of TDP (0.58 x 700 W, Splitwise P005/P006) and TDP; the host parts of a DGX H100 by hand (2 x 350 W
    CPUs at half load, 32 DIMMs at 3.9375 W, 8 x 400 Gb/s compute and 800 Gb/s storage NICs at 25 W per
    400 Gb/s, 8 idle drives at 5 W, 40 W of baseboard per GPU = 1,086 W per node); fans 9.5% (air) and 96%
    supplies; PUE 1.44 (the default site)."""
    r = _one(
        gpu="h100-sxm",
        gpus=8,
        model="llama-3.1-70b",
        precision="fp8",
        prompt_tokens=1024,
        output_tokens=512,
        concurrency=512,
        request_rate_per_s=0.0,
        tp=2,
    )
    run_w = r["infer_gpu_run_power_w"]
    assert 0.58 * 700 < run_w < 700
    host = 350 + 2048 / 64 * 3.9375 + 8 * 25 + 2 * 25 + 8 * 5 + 8 * 40
    facility_w = (8 * run_w + host) / (1 - 0.095) / 0.96 * 1.44
    assert r["infer_power_kw"] == pytest.approx(facility_w / 1000, rel=1e-9)
    assert r["infer_energy_wh_per_1k_tokens"] == pytest.approx(facility_w / r["infer_tokens_per_s"] * 1000 / 3600)
    assert r["infer_idle_gpu_pct"] == pytest.approx(0.0)
    # Cost on the same basis as training: rental, AWS p5.48xlarge on-demand, $55.04 / 8 per GPU-hour
    # (reference prices.csv R001), for 8 GPUs over the tokens of an hour.
    usd_per_hour = 8 * 55.04 / 8
    assert r["infer_cost_usd_per_1m_tokens"] == pytest.approx(usd_per_hour / (r["infer_tokens_per_s"] * 3600) * 1e6)


def test_prefill_draws_more_power_than_decode():
    # Prompt-heavy iterations are compute-bound (near TDP, Splitwise P004), decode-heavy ones stream memory
    # (P006: 380 of 700 W on H100).
    common = dict(gpu="h100-sxm", gpus=8, model="llama-3.1-70b", precision="fp8", concurrency=64, tp=8)
    prompt = _one(prompt_tokens=8192, output_tokens=16, request_rate_per_s=0.0, **common)
    decode = _one(prompt_tokens=128, output_tokens=2048, request_rate_per_s=0.0, **common)
    assert prompt["infer_gpu_run_power_w"] > decode["infer_gpu_run_power_w"]
    assert prompt["infer_gpu_run_power_w"] <= 700 and decode["infer_gpu_run_power_w"] >= 0.35 * 700


def test_serving_power_by_part_by_hand():
    # One iteration's parts (physics.PARTS order): streaming 4 ms, GEMMs 0, KV reads 2 ms, prompt attention
    # 3 ms, communication 1 ms, overhead 0, drafting 1 ms on a 700 W part: the compute-bound 3 ms at the limit,
    # the other 8 ms at 0.58 x 700 = 406 W (Splitwise's decode share, P005/P006). A 500 W cap holds the compute
    # part at 500 W and leaves the 406 W parts as they are; a 300 W cap holds every part at 300 W.
    import numpy as np
    from whatif.engine.columns import Columns
    from whatif.engine.serving.physics import power_w

    parts = np.array([[4e-3] * 3, [0.0] * 3, [2e-3] * 3, [3e-3] * 3, [1e-3] * 3, [0.0] * 3, [1e-3] * 3])
    c = Columns(
        {
            "tdp_w": np.array([700.0] * 3),
            "power_cap_w_eff": np.array([700.0, 500.0, 300.0]),
            "serving_decode_power_fraction": np.array([0.58] * 3),
        },
        3,
    )
    w = power_w(c, parts)
    assert w[0] == pytest.approx((8 * 0.58 * 700 + 3 * 700) / 11)
    assert w[1] == pytest.approx((8 * 0.58 * 700 + 3 * 500) / 11)
    assert w[2] == pytest.approx(300.0)


def test_power_by_phase():
    """Defect 5 (reference power.csv, Splitwise's DGX profiling: decode 380 of 700 W on H100 and 250 of 400 W on
    A100, prefill at TDP; constants.toml serving_decode_power_fraction 0.58): a memory-bound batch-one decode
    draws 0.58 x 700 = 406 W while it runs; a prompt-only offline run (one output token, whole 8k prompts)
    near TDP; a lightly loaded fleet averages far below TDP (idle between iterations at 70 W)."""
    decode = _one(gpu="h100-sxm", gpus=1, per_node=1, model="llama-3.1-8b", precision="bf16", prompt_tokens=128,
                  output_tokens=128, concurrency=1, request_rate_per_s=0.01, tp=1)  # fmt: skip
    assert decode["infer_gpu_run_power_w"] == pytest.approx(406.0)
    assert decode["infer_gpu_power_w"] < 0.2 * 700  # idle nearly all the time at 0.01 requests/s
    prefill = _one(gpu="h100-sxm", gpus=1, per_node=1, model="llama-3.1-8b", precision="fp8", prompt_tokens=8192,
                   output_tokens=1, concurrency=64, request_rate_per_s=0.0, tp=1, chunked_prefill=False)  # fmt: skip
    assert prefill["infer_gpu_run_power_w"] > 0.9 * 700
    light = _one(gpu="h100-sxm", gpus=8, model="llama-3.1-70b", precision="fp8", tp=8, request_rate_per_s=0.5)
    assert light["infer_utilization"] < 0.3 and light["infer_gpu_power_w"] < 0.7 * 700


def test_overloaded_fleet_serves_its_capacity_and_says_so():
    frame = resolve(
        [
            _scenario(
                gpu="h100-sxm",
                gpus=8,
                model="llama-3.1-70b",
                precision="fp8",
                tp=8,
                prompt_tokens=2048,
                output_tokens=512,
                request_rate_per_s=1000.0,
            )
        ]
    )
    row = evaluate(frame).row(0, named=True)
    assert row["infer_overloaded"] is True
    assert row["infer_tokens_per_s"] == pytest.approx(row["infer_capacity_tokens_per_s"])
    assert row["infer_ttft_p99_ms"] is None
    assert row["infer_bottleneck"] == "request rate above capacity"
    # The sentence says what was asked (1,000 req/s, the input) and what the fleet holds (its capacity, as a
    # number that reads back to the capacity figure).
    import re

    said = re.fullmatch(
        r"request rate above capacity: 1000 req/s offered, ([\d.]+) req/s served at full batch",
        row["infer_bottleneck_detail"],
    )
    assert said and float(said.group(1)) == pytest.approx(row["infer_capacity_rps"], abs=0.5)


def test_latency_limits_give_the_highest_rate_within_them():
    base = dict(
        gpu="h100-sxm",
        gpus=8,
        model="llama-3.1-70b",
        precision="fp8",
        tp=2,
        prompt_tokens=1024,
        output_tokens=256,
        request_rate_per_s=5.0,
    )
    loose = _one(**base, ttft_p99_limit_ms=5000.0, tpot_p99_limit_ms=500.0)
    tight = _one(**base, ttft_p99_limit_ms=5000.0, tpot_p99_limit_ms=40.0)
    assert 0 < tight["infer_slo_rps"] < loose["infer_slo_rps"] <= loose["infer_capacity_rps"]
    at_limit = _one(**(base | {"request_rate_per_s": float(tight["infer_slo_rps"])}))
    assert at_limit["infer_tpot_p99_ms"] == pytest.approx(40.0, rel=0.02)


def test_vectorized_evaluation_matches_one_at_a_time():
    scenarios = [
        _scenario(gpu="h100-sxm", gpus=8, model="llama-3.1-70b", precision="fp8", request_rate_per_s=6.0),
        _scenario(gpu="h200-sxm", gpus=8, model="llama-3.1-70b", precision="fp8", request_rate_per_s=20.0, tp=1),
        _scenario(gpu="l40s", gpus=1, per_node=1, model="llama-3.1-8b", precision="fp8", request_rate_per_s=1.0),
        _scenario(gpu="h100-sxm", gpus=8, model="mixtral-8x7b", precision="bf16", request_rate_per_s=0.0),
    ]
    together = _serve(resolve(scenarios))
    for i, s in enumerate(scenarios):
        alone = _serve(resolve([s]))
        for key, value in alone.items():
            if np.issubdtype(np.asarray(value).dtype, np.number):
                # The latency-limit search tries more rates per pass for fewer rows (its resolution is 0.5% of
                # capacity either way); everything else is exact.
                rtol = 5e-3 if key.startswith("infer_slo") else 1e-9
                assert np.allclose(together[key][i], value[0], rtol=rtol, equal_nan=True), key


def test_an_offline_rows_figures_do_not_depend_on_the_rows_evaluated_with_it():
    # The closed loop's rate is searched together for every offline row of a frame; with 2 to 7 rates a pass it
    # stopped after 3 passes (a 1.6-3.7% bracket), so the same scenario's p99 latencies moved by up to 2.7%
    # between a frame of 1 and one of 32. Now the bracket is within 0.1% of capacity for any frame.
    s = _scenario(gpu="h100-sxm", gpus=8, model="llama-3.1-70b", precision="fp8", tp=2, request_rate_per_s=0.0)
    alone = evaluate(resolve([s])).row(0, named=True)
    for n in (9, 20, 32):
        row = evaluate(resolve([s] * n)).row(0, named=True)
        for col in ("infer_tokens_per_s", "infer_ttft_ms", "infer_ttft_p99_ms", "infer_tpot_p99_ms"):
            assert row[col] == pytest.approx(alone[col], rel=1e-3), (n, col)


def test_json_contract_has_the_issue_keys_and_no_nan():
    s = _scenario(gpu="h100-sxm", gpus=8, model="llama-3.1-70b", precision="fp8", request_rate_per_s=3.0)
    rec = records(evaluate(resolve([s])), [False], [True])[0]["inference"]
    for key in (
        "ttft_ms",
        "tpot_ms",
        "tokens_per_s",
        "ttft_p99_ms",
        "tpot_p99_ms",
        "max_batch",
        "replicas",
        "idle_gpu_pct",
        "energy_wh_per_1k_tokens",
        "cost_usd_per_1m_tokens",
        "bottleneck",
    ):
        assert rec[key] is not None, key

    def walk(x):
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, float):
            assert math.isfinite(x)

    walk(rec)


def test_serving_gpu_count_cannot_exceed_the_cluster():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Scenario(cluster={"gpu_count": 8, "gpus_per_node": 8}, inference={"gpu_count": 16})


# --- properties ----------------------------------------------------------------------------------------------

GPUS = ["h100-sxm", "h200-sxm", "a100-sxm-80gb", "mi300x", "l40s", "b200"]
MODELS = ["llama-3.1-8b", "llama-2-7b", "llama-3.1-70b", "mixtral-8x7b"]


@st.composite
def serving(draw, rate=None):
    gpu = draw(st.sampled_from(GPUS))
    precision = "bf16" if gpu == "a100-sxm-80gb" else draw(st.sampled_from(["bf16", "fp8"]))
    per_node = 1 if gpu == "l40s" else 8
    return dict(
        gpu=gpu,
        gpus=8,
        per_node=per_node,
        model=draw(st.sampled_from(MODELS)),
        precision=precision,
        prompt_tokens=draw(st.integers(16, 8192)),
        output_tokens=draw(st.integers(2, 2048)),
        concurrency=draw(st.integers(1, 1024)),
        tp=draw(st.sampled_from([1, 2, 4, 8])),
        request_rate_per_s=rate if rate is not None else draw(st.floats(0.01, 50.0)),
        chunked_prefill=draw(st.booleans()),
        prefill_chunk_tokens=draw(st.sampled_from([512, 2048, 8192])),
    )


PROPERTY = settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(serving(), st.floats(1.0, 3.0))
def test_more_hbm_bandwidth_never_raises_tpot(kw, factor):
    """Over the loads the approximation is checked for (utilization up to 0.9; offline and overloaded
    fleets report their steady full batch). The mean never rises. Percentiles come from a moment expansion:
    where faster memory shortens prompt-free iterations but not compute-bound ones (a spread that is nearly
    two-valued, e.g. a TPOT over one or two iterations), they may move by up to 3% the wrong way (1,500
    random cases: medians 0.2%, p99s 1.6% at most; hypothesis later found a p99 2.0% up, on an A100 at
    BF16 where 3x the bandwidth barely changes a compute-bound iteration)."""
    frame = resolve([_scenario(**kw)])
    base = _serve(frame)
    if not base["infer_utilization"][0] <= 0.9:
        return
    faster = _serve(frame.with_columns(pl.col("hbm_tb_s") * factor))
    for key, slack in (("infer_tpot_mean_ms", 1e-9), ("infer_tpot_ms", 0.03), ("infer_tpot_p99_ms", 0.03)):
        a, b = base[key][0], faster[key][0]
        if np.isfinite(a):
            assert b <= a * (1 + slack), (key, a, b)


@PROPERTY
@given(serving(), st.floats(0.05, 40.0), st.floats(1.0, 4.0))
def test_more_request_rate_never_lowers_p99_ttft(kw, rate, factor):
    """Up to the resolution of the merged TTFT mixture (probability bins): 0.5% (1,000 random cases: 0.02%
    at most; hypothesis later found 0.13% on a near-empty H100 fleet with 995-token prompts)."""
    low = _one(**(kw | {"request_rate_per_s": rate}))
    high = _one(**(kw | {"request_rate_per_s": rate * factor}))
    if not low["infer_fits"]:
        return
    inf = lambda x: x if np.isfinite(x) else np.inf  # noqa: E731 (no figure = unbounded queueing)
    assert inf(high["infer_ttft_p99_ms"]) >= inf(low["infer_ttft_p99_ms"]) * (1 - 5e-3)


@PROPERTY
@given(serving())
def test_batch_one_tpot_is_never_below_weights_over_tp_times_bandwidth(kw):
    kw = kw | {"concurrency": 1}
    frame = resolve([_scenario(**kw)])
    r = {k: v[0] for k, v in _serve(frame).items()}
    if not r["infer_fits"]:
        return
    c = frame.row(0, named=True)
    weights = (c["i_params_active"] - c["i_params_embed"]) * c["i_precision_bytes"]
    bound_ms = weights / (r["infer_tp"] * c["hbm_tb_s"] * 1e12) * 1e3
    assert r["infer_tpot_ms"] >= bound_ms


@PROPERTY
@given(st.lists(serving(), min_size=1, max_size=4), st.booleans())
def test_no_nan_or_infinity_in_outputs(kws, offline):
    scenarios = [_scenario(**(kw | ({"request_rate_per_s": 0.0} if offline else {}))) for kw in kws]
    result = evaluate(resolve(scenarios))
    for name, dtype in result.schema.items():
        if name.startswith("infer_") and dtype.is_float():
            col = result.get_column(name).drop_nulls().to_numpy()
            assert np.all(np.isfinite(col)), name
    for row in result.iter_rows(named=True):
        if row["infer_fits"] and not row["infer_overloaded"]:
            for key in (
                "infer_tpot_ms",
                "infer_tpot_p99_ms",
                "infer_tokens_per_s",
                "infer_energy_wh_per_1k_tokens",
                "infer_cost_usd_per_1m_tokens",
                "infer_idle_gpu_pct",
            ):
                assert row[key] is not None, key
            if not offline:
                assert row["infer_ttft_ms"] is not None
                assert row["infer_ttft_p99_ms"] >= row["infer_ttft_ms"] * (1 - 1e-9)
