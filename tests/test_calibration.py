"""The model against published runs: each workload's target (docs/model.md, "Calibration"), with one set of
constants for every case."""

import pytest
from whatif.engine import evaluate, resolve
from whatif.engine.calibration import INFERENCE_METRICS, TARGETS, compare, summarize, workload_of
from whatif.tui.files import calibration_cases

MIN_CASES = {"training": 30, "inference": 30}


def _cases(workload):
    return [(c, s) for c, s in calibration_cases() if workload_of(c.metric) == workload]


@pytest.mark.parametrize("workload", ["training", "inference"])
def test_calibration_meets_the_target(workload):
    cases = _cases(workload)
    results = evaluate(resolve([s for _, s in cases]))
    summary = summarize(compare([c for c, _ in cases], results), workload)
    median, worst = TARGETS[workload]
    assert summary.n >= MIN_CASES[workload]
    assert summary.median_abs_pct <= median, summary
    assert summary.worst_abs_pct <= worst, summary


def test_every_case_has_a_source_a_positive_figure_and_reasons_for_gaps():
    for case, _ in calibration_cases():
        assert len(case.source) > 20 and case.value > 0, case.file
        assert case.known_gap == "" or len(case.known_gap) > 80, case.file


def test_serving_cases_are_throughput_figures_of_both_mlperf_scenarios_and_the_trt_llm_table():
    cases = _cases("inference")
    assert {c.metric for c, _ in cases} <= set(INFERENCE_METRICS)
    for case, scenario in cases:
        assert scenario.inference is not None and scenario.training is None, case.file
    ids = " ".join(c.id for c, _ in cases)
    assert "Offline" in ids and "Server" in ids and "TRTLLM" in ids


def test_mlperf_server_cases_carry_the_benchmark_latency_limits():
    for case, scenario in _cases("inference"):
        if case.metric == "slo_output_tokens_per_s":
            assert scenario.inference.ttft_p99_limit_ms == 2000.0 and scenario.inference.tpot_p99_limit_ms == 200.0
