"""Properties of power by activity and of cost that must hold for any scenario (hypothesis)."""

import numpy as np
from goodput_helpers import rows, scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiers import examples
from whatif.engine import load_catalog
from whatif.engine.columns import Columns
from whatif.engine.energy import gpu_power_w

SETTINGS = settings(
    max_examples=examples(int(__import__("os").environ.get("WHATIF_HYPOTHESIS_EXAMPLES", "30"))),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CAT = load_catalog()
gpus = st.sampled_from(["h100-sxm", "a100-sxm-80gb", "b200", "h200-sxm", "mi300x"])
caps = st.one_of(st.none(), st.floats(min_value=150.0, max_value=1400.0))


def _text(gpu, nodes, cap=None, cost=None):
    return scenario(
        {},
        cluster={"gpu": gpu, "gpu_count": 8 * nodes, "power_cap_w": cap},
        facility=cost or {},
        training={
            "model": "llama-3.1-8b",
            "train_tokens": 2e10,
            "seq_len_tokens": 4096,
            "global_batch_seqs": 512,
            "recompute": "selective",
            "parallelism": {"tp": 2, "pp": 1, "microbatch": 1, "zero": 1},
        },
    )


@SETTINGS
@given(
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=50.0, max_value=1500.0),
    st.floats(min_value=0.1, max_value=1.5),
)
def test_compute_power_never_falls_with_utilisation_nor_exceeds_the_limit(u1, u2, tdp, cap_share):
    lo, hi = sorted((u1, u2))
    cap = min(tdp, tdp * cap_share)
    c = Columns(
        {
            "tdp_w": np.array([tdp, tdp]),
            "idle_w": np.array([0.1 * tdp] * 2),
            "power_cap_w_eff": np.array([cap] * 2),
            "is_cpu": np.zeros(2),
        },
        2,
    )
    compute, wait, idle = gpu_power_w(c, CAT, np.array([lo, hi]))
    assert compute[1] >= compute[0]
    assert (compute <= cap + 1e-9).all() and (wait <= cap + 1e-9).all() and (idle <= cap + 1e-9).all()
    assert (compute >= wait - 1e-9).all() or cap < 0.58 * tdp


@SETTINGS
@given(gpus, st.sampled_from([2, 4, 8, 16]), st.sampled_from([256, 512, 1024]), st.sampled_from([2, 4]))
def test_more_mfu_never_lowers_power_per_gpu(gpu, nodes, batch, factor):
    # A larger global batch on the same pipeline plan shrinks the bubble's share: MFU rises and the GPUs wait
    # less, so the step's power per GPU (the steady state MFU describes) never falls; with no failures or
    # checkpoints the whole run's average is the step's. (MFU gained by shortening the compute itself, e.g. less
    # SM contention from overlapped NCCL kernels, shortens the time at full power: energy per step falls more.)
    quiet = {"reliability": {"interruptions": False}, "storage": {"checkpoint_mode": "none"}}

    def run(b):
        return scenario(
            quiet,
            cluster={"gpu": gpu, "gpu_count": 8 * nodes},
            training={
                "model": "llama-3.1-8b",
                "train_tokens": 2e10,
                "seq_len_tokens": 4096,
                "global_batch_seqs": b,
                "recompute": "selective",
                "parallelism": {"tp": 2, "pp": 4, "microbatch": 1, "zero": 1},
            },
        )

    small, big = rows(run(batch), run(batch * factor))
    assert big["train_mfu"] >= small["train_mfu"] * (1 - 1e-12)
    assert big["train_gpu_step_w"] >= small["train_gpu_step_w"] * (1 - 1e-12)
    assert big["train_gpu_avg_w"] >= small["train_gpu_avg_w"] * (1 - 1e-9)


@SETTINGS
@given(gpus, st.sampled_from([1, 4, 16]), caps)
def test_gpu_power_is_never_above_tdp_or_the_cap(gpu, nodes, cap):
    (r,) = rows(_text(gpu, nodes, cap=cap))
    limit = min(CAT.accelerators[gpu].tdp_w, cap or np.inf)
    for key in ("train_gpu_avg_w", "train_gpu_compute_w", "train_gpu_wait_w"):
        assert r[key] <= limit + 1e-9, key
    assert r["train_node_peak_kw"] * 1000 >= 8 * r["train_gpu_compute_w"]


@SETTINGS
@given(
    gpus,
    caps,
    st.sampled_from([(8192, 16), (2048, 256), (128, 2048)]),
    st.sampled_from([1, 16, 256]),
)
def test_serving_power_is_never_above_tdp_or_the_cap(gpu, cap, lengths, concurrency):
    # Prompt-heavy to decode-heavy mixes, one to many requests in flight: a serving GPU never draws more than
    # min(TDP, cap) while it runs, nor less than idle on average.
    prompt, output = lengths
    s = scenario(
        {},
        cluster={"gpu": gpu, "gpu_count": 8, "power_cap_w": cap},
        inference={
            "model": "llama-3.1-8b",
            "precision": "bf16",
            "prompt_tokens": prompt,
            "output_tokens": output,
            "concurrency": concurrency,
            "request_rate_per_s": 0.0,
        },
    )
    (r,) = rows(s)
    a = CAT.accelerators[gpu]
    limit = min(a.tdp_w, cap or np.inf)
    assert r["infer_gpu_run_power_w"] <= limit + 1e-9
    assert min(a.idle_w, limit) - 1e-9 <= r["infer_gpu_power_w"] <= r["infer_gpu_run_power_w"] + 1e-9


@SETTINGS
@given(gpus, st.sampled_from([1, 4, 16]), st.sampled_from(["rental", "owned"]))
def test_zero_prices_leave_only_electricity_when_owned(gpu, nodes, model):
    free = {"cost_model": model, "usd_per_gpu_hour": 0.0, "server_usd_per_gpu": 0.0, "facility_usd_per_kw_month": 0.0}
    (r,) = rows(_text(gpu, nodes, cost=free))
    expected = r["train_electricity_usd"] if model == "owned" else 0.0
    assert abs(r["train_cost_usd"] - expected) <= 1e-9 * max(expected, 1.0)


@SETTINGS
@given(gpus, st.sampled_from([1, 4, 16]), st.sampled_from(["rental", "owned"]))
def test_cost_parts_sum_to_the_cost(gpu, nodes, model):
    (r,) = rows(_text(gpu, nodes, cost={"cost_model": model}))
    parts = sum(r[f"train_cost_{p}_usd"] for p in ("compute", "network", "storage", "facility", "electricity"))
    assert abs(parts - r["train_cost_usd"]) <= 1e-9 * r["train_cost_usd"]
    assert r["train_cost_usd"] > 0
