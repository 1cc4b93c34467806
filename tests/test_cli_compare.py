"""`whatif compare`: the rows chosen, changes against the chosen baseline, and output that parses."""

import csv
import io
import json
from pathlib import Path

import pytest
from whatif.tui.cli import main
from whatif.tui.commands import figures

PRESETS = Path(__file__).parents[1] / "presets"


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def records(capsys, *refs):
    code, out, _ = run(capsys, "eval", "--json", *refs)
    assert code == 0
    return json.loads(out)


def markdown_rows(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in rows]


def test_default_is_compact(capsys):
    code, out, _ = run(capsys, "compare", "default", "h200-512", "--format", "markdown")
    assert code == 0
    rows = markdown_rows(out)
    header, rule, body = rows[0], rows[1], rows[2:]
    assert header == ["figure", "default (baseline)", "h200-512"]
    assert set(rule) == {"---"}
    assert len(body) <= 15 and len(body) == len(figures.HEADLINE)


def test_markdown_changes_are_hand_checked(capsys):
    base, other = records(capsys, "default", "b200-512")
    code, out, _ = run(capsys, "compare", "default", "b200-512", "--figures", "days,mfu,bottleneck", "--markdown")
    assert code == 0
    rows = {r[0]: r[1:] for r in markdown_rows(out)[2:]}
    days, days_b = base["training"]["wall_clock_days"], other["training"]["wall_clock_days"]
    change = 100 * (days_b / days - 1)
    # Fewer days is better: the B200 cluster is faster, so the cell carries the better mark.
    assert days_b < days
    assert rows["training: wall clock"][1] == f"{days_b:,.1f} d ({change:+.0f}% ✓)"
    assert rows["training: wall clock"][0] == f"{days:,.1f} d"
    # Text rows carry no change.
    assert "(" not in rows["training: bottleneck"][1]


def test_csv_values_are_the_engine_figures(capsys):
    base, other = records(capsys, "default", "h200-512")
    code, out, _ = run(
        capsys, "compare", "default", "h200-512", "--figures", "days,cost,ttft_p99,plan", "--format", "csv"
    )
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert [r["figure"] for r in table] == ["days", "cost", "ttft_p99", "plan"]
    days = table[0]
    assert float(days["default"]) == pytest.approx(base["training"]["wall_clock_days"], rel=1e-12)
    assert float(days["h200-512"]) == pytest.approx(other["training"]["wall_clock_days"], rel=1e-12)
    expected = other["training"]["wall_clock_days"] / base["training"]["wall_clock_days"] - 1
    assert float(days["h200-512 vs default"]) == pytest.approx(expected, rel=1e-9)
    assert days["better"] == "lower"
    assert float(table[2]["h200-512"]) == pytest.approx(other["inference"]["ttft_p99_ms"], rel=1e-12)
    assert table[3]["h200-512 vs default"] == ""  # text rows: no change


def test_zero_baseline_gives_a_difference_not_a_ratio(capsys, tmp_path):
    free = tmp_path / "free.toml"
    text = (
        (PRESETS / "default.toml")
        .read_text()
        .replace("electricity_usd_per_kwh = 0.0862", "electricity_usd_per_kwh = 0")
        .replace('rental_price = "aws-2026-01"', "usd_per_gpu_hour = 0")
    )
    free.write_text(text)
    (other,) = records(capsys, "default")
    code, out, _ = run(capsys, "compare", str(free), "default", "--figures", "cost", "--json")
    assert code == 0
    (cost,) = json.loads(out)["figures"]
    assert cost["values"][0] == 0
    change = cost["changes"][1]
    # By hand: a zero baseline has no ratio; the change is the whole cost, and a higher cost is worse.
    assert change["relative"] is None
    assert change["absolute"] == pytest.approx(other["training"]["cost_usd"], rel=1e-12)
    assert change["better"] is False
    assert cost["shown"][1].endswith(")") and "+$" in cost["shown"][1] and "%" not in cost["shown"][1]


def test_far_off_ratio_is_a_difference(capsys):
    ch = figures.change(figures.BY_ID["cost"], 2e9, 1.0)
    assert ch.relative is None and ch.absolute == 2e9 - 1
    assert figures.change_text(figures.BY_ID["cost"], ch) == "+$2.00B ✗"
    assert figures.change_text(figures.BY_ID["cost"], figures.change(figures.BY_ID["cost"], 150.0, 100.0)) == "+50% ✗"
    assert figures.change_text(figures.BY_ID["mfu"], figures.change(figures.BY_ID["mfu"], 0.5, 0.4)) == "+25% ✓"
    assert figures.change_text(figures.BY_ID["days"], figures.change(figures.BY_ID["days"], 30.0, 10.0)) == "x3 ✗"
    assert figures.change(figures.BY_ID["days"], None, 10.0) is None


def test_baseline_by_name(capsys):
    code, out, _ = run(
        capsys, "compare", "default", "h200-512", "--baseline", "h200-512", "--figures", "gpus", "--json"
    )
    body = json.loads(out)
    assert code == 0 and body["baseline"] == "h200-512"
    # By hand: 1,024 GPUs against a 512-GPU baseline is +100%.
    assert body["figures"][0]["changes"][0]["relative"] == pytest.approx(1.0)
    assert body["figures"][0]["changes"][1] is None


def test_unknown_baseline_and_figure_are_bad_input(capsys):
    code, out, err = run(capsys, "compare", "default", "h200-512", "--baseline", "nope")
    assert code == 2 and out == ""
    assert err.strip() == "whatif: --baseline 'nope' is none of the scenarios compared; allowed: default, h200-512"
    code, _, err = run(capsys, "compare", "default", "--figures", "days,dayz")
    assert code == 2 and err.startswith("whatif: --figures: unknown figure 'dayz'; did you mean days?")
    # The list of figures is the answer: shown whole (it was cut at 200 characters, "c... (508 characters)"),
    # while a long id typed is cut.
    assert err.rstrip().endswith(", " + ", ".join(figures.BY_ID)) and "characters)" not in err
    code, _, err = run(capsys, "compare", "default", "--figures", "q" * 500)
    assert code == 2 and "(502 characters)" in err and err.rstrip().endswith(", ".join(figures.BY_ID))


def test_serving_only_preset_shows_why_it_has_no_training(capsys):
    code, out, _ = run(
        capsys, "compare", "default", "serve-llama70b-8xh100", "--figures", "days,cost,ttft_p99", "--json"
    )
    figs = {f["id"]: f for f in json.loads(out)["figures"]}
    assert code == 0
    assert figs["days"]["values"][1] is None and figs["days"]["shown"][1] == "- (runs no training)"
    assert figs["cost"]["shown"][1] == "-"
    assert figs["ttft_p99"]["values"][1] is not None


def test_workload_on_every_scenario_but_not_on_serving_only_ones(capsys):
    code, out, _ = run(
        capsys,
        "compare",
        "dgx-h100",
        "mi300x-8",
        "serve-llama70b-8xh100",
        "--workload",
        "llama-3.1-70b-pretrain",
        "--json",
    )
    body = json.loads(out)
    assert code == 0
    ids = [f["id"] for f in body["figures"]]
    assert "ttft_p99" not in ids and "days" in ids  # rows of the workload's kind only
    days = body["figures"][ids.index("days")]
    # By hand: the workload trains 15T tokens; on 8 GPUs that is years, and each value equals eval of the merge.
    dgx = records(capsys, "dgx-h100", "--workload", "llama-3.1-70b-pretrain")[0]
    assert days["values"][0] == pytest.approx(dgx["training"]["wall_clock_days"], rel=1e-12)
    assert days["values"][2] is None and days["shown"][2] == "-"
    plan = body["figures"][ids.index("plan")]  # the first training row says why
    assert plan["shown"][2] == "- (serving-only scenario: it runs no training)"
    assert body["scenarios"][2]["left_out"] == {"training": "serving-only scenario: it runs no training"}


def test_table_marks_better_and_worse(capsys):
    code, out, _ = run(capsys, "compare", "default", "b200-512", "--figures", "days,gpus")
    assert code == 0 and "✓" in out and "default (baseline)" in out


def test_a_pipe_in_a_name_or_file_name_splits_no_markdown_column(capsys, tmp_path):
    # The header row took names and file names as they were: "a | b" made a table of one column too many.
    path = tmp_path / "p|ipe.toml"
    path.write_text('name = "a | b [red]c[/]"\n[cluster]\ngpu_count = 64\n')
    code, out, _ = run(capsys, "compare", "default", str(path), "--markdown", "--figures", "gpus,days")
    assert code == 0
    rows = markdown_rows(out)
    assert {len(r) for r in rows} == {3}, rows
    code, out, _ = run(capsys, "eval", "--markdown", str(path), "default")
    assert code == 0
    rows = markdown_rows(out)
    assert {len(r) for r in rows} == {3} and rows[0][1] == "a / b [red]c[/]", rows[0]
