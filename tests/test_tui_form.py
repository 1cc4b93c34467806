"""The editor's rules without a screen: fields -> validated Scenario, or problems naming the field."""

import pytest
from whatif.engine import Scenario
from whatif.engine.catalog import load_catalog
from whatif.tui import files, form


@pytest.fixture
def default():
    return files.load_scenario(files.shipped_presets()["default"])


def test_fields_of_a_scenario_build_the_same_scenario(default):
    built = form.build(default, form.form_values(default))
    assert built.ok and built.scenario == default


@pytest.mark.parametrize("stem", sorted(files.shipped_presets()))
def test_every_shipped_preset_round_trips_through_the_fields(stem):
    scenario = files.load_scenario(files.shipped_presets()[stem])
    assert form.build(scenario, form.form_values(scenario)).scenario == scenario


@pytest.mark.parametrize(
    "key, text, words",
    [
        ("cluster.gpu_count", "", "empty"),
        ("cluster.gpu_count", "0", "at least 1"),
        ("cluster.gpu_count", "12", "multiple of gpus_per_node"),
        ("cluster.gpu_count", "abc", "not a number"),
        ("training.train_tokens", "15x", "unknown suffix 'x'"),
        ("training.train_tokens", "15 tokens!", "not a number"),
        ("inference.ttft_p99_limit_ms", "0", "more than 0"),
        ("inference.gpu_count", "0", "from 1"),
        ("cluster.gpu_count", "1.5", "not a whole number"),
        ("cluster.hbm_gb", "-3", "more than 0"),
        ("facility.electricity_usd_per_kwh", "", "empty"),
        ("training.parallelism.zero", "7", "from 0 to 3"),
        ("inference.tp", "0", "from 1 to 512"),
    ],
)
def test_bad_values_name_the_field_and_what_is_allowed(default, key, text, words):
    built = form.build(default, form.form_values(default) | {key: text})
    assert not built.ok
    issue = built.issues[0]
    assert form.field_for_issue(issue.key) == key
    assert words in issue.message


def test_more_gpus_per_node_than_gpus_is_named_on_gpus_per_node(default):
    raw = form.form_values(default) | {"cluster.gpu_count": "8", "cluster.gpus_per_node": "16"}
    built = form.build(default, raw)
    assert [i.key for i in built.issues] == ["cluster.gpus_per_node"]
    assert "allowed: 1 to 8" in built.issues[0].message


def test_gpu_type_refills_catalog_defaults_which_stay_unset(default):
    raw = form.refill_followers(form.form_values(default) | {"cluster.gpu": "b200"}, "cluster.gpu")
    b200 = load_catalog().accelerators["b200"]
    assert raw["cluster.hbm_gb"] == form.show_number(b200.hbm_gb)
    assert raw["cluster.bf16_tflops"] == form.show_number(b200.bf16_tflops)
    scenario = form.build(default, raw).scenario
    assert scenario.cluster.gpu == "b200" and scenario.cluster.hbm_gb is None


def test_an_override_is_kept_and_marked(default):
    raw = form.form_values(default) | {"cluster.hbm_gb": "96"}
    assert form.is_override(form.FIELDS["cluster.hbm_gb"], raw)
    assert form.build(default, raw).scenario.cluster.hbm_gb == 96


def test_explicit_plan_keys_and_workload_switches(default):
    raw = form.form_values(default) | {"training.parallelism.tp": "8", "inference": False}
    scenario = form.build(default, raw).scenario
    assert scenario.training.parallelism.tp == 8 and scenario.training.parallelism.pp is None
    assert scenario.inference is None


def test_keys_the_editor_does_not_show_survive(default):
    base = default.edited("network", scale_out_latency_us=7.5)
    built = form.build(base, form.form_values(base) | {"cluster.gpu_count": "2048"})
    assert built.scenario.network.scale_out_latency_us == 7.5
    assert built.scenario.cluster.gpu_count == 2048


def test_a_custom_model_shape_survives_editing():
    spec = {"name": "tiny", "layers": 4, "hidden": 512, "heads": 8, "vocab": 32000}
    base = Scenario.model_validate({"training": {"model": spec}})
    raw = form.form_values(base)
    assert raw["training.model"] == form.CUSTOM
    built = form.build(base, raw | {"training.train_tokens": "1e9"})
    assert built.scenario.training.model == base.training.model


def test_engineering_notation_reaches_the_scenario(default):
    raw = form.form_values(default)
    assert raw["training.train_tokens"] == "15 T"
    built = form.build(default, raw | {"training.train_tokens": "20T", "cluster.gpu_count": "2k"})
    assert built.scenario.training.train_tokens == 20e12 and built.scenario.cluster.gpu_count == 2000


def test_serving_gpus_and_latency_limits_are_fields(default):
    raw = form.form_values(default) | {
        "inference.gpu_count": "16",
        "inference.ttft_p99_limit_ms": "300",
        "inference.tpot_p99_limit_ms": "",
    }
    serving = form.build(default, raw).scenario.inference
    assert (serving.gpu_count, serving.ttft_p99_limit_ms, serving.tpot_p99_limit_ms) == (16, 300, None)


def test_a_serving_only_problem_leaves_training_usable(default):
    # An A100 has no FP8: the serving precision is wrong, the training workload is fine.
    raw = form.refill_followers(form.form_values(default) | {"cluster.gpu": "a100-sxm-80gb"}, "cluster.gpu")
    built = form.build(default, raw)
    assert not built.ok and built.stale == {"inference"}
    assert [i.key for i in built.issues] == ["inference.precision"]
    assert built.usable.inference is None and built.usable.training == default.training
    assert form.where(built.issues[0].key) == "Serving workload > precision"


def test_a_cluster_problem_leaves_nothing_usable(default):
    built = form.build(default, form.form_values(default) | {"cluster.gpu_count": "12"})
    assert built.usable is None and built.stale == {"training", "inference"}


def test_changes_are_named_field_by_field(default):
    raw = form.refill_followers(form.form_values(default) | {"cluster.gpu": "a100-sxm-80gb"}, "cluster.gpu")
    raw |= {"cluster.gpu_count": "2048", "inference.precision": "bf16"}
    assert form.changes(default, form.build(default, raw).scenario) == [
        "GPU type h100-sxm -> a100-sxm-80gb",
        "1,024 -> 2,048 GPUs",
        "serving precision fp8 -> bf16",
    ]
    assert form.changes(default, default) == []


def test_power_cap_and_failure_profile_are_fields(default):
    # The power cap shows the GPU's TDP (700 W for the H100 SXM) when none is set, and a DGX B200 its 700 W
    # set point (reference power.csv P016); changing the GPU type drops a cap back to the new type's TDP.
    raw = form.form_values(default)
    assert raw["cluster.power_cap_w"] == form.show_number(700)
    assert not form.is_override(form.FIELDS["cluster.power_cap_w"], raw)
    dgx = files.load_scenario(files.shipped_presets()["dgx-b200"])
    dgx_raw = form.form_values(dgx)
    assert dgx_raw["cluster.power_cap_w"] == form.show_number(700)
    assert form.is_override(form.FIELDS["cluster.power_cap_w"], dgx_raw)
    assert form.build(default, raw | {"cluster.power_cap_w": "500"}).scenario.cluster.power_cap_w == 500
    refilled = form.refill_followers(dgx_raw | {"cluster.gpu": "b300"}, "cluster.gpu")
    assert refilled["cluster.power_cap_w"] == form.show_number(load_catalog().accelerators["b300"].tdp_w)
    assert form.build(dgx, refilled).scenario.cluster.power_cap_w is None
    # Every failure-rate profile of the catalog (reference reliability.csv) can be chosen.
    profiles = [v for _, v in form.FIELDS["reliability.profile"].options(raw)]
    assert profiles == list(load_catalog().failure_profiles)
    chosen = form.build(default, raw | {"reliability.profile": "opt-a100-cloud-2021"}).scenario
    assert chosen.reliability.profile == "opt-a100-cloud-2021"
    assert form.changes(default, chosen) == ["failures llama3-h100-2024 -> opt-a100-cloud-2021"]
