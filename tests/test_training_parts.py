"""Each piece of the training step against a hand calculation written out here (docs/model.md, "Training step").

The inputs the calculations use are published facts restated in the test: H100 SXM NVLink 4 450 GB/s per direction
at the measured bus-bandwidth share 0.82 (reference kernels N-rows, catalog fabrics.toml), 8 x 400 Gb/s NDR
InfiniBand per node at 0.94, NCCL's latency constants (kernels.toml: base 8.4 us Simple / 6.6 us LL, NVLink step
3.4 / 0.6 us, network step 14 / 2.7 us), H100 HBM3 3.35 TB/s.
"""

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from whatif.engine import Scenario, kernels, load_catalog, resolve
from whatif.engine.columns import Columns
from whatif.engine.training.plans import search

CAT = load_catalog()
GIB = 2**30
NVLINK_BW = 450e9 * 0.82  # bytes/s per rank, one direction
NIC_BW = 8 * 50e9 * 0.94 / 8  # bytes/s per GPU: 8 NICs of 400 Gb/s on 8 GPUs
SIMPLE_BASE, SIMPLE_NVL, SIMPLE_NET = 8.4e-6, 3.4e-6, 14e-6
LL_BASE, LL_NVL, LL_NET = 6.6e-6, 0.6e-6, 2.7e-6


def scenario(gpu="h100-sxm", n=64, model="llama-3.1-70b", plan=None, cluster=None, **training):
    t = {
        "model": model,
        "train_tokens": 1e12,
        "seq_len_tokens": 8192,
        "global_batch_seqs": 64,
        "parallelism": plan or "auto",
    } | training
    c = {"gpu": gpu, "gpu_count": n} | (cluster or {})
    return Scenario.model_validate({"name": "t", "cluster": c, "training": t})


class Row:
    """The chosen candidate row of one scenario, every internal column as a float."""

    def __init__(self, s: Scenario):
        self._c, best, _ = search(Columns.from_frame(resolve([s])), CAT)
        self._i = int(best[0])

    def __getattr__(self, name):
        return float(np.asarray(getattr(self._c, name))[self._i])


def test_nccl_constants_are_the_ones_restated_here():
    n = CAT.kernels.nccl
    got = [n.base_us[0], n.base_us[2], n.nvlink_step_us[0], n.nvlink_step_us[2], n.net_step_us[0], n.net_step_us[2]]
    restated = [LL_BASE, SIMPLE_BASE, LL_NVL, SIMPLE_NVL, LL_NET, SIMPLE_NET]
    assert got == pytest.approx([x * 1e6 for x in restated], rel=1e-12)


def test_small_all_reduce_on_1024_gpus_takes_the_tree():
    # 8 B on 128 nodes x 8: a ring pays 2 x (1,023 - 127 NVLink steps + 127 network steps) in LL:
    # 6.6 + 2 x (896 x 0.6 + 127 x 2.7) = 1,767.6 us; the tree 2 x (7 NVLink steps + log2(128) = 7 levels):
    # 6.6 + 2 x (7 x 0.6 + 7 x 2.7) = 52.8 us. NCCL picks the tree for small all-reduces at scale.
    ring = LL_BASE + 2 * (896 * LL_NVL + 127 * LL_NET)
    tree = LL_BASE + 2 * (7 * LL_NVL + 7 * LL_NET)
    assert ring == pytest.approx(1767.6e-6) and tree == pytest.approx(52.8e-6)
    t = kernels.collective_s(CAT, "ar", 8.0, 8.0, 128.0, NVLINK_BW / 1e9, NIC_BW / 1e9)
    assert float(t) == pytest.approx(tree, rel=1e-5)  # the 16 bus bytes add 0.1 ns


def test_large_all_gather_inside_one_node_is_a_simple_ring():
    # 134.2 MB (a Llama 70B activation: 8,192 tokens x 8,192 x 2 B) gathered over 8 NVLink ranks:
    # 8.4 + 7 x 3.4 = 32.2 us of latency + 7/8 x 134.2 MB / (450 GB/s x 0.82) = 318.3 us.
    nbytes = 8192 * 8192 * 2
    expected = SIMPLE_BASE + 7 * SIMPLE_NVL + 7 / 8 * nbytes / NVLINK_BW
    assert expected == pytest.approx(350.5e-6, rel=1e-3)
    t = kernels.collective_s(CAT, "ag", nbytes, 8.0, 1.0, NVLINK_BW / 1e9, NIC_BW / 1e9)
    assert float(t) == pytest.approx(expected, rel=1e-9)


def _reference_gemms():
    with open(Path(__file__).parent / "data" / "gemm_reference.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("row", _reference_gemms(), ids=lambda r: r["id"])
def test_gemm_shape_curve_against_measured_cublaslt_sweeps(row):
    # Azure's cuBLASLt sweeps (tests/data/gemm_reference.csv, copied from ../shared/reference/kernels/gemm.csv):
    # the curve ceiling x s(M) s(N) s(K) + t_fixed must land within the worst error its basis states (18%).
    m, n, k = (float(row[x]) for x in "mnk")
    a100 = "A100" in row["hardware"]
    ceiling = 271.2e12 if a100 else 1402.6e12  # measured MAMF best shapes G002 (A100 BF16), G020 (H100 FP8)
    curve = CAT.kernels.gemm["bf16" if a100 else "fp8"]
    flops = 2 * m * n * k
    t = kernels.gemm_s(flops, m, n, k, ceiling, curve.d_half, curve.t_fixed_us * 1e-6)
    assert flops / float(t) / 1e12 == pytest.approx(float(row["tflops"]), rel=0.18)


def test_attention_curve_follows_flashattention3_sweep():
    # FA3 forward on H100, head dim 128 (A005-A010): 430.3, 517.1, 565.5, 590.2, 614.2, 620.7 TFLOP/s from 512 to
    # 16k tokens, non-causal. relative(s) is that sweep over its 8k point; causality multiplies by
    # c(s) / c(8192) with c(s) = s / (s + 640).
    measured = {512: 430.32, 1024: 517.099, 2048: 565.544, 4096: 590.233, 8192: 614.234, 16384: 620.73}
    for s, rate in measured.items():
        causal = (s / (s + 640)) / (8192 / (8192 + 640))
        got = float(kernels.attention_relative(np.array(float(s)), CAT))
        assert got == pytest.approx(rate / 614.234 * causal, rel=2e-3), s


def test_interleaved_pipeline_sends_two_per_chunk():
    # Llama 3.1 70B, TP8 PP4 DP2 on 64 H100: stages sit 16 ranks apart, so sends cross nodes. One send is a
    # micro-batch's activation split by sequence parallelism: 8,192 x 8,192 x 2 B / 8 = 16.8 MB at 47 GB/s
    # per GPU, after 8.4 + 14 us. A stage with v chunks sends 2v of them per micro-batch.
    act = 8192 * 8192 * 2 / 8
    send = SIMPLE_BASE + SIMPLE_NET + act / NIC_BW
    assert send == pytest.approx(379.4e-6, rel=1e-3)
    for v in (1, 2, 4):
        r = Row(scenario(plan={"tp": 8, "pp": 4, "dp": 2, "microbatch": 1, "zero": 1, "interleave": v}))
        assert r.pp_total_mb_s == pytest.approx(2 * v * send, rel=1e-9)
        if v > 1:  # interleaved: the transfer hides behind the next chunk, its latency does not
            assert r.pp_exposed_mb_s == pytest.approx(2 * v * (SIMPLE_BASE + SIMPLE_NET), rel=1e-9)


def test_tensor_parallel_overlap_only_inside_the_nvlink_domain():
    # TP8 fits one NVLink domain: Transformer Engine's userbuffers hide tp_overlap_fraction of it. TP16 spans
    # two nodes over the NICs and everything shows.
    hidden = CAT.fitted["tp_overlap_fraction"].value
    inside = Row(scenario(plan={"tp": 8, "pp": 1, "microbatch": 1, "zero": 1}, tp_comm_overlap=True))
    across = Row(scenario(plan={"tp": 16, "pp": 1, "microbatch": 1, "zero": 1}, tp_comm_overlap=True))
    assert inside.tp_exposed_mb_s == pytest.approx((1 - hidden) * inside.tp_total_mb_s, rel=1e-12)
    assert across.tp_exposed_mb_s == pytest.approx(across.tp_total_mb_s, rel=1e-12) and across.tp_total_mb_s > 0


def test_tensor_parallel_traffic_per_micro_batch():
    # Sequence parallelism: per layer 2 all-gathers + 2 reduce-scatters forward (attention and MLP), the same
    # again backward = 8 halves of 350.5 us each (above), plus 2 for the embedding and logits: 80 x 8 + 2 = 642.
    half = SIMPLE_BASE + 7 * SIMPLE_NVL + 7 / 8 * (8192 * 8192 * 2) / NVLINK_BW
    r = Row(scenario(plan={"tp": 8, "pp": 1, "microbatch": 1, "zero": 1}, recompute="none"))
    assert r.tp_total_mb_s == pytest.approx(642 * half, rel=1e-9)


def test_context_parallel_ring_traffic():
    # Llama 3.1 70B at 32k tokens, TP8 CP2: each CP rank holds 16,384 tokens and passes its K and V (2 x 8 KV
    # heads x 128 = 2,048 elements per token) split over the 8 TP ranks: 16,384 x 2,048 / 8 x 2 B = 8.39 MB.
    # CP ranks sit 8 apart, so on another node: 8.4 + 14 us + 8.39 MB / 47 GB/s. Per layer: cp - 1 sends forward
    # and twice that backward; at 32k tokens the attention hides them all.
    chunk = 16384 * 2048 / 8 * 2
    send = SIMPLE_BASE + SIMPLE_NET + chunk / NIC_BW
    r = Row(
        scenario(
            plan={"tp": 8, "cp": 2, "pp": 1, "microbatch": 1, "zero": 1},
            seq_len_tokens=32768,
            global_batch_seqs=16,
            recompute="none",
        )
    )
    assert r.cp_total_mb_s == pytest.approx(80 * 3 * 1 * send, rel=1e-9)
    assert r.cp_exposed_mb_s == 0.0
    assert r.Tc == 16384


def test_fsdp_exposes_the_first_gather_and_the_last_reduce_scatter():
    # Llama 3.1 8B under FSDP on 64 H100 (8 nodes), one 8,192-token sequence per micro-batch. Each of the
    # 32 layers' weights is gathered before its forward and again before its backward, and its gradients
    # reduce-scattered: 3 collectives per layer per micro-batch. When a layer's compute outlasts the next
    # layer's collectives, only the first forward gather, the first backward gather and the last
    # reduce-scatter show: exposed / total = 3 / (3 x 32).
    r = Row(scenario(n=64, model="llama-3.1-8b", plan={"tp": 1, "pp": 1, "microbatch": 1, "zero": 3}))
    m = 64 / 64  # 64 sequences on 64 replicas
    assert r.m == m
    assert r.t_dp_s == pytest.approx(r.t_dp_total_s / 32, rel=1e-9)
    # One gather: 8.03e9 parameters / 32 units x 2 B = 501.9 MB, in buckets of 4e7 x 64/40 x 2 B = 128 MB
    # (4 buckets), each a Simple ring over 64 ranks: 8.4 + (56 x 3.4 + 7 x 14) us + 63/64 x 125.5 MB /
    # min(369, 8 x 47 GB/s).
    unit = 8.03e9 / 32 * 2
    bucket = unit / 4
    one = SIMPLE_BASE + 56 * SIMPLE_NVL + 7 * SIMPLE_NET + 63 / 64 * bucket / min(NVLINK_BW, 8 * NIC_BW)
    assert r.t_dp_total_s == pytest.approx(m * 32 * 3 * 4 * one, rel=1e-6)


def test_partial_recompute_memory():
    # Llama 3.1 70B, TP8 with sequence parallelism, FlashAttention, one 8,192-token micro-batch, no pipeline.
    # Bytes stored per token and layer (Korthikanti et al. 2022 generalised to GQA and SwiGLU):
    #   attention 4h + 2 a d + 2 x KV = 32,768 + 16,384 + 4,096 = 53,248; FFN 2h + 6f = 188,416; norms 4h
    #   = 32,768: 274,432 B, / t = 34,304 B. A layer recomputed in full keeps its input, 2h / t = 2,048 B.
    # With r = 40 of 80 layers recomputed: stored 40 x 34,304 + 40 x 2,048, plus one layer's gradients and
    # the layer being rebuilt (2 x 34,304), plus the logits (16-bit and fp32: 6 B x V / t).
    h, a, d, kv, f, t, s, V = 8192, 64, 128, 2048, 28672, 8, 8192, 128256
    per_layer = (4 * h + 2 * a * d + 2 * kv + 2 * h + 6 * f + 4 * h) / t
    assert per_layer == 34304
    full = 2 * h / t
    expected = s * (40 * per_layer + 40 * full + 2 * per_layer) + s * V * 6 / t
    r = Row(scenario(n=8, plan={"tp": 8, "pp": 1, "microbatch": 1, "zero": 1}, recompute="full", recompute_layers=40))
    assert r.rcl == 40
    assert r.mem_activations_gb == pytest.approx(expected / GIB, rel=1e-9)
    assert expected / GIB == pytest.approx(12.35, abs=0.01)


def test_activation_memory_is_korthikanti_equation_for_gpt3():
    # Korthikanti et al. 2022, eq. 2: s b h (10 + 24 / t + 5 a s / (h t)) bytes per layer without sequence
    # parallelism (MHA, GeLU, dropout, attention scores stored); eq. 4 with it: s b h (34 + 5 a s / h) / t.
    h, a, s, t = 12288, 96, 2048, 8
    for sp, expected in ((False, 10 * h + 24 * h / t + 5 * a * s / t), (True, (34 * h + 5 * a * s) / t)):
        r = Row(
            scenario(
                n=64,
                model="gpt-3-175b",
                seq_len_tokens=s,
                plan={"tp": t, "pp": 8, "microbatch": 1, "zero": 1},
                attention="unfused",
                dropout=True,
                sequence_parallel=sp,
                recompute="none",
            )
        )
        assert r.act_none_b == pytest.approx(expected, rel=1e-12), sp


def test_moe_all_to_all_overlap_hides_behind_the_layer():
    # Mixtral 8x7B, EP8 across nodes (TP1, 8 experts over 64 GPUs in 8-GPU nodes at stride 1: inside one
    # node). With moe_a2a_overlap (DualPipe-style) only the part of a layer's 4 all-to-alls longer than the
    # layer's own compute shows; without it all of it does.
    base = {"tp": 1, "pp": 1, "ep": 8, "microbatch": 1, "zero": 1}
    off = Row(scenario(model="mixtral-8x7b", seq_len_tokens=4096, plan=base, moe_a2a_overlap=False))
    on = Row(scenario(model="mixtral-8x7b", seq_len_tokens=4096, plan=base, moe_a2a_overlap=True))
    per_layer = off.ep_total_mb_s / 32
    assert off.ep_exposed_mb_s == pytest.approx(off.ep_total_mb_s, rel=1e-12) and per_layer > 0
    assert on.ep_exposed_mb_s == pytest.approx(32 * max(per_layer - on.t_layer_fb_s, 0.0), rel=1e-9)


def test_fp8_dispatch_halves_the_dispatch_bytes():
    # Of a layer's 4 all-to-alls (dispatch and combine, forward and backward), FP8 dispatch sends the forward
    # dispatch at 1 B per element: volume (1 + 3 x 2) / (4 x 2) = 7/8 of BF16, less the shared latency.
    base = {"tp": 1, "pp": 1, "ep": 8, "microbatch": 1, "zero": 1}
    bf16 = Row(scenario(model="mixtral-8x7b", seq_len_tokens=4096, plan=base))
    fp8 = Row(scenario(model="mixtral-8x7b", seq_len_tokens=4096, plan=base, moe_dispatch_fp8=True))
    lat = 4 * (SIMPLE_BASE + SIMPLE_NVL) * 32
    assert (fp8.ep_total_mb_s - lat) == pytest.approx(7 / 8 * (bf16.ep_total_mb_s - lat), rel=1e-9)


def test_mfu_numerator_leaves_out_the_input_embedding():
    # Llama 3.1 8B (untied embeddings): the input table (128,256 x 4,096 = 525.3M parameters) is a lookup,
    # so model FLOPs per token = 6 (N - V h) + 12 L s h (Chowdhery et al. 2022, PaLM, appendix B, with the
    # attention term in its non-causal form as published).
    N, V, h, L, s = 8.03e9, 128256, 4096, 32, 8192
    expected = 6 * (N - V * h) + 12 * L * s * h
    r = Row(scenario(n=8, model="llama-3.1-8b", plan={"tp": 1, "pp": 1, "microbatch": 1, "zero": 1}))
    assert r.model_flops_per_token == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(57.91e9, rel=1e-3)


def test_straggler_term_grows_with_sqrt_2_ln_n():
    # Waiting on the slowest of N GPUs with per-step jitter cv: expected maximum of N normal draws ~
    # cv sqrt(2 ln N) (overheads.csv; Gumbel's bound). At 1,024 GPUs: sqrt(2 ln 1024) = 3.723.
    cv = CAT.fitted["sync_jitter_cv"].value
    r = Row(
        scenario(
            n=1024, model="llama-3.1-8b", plan={"tp": 1, "pp": 1, "microbatch": 1, "zero": 1}, global_batch_seqs=1024
        )
    )
    assert math.sqrt(2 * math.log(1024)) == pytest.approx(3.723, abs=1e-3)
    assert r.t_sync_s == pytest.approx((r.step_time_s - r.t_sync_s) * cv * math.sqrt(2 * math.log(1024)), rel=1e-9)


def test_power_cap_slows_compute_by_the_measured_exponent():
    # An H100 capped at 500 W of its 700 W runs compute-bound kernels at (500/700)^0.736 = 0.7806 of the clock
    # (constants.toml power_cap_clock_exponent, from the reference power-capping measurements).
    assert (500 / 700) ** 0.736 == pytest.approx(0.7806, abs=1e-4)
    frame = resolve([scenario(n=8, model="llama-3.1-8b", cluster={"power_cap_w": 500.0})])
    assert frame["power_clock"][0] == pytest.approx((500 / 700) ** CAT.constant("power_cap_clock_exponent"))


def test_sliding_window_keys_share():
    # A query at position i of a banded layer (window w) sees min(i, w) keys: over s = 4,096 tokens the mean is
    # w - w (w - 1) / (2 s) = 128 - 128 x 127 / 8,192 = 126.016 against the causal (s + 1) / 2 = 2,048.5: 0.061516.
    # The continuous form 2 w / s - (w / s)^2 = 0.0625 - 0.000977 = 0.061523.
    from whatif.engine.training.shape import window_keys_share

    got = window_keys_share(np.array([128.0, 4096.0, 8192.0, 0.0]), np.array(4096.0))
    assert got[0] == pytest.approx(126.016 / 2048.5, rel=2e-4)
    assert got[0] == pytest.approx(0.0625 - 1 / 1024, rel=1e-12)
    assert list(got[1:]) == [1.0, 1.0, 1.0]  # a window as long as the sequence, or none, is plain causal


GPT_OSS = {  # gpt-oss-120b (model card, arXiv 2508.10925): 36 layers, 64 q heads / 8 KV of width 64, 128 experts top-4
    "name": "gpt-oss-120b",
    "layers": 36,
    "hidden": 2880,
    "heads": 64,
    "kv_heads": 8,
    "head_dim": 64,
    "ffn_hidden": 2880,
    "vocab": 201088,
    "ffn_kind": "swiglu",
    "experts": 128,
    "experts_per_token": 4,
    "moe_layers": 36,
    "expert_ffn_hidden": 2880,
    "params_total_b": 116.8,
    "params_active_b": 5.7,
}


def _gpt_oss_rows():
    plan = {"tp": 1, "pp": 1, "ep": 8, "microbatch": 1, "zero": 1}
    kw = {"seq_len_tokens": 4096, "global_batch_seqs": 64, "recompute": "selective"}
    window = {"sliding_window_tokens": 128, "sliding_window_layers": 18}
    banded = Row(scenario(n=64, model=GPT_OSS | window, plan=plan, **kw))
    full = Row(scenario(n=64, model=GPT_OSS, plan=plan, **kw))
    return banded, full


def test_sliding_window_attention_time_and_mfu_numerator():
    # Half the layers (18 of 36) attend over a 128-token band. Their causal FLOPs shrink to 0.061523 (above) and
    # run at the rate of a 512-token sequence (the curve's shortest measurement; a 128-token band is no faster per
    # FLOP): rate(s) ~ relative(s) x s / (s + 640), relative(512) = 0.7006, relative(4096) = 0.9609, so
    # rate(4096) / rate(512) = (0.9609 x 4096 / 4736) / (0.7006 x 512 / 1152) = 2.6689. Attention time against the
    # same model without windows: 0.5 + 0.5 x 0.061523 x 2.6689 = 0.58210.
    banded, full = _gpt_oss_rows()
    assert banded.t_attn_fb_s / full.t_attn_fb_s == pytest.approx(0.5 + 0.5 * 0.061523 * 2.6689, rel=1e-3)
    # MFU numerator (attention counted in full, PaLM): a banded layer counts w = 128 keys per query instead of
    # s = 4,096: 6 x 18 x (4,096 - 128) x 64 heads x (64 + 64) fewer FLOPs per token = 3.5107e9.
    delta = 6 * 18 * (4096 - 128) * 64 * (64 + 64)
    assert full.model_flops_per_token - banded.model_flops_per_token == pytest.approx(delta, rel=1e-9)
    assert delta == pytest.approx(3.5107e9, rel=1e-4)


def test_torchtitan_per_op_selective_recompute():
    # TorchTitan's per-op policy saves every op's output except every second matmul of a block; in Llama's order
    # wq, wk, wv, wo, w1, w3, w2 it reruns wk, wo and w3. Llama 3.1 8B (h 4,096, 8 KV heads of 128, FFN 14,336,
    # 32 layers): 2 x 4,096 x (1,024 + 4,096 + 14,336) = 159.38 MFLOP per token and layer, 5.1003 GFLOP per token
    # over the 32 layers, which the HFU numerator adds on top of the norms-only policy's (no FLOPs).
    kw = {"model": "llama-3.1-8b", "plan": {"tp": 8, "pp": 1, "microbatch": 1, "zero": 1}, "recompute": "selective"}
    norms = Row(scenario(n=8, **kw))
    op = Row(scenario(n=8, selective_recompute="op", **kw))
    per_token = 2 * 4096 * (1024 + 4096 + 14336) * 32
    assert per_token == pytest.approx(5.1003e9, rel=1e-4)
    assert op.hw_flops_per_token - norms.hw_flops_per_token == pytest.approx(per_token, rel=1e-9)
    assert op.model_flops_per_token == norms.model_flops_per_token
    assert op.t_recompute_mb_s > norms.t_recompute_mb_s
    # Under TP 8 with sequence parallelism it gathers the inputs of those matmuls again (the all-gathers before
    # attention and the FFN; reduce-scatter outputs are saved): 2 more halves per layer, 32 x 8 + 2 = 258 -> 322.
    assert op.tp_total_mb_s / norms.tp_total_mb_s == pytest.approx(322 / 258, rel=1e-9)
