"""The training model against hand calculations written out here (formulas in docs/model.md)."""

import pytest
from whatif.engine import Scenario, evaluate, load_catalog, resolve
from whatif.engine.report import records

GIB = 2**30
CAT = load_catalog()


def scenario(gpu="h100-sxm", n=64, model="llama-3.1-70b", plan="auto", **training):
    t = {
        "model": model,
        "train_tokens": 1e12,
        "seq_len_tokens": 8192,
        "global_batch_seqs": 64,
        "parallelism": plan,
    } | training
    return Scenario.model_validate({"name": "t", "cluster": {"gpu": gpu, "gpu_count": n}, "training": t})


def train(*scenarios):
    res = evaluate(resolve(scenarios))
    return [r["training"] for r in records(res, [True] * len(scenarios), [False] * len(scenarios))]


def test_model_flops_per_token_is_6n_plus_attention():
    # GPT-3 175B at 2,048 tokens: 6 x 175e9 + 12 x 96 layers x 2,048 x 12,288 = 1.0790e12 FLOPs per token.
    (t,) = train(
        scenario(
            gpu="h100-sxm",
            n=512,
            model="gpt-3-175b",
            seq_len_tokens=2048,
            global_batch_seqs=512,
            plan={"tp": 8, "pp": 8, "microbatch": 1, "zero": 1},
        )
    )
    expected_per_token = 6 * 175e9 + 12 * 96 * 2048 * 12288
    assert expected_per_token == pytest.approx(1.0790e12, rel=1e-4)
    achieved = t["mfu"] * 512 * 989.4e12  # MFU x GPUs x BF16 peak = model FLOP/s
    assert achieved / t["tokens_per_s"] == pytest.approx(expected_per_token, rel=1e-9)


def test_optimizer_state_memory_by_zero_stage():
    # Llama 2 7B (6.74e9 parameters, 32 layers) on 8 GPUs, one replica per GPU (TP1 PP1 DP8). ZeRO paper: 2 bytes
    # of weights, 2 of gradients, 12 of Adam state per parameter; ZeRO-1 shards the 12, ZeRO-2 also the 2 of
    # gradients, ZeRO-3 everything, and then holds two layers' weights gathered (the one computing and the next
    # one prefetched): 2 x 6.74e9 / 32 x 2 bytes.
    p = 6.74e9
    gathered = 2 * p / 32 * 2 / GIB
    expected = {  # (weights, gradients, optimizer) in GiB
        0: (2 * p / GIB, 2 * p / GIB, 12 * p / GIB),
        1: (2 * p / GIB, 2 * p / GIB, 12 * p / 8 / GIB),
        2: (2 * p / GIB, 2 * p / 8 / GIB, 12 * p / 8 / GIB),
        3: (2 * p / 8 / GIB + gathered, 2 * p / 8 / GIB, 12 * p / 8 / GIB),
    }
    runs = train(
        *[
            scenario(
                gpu="h200-sxm",
                n=8,
                model="llama-2-7b",
                seq_len_tokens=4096,
                global_batch_seqs=8,
                plan={"tp": 1, "pp": 1, "microbatch": 1, "zero": z},
                recompute="full",
            )
            for z in range(4)
        ]
    )
    for z, t in enumerate(runs):
        mem = t["memory_gb"]
        assert (mem["weights"], mem["gradients"], mem["optimizer"]) == pytest.approx(expected[z], rel=1e-9)
    assert expected[0][2] == pytest.approx(75.3, abs=0.1)  # 12 x 6.74e9 B = 75.3 GiB of Adam state unsharded


def test_plan_that_does_not_fit_says_how_much_it_needs():
    # Llama 3.1 70B unsharded on one 8-GPU node: 16 bytes x 70.6e9 / 8 (TP8) = 131.5 GiB of states alone.
    (t,) = train(
        scenario(n=8, plan={"tp": 8, "pp": 1, "zero": 0, "microbatch": 1}, global_batch_seqs=8, recompute="full")
    )
    states = 16 * 70.6e9 / 8 / GIB
    assert states == pytest.approx(131.5, abs=0.1)
    assert t["fits"] is False and t["memory_gb"]["total"] > states
    assert t["reason"] == f"needs {t['memory_gb']['total']:.1f} GB per GPU, has 80.0 GB"


def test_explicit_plan_is_honoured():
    plan = {"tp": 4, "pp": 2, "dp": 8, "microbatch": 2, "zero": 1, "interleave": 2}
    (t,) = train(scenario(plan=plan, recompute="selective"))
    assert {k: t["plan"][k] for k in plan} == plan and t["plan"]["recompute"] == "selective"


def test_explicit_plan_that_cannot_divide_the_gpus_uses_fewer_and_says_so():
    # TP8 x PP3 = 24 GPUs per replica: 64 GPUs hold two replicas (48 GPUs), 16 stay idle, and the result says so.
    (t,) = train(scenario(n=64, plan={"tp": 8, "pp": 3}))
    assert t["fits"] and t["plan"]["dp"] == 2 and t["plan"]["gpus_used"] == 48
    assert "48 of 64 GPUs" in t["plan"]["note"]
    assert t["idle_breakdown_pct"]["unused_gpus"] == pytest.approx(16 / 64 * 100, rel=1e-9)


def test_auto_plan_is_the_fastest_that_fits():
    auto, *explicit = train(
        scenario(),
        *[
            scenario(plan={"tp": tp, "pp": pp, "microbatch": 1, "zero": 1}, recompute=rc)
            for tp, pp, rc in ((8, 1, "full"), (4, 2, "selective"), (8, 2, "none"), (2, 4, "full"))
        ],
    )
    assert auto["fits"]
    for t in explicit:
        if t["fits"]:
            assert auto["step_time_s"] <= t["step_time_s"] * (1 + 1e-12)


def test_tensor_parallel_time_per_step():
    # Llama 3.1 70B, 8,192-token micro-batch, TP8 on NVLink 4 without overlap, sequence parallelism. Per layer
    # and micro-batch 8 all-gathers / reduce-scatters of T x h x 2 bytes = 134.2 MB, plus 2 for the embedding
    # and logits. NCCL ring, Simple protocol, 8 ranks: 8.4 + 7 x 3.4 us + 7/8 x S / (450 GB/s x 0.82 measured
    # bus bandwidth) = 350.5 us. DP = 64/8 = 8, 64 sequences -> 8 micro-batches per step.
    S = 8192 * 8192 * 2
    half = 8.4e-6 + 7 * 3.4e-6 + 7 / 8 * S / (450e9 * 0.82)
    assert half == pytest.approx(350.5e-6, rel=1e-3)
    (t,) = train(scenario(plan={"tp": 8, "pp": 1, "microbatch": 1, "zero": 1}, tp_comm_overlap=False, recompute="none"))
    assert t["step_breakdown_s"]["tensor_parallel"] == pytest.approx(8 * (80 * 8 + 2) * half, rel=1e-9)


def test_pipeline_bubble_is_p_minus_1_over_m_v():
    # Narayanan et al. 2021: bubble = (p - 1) / (m x v) of the ideal pipeline time (m micro-batches of one
    # stage's compute and exposed communication).
    (t,) = train(
        scenario(
            n=64,
            global_batch_seqs=128,
            plan={"tp": 8, "pp": 4, "microbatch": 1, "zero": 1, "interleave": 2},
            recompute="full",
        )
    )
    b = t["step_breakdown_s"]
    m = 128 / (64 / 32)  # 2 replicas -> 64 micro-batches each
    contention = CAT.fitted["comm_sm_share"].value  # NCCL's SM share of hidden communication is not bubble
    assert t["plan"]["micro_batches"] == m
    ideal = b["compute"] + b["tensor_parallel"] + b["context_parallel"] + b["expert_parallel"] + b["pipeline_p2p"]
    ratio = b["pipeline_bubble"] / ideal
    assert ratio <= (4 - 1) / (m * 2) * (1 + 1e-9)
    assert ratio == pytest.approx((4 - 1) / (m * 2), rel=contention)


def test_recompute_costs_one_forward_pass():
    # Full recomputation adds a forward pass: hardware FLOPs per token grow by 2N + 4*L*s*h over 6N + 12*L*s*h.
    none, full = train(
        scenario(plan={"tp": 8, "pp": 1, "microbatch": 1, "zero": 1}, recompute="none"),
        scenario(plan={"tp": 8, "pp": 1, "microbatch": 1, "zero": 1}, recompute="full"),
    )
    assert full["hfu"] / full["mfu"] > 1.2 and none["hfu"] == pytest.approx(none["mfu"])
    assert full["memory_gb"]["activations"] < none["memory_gb"]["activations"] / 5


def test_moe_uses_active_parameters_for_compute():
    # Mixtral 8x7B: 12.9B of 46.7B parameters are active per token (Jiang et al. 2024); the untied input
    # table (32,000 x 4,096) is a lookup, not FLOPs (PaLM's definition, appendix B).
    (t,) = train(scenario(n=64, model="mixtral-8x7b", seq_len_tokens=4096))
    per_token = t["mfu"] * 64 * 989.4e12 / t["tokens_per_s"]
    assert per_token == pytest.approx(6 * (12.9e9 - 32000 * 4096) + 12 * 32 * 4096 * 4096, rel=1e-9)


def test_batch_equals_one_at_a_time():
    # The vectorized engine gives each scenario the result it gets alone.
    batch = [scenario(n=n, model=m) for n in (64, 256) for m in ("llama-3.1-8b", "llama-3.1-70b")]
    together = evaluate(resolve(batch))
    for i, s in enumerate(batch):
        alone = evaluate(resolve([s]))
        for col in ("train_step_time_s", "train_mfu", "train_mem_gb", "train_energy_mwh", "train_tp", "train_pp"):
            assert together[col][i] == alone[col][0], (i, col)


def test_slices_on_the_thread_pool_give_the_serial_results(monkeypatch):
    # Large training frames are evaluated in one slice per core, on threads: the same figures, the same
    # columns in the same order (explicit and searched plans, transformer and sample workloads). A frame with
    # a serving row stays whole (its latency-limit search resolution depends on the rows searched together).
    import importlib

    from whatif.tui import files

    ev = importlib.import_module("whatif.engine.evaluate")  # the module (the package exports the function)
    explicit = {"tp": 8, "pp": 1, "microbatch": 1, "zero": 1, "interleave": 1}
    rows = [scenario(n=n, model=m) for n in (64, 256) for m in ("llama-3.1-8b", "llama-3.1-70b")]
    rows += [scenario(n=n, model=m, plan=explicit, recompute="selective") for n in (64, 512)
             for m in ("llama-3.1-8b", "llama-3.1-70b")]  # fmt: skip
    shipped = files.shipped_presets()
    for key in ("default", "vision-resnet50-b200-cpu-starved"):
        rows.append(files.load_scenario(shipped[key]).model_copy(update={"inference": None}))
    frame = resolve(rows * 2)
    serial = evaluate(frame)
    monkeypatch.setattr(ev, "PARALLEL_MIN_ROWS", 2)
    monkeypatch.setattr(ev, "_cores", lambda: 7)  # slices of 3 rows
    assert ev._work_rows(frame) > 2
    pooled = evaluate(frame)
    assert pooled.columns == serial.columns
    assert pooled.equals(serial, null_equal=True)
    serving = resolve([files.load_scenario(shipped["serve-llama70b-8xh100"]), *rows])
    assert ev._work_rows(serving) == 0


def test_a100_megatron_run_within_ten_percent_of_published():
    # Megatron-LM SC21 Table 1: GPT 145.6B on 1,536 A100 (TP8 PP8 DP24) reached 148 TFLOP/s per GPU.
    from whatif.tui.files import calibration_cases

    ((case, s),) = [(c, s) for c, s in calibration_cases() if c.id == "PAPER-MEGATRON-SC21-145.6B"]
    (t,) = train(s)
    assert t["tflops_per_gpu"] == pytest.approx(148, rel=0.10)
