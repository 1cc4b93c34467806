"""The `whatif` command: the explorer, and headless commands for scripts and meeting notes.

    whatif [PRESET.toml]            open the explorer (prints the figures instead when not on a terminal)
    whatif eval FILE... [--json]    evaluate scenario files
    whatif compare BASE FILE...     side by side, with ratios against the first
    whatif validate                 predictions against published runs, with the error of each
    whatif catalog [KIND]           the hardware and model catalog, with sources
    whatif presets                  shipped and saved presets

Exit status: 0 success, 2 bad input (the message names the file, the section.key and why), 1 a fault in
whatif itself (reported in one line, never a traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import PackageNotFoundError, version

from whatif.engine import ScenarioError, evaluate, load_catalog, resolve
from whatif.engine.report import records

from . import files
from . import format as fmt

COMMANDS = ("eval", "compare", "validate", "catalog", "presets")


def _console():
    """A rich console; off a terminal (pipes, files, CI) it is wide enough not to fold the tables."""
    import os

    from rich.console import Console

    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
    return Console(highlight=False, soft_wrap=False, width=width)


def _version() -> str:
    try:
        return version("whatif")
    except PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="whatif",
        description="What-if explorer for AI infrastructure: training time, serving latency, idle GPUs and energy. "
        "With no command, opens the explorer on the built-in default scenario (or on PRESET.toml).",
        epilog="Scenario keys and units: docs/presets.md. Every formula and its source: docs/model.md.",
    )
    p.add_argument("--version", action="version", version=f"whatif {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    e = sub.add_parser(
        "eval",
        help="evaluate scenario files and print their figures",
        description="Evaluate one or more scenario TOML files. Bad files exit with status 2 and a "
        "line naming the file, the section.key and what is allowed.",
    )
    e.add_argument("files", nargs="+", metavar="FILE.toml", help="scenario files (presets)")
    e.add_argument("--json", action="store_true", help="print a JSON array, one object per scenario")
    e.add_argument("--markdown", action="store_true", help="print a Markdown table (for meeting notes)")

    c = sub.add_parser(
        "compare",
        help="compare scenarios side by side against the first",
        description="Evaluate scenario files and show each against the first (ratios).",
    )
    c.add_argument("files", nargs="+", metavar="FILE.toml", help="baseline first, then the alternatives")
    c.add_argument("--json", action="store_true", help="print a JSON array, one object per scenario")
    c.add_argument("--markdown", action="store_true", help="print a Markdown table")

    v = sub.add_parser(
        "validate",
        help="compare predictions with published runs",
        description="Evaluate every shipped calibration case (published training runs) and print "
        "prediction, published figure and error, then the median and worst absolute "
        "error against the targets. Known gaps are listed but not held to the target.",
    )
    v.add_argument("--json", action="store_true", help="print the comparisons as JSON")
    v.add_argument("--markdown", action="store_true", help="print the comparison as a Markdown table (docs/model.md)")
    v.add_argument("--case", metavar="TEXT", help="only cases whose file or id contains TEXT")

    k = sub.add_parser(
        "catalog",
        help="list catalog entries (GPUs, fabrics, storage, cooling, models, workloads)",
        description="List the catalog: keys to use in scenario files, key figures and sources.",
    )
    k.add_argument(
        "kind",
        nargs="?",
        choices=["gpus", "fabrics", "nvme", "shared-fs", "cooling", "models", "workloads"],
        help="one section (default: all keys, briefly)",
    )
    k.add_argument("--sources", action="store_true", help="show each entry's source and notes")

    sub.add_parser(
        "presets",
        help="list shipped and saved presets",
        description="List the presets shipped with whatif and those saved in your presets folder.",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the promise is: never a traceback
        print(f"whatif: internal error: {type(exc).__name__}: {exc} (please report this)", file=sys.stderr)
        return 1


def _main(argv: list[str]) -> int:
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        return _explore(argv[0], extra=argv[1:])
    args = _parser().parse_args(argv)
    if args.command is None:
        return _explore(None, extra=[])
    return {"eval": _eval, "compare": _compare, "validate": _validate, "catalog": _catalog, "presets": _presets}[
        args.command
    ](args)


def _load_all(paths: list[str]):
    scenarios, errors = [], []
    for path in paths:
        try:
            scenarios.append(files.load_scenario(path))
        except ScenarioError as exc:
            errors.extend(exc.lines())
    if errors:
        for line in errors:
            print(f"whatif: {line}", file=sys.stderr)
        return None
    return scenarios


def default_scenario():
    return files.load_scenario(files.shipped_presets()["default"])


def _explore(preset: str | None, extra: list[str]) -> int:
    if extra:
        print(f"whatif: unexpected argument {extra[0]!r}; see `whatif --help`", file=sys.stderr)
        return 2
    try:
        scenario = files.load_scenario(preset) if preset else default_scenario()
    except ScenarioError as exc:
        for line in exc.lines():
            print(f"whatif: {line}", file=sys.stderr)
        return 2
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        # Not on a terminal (a pipe, CI, a script): print the figures instead of opening the explorer.
        return _print_results([scenario], as_json=False, markdown=False)
    try:
        from .app import run_app
    except ImportError:  # the explorer lands with its own issue; until then, the figures
        return _print_results([scenario], as_json=False, markdown=False)
    return run_app(scenario, path=preset)


def _evaluate(scenarios):
    results = evaluate(resolve(scenarios))
    return results, records(
        results, [s.training is not None for s in scenarios], [s.inference is not None for s in scenarios]
    )


def _eval(args) -> int:
    scenarios = _load_all(args.files)
    if scenarios is None:
        return 2
    return _print_results(scenarios, args.json, args.markdown)


def _compare(args) -> int:
    scenarios = _load_all(args.files)
    if scenarios is None:
        return 2
    return _print_results(scenarios, args.json, args.markdown, baseline=True)


ROWS = [
    # label, how to read it from a result row, whether larger is better (for comparisons)
    ("GPUs", lambda r: fmt.number(r["n_gpus"]), None),
    ("Training", None, None),
    ("  plan", lambda r: "(no training workload)" if r["train_reason_code"] == 8 else fmt.plan(r), None),
    (
        "  fits",
        lambda r: (
            fmt.DASH if r["train_reason_code"] == 8 else ("yes" if r["train_fits"] else f"no: {r['train_reason']}")
        ),
        None,
    ),
    ("  step time", lambda r: fmt.seconds(r["train_step_time_s"]), "train_step_time_s"),
    ("  tokens/s", lambda r: fmt.si(r["train_tokens_per_s"]), "train_tokens_per_s"),
    ("  wall clock", lambda r: fmt.duration_days(r["train_wall_clock_days"]), "train_wall_clock_days"),
    ("  GPU-hours", lambda r: fmt.si(r["train_gpu_hours"]), "train_gpu_hours"),
    ("  MFU", lambda r: fmt.pct(r["train_mfu"]), "train_mfu"),
    ("  idle GPU", lambda r: fmt.pct_points(r["train_idle_gpu_pct"]), "train_idle_gpu_pct"),
    ("    of which", lambda r: fmt.idle_parts(r), None),
    ("  goodput", lambda r: fmt.pct(r.get("train_goodput")), "train_goodput"),
    ("  input data", lambda r: fmt.input_data(r), None),
    ("  checkpoints", lambda r: fmt.checkpoints(r), None),
    ("  interruptions", lambda r: fmt.interruptions(r), "train_interruptions"),
    ("  power (facility)", lambda r: fmt.power(r), "train_peak_power_mw"),
    ("  racks", lambda r: fmt.racks(r), "train_racks"),
    (
        "  energy (facility)",
        lambda r: fmt.number(r["train_energy_mwh"]) + " MWh" if r["train_energy_mwh"] is not None else fmt.DASH,
        "train_energy_mwh",
    ),
    ("  cost", lambda r: fmt.money(r["train_cost_usd"]), "train_cost_usd"),
    (
        "  CO2e",
        lambda r: fmt.number(r["train_co2_t"]) + " t" if r["train_co2_t"] is not None else fmt.DASH,
        "train_co2_t",
    ),
    ("  bottleneck", lambda r: r["train_bottleneck_detail"] or fmt.DASH, None),
    ("Serving", None, None),
    ("  plan", lambda r: fmt.serving_plan(r), None),
    (
        "  fits",
        lambda r: fmt.DASH if r.get("infer_tp") is None else ("yes" if r["infer_fits"] else f"no: {r['infer_reason']}"),
        None,
    ),
    (
        "  TTFT p50 / p99",
        lambda r: fmt.pair_ms(r.get("infer_ttft_ms"), r.get("infer_ttft_p99_ms")),
        "infer_ttft_p99_ms",
    ),
    (
        "  TPOT p50 / p99",
        lambda r: fmt.pair_ms(r.get("infer_tpot_ms"), r.get("infer_tpot_p99_ms")),
        "infer_tpot_p99_ms",
    ),
    ("  tokens/s", lambda r: fmt.si(r.get("infer_tokens_per_s")), "infer_tokens_per_s"),
    (
        "  capacity",
        lambda r: (
            fmt.si(r.get("infer_capacity_tokens_per_s"), " tok/s")
            + (f" ({fmt.pct(r.get('infer_utilization'))} used)" if r.get("infer_utilization") is not None else "")
        ),
        "infer_capacity_tokens_per_s",
    ),
    ("  within p99 limits", lambda r: fmt.si(r.get("infer_slo_tokens_per_s"), " tok/s"), "infer_slo_tokens_per_s"),
    ("  max batch", lambda r: fmt.number(r.get("infer_max_batch")), "infer_max_batch"),
    ("  idle GPU", lambda r: fmt.pct_points(r.get("infer_idle_gpu_pct")), "infer_idle_gpu_pct"),
    (
        "  energy / 1k tokens",
        lambda r: (
            fmt.number(r.get("infer_energy_wh_per_1k_tokens")) + " Wh"
            if r.get("infer_energy_wh_per_1k_tokens") is not None
            else fmt.DASH
        ),
        "infer_energy_wh_per_1k_tokens",
    ),
    (
        "  cost / 1M tokens",
        lambda r: fmt.money_small(r.get("infer_cost_usd_per_1m_tokens")),
        "infer_cost_usd_per_1m_tokens",
    ),
    ("  bottleneck", lambda r: r.get("infer_bottleneck_detail") or fmt.DASH, None),
]


def _print_results(scenarios, as_json: bool, markdown: bool, baseline: bool = False) -> int:
    results, recs = _evaluate(scenarios)
    if as_json:
        print(json.dumps(recs, indent=2))
        return 0
    rows = list(results.iter_rows(named=True))
    header = ["", *[r["name"] for r in rows]]
    body = []
    for label, read, key in ROWS:
        if read is None:
            body.append([label] + [""] * len(rows))
            continue
        cells = [read(r) for r in rows]
        if baseline and key:
            base = rows[0].get(key)
            pairs = zip(cells[1:], rows[1:], strict=True)
            cells = [cells[0]] + [f"{c} ({fmt.ratio(r.get(key), base)})" for c, r in pairs]
        body.append([label, *cells])
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in body:
            print("| " + " | ".join(c.replace("|", "/") for c in line) + " |")
        return 0
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for i, title in enumerate(header):
        table.add_column(title, overflow="fold", style="bold" if i == 0 else None)
    for line in body:
        table.add_row(*line)
    _console().print(table)
    return 0


def _validate(args) -> int:
    from whatif.engine.calibration import compare, summarize

    try:
        cases = files.calibration_cases()
    except ScenarioError as exc:
        for line in exc.lines():
            print(f"whatif: {line}", file=sys.stderr)
        return 2
    if args.case:
        cases = [(c, s) for c, s in cases if args.case.lower() in (c.file + c.id).lower()]
    if not cases:
        print("whatif: no calibration case matches", file=sys.stderr)
        return 2
    results = evaluate(resolve([s for _, s in cases]))
    comparisons = compare([c for c, _ in cases], results)
    summaries = [s for s in (summarize(comparisons, w) for w in ("training", "inference")) if s]
    if args.json:
        print(
            json.dumps(
                {
                    "cases": [
                        {
                            "id": c.case.id,
                            "file": c.case.file,
                            "metric": c.case.metric,
                            "published": c.case.value,
                            "predicted": c.predicted,
                            "error_pct": c.error_pct,
                            "known_gap": c.case.known_gap or None,
                        }
                        for c in comparisons
                    ],
                    "summary": [
                        {
                            "workload": s.workload,
                            "cases": s.n,
                            "median_abs_error_pct": s.median_abs_pct,
                            "worst_abs_error_pct": s.worst_abs_pct,
                            "worst_case": s.worst_id,
                            "meets_target": s.meets_target,
                            "known_gaps": s.gaps,
                        }
                        for s in summaries
                    ],
                },
                indent=2,
            )
        )
        return 0
    if args.markdown:
        print("| case | metric | published | predicted | error |")
        print("|---|---|---|---|---|")
        for c in comparisons:
            err = "-" if c.error_pct is None else f"{c.error_pct:+.1f}%"
            gap = " (known gap)" if c.case.known_gap else ""
            pred = "-" if c.predicted is None else f"{c.predicted:,.4g}"
            print(f"| {c.case.id}{gap} | {c.case.metric} | {c.case.value:,.4g} | {pred} | {err} |")
        print()
        for s in summaries:
            print(
                f"{s.workload}: {s.n} cases held to the target; median |error| {s.median_abs_pct:.1f}%, "
                f"worst {s.worst_abs_pct:.1f}% ({s.worst_id})."
            )
        return 0
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("case", "metric", "published", "predicted", "error", "note"):
        table.add_column(col, overflow="fold")
    for c in comparisons:
        err = "-" if c.error_pct is None else f"{c.error_pct:+.1f}%"
        note = f"known gap: {c.case.known_gap}" if c.case.known_gap else (c.detail or "")
        table.add_row(
            c.case.id,
            c.case.metric,
            f"{c.case.value:,.4g}",
            "-" if c.predicted is None else f"{c.predicted:,.4g}",
            err,
            note,
        )
    console = _console()
    console.print(table)
    from whatif.engine.calibration import TARGETS

    for s in summaries:
        med, worst = TARGETS[s.workload]
        verdict = "meets" if s.meets_target else "MISSES"
        console.print(
            f"{s.workload}: {s.n} cases, median |error| {s.median_abs_pct:.1f}% (target <= {med:.0f}%), "
            f"worst {s.worst_abs_pct:.1f}% on {s.worst_id} (target <= {worst:.0f}%): {verdict} the target"
            + (f"; known gaps not held to it: {', '.join(s.gaps)}" if s.gaps else "")
        )
    return 0


def _catalog(args) -> int:
    from rich.table import Table

    cat = load_catalog()
    kinds = cat.kinds()
    console = _console()
    if args.kind is None:
        for kind, entries in kinds.items():
            console.print(f"[bold]{kind}[/bold]: {', '.join(entries)}")
        console.print("`whatif catalog KIND` shows figures; add --sources for sources.")
        return 0
    columns = {
        "gpus": ("bf16_tflops", "fp8_tflops", "hbm_gb", "hbm_tb_s", "tdp_w", "scale_up"),
        "fabrics": ("kind", "gb_s_per_direction", "busbw_efficiency", "latency_us"),
        "nvme": ("pcie_gen", "read_gb_s", "write_gb_s"),
        "shared-fs": ("read_gb_s", "write_gb_s"),
        "cooling": ("pue", "rack_limit_kw", "sustained_clock_factor"),
        "models": ("params_total_b", "params_active_b", "layers", "hidden", "heads", "kv_heads"),
        "workloads": ("sample_bytes", "batch_samples", "compute_s_per_batch", "au_threshold"),
    }[args.kind]
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("key", "name", *columns, *(("source",) if args.sources else ())):
        table.add_column(col, overflow="fold")
    for key, entry in kinds[args.kind].items():
        cells = [key, entry.name] + ["-" if getattr(entry, c) is None else str(getattr(entry, c)) for c in columns]
        if args.sources:
            cells.append(entry.source + (f" NOTE: {entry.notes}" if getattr(entry, "notes", "") else ""))
        table.add_row(*cells)
    console.print(table)
    return 0


def _presets(args) -> int:
    print("shipped:")
    for name, path in files.shipped_presets().items():
        try:
            title = files.load_scenario(path).name
        except ScenarioError as exc:
            title = f"(invalid: {exc.issues[0]})"
        print(f"  {name:32s} {title}")
    saved = files.user_presets()
    print(f"saved in {files.user_presets_dir()}:" + ("" if saved else " (none)"))
    for name, path in saved.items():
        try:
            title = files.load_scenario(path).name
        except ScenarioError as exc:
            title = f"(invalid: {exc.issues[0]})"
        print(f"  {name:32s} {title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
