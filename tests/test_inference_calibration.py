"""The serving model against published runs: the issue's target on throughput, with one set of constants."""

from whatif.engine import evaluate, resolve
from whatif.engine.calibration import INFERENCE_METRICS, compare, summarize, workload_of
from whatif.tui.files import calibration_cases


def _serving_cases():
    return [(c, s) for c, s in calibration_cases() if workload_of(c.metric) == "inference"]


def test_serving_calibration_meets_target():
    cases = _serving_cases()
    results = evaluate(resolve([s for _, s in cases]))
    summary = summarize(compare([c for c, _ in cases], results), "inference")
    assert summary.n >= 30
    assert summary.median_abs_pct <= 15.0, summary
    assert summary.worst_abs_pct <= 35.0, summary


def test_serving_cases_are_throughput_figures_with_sources_and_reasons_for_gaps():
    cases = _serving_cases()
    assert {c.metric for c, _ in cases} <= set(INFERENCE_METRICS)
    for case, scenario in cases:
        assert scenario.inference is not None and scenario.training is None, case.file
        assert len(case.source) > 40 and case.value > 0, case.file
        assert case.known_gap == "" or len(case.known_gap) > 80, case.file
    # Both MLPerf scenarios and the TensorRT-LLM table are represented.
    ids = " ".join(c.id for c, _ in cases)
    assert "Offline" in ids and "Server" in ids and "TRTLLM" in ids


def test_mlperf_server_cases_carry_the_benchmark_latency_limits():
    for case, scenario in _serving_cases():
        if case.metric == "slo_output_tokens_per_s":
            assert scenario.inference.ttft_p99_limit_ms == 2000.0 and scenario.inference.tpot_p99_limit_ms == 200.0
