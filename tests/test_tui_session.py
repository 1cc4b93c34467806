"""The explorer's engine requests, without a screen: one call per change, rows cached, the sweep in whole nodes."""

import pytest
from whatif.engine import evaluate, resolve
from whatif.tui import files, session

# Each drives the real app (seconds): the quick tier (pytest -m "not slow") leaves them out.
pytestmark = pytest.mark.slow


@pytest.fixture
def default():
    return files.load_scenario(files.shipped_presets()["default"])


class Counting:
    def __init__(self):
        self.heights = []

    def __call__(self, frame):
        self.heights.append(frame.height)
        return evaluate(frame)


def test_sweep_counts_are_whole_nodes_on_a_log_grid_from_8_to_32768():
    counts = session.sweep_counts(8)
    assert counts[0] == 8 and counts[-1] == 32768 and all(c % 8 == 0 for c in counts)
    assert {8 * 2**k for k in range(13)} <= set(counts)  # every power of two, and points between them
    assert 24 in counts and 1288 in counts
    steps = [b / a for a, b in zip(counts, counts[1:], strict=False)]
    assert max(steps[4:]) < 1.34  # about 2^(1/3) apart on the log axis once whole nodes allow it
    counts = session.sweep_counts(72)
    assert all(c % 72 == 0 for c in counts) and counts[0] == 72 and counts[-1] >= 32_000


def test_current_comparisons_and_sweep_come_from_one_engine_call(default):
    engine = Counting()
    explorer = session.Explorer(engine)
    comparisons = session.comparisons_for(default, session.discover_presets(), own_workload=False)
    outcome = explorer.run(default, comparisons)
    assert len(engine.heights) == 1
    rows = [outcome.current, *outcome.sweep, *(r for _, r in outcome.comparisons if r)]
    # identical inputs (the default preset is the current scenario) are computed once
    assert engine.heights[0] == outcome.evaluated <= len(rows)
    reference = evaluate(resolve([default])).row(0, named=True)
    assert outcome.current["train_wall_clock_days"] == reference["train_wall_clock_days"]
    for comparison, row in outcome.comparisons:
        if row is not None:
            expected = evaluate(resolve([comparison.scenario])).row(0, named=True)
            assert row["train_gpu_hours"] == expected["train_gpu_hours"]


def test_a_typed_gpu_count_evaluates_only_the_current_row(default):
    engine = Counting()
    explorer = session.Explorer(engine)
    comparisons = session.comparisons_for(default, session.discover_presets(), own_workload=False)
    explorer.run(default, comparisons)
    edited = default.edited("cluster", gpu_count=1536)
    outcome = explorer.run(edited, comparisons)
    assert engine.heights[1:] == [1]
    assert [r["n_gpus"] for r in outcome.sweep].count(1536) == 1  # the current point is on the chart
    assert outcome.current["train_fits"] == evaluate(resolve([edited]))["train_fits"][0]


def test_sweep_rows_match_the_engine_and_report_no_fit(default):
    outcome = session.Explorer().run(default, [])
    by_count = {r["n_gpus"]: r for r in outcome.sweep}
    assert by_count[8]["train_fits"] is False and "GB per GPU" in by_count[8]["train_reason"]
    for n in (64, 4096):
        reference = evaluate(resolve([default.edited("cluster", gpu_count=n)])).row(0, named=True)
        assert by_count[n]["train_wall_clock_days"] == reference["train_wall_clock_days"]


def test_current_workload_on_hardware_that_cannot_run_part_of_it_is_a_row_that_says_why(default):
    # The default serves in FP8, which an A100 cannot: its training still runs there, serving is left out.
    a100 = files.load_scenario(files.shipped_presets()["a100-2048"])
    preset = session.Preset("shipped:a100-2048", "a100-2048", a100)
    (comparison,) = session.comparisons_for(default, [preset], own_workload=False)
    assert comparison.scenario.training == default.training and comparison.scenario.inference is None
    assert comparison.error.startswith("inference left out here") and "inference.precision" in comparison.error
    assert comparison.scenario.cluster == a100.cluster
    (own,) = session.comparisons_for(default, [preset], own_workload=True)
    assert own.scenario == a100


def test_workload_that_cannot_run_at_all_is_a_row_that_says_why(default):
    fp8 = default.edited("training", precision="fp8")
    a100 = files.load_scenario(files.shipped_presets()["a100-2048"])
    preset = session.Preset("shipped:a100-2048", "a100-2048", a100)
    (comparison,) = session.comparisons_for(fp8, [preset], own_workload=False)
    assert comparison.scenario is None and comparison.error.startswith("current workload cannot run here")


def test_every_shipped_preset_evaluates(default):
    presets = session.discover_presets()
    assert len([p for p in presets if p.source == "shipped"]) >= 8
    assert all(p.scenario is not None for p in presets)
    outcome = session.Explorer().run(default, session.comparisons_for(default, presets, own_workload=True))
    assert all(row is not None for _, row in outcome.comparisons)
