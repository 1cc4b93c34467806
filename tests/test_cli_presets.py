"""Partial presets and how they combine, the shipped library, and saving that keeps what the user wrote."""

import json
import tomllib

import pytest
from whatif.engine.presets_merge import merged, parse_setting, with_settings, with_workload
from whatif.engine.scenario import Scenario
from whatif.tui import files
from whatif.tui.cli import main

HARDWARE = {"name": "hw", "cluster": {"gpu": "h200-sxm", "gpu_count": 64}, "network": {"scale_out": "roce-400g"}}
TRAINS = {"training": {"model": "llama-3.1-8b", "train_tokens": 1e11, "parallelism": {"tp": 2}}}


def test_a_section_replaces_the_whole_section_and_the_rest_stays():
    base = HARDWARE | TRAINS
    partial = {"training": {"model": "llama-3.1-70b"}, "cluster": {"gpu_count": 128}}
    out = merged(base, partial)
    # Keys the partial's section leaves out take their defaults, not the old values.
    assert out["training"] == {"model": "llama-3.1-70b"}
    assert out["cluster"] == {"gpu_count": 128}
    assert out["network"] == {"scale_out": "roce-400g"} and out["name"] == "hw"
    assert base["training"]["parallelism"] == {"tp": 2}  # the inputs are not changed


def test_workload_goes_only_where_that_kind_of_work_runs():
    serving_only = HARDWARE | {"inference": {"model": "llama-3.1-8b"}}
    workload = TRAINS | {"inference": {"model": "llama-3.1-70b", "precision": "fp8"}, "data": {"bytes_per_token": 4}}
    out, left_out = with_workload(serving_only, workload)
    assert "training" not in out and "data" not in out
    assert out["inference"] == {"model": "llama-3.1-70b", "precision": "fp8"}
    assert left_out == {"training": "serving-only scenario: it runs no training"}
    # A scenario with no workload of its own takes both, and the data section with the training.
    out, left_out = with_workload(HARDWARE, workload)
    assert out["training"] == TRAINS["training"] and out["data"] == {"bytes_per_token": 4} and left_out == {}
    # A training-only workload leaves a scenario's own serving as it was.
    both = HARDWARE | TRAINS | {"inference": {"model": "llama-3.1-8b"}}
    out, _ = with_workload(both, {"training": {"model": "llama-3.1-70b"}})
    assert out["inference"] == {"model": "llama-3.1-8b"} and out["training"] == {"model": "llama-3.1-70b"}


def test_settings_write_at_their_path():
    out = with_settings({"training": {"parallelism": "auto"}}, [parse_setting("training.parallelism.tp=8")])
    assert out == {"training": {"parallelism": {"tp": 8}}}
    assert parse_setting("cluster.gpu=h200-sxm") == ("cluster.gpu", "h200-sxm")
    assert parse_setting("training.train_tokens=15e12") == ("training.train_tokens", 15e12)
    assert parse_setting('name="a b"') == ("name", "a b")
    assert parse_setting("reliability.interruptions=false") == ("reliability.interruptions", False)


def test_workload_on_the_command_line_equals_the_merge(capsys, tmp_path):
    hw = tmp_path / "hw.toml"
    hw.write_text('name = "hardware only"\n[cluster]\ngpu = "h200-sxm"\ngpu_count = 64\n')
    assert main(["eval", "--json", str(hw), "--workload", "llama-3.1-8b-continued"]) == 0
    via_flag = json.loads(capsys.readouterr().out)[0]
    workload = tomllib.loads(files.shipped_workloads()["llama-3.1-8b-continued"].read_text())
    by_hand = tmp_path / "by-hand.toml"
    by_hand.write_text(
        'name = "hardware only"\n[cluster]\ngpu = "h200-sxm"\ngpu_count = 64\n[training]\n'
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in workload["training"].items())
    )
    assert main(["eval", "--json", str(by_hand)]) == 0
    assert via_flag == json.loads(capsys.readouterr().out)[0]


SHIPPED = files.shipped_presets()


def test_the_library_has_at_least_fourteen_real_systems():
    assert len(SHIPPED) >= 14
    for name in (
        "dgx-a100",
        "dgx-h100",
        "default",  # an H100 SuperPOD slice (1,024 GPUs, NDR)
        "llama-405b-16k-h100",
        "serve-llama70b-8xh200",
        "hgx-b200",
        "gb200-nvl72",
        "mi300x-8",
        "mi355x-8",
        "gaudi3-8",
        "serve-llama8b-1xl40s",
        "a100-40gb-efa-256",
        "vision-resnet50-undersized-fs",
        "immersion-h100-512",
        "serve-llama8b-1xl4",
    ):
        assert name in SHIPPED, name


@pytest.mark.parametrize("name", sorted(SHIPPED) + [f"workloads/{n}" for n in files.shipped_workloads()])
def test_every_preset_has_a_description_and_sources(name):
    path = files.shipped_workloads()[name.split("/")[1]] if name.startswith("workloads/") else SHIPPED[name]
    text = path.read_text()
    scenario = files.load_scenario(path)
    assert scenario.description and scenario.name != "untitled"
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert comments and any("source" in line.lower() for line in comments), name


def test_saving_over_a_file_keeps_comments_and_order(tmp_path):
    target = tmp_path / "mine.toml"
    original = (
        "# my cluster, hand-written\n"
        'name = "mine"  # what the team calls it\n'
        "[cluster]\n"
        'gpu = "h100-sxm"\n'
        "gpu_count = 64   # what we have today\n"
        "[training]\n"
        'model = "llama-3.1-8b"\n'
    )
    target.write_text(original)
    scenario = files.load_scenario(target).edited("cluster", gpu_count=128)
    files.save_scenario(scenario, target, overwrite=True)
    text = target.read_text()
    assert text == original.replace("gpu_count = 64", "gpu_count = 128")
    assert files.load_scenario(target) == scenario


def test_a_file_that_cannot_be_kept_says_it_was_rewritten(tmp_path):
    target = tmp_path / "broken.toml"
    target.write_text("this is [not toml\n")
    files.save_scenario(Scenario(name="fresh"), target, overwrite=True)
    text = target.read_text()
    assert text.startswith("# whatif rewrote this file whole")
    assert files.load_scenario(target).name == "fresh"


def test_eval_save_keeps_the_preset_comments_and_notes_the_edit(capsys, tmp_path):
    target = tmp_path / "bigger.toml"
    code = main(["eval", "default", "--set", "cluster.gpu_count=2048", "--save", str(target)])
    assert code == 0
    text = target.read_text()
    source = SHIPPED["default"].read_text()
    assert text.splitlines()[0] == source.splitlines()[0]  # the preset's own comment
    saved = files.load_scenario(target)
    assert saved.cluster.gpu_count == 2048
    assert saved.description.endswith("Edited from default: cluster.gpu_count=2048.")
    # Saving again refuses to overwrite unless told.
    code = main(["eval", "default", "--save", str(target)])
    assert code == 2 and "exists; add --overwrite" in capsys.readouterr().err


def test_a_workloads_training_brings_its_own_input_data(capsys):
    # Llama 3.1 70B pretraining on the video preset's hardware read its tokens as the preset's 768-byte
    # video patches (the workload has no [data], so the target's stayed). By hand: text with a vocabulary
    # above 65,536 is 4 bytes a token (docs/presets.md), so each GPU reads tokens/s / GPUs x 4 bytes.
    assert main(["eval", "--json", "video-transformer-nfs", "--workload", "llama-3.1-70b-pretrain"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    training = record["training"]
    per_gpu = training["tokens_per_s"] / 512 * 4 / 1e9
    assert training["data"]["demand_gb_s_per_gpu"] == pytest.approx(per_gpu, rel=1e-9)
    out, _ = with_workload({"data": {"bytes_per_token": 768}} | HARDWARE, TRAINS)
    assert out["data"] == {}  # the defaults: the hardware's own data section does not stay


@pytest.mark.parametrize(
    "hardware, workload",
    [("default", "vision-resnet50-undersized-fs"), ("video-transformer-nfs", "default")],
    ids=["workload-with-data", "hardware-with-data"],
)
def test_the_explorer_and_the_command_line_combine_a_preset_and_a_workload_alike(capsys, hardware, workload):
    # The explorer's Compare rows (the current workload on each preset's hardware) dropped the workload's
    # [data]: ResNet-50 on the default hardware took 1.5 h there and 3.2 h in `whatif compare --workload`.
    from whatif.engine import evaluate, resolve
    from whatif.tui.session import with_workload as explorer_merge

    assert main(["eval", "--json", hardware, "--workload", workload]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    merged = explorer_merge(files.read(hardware).scenario, files.read(workload).scenario)
    row = evaluate(resolve([merged])).row(0, named=True)
    assert row["train_wall_clock_days"] == pytest.approx(record["training"]["wall_clock_days"], rel=1e-12)
    assert row["train_data_demand_gb_s_per_gpu"] == pytest.approx(
        record["training"]["data"]["demand_gb_s_per_gpu"], rel=1e-12
    )


def test_an_edit_is_marked_once_and_the_mark_is_never_cut(capsys, tmp_path):
    # Saving an edit and editing it again named it "X (edited) (edited)"; a 120-character name lost its mark.
    first = tmp_path / "a.toml"
    assert main(["eval", "dgx-h100", "--set", "cluster.gpu_count=16", "--save", str(first)]) == 0
    again = tmp_path / "b.toml"
    assert main(["eval", str(first), "--set", "cluster.gpu_count=24", "--save", str(again)]) == 0
    assert files.load_scenario(again).name == "DGX H100 (8x H100) (edited)"
    long = tmp_path / "long.toml"
    long.write_text(f'name = "{"n" * 120}"\n')
    capsys.readouterr()
    assert main(["eval", "--json", str(long), "--set", "cluster.gpu_count=16"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["name"] == "n" * 111 + " (edited)" and len(record["name"]) == 120


def test_a_saved_edit_reads_back_whatever_the_description_held(capsys, tmp_path):
    # A description near its 4,000-character limit plus "Edited from ...": the file saved was refused on
    # reading ("too long; allowed: at most 4000 characters").
    from whatif.engine.scenario import DESCRIPTION_MAX

    path = tmp_path / "long.toml"
    path.write_text(f'name = "x"\ndescription = "{"d" * (DESCRIPTION_MAX - 10)}"\n')
    saved = tmp_path / "saved.toml"
    assert main(["eval", str(path), "--set", "cluster.gpu_count=16", "--save", str(saved)]) == 0
    description = files.load_scenario(saved).description
    assert len(description) == DESCRIPTION_MAX and description.endswith("... Edited from long: cluster.gpu_count=16.")
