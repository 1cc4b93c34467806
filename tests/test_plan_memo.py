"""The plan memo (engine/plan_memo.py): rows differing only in columns the plan search never reads get the
plan searched before, with the same figures as a search of their own."""

from __future__ import annotations

import pytest
from polars.testing import assert_frame_equal
from whatif.engine import evaluate, resolve
from whatif.engine import sweep as sw
from whatif.engine.catalog import load_catalog
from whatif.engine.plan_memo import PLAN_NEUTRAL, PlanMemo
from whatif.tui import files

PRESETS = {name: files.load_scenario(path) for name, path in files.shipped_presets().items()}


def _auto(s):
    return s.edited("training", parallelism="auto") if s.training is not None else s


def _every_model():
    """The default cluster training every model of the catalog (dense, MoE, sliding-window attention)."""
    base = _auto(PRESETS["default"])
    return [base.edited("training", model=key) for key in load_catalog().models]


def test_the_search_reads_no_neutral_column_on_any_shipped_preset():
    # Every shipped training scenario and every catalog model, plans searched: dense and MoE, long context,
    # CPUs, AMD, Gaudi.
    frame = resolve([_auto(s) for s in PRESETS.values() if s.training is not None] + _every_model())
    read = set()
    for start in range(0, frame.height, 16):
        read |= sw.plan_reads(frame.slice(start, 16))
    assert read, "the recorder saw the search read nothing"
    assert not read & set(PLAN_NEUTRAL), sorted(read & set(PLAN_NEUTRAL))


EDITS = [
    ("training", {"train_tokens": 20e12}),
    ("facility", {"electricity_usd_per_kwh": 0.21}),
    ("facility", {"pue": 1.3}),
    ("reliability", {"restart_min": 25.0}),
]


SCENARIOS = {
    "default": _auto(PRESETS["default"]),
    "moe": _auto(PRESETS["default"]).edited("training", model="mixtral-8x7b"),
    "long-context": _auto(PRESETS["llama-405b-16k-h100"]),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize(("section", "change"), EDITS)
def test_a_remembered_plan_gives_the_figures_of_a_search(scenario, section, change):
    base = SCENARIOS[scenario]
    if base.training is None or (section == "reliability" and base.reliability is None):
        pytest.skip("no such section")
    edited = base.edited(section, **change)
    memo = PlanMemo()
    memo.evaluate(resolve([base]))  # searched, remembered
    reused = memo.evaluate(resolve([edited]))
    assert memo.reused == 1
    assert_frame_equal(reused, evaluate(resolve([edited])))


def test_a_new_gpu_count_or_batch_is_searched_again():
    base = _auto(PRESETS["default"])
    memo = PlanMemo()
    memo.evaluate(resolve([base]))
    memo.evaluate(resolve([base.edited("cluster", gpu_count=2048)]))
    memo.evaluate(resolve([base.edited("training", global_batch_seqs=1024)]))
    assert memo.reused == 0
    assert len(memo) == 3


def test_a_mixed_frame_keeps_its_order_and_its_explicit_rows():
    base = _auto(PRESETS["default"])
    explicit = PRESETS["default"].edited("training", parallelism={"tp": 8, "pp": 4, "microbatch": 1})
    memo = PlanMemo()
    memo.evaluate(resolve([base]))
    frame = resolve([explicit, base.edited("training", train_tokens=3e12), base.edited("cluster", gpu_count=512)])
    out = memo.evaluate(frame)
    assert memo.reused == 1
    assert_frame_equal(out, evaluate(frame))
