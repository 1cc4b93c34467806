"""The training model against published runs: the issue's target, with one set of constants."""

from whatif.engine import evaluate, resolve
from whatif.engine.calibration import compare, summarize
from whatif.tui.files import calibration_cases


def test_training_calibration_meets_target():
    cases = calibration_cases()
    results = evaluate(resolve([s for _, s in cases]))
    summary = summarize(compare([c for c, _ in cases], results), "training")
    assert summary.n >= 30
    assert summary.median_abs_pct <= 10.0, summary
    assert summary.worst_abs_pct <= 25.0, summary


def test_every_case_has_a_source_and_a_positive_published_value():
    for case, _ in calibration_cases():
        assert len(case.source) > 20 and case.value > 0, case.file
