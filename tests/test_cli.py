"""The command-line contract: exit codes, JSON keys, help text, and no traceback ever."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from whatif.tui.cli import main

DEFAULT = str(Path(__file__).parents[1] / "presets" / "default.toml")
MALFORMED = Path(__file__).parent / "malformed"

TRAINING_KEYS = {
    "fits",
    "plan",
    "step_time_s",
    "tokens_per_s",
    "wall_clock_days",
    "gpu_hours",
    "mfu",
    "idle_gpu_pct",
    "energy_mwh",
    "it_energy_mwh",
    "cost_usd",
    "co2_t",
    "bottleneck",
}
PLAN_KEYS = {"tp", "pp", "dp", "microbatch", "zero"}
INFERENCE_KEYS = {"ttft_ms", "tpot_ms", "tokens_per_s"}


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_json_contract(capsys):
    code, out, _ = run(capsys, "eval", "--json", DEFAULT, DEFAULT)
    assert code == 0
    records = json.loads(out)
    assert isinstance(records, list) and len(records) == 2
    rec = records[0]
    assert rec["name"].startswith("Default")
    assert TRAINING_KEYS <= set(rec["training"])
    assert PLAN_KEYS <= set(rec["training"]["plan"])
    assert INFERENCE_KEYS <= set(rec["inference"])
    assert rec["training"]["fits"] is True
    assert 0 < rec["training"]["mfu"] < 1
    # NaN is not JSON: the strict parser must accept the whole output.
    json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


def test_eval_table_is_readable(capsys):
    code, out, _ = run(capsys, "eval", DEFAULT)
    assert code == 0
    for label in ("wall clock", "GPU-hours", "MFU", "idle GPU", "energy", "bottleneck"):
        assert label in out


def test_markdown_output(capsys):
    code, out, _ = run(capsys, "eval", "--markdown", DEFAULT)
    assert code == 0 and out.startswith("| ")


@pytest.mark.parametrize("path", sorted(MALFORMED.glob("*.toml")), ids=lambda p: p.stem)
def test_bad_file_exits_2_with_a_line_naming_the_file(capsys, path):
    code, out, err = run(capsys, "eval", str(path))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines and all(line.startswith(f"whatif: {path}: ") for line in lines)
    assert "Traceback" not in err


def test_missing_file_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "eval", str(tmp_path / "missing.toml"))
    assert code == 2 and "no such file" in err


def test_no_workload_gives_null_sections(capsys, tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text('name = "hardware only"\n')
    code, out, _ = run(capsys, "eval", "--json", str(path))
    assert code == 0
    assert json.loads(out)[0]["training"] is None and json.loads(out)[0]["inference"] is None


def test_infeasible_plan_reports_why(capsys, tmp_path):
    path = tmp_path / "big.toml"
    path.write_text(
        'name = "405B on 8"\n[cluster]\ngpu = "h100-sxm"\ngpu_count = 8\n'
        '[training]\nmodel = "llama-3.1-405b"\nparallelism = { tp = 8, pp = 1, zero = 0 }\n'
        'recompute = "full"\n'
    )
    code, out, _ = run(capsys, "eval", "--json", str(path))
    training = json.loads(out)[0]["training"]
    assert code == 0 and training["fits"] is False
    assert training["reason"].startswith("needs ") and "has 80.0 GB" in training["reason"]
    assert training["step_time_s"] is None and training["bottleneck"] == "memory capacity"


def test_preset_names_work_where_paths_do(capsys):
    code, out, _ = run(capsys, "eval", "--json", "default", "h200-512")
    by_path = run(capsys, "eval", "--json", DEFAULT, str(Path(DEFAULT).with_name("h200-512.toml")))[1]
    assert code == 0 and json.loads(out) == json.loads(by_path)


def test_unknown_preset_name_lists_close_matches(capsys):
    code, out, err = run(capsys, "eval", "defualt")
    assert code == 2 and out == ""
    assert err.strip() == "whatif: defualt: no such file or preset; close matches: default"


def test_dash_reads_standard_input(capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(Path(DEFAULT).read_text()))
    code, out, _ = run(capsys, "eval", "--json", "-")
    assert code == 0 and json.loads(out)[0]["name"].startswith("Default")


@pytest.mark.parametrize("text", ["", "\n  \n", "\ufeff"])
def test_empty_standard_input_is_bad_input(capsys, monkeypatch, text):
    # `cat missing.toml | whatif eval -` evaluated an empty scenario: a table of dashes, exit status 0.
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    code, out, err = run(capsys, "eval", "-")
    assert code == 2 and out == "" and err.strip().startswith("whatif: <stdin>: is empty; allowed:")


def test_standard_input_is_read_once(capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(Path(DEFAULT).read_text()))
    code, _, err = run(capsys, "eval", "-", "-")
    assert code == 2 and "standard input can be read only once" in err


def test_unknown_subcommand_names_the_commands(capsys):
    code, out, err = run(capsys, "evaluate", "default")
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert "'evaluate' is neither a command nor a scenario file or preset name" in line
    for command in ("eval", "compare", "sweep", "goal", "serve", "validate", "catalog", "presets"):
        assert command in line


def test_set_changes_the_scenario_like_editing_the_file(capsys, tmp_path):
    edited = tmp_path / "edited.toml"
    text = (
        Path(DEFAULT)
        .read_text()
        .replace('gpu = "h100-sxm"', 'gpu = "h200-sxm"')
        .replace("gpu_count = 1024", "gpu_count = 512")
    )
    edited.write_text(text)
    by_file = json.loads(run(capsys, "eval", "--json", str(edited))[1])[0]
    code, out, _ = run(
        capsys, "eval", "--json", "default", "--set", "cluster.gpu=h200-sxm", "--set", "cluster.gpu_count=512"
    )
    by_set = json.loads(out)[0]
    assert code == 0
    assert by_set["name"] == by_file["name"] + " (edited)"
    assert by_set["training"] == by_file["training"] and by_set["inference"] == by_file["inference"]


@pytest.mark.parametrize(
    "setting, message",
    [
        ("cluster.gpu_count=0", "whatif: --set: cluster.gpu_count = 0: out of range; allowed: at least 1"),
        (
            "cluster.gpu_count=12",
            "whatif: --set: cluster.gpu_count = 12: gpu_count 12 is not a whole number of 8-GPU nodes; "
            "allowed: a multiple of gpus_per_node",
        ),
        ("cluster.gpu_cnt=64", "whatif: --set: cluster.gpu_cnt = 64: unknown key; did you mean gpu_count or gpu?"),
        ("cluster.gpu=h10", "whatif: --set: cluster.gpu = 'h10': unknown GPU 'h10'; close matches:"),
        ("clustergpu", "whatif: --set: 'clustergpu': expected section.key=value, for example cluster.gpu_count=512"),
        ("training.precision=fp9", "whatif: --set: training.precision = 'fp9': not one of the choices"),
    ],
)
def test_bad_set_gets_one_line_like_a_file(capsys, setting, message):
    code, out, err = run(capsys, "eval", "default", "--set", setting)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(message)


def test_presets_lists_what_each_holds(capsys):
    code, out, _ = run(capsys, "presets")
    assert code == 0
    assert "workloads (for --workload):" in out
    assert "llama-3.1-70b-pretrain" in out and "[training]" in out
    assert "serve-llama70b-8xh100" in out and "[hardware, serving]" in out


def test_validate_prints_cases_and_summary(capsys):
    # One paper's cases: the printing is the same for all (every case is printed by test_docs.py).
    code, out, _ = run(capsys, "validate", "--case", "megatron-sc21")
    assert code == 0
    assert "PAPER-MEGATRON-SC21-1.7B" in out and "median |error|" in out and "MLPI" not in out


def test_validate_json(capsys):
    code, out, _ = run(capsys, "validate", "--json", "--case", "korthikanti")
    data = json.loads(out)
    assert code == 0 and len(data["cases"]) == 4
    assert {"median_abs_error_pct", "worst_abs_error_pct", "meets_target"} <= set(data["summary"][0])


def test_catalog_lists_keys_and_sources(capsys):
    code, out, _ = run(capsys, "catalog", "gpus", "--sources")
    assert code == 0 and "h100-sxm" in out and "whitepaper" in out


def test_no_arguments_off_terminal_prints_the_default_figures(capsys):
    code, out, _ = run(capsys)
    assert code == 0 and "Default" in out and "MFU" in out


@pytest.mark.slow  # starts Python nine times
def test_help_describes_every_option():
    for args in ([], ["eval"], ["validate"], ["catalog"], ["compare"], ["sweep"], ["goal"], ["serve"]):
        out = subprocess.run(
            [sys.executable, "-m", "whatif.tui.cli", *args, "--help"], capture_output=True, text=True, check=True
        ).stdout
        assert "usage: whatif" in out
    out = subprocess.run(
        [sys.executable, "-m", "whatif.tui.cli", "eval", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--json" in out and "--markdown" in out


@pytest.mark.slow  # starts Python
def test_console_script_exit_status_for_bad_input(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[cluster]\ngpu_count = 0\n")
    done = subprocess.run([sys.executable, "-m", "whatif.tui.cli", "eval", str(path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == f"whatif: {path}: cluster.gpu_count = 0: out of range; allowed: at least 1"


def test_serve_on_a_port_in_use_or_an_unknown_host_says_so(capsys):
    # It printed "serving on ..." and then "internal error: OSError: [Errno 98] ... (please report this)".
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(capsys, "serve", "--port", str(port))
    assert code == 2 and f"--port {port}: the port is in use" in err and "serving" not in err
    assert "internal error" not in err and len(err.strip().splitlines()) == 1
    # Standard input: read here, each visitor's session (a process of its own) would have found it empty.
    code, _, err = run(capsys, "serve", "-")
    assert code == 2 and "cannot be served" in err
    code, _, err = run(capsys, "serve", "--host", "no-such-host.invalid")
    assert code == 2 and "unknown address" in err and "internal error" not in err


def test_an_overloaded_fleet_reads_unbounded_not_a_dash(capsys):
    # "fits: yes" beside "TTFT p50 / p99 -" read as a figure not computed; offered more than its capacity,
    # the fleet's queue grows without bound, and the tables say so.
    args = ("serve-llama8b-1xl40s", "--set", "inference.request_rate_per_s=40")
    code, out, _ = run(capsys, "eval", "--json", *args)
    serving = json.loads(out)[0]["inference"]
    assert code == 0 and serving["fits"] and serving["overloaded"] and serving["ttft_p99_ms"] is None
    assert serving["requests_per_s"] < 40  # what it serves is below what is offered
    code, out, _ = run(capsys, "eval", *args)
    (line,) = [x for x in out.splitlines() if "TTFT p50 / p99" in x]
    assert "unbounded (offered load above capacity)" in line
    code, out, _ = run(capsys, "compare", "serve-llama8b-1xl4", *args[:1], "--figures", "ttft_p99", *args[1:])
    assert code == 0 and "unbounded (offered load above capacity)" in out
