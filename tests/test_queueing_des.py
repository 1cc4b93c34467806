"""The closed-form serving latency (engine/serving/queueing.py) against a seeded discrete-event simulation of the same
system (tests/des.py): medians and p99s of TTFT and TPOT within 15% at utilizations 0.3, 0.5 and 0.8.

The replica is an H100-class 70B TP2 replica written out by hand (seconds): weights stream in 13 ms; GEMMs
cost 0.06 ms per decoding token and 0.055 ms per prompt token plus 128 tokens' worth (7.04 ms) of wave
quantization; KV reads 0.04 ms per sequence, prompt attention 0.002 ms per token; 3 ms of all-reduce
latency per iteration.
"""

import math

import numpy as np
import pytest
from des import simulate
from whatif.engine.serving.queueing import Load, StepModel, latency, saturation

STEP = dict(w_dense=0.013, g_n=0.06e-3, g_k=0.055e-3, g0=0.055e-3 * 128, a_n=0.04e-3, a_k=0.002e-3, c0=0.003)


def _model():
    fields = STEP | dict(w_expert=0.0, topk_frac=1.0, micro=1.0, tok_n=1.0, g_e=0.0)
    return StepModel(**{k: np.array([float(v)]) for k, v in fields.items()})


def _step(n, k, c=STEP):
    """The same iteration time as StepModel.time, in plain floats (the simulation calls it ~100k times)."""
    return max(c["w_dense"], c["g_n"] * n + c["g_k"] * k + c["g0"]) + c["a_n"] * n + c["a_k"] * k + c["c0"]


CONFIGS = {
    # prompt, output, prompt tokens per iteration, slots, simulated requests
    "mixed batching, prompts fit one iteration": (512, 128, 2048, 256, 20000),
    "long prompts chunked over four iterations": (2048, 128, 512, 256, 20000),
    "whole prompts (no chunking), long outputs": (1024, 256, math.inf, 512, 20000),
    "eight slots (waiting for a slot)": (256, 128, 2048, 8, 20000),
}


# The quick tier simulates two of them (one without and one with waiting for a slot), near saturation:
# light loads need the longest simulations (few requests wait).
QUICK_CONFIGS = ("mixed batching, prompts fit one iteration", "eight slots (waiting for a slot)")


@pytest.mark.parametrize(
    "rho", [pytest.param(0.3, marks=pytest.mark.slow), pytest.param(0.5, marks=pytest.mark.slow), 0.8]
)
@pytest.mark.parametrize(
    "config", [c if c in QUICK_CONFIGS else pytest.param(c, marks=pytest.mark.slow) for c in CONFIGS]
)
def test_closed_form_matches_simulation(config, rho):
    prompt, output, chunk, slots, requests = CONFIGS[config]
    arr = lambda x: np.array([float(x)])  # noqa: E731
    step = _model()
    lam = rho * saturation(step, Load(arr(1.0), arr(prompt), arr(output), arr(chunk), arr(slots)))["lam"][0]
    lat = latency(step, Load(arr(lam), arr(prompt), arr(output), arr(chunk), arr(slots)))
    ttft, tpot, _ = simulate(_step, lam, prompt, output, chunk, slots, requests, seed=0)
    predicted = {
        "TTFT p50": lat.ttft_quantile(0.5)[0],
        "TTFT p99": lat.ttft_quantile(0.99)[0],
        "TPOT p50": lat.tpot_quantile(0.5)[0],
        "TPOT p99": lat.tpot_quantile(0.99)[0],
    }
    simulated = {
        "TTFT p50": np.percentile(ttft, 50),
        "TTFT p99": np.percentile(ttft, 99),
        "TPOT p50": np.percentile(tpot, 50),
        "TPOT p99": np.percentile(tpot, 99),
    }
    for key, value in predicted.items():
        assert abs(value / simulated[key] - 1.0) <= 0.15, (key, value, simulated[key])


@pytest.mark.slow  # two simulations of 20,000 requests
def test_simulation_is_seeded_and_quick():
    import time

    start = time.perf_counter()
    a = simulate(_step, 10.0, 512, 128, 2048, 256, 20000, seed=3)
    elapsed = time.perf_counter() - start
    b = simulate(_step, 10.0, 512, 128, 2048, 256, 20000, seed=3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert elapsed < 1.0


def test_busy_share_matches_simulation_at_light_load():
    """An arrival finds the replica empty with the M/G/inf probability exp(-lam * time in system)."""
    arr = lambda x: np.array([float(x)])  # noqa: E731
    step = _model()
    lam = 0.5
    lat = latency(step, Load(arr(lam), arr(256), arr(64), arr(2048), arr(8)))
    _, _, busy = simulate(_step, lam, 256, 64, 2048, 8, 3000, seed=1)
    assert abs((1 - lat.p_idle[0]) - busy) < 0.05
