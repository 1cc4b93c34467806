"""`whatif sweep SCENARIO --vary key=values ...`: one vectorised evaluation of the whole grid.

Every figure per point goes to --out (CSV, Parquet or JSON by the file's suffix); the terminal gets a short
summary (the best point for each headline figure, and the range of each) and, for small grids, the points.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import polars as pl
from whatif.engine import ScenarioError
from whatif.engine import sweep as engine_sweep

from .. import format as fmt
from . import common

OUT_SUFFIXES = (".csv", ".parquet", ".json")
# Grids up to this many points are printed whole; beyond, only the summary.
SHOWN_POINTS = 24
# Work (engine rows) from which a progress bar is drawn, on a terminal (a searched plan takes ~1-3 ms a row).
PROGRESS_ROWS = 2_000
SUMMARY = [
    ("train_wall_clock_days", "wall clock", fmt.duration_days, "lower"),
    ("train_cost_usd", "cost", fmt.money, "lower"),
    ("train_mfu", "MFU", fmt.pct, "higher"),
    ("infer_ttft_p99_ms", "TTFT p99", fmt.ms, "lower"),
    ("infer_slo_tokens_per_s", "tokens/s within p99 limits", fmt.si, "higher"),
    ("infer_cost_usd_per_1m_tokens", "cost / 1M tokens", fmt.money_small, "lower"),
]


def add(sub) -> None:
    s = sub.add_parser(
        "sweep",
        help="evaluate a grid of variations of a scenario",
        description="Vary keys of a scenario over a grid and evaluate every point at once. "
        "Values: key=a,b,c (TOML literals; bare words are text), key=start:stop:xFACTOR (geometric; whole "
        "numbers when start and stop are), key=start:stop:STEP or key=start:stop (step 1). Numeric keys of "
        "docs/presets.md vary as columns "
        "(fast); catalog keys and other words are resolved once per combination.",
        epilog="Example: whatif sweep default --vary cluster.gpu_count=8:32768:x2 "
        "--vary cluster.gpu=h100-sxm,h200-sxm,b200 --out results.csv",
    )
    s.add_argument("ref", metavar="SCENARIO", help="a preset name or .toml file (- for standard input)")
    s.add_argument(
        "--vary", action="append", default=[], metavar="KEY=VALUES", help="a key and its values (repeatable)"
    )
    s.add_argument("--out", metavar="FILE", help="write every figure of every point: .csv, .parquet or .json")
    s.add_argument(
        "--skip-invalid",
        action="store_true",
        help="leave out points that break a rule joining two keys (such as whole nodes) instead of stopping",
    )
    common.add_scenario_options(s)


def run(args) -> int:
    if not args.vary:
        print("whatif: sweep: give at least one --vary KEY=VALUES", file=sys.stderr)
        return common.BAD_INPUT
    if args.out and Path(args.out).suffix.lower() not in OUT_SUFFIXES:
        print(
            f"whatif: --out {args.out}: unknown format {Path(args.out).suffix or '(no suffix)'!r}; "
            f"allowed: {', '.join(OUT_SUFFIXES)}",
            file=sys.stderr,
        )
        return common.BAD_INPUT
    try:
        axes = [engine_sweep.parse_axis(text) for text in args.vary]
        (item,) = common.load([args.ref], args.settings, args.workload)
        grid = engine_sweep.build(item.scenario, axes)
    except ScenarioError as exc:
        return common.report(exc)
    start = time.perf_counter()
    try:
        result = _run_with_progress(grid, args.skip_invalid)
    except ScenarioError as exc:
        return common.report(exc)
    seconds = time.perf_counter() - start
    if args.out:
        try:
            write(result.results, args.out)
        except OSError as exc:
            print(f"whatif: --out {args.out}: cannot be written: {exc.strerror}", file=sys.stderr)
            return common.BAD_INPUT
    summary(item, grid, result, seconds, args.out)
    return 0


def _run_with_progress(grid, skip_invalid: bool):
    """The sweep, with a progress bar on standard error when it is a terminal and the work is long."""
    if not sys.stderr.isatty():
        return engine_sweep.run(grid, skip_invalid=skip_invalid)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar, task = None, None

    def progress(done: int, total: int) -> None:
        nonlocal bar, task
        if total < PROGRESS_ROWS:
            return
        if bar is None:  # started on the first report, so short sweeps draw nothing
            bar = Progress(
                TextColumn("evaluating"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=common.console(stderr=True),
                transient=True,
            )
            bar.start()
            task = bar.add_task("sweep", total=total)
        bar.update(task, completed=done)

    try:
        return engine_sweep.run(grid, skip_invalid=skip_invalid, progress=progress)
    finally:
        if bar is not None:
            bar.stop()


def write(results: pl.DataFrame, path: str) -> None:
    """The whole result frame; text stays text, missing figures are empty (CSV) or null."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        results.write_csv(path)
    elif suffix == ".parquet":
        results.write_parquet(path)
    else:
        results.write_json(path)


def summary(item, grid, result, seconds: float, out: str | None) -> None:
    con = common.console()
    res = result.results
    keys = [a.key for a in grid.axes]
    line = (
        f"{result.points:,} points of {common.markup(item.label)} ({' x '.join(str(len(a.values)) for a in grid.axes)})"
    )
    line += f" in {seconds:.2f} s"
    if result.skipped:
        line += f"; {result.skipped:,} left out ({common.markup('; '.join(result.skipped_reasons), None)})"
    con.print(line)
    if "train_fits" in res.columns and item.scenario.training is not None:
        fits = int(res["train_fits"].sum())
        con.print(f"training plans that fit: {fits:,} of {res.height:,}")
    for column, label, show, better in SUMMARY:
        if column not in res.columns or res[column].null_count() == res.height:
            continue
        values = res[column]
        best_i = int((values.arg_min() if better == "lower" else values.arg_max()) or 0)
        at = ", ".join(f"{k}={res[k][best_i]}" for k in keys)
        lo, hi = values.min(), values.max()
        con.print(f"{label}: best {show(values[best_i])} at {common.markup(at, 300)}; range {show(lo)} to {show(hi)}")
    if res.height <= SHOWN_POINTS:
        _points(con, res, keys)
    if out:
        con.print(f"wrote {res.height:,} rows x {res.width} columns to {common.markup(out, None)}")
    elif res.height > SHOWN_POINTS:
        con.print("add --out results.csv (or .parquet, .json) for every figure of every point")


def _points(con, res: pl.DataFrame, keys: list[str]) -> None:
    from rich.table import Table

    shown = [(c, label, show) for c, label, show, _ in SUMMARY if c in res.columns and res[c].null_count() < res.height]
    table = Table(box=None, pad_edge=False, header_style="bold")
    for k in keys:
        table.add_column(common.cell(k))
    for _, label, _ in shown:
        table.add_column(label, justify="right")
    for row in res.iter_rows(named=True):
        cells = [common.cell(row[k]) for k in keys]
        cells += [show(row[c]) for c, _, show in shown]
        table.add_row(*cells)
    con.print(table)
