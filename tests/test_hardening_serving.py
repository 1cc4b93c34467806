"""Serving figures as the load rises: TTFT finite and smooth up to the overload point, TPOT never falling
once the load exceeds capacity, and the plan search never choosing a plan that is slower by its own
measure (the mean end-to-end latency) than another it could run.

Each test walks a family of replicas (every shipped serving preset, small and large `concurrency`, chunked
and whole prompts) over utilisations from 5% to 99.5% of the replica's own capacity."""

from __future__ import annotations

import numpy as np
import pytest
import tiers
from whatif.engine import evaluate, resolve
from whatif.tui import files

SERVING = [name for name in files.shipped_presets() if name.startswith("serve-")] + ["default"]
VARIANTS = [
    {"tp": 8},
    {"tp": 8, "concurrency": 1},
    {"tp": 8, "concurrency": 4},
    {"tp": 8, "concurrency": 16},
    {"tp": 8, "chunked_prefill": False},
    {"tp": 4, "prompt_tokens": 8192, "output_tokens": 64},
]
UTILISATIONS = np.concatenate([np.linspace(0.05, 0.95, 19), np.linspace(0.955, 0.995, 9)])


def _base(name: str, variant: dict):
    s = files.load_scenario(files.shipped_presets()[name])
    gpus = s.inference.gpu_count or s.cluster.gpu_count
    tp = min(variant.get("tp", 8), gpus)
    return s.edited("inference", **(variant | {"tp": tp, "request_rate_per_s": 0.0}))


def _sweep(base, shares) -> tuple[float, list[dict]]:
    capacity = evaluate(resolve([base]))["infer_capacity_rps"][0]
    rows = evaluate(resolve([base.edited("inference", request_rate_per_s=float(u * capacity)) for u in shares]))
    return capacity, list(rows.iter_rows(named=True))


CASES = [(n, v) for n in SERVING for v in VARIANTS]
IDS = [f"{n}-{'-'.join(f'{k}{x}' for k, x in v.items())}" for n, v in CASES]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, variant", CASES, ids=[f"{n}-{'-'.join(f'{k}{v}' for k, v in v.items())}" for n, v in CASES]
)
def test_ttft_is_finite_and_smooth_up_to_the_overload_point(name, variant):
    base = _base(name, variant)
    capacity, rows = _sweep(base, UTILISATIONS)
    if capacity is None or not rows[0]["infer_fits"]:
        pytest.skip("this plan does not fit here")
    p99 = [r["infer_ttft_p99_ms"] for r in rows]
    assert all(v is not None and np.isfinite(v) for v in p99), p99
    for u1, u2, a, b in zip(UTILISATIONS, UTILISATIONS[1:], p99, p99[1:], strict=False):
        # A queue's wait grows like 1 / (1 - u) near saturation (Kingman). The p99 may rise steeply where a
        # tail (waiting for a slot) passes 1% of the requests, but never leaps: the fuzzing found thirteen
        # orders of magnitude between 94% and 96%.
        assert b <= 30.0 * (1 - u1) / (1 - u2) * a, (u1, a, u2, b)
    # Bounded by the load: within 1/(1 - u) of a lone request's whole time in the system, times a margin.
    lone = rows[0]["infer_ttft_ms"] + rows[0]["infer_tpot_ms"] * base.inference.output_tokens
    assert p99[-1] <= 100 * lone / (1 - UTILISATIONS[-1])


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, variant", CASES, ids=[f"{n}-{'-'.join(f'{k}{v}' for k, v in v.items())}" for n, v in CASES]
)
def test_tpot_never_falls_once_the_load_exceeds_capacity(name, variant):
    base = _base(name, variant)
    shares = np.concatenate([UTILISATIONS, np.linspace(0.996, 0.9995, 8), [1.001, 1.2, 3.0, 100.0]])
    capacity, rows = _sweep(base, shares)
    if capacity is None or not rows[0]["infer_fits"]:
        pytest.skip("this plan does not fit here")
    stable = [r for r, u in zip(rows, shares, strict=True) if u < 1]
    over = [r for r, u in zip(rows, shares, strict=True) if u > 1]
    assert all(r["infer_overloaded"] for r in over)
    for key in ("infer_tpot_ms", "infer_tpot_p99_ms", "infer_tpot_mean_ms"):
        highest = max(r[key] for r in stable)
        for r in over:
            assert r[key] >= highest * (1 - 1e-4), (key, r[key], highest)
        assert len({round(r[key], 9) for r in over}) == 1  # past capacity, more load changes nothing


def test_tpot_past_capacity_in_the_quick_tier():
    base = _base("default", {"tp": 8})
    capacity, rows = _sweep(base, [0.9, 0.95, 0.975, 0.99, 1.5])
    assert rows[-1]["infer_tpot_p99_ms"] >= max(r["infer_tpot_p99_ms"] for r in rows[:-1])
    assert rows[-1]["infer_tpot_ms"] >= max(r["infer_tpot_ms"] for r in rows[:-1])


def test_ttft_stays_finite_with_few_slots_near_saturation_in_the_quick_tier():
    # Four slots, 94% to 99% of capacity: where the slot wait leapt to 4e14 ms.
    base = _base("default", {"tp": 8, "concurrency": 4})
    _, rows = _sweep(base, [0.90, 0.92, 0.94, 0.96, 0.98, 0.99])
    p99 = [r["infer_ttft_p99_ms"] for r in rows]
    assert all(np.isfinite(p99)) and max(p99) < 1e7
    assert all(b / a < 3 for a, b in zip(p99, p99[1:], strict=False))


def _e2e(row: dict, output: int) -> float:
    return row["infer_ttft_mean_ms"] + (output - 1) * row["infer_tpot_mean_ms"]


@pytest.mark.parametrize("gpus", tiers.share([8, 16, 64, 128], 2))
@pytest.mark.parametrize("rate", tiers.share([1.0, 10.0, 50.0, 100.0, 150.0], 2))
def test_the_searched_serving_plan_is_never_slower_than_an_explicit_one(gpus, rate):
    s = files.load_scenario(files.shipped_presets()["default"])
    base = s.edited("inference", gpu_count=gpus, request_rate_per_s=rate)
    plans = [base.edited("inference", tp=tp) for tp in ("auto", 1, 2, 4, 8, 16, 32, 64) if tp == "auto" or tp <= gpus]
    rows = list(evaluate(resolve(plans)).iter_rows(named=True))
    auto, explicit = rows[0], rows[1:]
    keeping_up = [r for r in explicit if r["infer_fits"] and not r["infer_overloaded"]]
    if not keeping_up:
        return
    assert not auto["infer_overloaded"]
    best = min(_e2e(r, base.inference.output_tokens) for r in keeping_up)
    assert _e2e(auto, base.inference.output_tokens) <= best * (1 + 1e-9)


def test_more_serving_gpus_never_make_the_searched_plan_slower():
    s = files.load_scenario(files.shipped_presets()["default"])
    rows = list(
        evaluate(
            resolve([s.edited("inference", gpu_count=n, request_rate_per_s=100.0) for n in (64, 128, 256, 512)])
        ).iter_rows(named=True)
    )
    e2e = [_e2e(r, s.inference.output_tokens) for r in rows]
    assert all(b <= a * (1 + 1e-9) for a, b in zip(e2e, e2e[1:], strict=False)), e2e


def test_an_overloaded_fleet_with_nearly_no_tpot_spread_keeps_p99_at_or_above_p50():
    # Found by the invariant fuzz (seed 280 of a longer run): 21-token outputs, 23 slots, twice the offered
    # rate the fleet can serve. Each past-capacity percentile is searched for on its own grid, and with no
    # spread to speak of the p99's landed 0.03 ms under the median's.
    from whatif.engine import Scenario

    s = Scenario.model_validate(
        {
            "cluster": {"gpu": "h100-nvl", "gpu_count": 2704, "gpus_per_node": 4},
            "inference": {
                "model": "qwen3-235b-a22b",
                "precision": "bf16",
                "prompt_tokens": 1627,
                "output_tokens": 21,
                "concurrency": 23,
                "request_rate_per_s": 7663.8,
                "tp": "auto",
                "dp_attention": True,
            },
        }
    )
    r = evaluate(resolve([s])).row(0, named=True)
    assert r["infer_overloaded"]
    assert r["infer_tpot_p99_ms"] >= r["infer_tpot_ms"]
