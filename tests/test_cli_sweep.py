"""`whatif sweep`: the grid written to CSV, Parquet and JSON, checked against single scenarios by hand."""

import csv
import json

import polars as pl
import pytest
from whatif.engine import evaluate, resolve
from whatif.tui import files
from whatif.tui.cli import main

DEFAULT = files.load_scenario(files.shipped_presets()["default"])


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_two_by_two_to_csv_matches_single_scenarios(capsys, tmp_path):
    out_file = tmp_path / "grid.csv"
    code, out, _ = run(
        capsys,
        "sweep",
        "default",
        "--vary",
        "cluster.gpu_count=512,1024",
        "--vary",
        "cluster.gpu=h100-sxm,h200-sxm",
        "--out",
        str(out_file),
    )
    assert code == 0
    assert "4 points of default (2 x 2)" in out and "wrote 4 rows" in out
    rows = list(csv.DictReader(out_file.open()))
    assert [(r["cluster.gpu_count"], r["cluster.gpu"]) for r in rows] == [
        ("512", "h100-sxm"),
        ("512", "h200-sxm"),
        ("1024", "h100-sxm"),
        ("1024", "h200-sxm"),
    ]
    for r in rows:
        one = evaluate(
            resolve([DEFAULT.edited("cluster", gpu_count=int(r["cluster.gpu_count"]), gpu=r["cluster.gpu"])])
        )
        assert float(r["train_wall_clock_days"]) == pytest.approx(one["train_wall_clock_days"][0], rel=1e-12)
        assert float(r["infer_ttft_p99_ms"]) == pytest.approx(one["infer_ttft_p99_ms"][0], rel=1e-12)
        # By hand: GPU-hours = GPUs x days x 24.
        assert float(r["train_gpu_hours"]) == pytest.approx(
            int(r["cluster.gpu_count"]) * float(r["train_wall_clock_days"]) * 24, rel=1e-12
        )


def test_parquet_and_json_hold_the_same_rows(capsys, tmp_path):
    args = ["sweep", "dgx-h100", "--vary", "training.train_tokens=1e11,2e11"]
    assert run(capsys, *args, "--out", str(tmp_path / "g.parquet"))[0] == 0
    assert run(capsys, *args, "--out", str(tmp_path / "g.json"))[0] == 0
    table = pl.read_parquet(tmp_path / "g.parquet")
    records = json.loads((tmp_path / "g.json").read_text())
    assert table.height == len(records) == 2
    assert table["train_wall_clock_days"].to_list() == pytest.approx([r["train_wall_clock_days"] for r in records])
    # By hand: twice the tokens at the same step time is twice the steps; the wall clock grows by about
    # 2x (checkpoints and restarts scale with it too).
    d1, d2 = table["train_wall_clock_days"].to_list()
    assert d2 / d1 == pytest.approx(2.0, rel=0.02)


def test_small_grids_are_printed(capsys):
    code, out, _ = run(capsys, "sweep", "dgx-h100", "--vary", "facility.electricity_usd_per_kwh=0.05,0.1")
    assert code == 0 and "facility.electricity_usd_per_kwh" in out and "cost: best" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--vary", "cluster.gpu_count=64:8"], "whatif: --vary: cluster.gpu_count = '64:8': the range runs down"),
        (["--vary", "cluster.gpu_cnt=8,16"], "whatif: --vary: cluster.gpu_cnt: unknown key"),
        (["--vary", "cluster.gpu=h10"], "whatif: --vary: cluster.gpu = 'h10': unknown GPU 'h10'"),
        (
            ["--vary", "cluster.gpu_count=8,12"],
            "whatif: --vary: cluster.gpu_count = 12: not a whole number of 8-GPU nodes; allowed: a multiple of "
            "gpus_per_node (1 of 2 points; --skip-invalid leaves them out)",
        ),
        (["--vary", "cluster.gpu_count=8", "--out", "x.xlsx"], "whatif: --out x.xlsx: unknown format '.xlsx'"),
        ([], "whatif: sweep: give at least one --vary KEY=VALUES"),
    ],
)
def test_bad_sweeps_exit_2_with_one_line(capsys, args, message):
    code, out, err = run(capsys, "sweep", "default", *args)
    assert code == 2 and out == ""
    assert err.splitlines()[0].startswith(message), err


def test_skip_invalid_leaves_points_out(capsys):
    code, out, _ = run(capsys, "sweep", "default", "--vary", "cluster.gpu_count=8,12,16", "--skip-invalid")
    assert code == 0 and "1 left out (gpu_count not a whole number of nodes)" in out
