# ruff: noqa: E501, E402, B007  (a one-off generator: long prose strings, imports where each section needs them)
"""Generate the serving calibration cases (engine/calibration/cases/infer-*.toml, except the hand-written
MLPerf and TensorRT-LLM ones it only extends) from the shared reference's inference.csv and inference_more.csv.

    python scripts/gen_serving_cases.py      # from the repository root, with ../shared/reference beside it

Each case states the published configuration, what the source left open and the assumption taken."""

import csv
import math
import re
from pathlib import Path

import tomli_w

REF = Path("../shared/reference/calibration")
OUT = Path("engine/calibration/cases")
more = {r["id"]: r for r in csv.DictReader(open(REF / "inference_more.csv"))}
base = {r["id"]: r for r in csv.DictReader(open(REF / "inference.csv"))}


def alpha_from_length(L, d):
    """Per-token acceptance a with (1 - a^(d+1)) / (1 - a) = L (bisection)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        a = 0.5 * (lo + hi)
        val = (1 - a ** (d + 1)) / (1 - a) if a < 1 else d + 1
        lo, hi = (a, hi) if val < L else (lo, a)
    return round(0.5 * (lo + hi), 4)


def src(row):
    return f"{row['source']} ({row['source_locator']}); shared reference row {row['id']}"


written = []


def case(stem, rid, table, metric, value, name, description, notes, scenario, known_gap=None):
    row = table[rid]
    suffix = "" if not metric.endswith("_ms") else "-" + metric.removesuffix("_ms").upper().replace("_", "-")
    pub = {"id": rid + suffix, "metric": metric, "value": float(value), "source": src(row), "notes": notes}
    if known_gap:
        pub["known_gap"] = known_gap
    doc = {"schema_version": 1, "name": name, "description": description, "published": pub} | scenario
    path = OUT / f"infer-{stem}.toml"
    text = tomli_w.dumps(doc)
    path.write_text(text)
    written.append(path.name)


def uid(rid, metric):
    return f"{rid}:{metric}"


# --- MLPerf Inference v4.1 Server percentiles at the published rate ----------------------------------------
import tomllib

for f in sorted(OUT.glob("infer-mlperf41-*-server.toml")):
    doc = tomllib.loads(f.read_text())
    rid = doc["published"]["id"]
    row = base[rid]
    inf = dict(doc["inference"])
    inf.pop("ttft_p99_limit_ms", None)
    inf.pop("tpot_p99_limit_ms", None)
    scen = {k: v for k, v in doc.items() if k not in ("schema_version", "name", "description", "published")}
    scen["inference"] = inf
    for col, metric, label in (
        ("ttft_p50_ms", "ttft_p50_ms", "TTFT p50"),
        ("ttft_p99_ms", "ttft_p99_ms", "TTFT p99"),
        ("tpot_p50_ms", "tpot_p50_ms", "TPOT p50"),
        ("tpot_p99_ms", "tpot_p99_ms", "TPOT p99"),
    ):
        notes = (
            f"The same system and plan as {f.name} (its notes give the configuration), at the published "
            f"Server rate of {row['requests_per_s']} requests/s; the {label} MLPerf's LoadGen reports for that run. "
            'Near saturation a tail moves by several times any capacity error (docs/model.md, "Serving calibration").'
        )
        stem = f.stem.removeprefix("infer-") + "-" + metric.replace("_ms", "").replace("_", "-")
        pub_doc = {
            "schema_version": 1,
            "name": doc["name"] + f", {label}",
            "description": doc["description"],
            "published": {
                "id": rid + "-" + metric.upper().replace("_MS", ""),
                "metric": metric,
                "value": float(row[col]),
                "source": doc["published"]["source"],
                "notes": notes,
            },
        } | scen
        (OUT / f"infer-{stem}.toml").write_text(tomli_w.dumps(pub_doc))
        written.append(stem)


def cl(gpu, n, per_node=8):
    return {"gpu": gpu, "gpu_count": n, "gpus_per_node": min(per_node, n)}


# --- dstack: Llama 3.1 405B on 8x H100 (vLLM) and MI300X (vLLM ROCm), ShareGPT, all 1,000 prompts at once ----
sharegpt_cv = {"prompt_tokens_cv": 1.427, "output_tokens_cv": 0.562}
for rid, gpu, n, tp, reps, kv, chunk, seqs, label in (
    ("DSTACK-405B-8XH100-1FP8-META-QPS1000", "h100-sxm", 8, 8, 1, "bf16", 512, 512, "8x H100, Meta FP8"),
    ("DSTACK-405B-8XMI300X-1FP8-META-QPS1000", "mi300x", 8, 8, 1, "bf16", None, 1024, "8x MI300X, Meta FP8"),
    ("DSTACK-405B-8XMI300X-1FP8-AMD-QPS1000", "mi300x", 8, 8, 1, "fp8", None, 1024, "8x MI300X, AMD Quark FP8"),
    ("DSTACK-405B-4XMI300X-1FP8-AMD-QPS1000", "mi300x", 4, 4, 1, "fp8", None, 1024, "4x MI300X, AMD Quark FP8"),
    ("DSTACK-405B-8XMI300X-2FP8-AMD-QPS1000", "mi300x", 8, 4, 2, "fp8", None, 1024, "2 x 4 MI300X, AMD Quark FP8"),
):
    r = more[rid]
    out = round(float(r["output_tokens"]), 1)
    inf = {
        "model": "llama-3.1-405b",
        "precision": "fp8",
        "kv_cache_precision": kv,
        "prompt_tokens": 215,
        "output_tokens": int(round(out)),
        **sharegpt_cv,
        "concurrency": seqs,
        "request_rate_per_s": 0.0,
        "tp": tp,
        "gpu_memory_fraction": 0.9,
        "kv_admission": "paged",
        "chunked_prefill": chunk is not None,
        "prefill_chunk_tokens": chunk or 2048,
    }
    scen = {"cluster": cl(gpu, n), "inference": inf}
    notes = (
        f"{r['framework']}; {r['engine_features']}. All 1,000 ShareGPT prompts sent at once (offered 1,000 "
        f"requests/s): the engine runs its full batch (a closed loop) until the queue drains. Mean lengths "
        f"{r['input_tokens']} in / {r['output_tokens']} out (the dataset's spread: the sharegpt profile's cvs, an "
        f"assumption); vLLM's gpu_memory_utilization 0.9; KV cache in the checkpoint's dtype"
        + (" (BF16 for Meta's FP8 weights)" if kv == "bf16" else " (FP8, the Quark checkpoint's)")
        + "."
    )
    rocm = gpu == "mi300x"
    gap = (
        "a finite run, not a steady state: 1,000 requests with ShareGPT's heavy-tailed answers, so the published "
        "tokens/s (all tokens over the whole run) includes the drain, where the last long answers decode almost alone "
        "(the median TPOT of the same run implies about three times its mean batch); the model's closed loop never drains"
        + (
            "; and vLLM 0.6.3/0.6.4 on ROCm 6.2 with 15-step multi-step scheduling reaches far less of MI300X's measured "
            "ceilings (half the H100's tokens/s on a part with 1.6x its bandwidth)"
            if rocm
            else ""
        )
    )
    stem = rid.lower().replace("dstack-405b-", "dstack-405b-")
    case(
        stem + "-tps",
        rid,
        more,
        "output_tokens_per_s",
        r["throughput_output_tok_s"],
        f"dstack: Llama 3.1 405B on {label}, ShareGPT, output tokens/s",
        "dstackai/benchmarks H100 vs MI300X",
        notes,
        scen,
        gap,
    )
    if not rocm:
        for col, metric in (("tpot_p50_ms", "tpot_p50_ms"), ("tpot_p99_ms", "tpot_p99_ms")):
            case(
                stem + "-" + metric.replace("_ms", "").replace("_", "-"),
                rid,
                more,
                metric,
                r[col],
                f"dstack: Llama 3.1 405B on {label}, ShareGPT, {metric}",
                "dstackai/benchmarks H100 vs MI300X",
                notes,
                scen,
            )

# --- dstack PD-ratio: gpt-oss-120b on 8x H200, SGLang prefill/decode pools of TP2 workers, closed loop ---------
for rid, r in more.items():
    m = re.match(r"DSTACK-PDRATIO-GPTOSS120B-H200-(\d)P(\d)D-C(\d+)-(\d+)-(\d+)", rid)
    if not m:
        continue
    xp, yd, conc = int(m[1]), int(m[2]), int(m[3])
    inf = {
        "model": "gpt-oss-120b",
        "precision": "bf16",
        "expert_precision": "fp4",
        "prompt_tokens": int(round(float(r["input_tokens"]))),
        "output_tokens": int(round(float(r["output_tokens"]))),
        "concurrency": math.ceil(conc / yd),
        "request_rate_per_s": 0.0,
        "tp": 2,
        "disaggregated": True,
        "prefill_gpu_count": 2 * xp,
        "prefill_tp": 2,
        "kv_admission": "paged",
        "prefill_chunk_tokens": 8192,
    }
    scen = {"cluster": cl("h200-sxm", 8), "inference": inf}
    notes = (
        f"{r['framework']}; {r['engine_features']}. {xp} prefill and {yd} decode workers of 2 GPUs each (one node, the KV "
        f"cache over NVLink); the client keeps {conc} requests in flight (a closed loop: {conc}/{yd} per decode worker). "
        f"Lengths: the realised means ({r['input_tokens']} in, {r['output_tokens']} out: answers end at the model's "
        "end-of-sequence token before the requested length), taken as fixed. Native checkpoint: MXFP4 experts "
        "(unpacked in the kernel on H200, which has no FP4 tensor cores), BF16 attention. SGLang's default memory "
        "share and 8,192-token prefill chunks (defaults, not restated by the source)."
    )
    stem = rid.lower().removeprefix("dstack-pdratio-")
    name = f"dstack PD ratio: gpt-oss-120b on 8x H200, {xp}P{yd}D, concurrency {conc}, {m[4]}/{m[5]}"
    oss_gap = (
        "gpt-oss's MXFP4 experts on Hopper run through SGLang's dequantising MoE kernels (September 2025), for which "
        "the reference has no measurement: its prefill pools here reach about a third of the shape-curve rate (TTFT p50 "
        "near a second at 128 in flight), while the decode iterations run within about 20% of the model"
    )
    oss_latency_gap = oss_gap + (
        ". The latencies share that gap: prefill (TTFT) is slower than the model, and the decode "
        "iterations faster (TPOT p50 about 20% under); the published TPOT p99 is 1.2-1.4x its "
        "p50 in steady decode, jitter the model's longest possible iteration does not reach"
    )
    case(
        f"pd-{stem}-tps",
        rid,
        more,
        "output_tokens_per_s",
        r["throughput_output_tok_s"],
        name + ", output tokens/s",
        "dstackai/benchmarks pd_ratio",
        notes,
        scen,
        oss_gap,
    )
    if conc == 64:
        burst = (
            "a transient: the client starts all 64 of its first requests at once, so about one request in eight "
            "(64 of 500) queues behind a burst of 64 prompts; the p99 is that burst's, which a steady-state model does "
            "not have"
        )
        for metric in ("ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms", "tpot_p99_ms"):
            case(
                f"pd-{stem}-" + metric.removesuffix("_ms").replace("_", "-"),
                rid,
                more,
                metric,
                r[metric],
                name + ", " + metric,
                "dstackai/benchmarks pd_ratio",
                notes,
                scen,
                burst if metric == "ttft_p99_ms" else oss_latency_gap,
            )

# --- NVIDIA NIM: Llama 3.3 70B FP8 on 2x H100 (TP2), 5,000 / 500, fixed concurrency --------------------------------
for rid, r in more.items():
    m = re.match(r"NIM-LLAMA33-70B-2xH100-FP8-5000-500-C(\d+)", rid)
    if not m:
        continue
    conc = int(m[1])
    inf = {
        "model": "llama-3.1-70b",
        "precision": "fp8",
        "prompt_tokens": 5000,
        "output_tokens": 500,
        "concurrency": conc,
        "request_rate_per_s": 0.0,
        "tp": 2,
        "gpu_count": 2,
        "kv_admission": "reserve",
        "prefill_chunk_tokens": 8192,
    }
    scen = {"cluster": cl("h100-sxm", 8), "inference": inf}
    notes = (
        f"{r['framework']}; {r['engine_features']}. Llama 3.3 70B has Llama 3.1 70B's architecture. One TP2 replica; the "
        f"client keeps {conc} requests in flight (a closed loop); TensorRT-LLM defaults (GUARANTEED_NO_EVICT, "
        "kv_cache_free_gpu_mem_fraction 0.9, max_num_tokens 8,192). Above about 100 in flight the replica's KV cache is "
        "full and requests queue in the engine, so TTFT there includes that wait (only throughput is compared)."
    )
    stem = f"nim-llama33-70b-2xh100-fp8-5000-500-c{conc}"
    case(
        stem + "-tps",
        rid,
        more,
        "output_tokens_per_s",
        r["throughput_output_tok_s"],
        f"NVIDIA NIM: Llama 3.3 70B FP8 on 2x H100, 5000/500, concurrency {conc}, output tokens/s",
        "NIM LLM benchmarking guide",
        notes,
        scen,
    )
    if conc <= 50:
        for metric in ("ttft_mean_ms", "tpot_mean_ms"):
            case(
                stem + "-" + metric.removesuffix("_ms").replace("_", "-"),
                rid,
                more,
                metric,
                r[metric],
                f"NVIDIA NIM: Llama 3.3 70B FP8 on 2x H100, 5000/500, concurrency {conc}, {metric}",
                "NIM LLM benchmarking guide",
                notes,
                scen,
            )

# --- Mooncake: single-request TTFT of PD-disaggregated serving, by prompt length ------------------------------------
for rid, r in more.items():
    m = re.match(r"MOONCAKE-(SGL|VLLM)-PD-(QWEN3-235B-H20|QWEN3-8B-H800)-C1-(\d+)", rid)
    if not m:
        continue
    sgl = m[1] == "SGL"
    gpu, model = ("h20-3e", "qwen3-235b-a22b") if sgl else ("h800-sxm", "qwen3-8b")
    nics = 4 if sgl else 8
    inf = {
        "model": model,
        "precision": "bf16",
        "prompt_tokens": int(m[3]),
        "output_tokens": 128,
        "concurrency": 1,
        "request_rate_per_s": 0.0,
        "tp": 8,
        "disaggregated": True,
        "prefill_gpu_count": 8,
        "prefill_tp": 8,
        "chunked_prefill": False,
        "kv_admission": "paged",
    }
    if sgl:
        inf["ep"] = "tp"
    scen = {"cluster": cl(gpu, 16), "network": {"scale_out": "roce-400g", "nics_per_node": nics}, "inference": inf}
    notes = (
        f"{r['framework']}; {r['engine_features']}. One prefill and one decode instance of TP8 on two nodes ({nics} x 400 Gb/s "
        f"RoCE each); one request at a time (a closed loop of one), so the TTFT is the prompt's prefill alone, its KV "
        f"transfer ({r['notes']}) and the engines' per-request costs."
        + (" Experts split over the 8 GPUs (SGLang's default EP for this MoE; an assumption)." if sgl else "")
    )
    stem = rid.lower().removeprefix("mooncake-")
    case(
        stem + "-ttft-mean",
        rid,
        more,
        "ttft_mean_ms",
        r["ttft_mean_ms"],
        f"Mooncake: {model} PD on 2x8 {gpu}, one request, {m[3]}-token prompt, TTFT",
        "kvcache-ai/Mooncake docs",
        notes,
        scen,
    )

# --- SGLang: DeepSeek-V3 decode on 16 H200 with MTP (65k context) ----------------------------------------------------
for rid, d, L in (
    ("SGL-DSV3-H200-16GPU-65K-BASE", 0, 1.0),
    ("SGL-DSV3-H200-16GPU-65K-MTP3", 3, 2.18),
    ("SGL-DSV3-H200-16GPU-65K-MTP4", 4, 2.44),
):
    r = more[rid]
    inf = {
        "model": "deepseek-v3",
        "precision": "fp8",
        "prompt_tokens": 65536,
        "output_tokens": 4096,
        "concurrency": 32,
        "request_rate_per_s": 0.0,
        "tp": 16,
        "ep": "tp",
        "dp_attention": True,
        "disaggregated": True,
        "prefill_gpu_count": 16,
        "prefill_tp": 16,
        "kv_admission": "paged",
    }
    if d:
        inf |= {"speculative": "mtp", "spec_draft_tokens": d, "spec_acceptance_rate": alpha_from_length(L, d)}
    scen = {"cluster": cl("h200-sxm", 32), "inference": inf}
    notes = (
        f"{r['framework']}; {r['engine_features']}. 16 decode ranks (two nodes, DP attention and experts over all 16) holding "
        "2 requests each; the figures are the decode ranks' (per-rank output tokens/s), so the prompts' prefill is put on a "
        "separate pool of 16 GPUs that does not limit (an assumption: the blog measures decode nodes)."
        + (
            f" MTP: {d} drafted tokens, published mean acceptance length {L} tokens per step, i.e. a per-token acceptance "
            f"rate a with (1 - a^{d + 1}) / (1 - a) = {L} (a = {alpha_from_length(L, d)})."
            if d
            else ""
        )
    )
    stem = rid.lower().removeprefix("sgl-")
    mla65 = (
        "DeepSeek's multi-head latent attention over 65k-token contexts, with expert-parallel MoE layers across two "
        "nodes at a batch of 2 per GPU: the reference has no measurement of absorbed-MLA decode kernels at this length or "
        "of a 16-rank expert all-to-all at this size, and the model, pricing attention at FlashAttention's forward rate, "
        "decodes about twice as fast as published without MTP"
    )
    case(
        stem + "-tpot-mean",
        rid,
        more,
        "tpot_mean_ms",
        r["tpot_mean_ms"],
        f"SGLang: DeepSeek-V3 decode on 16 H200, 65k context, {'MTP' + str(d) if d else 'no MTP'}, TPOT",
        "lm-sys blog 2025-07-17 (MTP)",
        notes,
        scen,
        mla65,
    )
    case(
        stem + "-tps",
        rid,
        more,
        "decode_output_tokens_per_s_per_gpu",
        r["throughput_per_gpu_tok_s"],
        f"SGLang: DeepSeek-V3 decode on 16 H200, 65k context, {'MTP' + str(d) if d else 'no MTP'}, tokens/s per rank",
        "lm-sys blog 2025-07-17 (MTP)",
        notes,
        scen,
        mla65,
    )

# --- TensorRT-LLM: DeepSeek-R1 min-latency on 8x B200 with MTP 0-5 ----------------------------------------------------
for rid, d, L in (
    ("TRTLLM-BLOG1-DSR1-B200-MINLAT-MTP0", 0, 1.0),
    ("TRTLLM-BLOG1-DSR1-B200-MINLAT-MTP1", 1, 1.92),
    ("TRTLLM-BLOG1-DSR1-B200-MINLAT-MTP2", 2, 2.58),
    ("TRTLLM-BLOG1-DSR1-B200-MINLAT-MTP3", 3, 2.82),
    ("TRTLLM-BLOG1-DSR1-B200-MINLAT-MTP4", 4, 2.99),
    ("TRTLLM-BLOG1-DSR1-B200-MINLAT-MTP5", 5, 3.01),
):
    r = more[rid]
    inf = {
        "model": "deepseek-r1",
        "precision": "bf16",
        "expert_precision": "fp4",
        "prompt_tokens": 1024,
        "output_tokens": 2048,
        "concurrency": 1,
        "request_rate_per_s": 0.0,
        "tp": 8,
        "ep": 2,
        "kv_admission": "reserve",
    }
    if d:
        inf |= {"speculative": "mtp", "spec_draft_tokens": d, "spec_acceptance_rate": alpha_from_length(L, d)}
    scen = {"cluster": cl("b200", 8), "inference": inf}
    notes = (
        f"{r['framework']}; {r['engine_features']}. One request (batch 1) on TP8 attention with the experts in two EP groups "
        "of TP4 (the blog's TP8EP2 family), NVFP4 experts and BF16 attention."
        + (
            f" MTP: {d} drafted tokens per step, "
            f"published acceptance length {L}, per-token acceptance a = {alpha_from_length(L, d)} from (1 - a^{d + 1}) / (1 - a) = {L}."
            if d
            else ""
        )
    )
    stem = rid.lower().removeprefix("trtllm-blog1-")
    case(
        stem + "-tpot-mean",
        rid,
        more,
        "tpot_mean_ms",
        r["tpot_mean_ms"],
        f"TensorRT-LLM: DeepSeek-R1 on 8x B200, batch 1, {'MTP' + str(d) if d else 'no MTP'}, TPOT",
        "TensorRT-LLM tech blog 1",
        notes,
        scen,
    )

# --- TensorRT-LLM: DeepSeek-R1 max-throughput (attention DP, EP8) ---------------------------------------------------
for rid, gpu, prec, kv, conc, inp, frac in (
    ("TRTLLM-BP-DSR1-0528-B200-MAXTPT-FP8KV", "b200", "fp8", "fp8", 7168, 1042, 0.93),
    ("TRTLLM-BP-DSR1-B200-MAXTPT-BF16KV", "b200", "fp8", "bf16", 3072, 1024, 0.9),
    ("TRTLLM-BP-DSR1-H200-MAXTPT", "h200-sxm", "fp8", "fp8", 1024, 1024, 0.8),
):
    r = more[rid]
    inf = {
        "model": "deepseek-r1",
        "precision": prec,
        "prompt_tokens": inp,
        "output_tokens": 2048,
        "concurrency": conc,
        "request_rate_per_s": 0.0,
        "tp": 8,
        "ep": "tp",
        "dp_attention": True,
        "kv_admission": "reserve",
        "kv_cache_precision": kv,
        "kv_cache_memory_fraction": frac,
    }
    if gpu == "b200":
        inf["expert_precision"] = "fp4"
    scen = {"cluster": cl(gpu, 8), "inference": inf}
    notes = (
        f"{r['framework']}; {r['engine_features']}. {r['notes']} One replica of 8 GPUs: attention data-parallel, experts split "
        f"over all 8; {conc} requests in flight (trtllm-bench at fixed concurrency)."
        + (
            " NVIDIA's FP4 checkpoint quantizes the MoE layers to NVFP4 and keeps the rest in FP8."
            if gpu == "b200"
            else ""
        )
    )
    stem = rid.lower().removeprefix("trtllm-bp-")
    name = f"TensorRT-LLM: DeepSeek-R1 max throughput on 8x {gpu.upper()}, concurrency {conc}"
    mla_gap = (
        "DeepSeek's multi-head latent attention decoding hundreds of sequences per GPU, and expert-parallel MoE "
        "layers at that batch: the reference has no measurement of absorbed-MLA decode kernels or grouped expert GEMMs "
        "below 256 tokens per expert, and the model, pricing them at FlashAttention's forward rate and the GEMM shape "
        "curve, runs these iterations about three times faster than published (the same model at batch 1 is within 15%)"
    )
    case(
        stem + "-tps",
        rid,
        more,
        "output_tokens_per_s_per_gpu",
        r["throughput_per_gpu_tok_s"],
        name + ", tokens/s per GPU",
        "TensorRT-LLM best practices for DeepSeek-R1",
        notes,
        scen,
        mla_gap,
    )
    case(
        stem + "-tpot-mean",
        rid,
        more,
        "tpot_mean_ms",
        r["tpot_mean_ms"],
        name + ", TPOT",
        "TensorRT-LLM best practices for DeepSeek-R1",
        notes,
        scen,
        mla_gap,
    )

# --- vLLM FP8 KV cache blog: 8 concurrent 20k/2k requests on one H100 --------------------------------------------------
for rid, model, kv in (
    ("VLLMBLOG-FP8KV-Llama318B-H100-C8-BF16", "llama-3.1-8b", "bf16"),
    ("VLLMBLOG-FP8KV-Llama318B-H100-C8-FP8", "llama-3.1-8b", "fp8"),
):
    r = more[rid]
    inf = {
        "model": model,
        "precision": "bf16",
        "kv_cache_precision": kv,
        "prompt_tokens": 20000,
        "output_tokens": 2000,
        "prompt_tokens_cv": 0.087,
        "output_tokens_cv": 0.087,
        "concurrency": 8,
        "request_rate_per_s": 0.0,
        "tp": 1,
        "gpu_memory_fraction": 0.9,
        "kv_admission": "paged",
        "prefill_chunk_tokens": 8192,
    }
    scen = {"cluster": cl("h100-sxm", 1, 1), "inference": inf}
    notes = (
        f"{r['framework']}; {r['engine_features']}. 150 requests, 8 in flight (a closed loop); lengths uniform within +-15% "
        "of 20,000 / 2,000 (cv 0.15/sqrt(3) = 0.087); vLLM's defaults (gpu_memory_utilization 0.9, 8,192 batched tokens "
        "per iteration for the V1 engine on an H100, an assumption)."
    )
    stem = rid.lower().removeprefix("vllmblog-")
    name = f"vLLM: {model} BF16 on 1x H100, {kv.upper()} KV cache, 8 x 20k/2k"
    case(
        stem + "-tps",
        rid,
        more,
        "output_tokens_per_s",
        r["throughput_output_tok_s"],
        name + ", output tokens/s",
        "vLLM blog 2026-04-22 (FP8 KV)",
        notes,
        scen,
    )
    for metric in ("ttft_p50_ms", "tpot_p50_ms"):
        case(
            stem + "-" + metric.removesuffix("_ms").replace("_", "-"),
            rid,
            more,
            metric,
            r[metric],
            name + ", " + metric,
            "vLLM blog 2026-04-22 (FP8 KV)",
            notes,
            scen,
        )

# --- vLLM: single-request decode ITL against context length (the publisher's linear fits) ----------------------------
for rid, r in more.items():
    m = re.match(r"VLLMBLOG-FP8KV-FIT-(Llama318B|gpt-oss-20b)-(H100|B200)-(BF16|FP8)$", rid)
    if not m:
        continue
    model = "llama-3.1-8b" if m[1] == "Llama318B" else "gpt-oss-20b"
    gpu = "h100-sxm" if m[2] == "H100" else "b200"
    icpt = float(re.search(r"itl_fit_intercept_ms=([0-9.]+)", r["notes"])[1])
    slope = float(re.search(r"itl_fit_slope_ms_per_context_token=([0-9.e-]+)", r["notes"])[1])
    for ctx in (1024, 65536):
        inf = {
            "model": model,
            "precision": "bf16",
            "kv_cache_precision": m[3].lower(),
            "prompt_tokens": ctx,
            "output_tokens": 128,
            "concurrency": 1,
            "request_rate_per_s": 0.0,
            "tp": 1,
            "gpu_memory_fraction": 0.9,
            "kv_admission": "paged",
            "prefill_chunk_tokens": 8192,
        }
        scen = {"cluster": cl(gpu, 1, 1), "inference": inf}
        value = round(icpt + slope * ctx, 4)
        notes = (
            f"{r['framework']}; {r['engine_features']}. One request, 128 output tokens, prompts swept from 256 to 125k tokens; "
            f"the publisher fits the decode inter-token latency as {icpt} ms + {slope} ms per context token ({r['notes']}); "
            f"the figure is that fit at {ctx} tokens (derived here)."
        )
        stem = rid.lower().removeprefix("vllmblog-fp8kv-fit-") + f"-ctx{ctx}"
        case(
            "vllm-itl-" + stem,
            rid + f"-CTX{ctx}",
            {rid + f"-CTX{ctx}": r | {"id": rid}},
            "tpot_mean_ms",
            value,
            f"vLLM: {model} BF16 on 1x {m[2]}, {m[3]} KV, batch 1 at {ctx} tokens, ITL",
            "vLLM blog 2026-04-22 (FP8 KV)",
            notes,
            scen,
        )

# --- SGLang large-scale EP: DeepSeek-V3 prefill on 32 H100 (4 nodes) --------------------------------------------------
for rid, isl in (
    ("SGL-DSV3-H100-PREFILL-EP32-1000", 1000),
    ("SGL-DSV3-H100-PREFILL-EP32-2000", 2000),
    ("SGL-DSV3-H100-PREFILL-EP32-4000", 4000),
):
    r = more[rid]
    inf = {
        "model": "deepseek-v3",
        "precision": "fp8",
        "prompt_tokens": isl,
        "output_tokens": 1,
        "concurrency": 4096,
        "request_rate_per_s": 0.0,
        "tp": 32,
        "ep": "tp",
        "dp_attention": True,
        "moe_a2a_overlap": True,
        "kv_admission": "paged",
        "prefill_chunk_tokens": 16384,
    }
    scen = {"cluster": cl("h100-sxm", 32), "inference": inf}
    notes = (
        f"{r['framework']}; {r['engine_features']}. {r['notes']} The prefill nodes alone (the decode side does not limit): one "
        "output token per request, one replica of 32 GPUs over 4 nodes (InfiniBand NDR), DP attention, experts over all 32, "
        "two-batch overlap hiding the expert all-to-all; 16,384 prompt tokens per iteration per replica (an assumption)."
    )
    stem = rid.lower().removeprefix("sgl-")
    case(
        stem + "-input-tps",
        rid,
        more,
        "input_tokens_per_s_per_gpu",
        r["throughput_per_gpu_tok_s"],
        f"SGLang: DeepSeek-V3 prefill on 32 H100 (EP32), {isl}-token prompts, input tokens/s per GPU",
        "lm-sys blog 2025-05-05 (large-scale EP)",
        notes,
        scen,
    )

# --- vLLM on GB300: DeepSeek-R1-0528 NVFP4, DP2 + EP2 ----------------------------------------------------------------
for rid, out, metric in (("VLLMBLOG-GB300-DSR1-NVFP4-EP2-PREFILL", 1, "input_tokens_per_s_per_gpu"),):
    r = more[rid]
    inf = {
        "model": "deepseek-r1",
        "precision": "fp8",
        "expert_precision": "fp4",
        "prompt_tokens": 2048,
        "output_tokens": out,
        "concurrency": 4096,
        "request_rate_per_s": 0.0,
        "tp": 2,
        "ep": "tp",
        "dp_attention": True,
        "gpu_memory_fraction": 0.9,
        "kv_admission": "paged",
        "prefill_chunk_tokens": 32768,
    }
    scen = {"cluster": cl("gb300", 4, 4), "inference": dict(inf, gpu_count=2)}
    notes = (
        f"{r['framework']}; {r['engine_features']}. {r['notes']} Two GB300s, DP attention and experts over both; the peak of a "
        "concurrency sweep, taken as the batch the KV cache holds; NVIDIA's NVFP4 checkpoint (MoE layers in NVFP4, the rest "
        "FP8); vLLM's gpu_memory_utilization 0.9."
    )
    stem = rid.lower().removeprefix("vllmblog-")
    gb300 = (
        "no GB300 GEMM measurement in the reference: its NVFP4 ceiling is Blackwell Ultra's dense peak at the share B200 "
        "and GB200 reach (catalog), and this compute-bound prefill runs about a third faster in the model than published"
    )
    case(
        stem + ("-input-tps" if out == 1 else "-tps"),
        rid,
        more,
        metric,
        r["throughput_per_gpu_tok_s"],
        f"vLLM: DeepSeek-R1-0528 NVFP4 on 2x GB300, {'prefill only' if out == 1 else '2k/1k'}, tokens/s per GPU",
        "vLLM blog 2026-02-13 (GB300)",
        notes,
        scen,
        gb300,
    )

# --- vLLM on MI300X: Llama 3.1 405B BF16, ShareGPT, all at once -----------------------------------------------------
r = more["VLLMBLOG-AMD-405B-VLLM-OPT-QPS1000"]
inf = {
    "model": "llama-3.1-405b",
    "precision": "bf16",
    "length_profile": "sharegpt",
    "concurrency": 1024,
    "request_rate_per_s": 0.0,
    "tp": 8,
    "gpu_memory_fraction": 0.9,
    "kv_admission": "paged",
    "chunked_prefill": False,
}
case(
    "vllm-amd-405b-bf16-mi300x-qps1000-rps",
    "VLLMBLOG-AMD-405B-VLLM-OPT-QPS1000",
    more,
    "requests_per_s",
    r["requests_per_s"],
    "vLLM: Llama 3.1 405B BF16 on 8x MI300X, ShareGPT, requests/s",
    "vLLM blog 2024-10-23 (MI300X)",
    f"{r['framework']}; {r['engine_features']}. Offered 1,000 requests/s (all at once): the full batch until the queue drains; "
    "ShareGPT as benchmark_serving.py samples it (the sharegpt profile: 215 / 121 tokens, an assumption for this run's outputs).",
    {"cluster": cl("mi300x", 8), "inference": inf},
    "a finite run of ShareGPT prompts all sent at once, whose requests/s include the drain of the last long answers (see the "
    "dstack cases), on vLLM 0.6.2 for ROCm (October 2024) with 15-step multi-step scheduling and no chunked prefill, whose "
    "kernels reach far less of MI300X's measured BF16 ceiling than the shape curve gives",
)

print(len(written))
