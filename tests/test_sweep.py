"""Sweeps built as columns give what one validated Scenario per point would give."""

import math

import numpy as np
import polars as pl
import pytest
import tiers
from whatif.engine import ScenarioError, evaluate, resolve
from whatif.engine import sweep as sw
from whatif.engine.presets_merge import with_settings
from whatif.engine.scenario import Scenario
from whatif.tui import files

DEFAULT = files.load_scenario(files.shipped_presets()["default"])
VISION = files.load_scenario(files.shipped_presets()["vision-resnet50-undersized-fs"])
SERVING = files.load_scenario(files.shipped_presets()["serve-llama70b-8xh100"])
EXPLICIT = DEFAULT.edited(
    "training", parallelism={"tp": 8, "pp": 4, "microbatch": 1, "zero": 1, "interleave": 1}, recompute="selective"
)


def point(base: Scenario, **settings) -> Scenario:
    """`base` with the settings, validated: the slow way the sweep must agree with. A plan key set to
    "auto" is a key left out of the parallelism table."""
    pairs = [(k.replace("__", "."), v) for k, v in settings.items()]
    pairs = [(k, None if k.startswith("training.parallelism.") and v == "auto" else v) for k, v in pairs]
    data = with_settings(base.model_dump(exclude_none=True), pairs)
    return Scenario.model_validate(data)


# Two values per column key, valid on the bases below (the second differs from every base's own value).
COLUMN_VALUES = {
    "cluster.gpu_count": (512, 2048),
    "cluster.gpus_per_node": (4, 8),
    "cluster.nodes_per_rack": (2, 8),
    "cluster.host_memory_gb": (1024, 4096),
    "cluster.hbm_gb": (64, 96),
    "network.nics_per_node": (4, 8),
    "network.nic_gbps": (200, 800),
    "network.scale_up_gb_s": (300, 900),
    "network.scale_up_latency_us": (5, 15),
    "network.scale_out_latency_us": (8, 30),
    "network.oversubscription": (1.0, 4.0),
    "network.pod_gpus": (256, 512),
    "storage.nvme_drives_per_node": (0, 4),
    "storage.shared_fs_read_gb_s": (50, 500),
    "storage.shared_fs_write_gb_s": (40, 400),
    "storage.checkpoint_interval_min": ("auto", 90),
    "storage.node_network_gbps": (200, 1600),
    "data.dataset_gb": (1000, 50000),
    "data.bytes_per_token": (3, 768),
    "data.samples_per_gpu_s": (500, 3000),
    "reliability.gpu_mtbf_hours": (10000, 80000),
    "reliability.node_mtbf_hours": (5000, 40000),
    "reliability.restart_min": (0, 30),
    "storage.checkpoint_blocking_s": (2.0, 30.0),
    "storage.checkpoint_write_share": (0.1, 0.5),
    "facility.pue": (1.1, 1.5),
    "facility.wue_l_per_kwh": (0.2, 2.0),
    "facility.market_gco2_per_kwh": (0, 100),
    "facility.server_usd_per_gpu": (0, 40000),
    "facility.network_capex_share": (0.1, 0.3),
    "facility.storage_capex_share": (0.0, 0.1),
    "facility.depreciation_years": (4, 6),
    "facility.facility_usd_per_kw_month": (0, 250),
    "cooling.rack_limit_kw": (20, 120),
    "facility.electricity_usd_per_kwh": (0.05, 0.2),
    "facility.grid_gco2_per_kwh": (50, 700),
    "facility.usd_per_gpu_hour": (0, 2.5),
    "training.train_tokens": (1e12, 3e12),
    "training.seq_len_tokens": (2048, 4096),
    "training.global_batch_seqs": (1024, 4096),
    "training.eval_tokens": (0, 1e9),
    "training.train_samples": (1e6, 5e6),
    "training.global_batch_samples": (1024, 8192),
    "training.recompute": ("none", "full"),
    "training.parallelism.tp": ("auto", 4),
    "training.parallelism.pp": (2, 8),
    "training.parallelism.dp": ("auto", 32),
    "training.parallelism.microbatch": (1, 2),
    "training.parallelism.zero": (0, 1),
    "training.parallelism.interleave": (1, 2),
    "training.parallelism.ep": ("auto", 1),
    "training.parallelism.cp": ("auto", 2),
    "training.parallelism.etp": ("auto", 1),
    "training.parallelism.dp_shard": ("auto", 16),
    "training.recompute_layers": (2, 4),
    "inference.prompt_tokens": (512, 4096),
    "inference.output_tokens": (128, 1024),
    "inference.concurrency": (16, 128),
    "inference.request_rate_per_s": (0, 25),
    "inference.gpu_count": (4, 8),
    "inference.tp": ("auto", 4),
    "inference.pp": (1, 2),
    "inference.kv_cache_memory_fraction": (0.5, 0.8),
    "inference.prefill_chunk_tokens": (512, 8192),
    "inference.ttft_p99_limit_ms": (300, 2000),
    "inference.tpot_p99_limit_ms": (30, 80),
}


def test_every_column_key_has_test_values():
    assert set(COLUMN_VALUES) == set(sw.COLUMN_KEYS)


def _bases_for(key):
    section = key.split(".")[0]
    bases = [DEFAULT, VISION, SERVING]
    if section == "training":
        bases = [DEFAULT, VISION]
    if section == "inference":
        bases = [DEFAULT, SERVING]
    return bases


@pytest.mark.parametrize("key", tiers.share(sorted(COLUMN_VALUES)))
def test_column_key_writes_what_resolve_writes(key):
    """The grid's input frame equals resolve() of the validated scenarios, column by column."""
    for base in _bases_for(key):
        values = COLUMN_VALUES[key]
        if key == "cluster.gpu_count" and base is SERVING:
            values = (8, 16)
        if key == "inference.gpu_count" and base is SERVING:
            values = (4, 8)
        grid = sw.build(base, [sw.parse_axis(f"{key}={','.join(str(v) for v in values)}")])
        built = sw.frame(grid).drop(*sw.HELPERS, "scenario", "name")
        wanted = resolve([point(base, **{key.replace(".", "__"): v}) for v in values]).drop("scenario", "name")
        for column in wanted.columns:
            a, b = built[column].to_numpy(), wanted[column].to_numpy()
            if a.dtype.kind == "f" or b.dtype.kind == "f":
                assert np.allclose(a.astype(float), b.astype(float), equal_nan=True), (key, base.name, column)
            else:
                assert (a == b).all(), (key, base.name, column)


def test_two_by_two_sweep_matches_single_scenarios_and_hand_figures():
    grid = sw.build(
        EXPLICIT,
        [sw.parse_axis("cluster.gpu_count=512,1024"), sw.parse_axis("facility.electricity_usd_per_kwh=0.05,0.10")],
    )
    out = sw.run(grid).results
    assert out.height == 4
    assert out["cluster.gpu_count"].to_list() == [512, 512, 1024, 1024]
    for row in out.iter_rows(named=True):
        one = evaluate(
            resolve(
                [
                    point(
                        EXPLICIT,
                        cluster__gpu_count=row["cluster.gpu_count"],
                        facility__electricity_usd_per_kwh=row["facility.electricity_usd_per_kwh"],
                    )
                ]
            )
        ).row(0, named=True)
        for column in ("train_wall_clock_days", "train_cost_usd", "train_mfu", "infer_ttft_p99_ms"):
            assert math.isclose(row[column], one[column], rel_tol=1e-12), column
        # By hand: GPU-hours are GPUs x wall-clock hours.
        assert math.isclose(row["train_gpu_hours"], row["cluster.gpu_count"] * row["train_wall_clock_days"] * 24)
    # By hand: the metered electricity is energy x price, so doubling the price doubles it; a rental cost has
    # the electricity in its price per GPU-hour and does not move.
    half = out.filter(pl.col("cluster.gpu_count") == 512)
    cheap, dear = half["train_electricity_usd"].to_list()
    assert math.isclose(dear, 2 * cheap, rel_tol=1e-12)
    energy = out["train_energy_mwh"][0]
    assert math.isclose(cheap, energy * 1000 * 0.05, rel_tol=1e-12)
    assert half["train_cost_usd"].n_unique() == 1


def test_training_and_serving_evaluated_apart_give_the_whole_grid_answer(monkeypatch):
    axes = [
        sw.parse_axis("cluster.gpu=h100-sxm,h200-sxm"),
        sw.parse_axis("cluster.gpu_count=512,1024"),
        sw.parse_axis("training.train_tokens=1e12,2e12"),
        sw.parse_axis("inference.request_rate_per_s=5,10"),
    ]
    grid = sw.build(DEFAULT.edited("inference", gpu_count=None), axes)
    split = sw.run(grid)
    assert split.rows_evaluated < grid.points * 2  # each half evaluated on fewer points than the grid
    monkeypatch.setattr(sw, "_halves", lambda grid: None)
    whole = sw.run(grid)
    assert whole.rows_evaluated == grid.points
    assert split.results.columns == whole.results.columns or set(split.results.columns) == set(whole.results.columns)
    for column in whole.results.columns:
        a, b = split.results[column], whole.results[column]
        if a.dtype.is_numeric():
            assert np.allclose(a.to_numpy().astype(float), b.to_numpy().astype(float), equal_nan=True), column
        else:
            assert a.to_list() == b.to_list(), column


def test_resolved_keys_are_resolved_per_combination():
    grid = sw.build(DEFAULT, [sw.parse_axis("training.precision=bf16,fp8"), sw.parse_axis("cluster.gpu=h100-sxm,b200")])
    assert grid.combos.height == 4
    out = sw.run(grid).results
    for row in out.iter_rows(named=True):
        one = evaluate(
            resolve([point(DEFAULT, training__precision=row["training.precision"], cluster__gpu=row["cluster.gpu"])])
        )
        assert math.isclose(row["train_wall_clock_days"], one["train_wall_clock_days"][0], rel_tol=1e-12)


@pytest.mark.parametrize(
    "text, values",
    [
        ("cluster.gpu_count=8:64:x2", (8, 16, 32, 64)),
        ("cluster.gpu_count=8:100:x2", (8, 16, 32, 64)),
        ("cluster.gpu_count=8:32:8", (8, 16, 24, 32)),
        # 8 x 1.5^i = 8, 12, 18, 27, 40.5, 60.75: whole-number ends give whole numbers (40.5 rounds to even)
        ("cluster.gpu_count=8:64:x1.5", (8, 12, 18, 27, 40, 61)),
        ("cluster.gpu_count=8:32:+8", (8, 16, 24, 32)),
        ("inference.request_rate_per_s=1:3", (1, 2, 3)),
        ("facility.electricity_usd_per_kwh=0.1:0.3:0.1", (0.1, 0.2, 0.30000000000000004)),
        ("cluster.gpu=h100-sxm,b200", ("h100-sxm", "b200")),
        ("cluster.gpu_count=512, 1024,512", (512, 1024)),
    ],
)
def test_vary_grammar(text, values):
    got = sw.parse_axis(text).values
    assert got == pytest.approx(values) if not isinstance(values[0], str) else values
    assert [type(v) for v in got] == [type(v) for v in values]


@pytest.mark.parametrize(
    "text, message",
    [
        ("cluster.gpu_count", "expected key=values"),
        ("cluster.gpu_count=64:8", "runs down"),
        ("cluster.gpu_count=8:64:x1", "factor above 1"),
        ("cluster.gpu_count=8:64:0", "step must be above 0"),
        ("cluster.gpu_count=a:64", "not a number"),
        ("cluster.gpu_count=1:1e12", "at most"),
        ("cluster.gpu_count=8,,16", "empty value"),
        ("training.precision={a=1}", "array or a table"),
        ("cluster.gpu_count=[8]", "array or a table"),
    ],
)
def test_bad_vary_grammar_names_the_problem(text, message):
    with pytest.raises(ScenarioError) as info:
        sw.parse_axis(text)
    (line,) = info.value.lines()
    assert line.startswith("--vary: ") and message in line


@pytest.mark.parametrize(
    "text, message",
    [
        # A problem with the key names the key once (it was echoed as its own value: "x.y = 'x.y': ...").
        ("cluster.gpu_cnt=8,16", "--vary: cluster.gpu_cnt: unknown key; did you mean gpu_count"),
        ("clster.gpu=b200", "--vary: clster.gpu: unknown key; did you mean cluster"),
        ("name=a,b", "--vary: name: is a label"),
        ("cluster=a,b", "--vary: cluster: is a whole section"),
        ("cluster.gpu.x=1", "--vary: cluster.gpu.x: cluster.gpu holds a value"),
        ("cluster.gpu=h10,b200", "unknown GPU 'h10'"),
        ("cluster.gpu_count=0,8", "cluster.gpu_count = 0: out of range; allowed: at least 1"),
        ("training.precision=fp9", "not one of the choices"),
        ("training.precision=fp4", "H100 SXM5 80GB has no fp4 tensor cores; allowed: bf16, fp8 (in the combination"),
    ],
)
def test_bad_keys_and_values_get_the_file_messages(text, message):
    with pytest.raises(ScenarioError) as info:
        sw.build(DEFAULT, [sw.parse_axis(text)])
    assert message in info.value.lines()[0] and info.value.lines()[0].startswith("--vary: ")


def test_no_workload_to_vary():
    with pytest.raises(ScenarioError, match=r"no \[training\] workload"):
        sw.build(SERVING, [sw.parse_axis("training.train_tokens=1e12,2e12")])


def test_cross_field_rules_are_checked_on_the_grid():
    grid = sw.build(EXPLICIT, [sw.parse_axis("cluster.gpu_count=8,12,16"), sw.parse_axis("cluster.gpus_per_node=4,8")])
    with pytest.raises(ScenarioError) as info:
        sw.run(grid)
    # By hand: (12, 8) is the one point that is not whole nodes.
    assert str(info.value) == (
        "--vary: cluster.gpu_count = 12: not a whole number of 8-GPU nodes; allowed: a multiple of gpus_per_node"
        " (1 of 6 points; --skip-invalid leaves them out)"
    )
    kept = sw.run(grid, skip_invalid=True)
    assert kept.skipped == 1 and kept.results.height == 5
    assert (12, 8) not in set(
        zip(kept.results["cluster.gpu_count"], kept.results["cluster.gpus_per_node"], strict=True)
    )


def test_serving_gpus_within_the_cluster():
    grid = sw.build(DEFAULT, [sw.parse_axis("cluster.gpu_count=8,16"), sw.parse_axis("inference.gpu_count=8,16")])
    with pytest.raises(ScenarioError, match="inference.gpu_count = 16: is more than the cluster's gpu_count 8"):
        sw.run(grid)


def test_progress_reaches_the_total():
    seen = []
    grid = sw.build(EXPLICIT, [sw.parse_axis("cluster.gpu_count=512,1024")])
    sw.run(grid, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1]


AUTO_TRAINING = DEFAULT.model_copy(update={"inference": None}).edited("cluster", gpu_count=256)
PLAN_READS = sw.plan_reads(sw.build(AUTO_TRAINING, []).combos)
NEUTRAL = sorted(
    k
    for k in COLUMN_VALUES
    if not k.startswith("inference.")
    and not (set(sw.COLUMN_KEYS[k](sw.V)) & PLAN_READS)
    and k not in ("data.samples_per_gpu_s", "training.train_samples", "training.global_batch_samples")
)


def test_plan_neutral_keys_are_the_expected_ones():
    # Token counts, prices, storage and reliability do not change which plan is fastest per token...
    for key in ("training.train_tokens", "facility.electricity_usd_per_kwh", "reliability.restart_min"):
        assert key in NEUTRAL
    # ...while the GPU count, batch and sequence do.
    for key in ("cluster.gpu_count", "training.global_batch_seqs", "training.seq_len_tokens"):
        assert key not in NEUTRAL


@pytest.mark.parametrize("key", tiers.share(NEUTRAL, 6))
def test_plans_searched_once_give_the_figures_of_searching_every_point(key, monkeypatch):
    grid = sw.build(AUTO_TRAINING, [sw.parse_axis(f"{key}={','.join(str(v) for v in COLUMN_VALUES[key])}")])
    assert sw._plan_grid(grid) is not None and sw._plan_grid(grid).points == 1
    reused = sw.run(grid).results
    monkeypatch.setattr(sw, "_plan_grid", lambda grid: None)
    searched = sw.run(grid).results
    for column in searched.columns:
        a, b = reused[column], searched[column]
        if a.dtype.is_numeric():
            assert np.allclose(a.to_numpy().astype(float), b.to_numpy().astype(float), equal_nan=True), column
        else:
            assert a.to_list() == b.to_list(), column


def test_docs_list_the_column_keys():
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "presets.md").read_text()
    para = text[text.index("vary as columns, fast") : text.index("Plan keys take `auto` too")]
    import re

    assert re.findall(r"`([a-z0-9_.]+)`", para) == list(sw.COLUMN_KEYS)
