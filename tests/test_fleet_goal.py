"""The fleet question (engine/serving/fleet_goal.py): sizing checked against serving's own evaluation of the
sized fleet, the reverse question against the TP search, cost by hand, and messages for input it cannot use."""

import math

import numpy as np
import pytest
from whatif.engine import Scenario, ScenarioError, evaluate, resolve
from whatif.engine.serving.fleet_goal import fleet_goal, fleet_rate


def _scenario(gpu="h100-sxm", gpus=8, **inference):
    base = {
        "model": "llama-3.1-70b",
        "precision": "fp8",
        "prompt_tokens": 1024,
        "output_tokens": 256,
        "concurrency": 256,
        "request_rate_per_s": 20.0,
        "tp": "auto",
        "ttft_p99_limit_ms": 450.0,
        "tpot_p99_limit_ms": 40.0,
    }
    return Scenario(cluster={"gpu": gpu, "gpu_count": gpus, "gpus_per_node": 8}, inference=base | inference)


def _evaluate(s: Scenario, **inference) -> dict:
    out = evaluate(resolve([s.edited("inference", **inference)]), text=False)
    return out.row(0, named=True)


def test_the_sized_fleet_meets_the_goal_and_one_replica_fewer_does_not():
    """The answer, re-evaluated as a scenario of its own (its GPU count, its TP, the goal's rate) by serving's
    ordinary evaluation, meets both p99 limits; with one replica fewer it misses one (or cannot keep up)."""
    s = _scenario()
    best = fleet_goal(s, 60.0).best.row(0, named=True)
    assert best["met"]
    tp, gpus = int(best["tp"]), int(best["gpus"])
    assert gpus == best["replicas"] * tp
    edited = s.edited("cluster", gpu_count=math.ceil(gpus / 8) * 8)
    r = _evaluate(edited, gpu_count=gpus, tp=tp, request_rate_per_s=60.0)
    assert r["infer_replicas"] == best["replicas"]
    assert r["infer_ttft_p99_ms"] <= 450.0 and r["infer_tpot_p99_ms"] <= 40.0
    fewer = _evaluate(edited, gpu_count=gpus - tp, tp=tp, request_rate_per_s=60.0)
    missed = fewer["infer_overloaded"] or fewer["infer_ttft_p99_ms"] > 450.0 or fewer["infer_tpot_p99_ms"] > 40.0
    assert missed


def test_every_meeting_candidate_is_sized_by_ceiling_of_rate_over_its_replica_rate():
    """replicas = ceil(R / the rate one replica holds within the limits); GPUs = replicas x TP x PP; the p99s at
    that fleet are within the limits."""
    c = fleet_goal(_scenario(), 45.0, gpus=["h100-sxm", "h200-sxm"]).candidates.filter("meets")
    assert c.height >= 6
    for row in c.iter_rows(named=True):
        assert row["replicas"] == math.ceil(45.0 / row["rate_per_replica_rps"])
        assert row["gpus"] == row["replicas"] * row["tp"] * row["pp"]
        assert row["ttft_p99_ms"] <= 450.0 * 1.001 and row["tpot_p99_ms"] <= 40.0 * 1.001
        assert row["utilization"] <= 1.0


def test_more_rate_never_needs_fewer_gpus():
    rates = [5.0, 20.0, 40.0, 80.0, 160.0]
    best = fleet_goal(_scenario(), rates).best.sort("goal")
    assert best["met"].all()
    gpus = best["gpus"].to_list()
    assert gpus == sorted(gpus)
    # Replicas = ceil(R / lam*): twice the rate needs twice the replicas, less at most one of ceil's rounding.
    assert 2 * gpus[3] - 2 * 8 <= gpus[4] <= 2 * gpus[3]


def test_reverse_question_matches_the_tp_search_and_holds_its_limits():
    """The rate the scenario's own 8 GPUs hold within the limits is serving's infer_slo_rps; evaluated at that
    rate the plan meets both limits."""
    s = _scenario()
    held = fleet_rate(s).row(0, named=True)
    r = _evaluate(s)
    assert held["rate_rps"] == pytest.approx(r["infer_slo_rps"], rel=1e-9)
    assert held["tp"] == r["infer_tp"]
    at = _evaluate(s, request_rate_per_s=held["rate_rps"], tp=int(held["tp"]))
    assert at["infer_ttft_p99_ms"] <= 450.0 * 1.001 and at["infer_tpot_p99_ms"] <= 40.0 * 1.001
    # The forward question at that rate needs no more than these 8 GPUs.
    assert fleet_goal(s, held["rate_rps"] * 0.999).best["gpus"][0] <= 8


def test_cost_per_million_tokens_by_hand():
    """Cost per 1M output tokens on a rental basis = GPUs x USD/GPU-hour (electricity inside the price) / output
    tokens per hour x 1e6: a price per GPU-hour higher by 2 USD adds 2 x GPUs / (R x 256 x 3,600) x 1e6 at the
    same fleet."""
    s = _scenario()
    a = fleet_goal(s, 30.0, gpu_hour_usd={"h100-sxm": 1.0}).best.row(0, named=True)
    b = fleet_goal(s, 30.0, gpu_hour_usd={"h100-sxm": 3.0}).best.row(0, named=True)
    assert (a["gpus"], a["tp"]) == (b["gpus"], b["tp"])
    added = 2.0 * a["gpus"] / (30.0 * 256 * 3600.0) * 1e6
    assert b["cost_usd_per_1m_tokens"] - a["cost_usd_per_1m_tokens"] == pytest.approx(added, rel=1e-6)
    assert a["output_tokens_per_s"] == pytest.approx(30.0 * 256)


def test_the_cheapest_gpu_type_is_chosen_and_each_type_has_its_best_plan():
    answer = fleet_goal(
        _scenario(), 50.0, gpus=["h100-sxm", "h200-sxm", "b200"], gpu_hour_usd={"h100-sxm": 2.0, "b200": 100.0}
    )
    per = {r["gpu"]: r for r in answer.per_gpu.iter_rows(named=True)}
    assert set(per) == {"h100-sxm", "h200-sxm", "b200"}
    best = answer.best.row(0, named=True)
    assert best["cost_usd_per_1m_tokens"] == min(r["cost_usd_per_1m_tokens"] for r in per.values())
    assert best["gpu"] != "b200"  # priced 50x the H100
    ranked = answer.candidates.filter("meets").sort("rank")
    assert ranked["rank"].to_list() == list(range(1, ranked.height + 1))
    assert np.all(np.diff(ranked["cost_usd_per_1m_tokens"].to_numpy()) >= 0)


def test_unmeetable_limits_and_unusable_parts_say_why():
    """A 5 ms p99 TTFT is below a lone 1,024-token prompt's prefill on any plan; FP4 weights on an H100 (no FP4
    tensor cores) cannot run: both are candidates that do not meet the goal, with the reason."""
    s = _scenario(gpu="b200", precision="fp4")
    answer = fleet_goal(s, 10.0, ttft_p99_ms=[450.0, 5.0], gpus=["b200", "h100-sxm"])
    c = answer.candidates
    h100 = c.filter(c["gpu"] == "h100-sxm")
    assert not h100["meets"].any() and all("fp4" in w for w in h100["why_not"])
    tight = c.filter((c["goal"] == 1) & (c["gpu"] == "b200"))
    assert not tight["meets"].any()
    assert all("TTFT above the limit even unloaded" in w for w in tight["why_not"] if "memory" not in w)
    assert (tight["ttft_p99_ms"].drop_nulls() > 5.0).all()
    assert answer.best.filter(answer.best["goal"] == 1)["met"].to_list() == [False]
    assert answer.best.filter(answer.best["goal"] == 0)["met"].to_list() == [True]


def test_disaggregated_goal_sizes_both_pools():
    """Prefill and decode pools are sized on their own: ceil(R / prefill rate) prefill replicas, ceil(R / decode
    rate) decode replicas; the sized fleet's TTFT (prefill, KV transfer, slot wait) meets the limit."""
    s = _scenario(gpus=16, disaggregated=True, prefill_gpu_count=8, tp=4, prefill_tp=4, ttft_p99_limit_ms=800.0)
    c = fleet_goal(s, 30.0).candidates.filter("meets")
    assert c.height == 1
    row = c.row(0, named=True)
    assert row["prefill_replicas"] == math.ceil(30.0 / row["prefill_rate_per_replica_rps"])
    assert row["replicas"] == math.ceil(30.0 / row["rate_per_replica_rps"])
    assert row["gpus"] == 4 * (row["replicas"] + row["prefill_replicas"])
    assert row["ttft_p99_ms"] <= 800.0 and row["tpot_p99_ms"] <= 40.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rate_rps": 0.0}, "rate_rps"),
        ({"rate_rps": [1.0, -2.0]}, "rate_rps"),
        ({"rate_rps": 5.0, "gpus": ["h100-sxn"]}, "gpus"),
        ({"rate_rps": 5.0, "ttft_p99_ms": -1.0}, "ttft_p99_ms"),
        ({"rate_rps": [1.0, 2.0], "ttft_p99_ms": [1.0, 2.0, 3.0]}, "rate_rps"),
        ({"rate_rps": 5.0, "gpu_hour_usd": {"h100-sxm": -1.0}}, "gpu_hour_usd.h100-sxm"),
    ],
)
def test_bad_input_names_its_argument(kwargs, field):
    with pytest.raises(ScenarioError) as err:
        fleet_goal(_scenario(), **kwargs)
    assert err.value.issues[0].key == field
    assert "allowed" in str(err.value) or "close matches" in str(err.value)


def test_a_goal_needs_a_latency_limit_and_a_serving_workload():
    s = _scenario(ttft_p99_limit_ms=None, tpot_p99_limit_ms=None)
    with pytest.raises(ScenarioError, match="latency limit"):
        fleet_goal(s, 5.0)
    with pytest.raises(ScenarioError, match="latency limit"):
        fleet_rate(s)
    with pytest.raises(ScenarioError, match="inference"):
        fleet_goal(Scenario(), 5.0, ttft_p99_ms=100.0)
    # A limit given to the function suffices.
    assert fleet_goal(s, 5.0, tpot_p99_ms=40.0).best["met"][0]
