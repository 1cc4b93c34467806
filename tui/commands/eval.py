"""`whatif eval SCENARIO...`: every figure of each scenario (a table, Markdown, or the JSON contract of
docs/presets.md), after any --workload and --set; `--save` writes the result as a preset, keeping the
comments of the file it came from."""

from __future__ import annotations

import json
import sys

from whatif.engine import ScenarioError, evaluate, resolve
from whatif.engine.report import records

from .. import files
from .. import format as fmt
from . import common


def add(sub) -> None:
    e = sub.add_parser(
        "eval",
        help="evaluate scenarios and print their figures",
        description="Evaluate one or more scenarios: preset names (`whatif presets`), .toml files, or - for "
        "standard input. Bad input exits with status 2 and a line naming the file or flag, the section.key "
        "and what is allowed.",
    )
    e.add_argument("refs", nargs="+", metavar="SCENARIO", help="preset names or .toml files (- for standard input)")
    e.add_argument("--json", action="store_true", help="print a JSON array, one object per scenario")
    e.add_argument("--markdown", action="store_true", help="print a Markdown table (for meeting notes)")
    e.add_argument(
        "--save",
        metavar="FILE.toml",
        help="save the (one) scenario, with --workload and --set applied, as a preset; the comments and layout "
        "of the file it came from are kept",
    )
    e.add_argument("--overwrite", action="store_true", help="let --save replace an existing file")
    common.add_scenario_options(e)


def run(args) -> int:
    try:
        items = common.load(args.refs, args.settings, args.workload)
    except ScenarioError as exc:
        return common.report(exc)
    if args.save:
        code = _save(args, items)
        if code:
            return code
    return print_results([i.scenario for i in items], args.json, args.markdown)


def _save(args, items: list[common.Item]) -> int:
    if len(items) != 1:
        print("whatif: --save: give exactly one scenario to save", file=sys.stderr)
        return common.BAD_INPUT
    item = items[0]
    scenario = item.scenario
    if args.settings and not any(s.split("=", 1)[0].strip() == "description" for s in args.settings):
        # The description follows the edits: it says what was changed from the file it came from.
        note = f"Edited from {item.label}: " + ", ".join(s.strip() for s in args.settings) + "."
        scenario = files.with_edit_note(scenario, note)
    template = None if item.ref == files.STDIN else files.read(item.ref).text
    try:
        path = files.save_scenario(scenario, args.save, overwrite=args.overwrite, template=template)
    except FileExistsError:
        print(f"whatif: --save: {common.plain(args.save)} exists; add --overwrite to replace it", file=sys.stderr)
        return common.BAD_INPUT
    except OSError as exc:
        print(f"whatif: --save: {common.plain(args.save)}: cannot be written: {exc.strerror}", file=sys.stderr)
        return common.BAD_INPUT
    print(f"saved {common.plain(path, None)}", file=sys.stderr)
    return 0


ROWS = [
    # label, how to read it from a result row, the result column it shows (None: several)
    ("GPUs", fmt.devices, None),
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
    ("  host CPUs", lambda r: fmt.host_cpus(r), None),
    ("  checkpoints", lambda r: fmt.checkpoints(r), None),
    ("  interruptions", lambda r: fmt.interruptions(r), "train_interruptions"),
    ("  power (facility)", lambda r: fmt.power(r), "train_peak_power_mw"),
    ("  racks", lambda r: fmt.racks(r), "train_racks"),
    (
        "  energy (facility)",
        lambda r: fmt.number(r["train_energy_mwh"]) + " MWh" if r["train_energy_mwh"] is not None else fmt.DASH,
        "train_energy_mwh",
    ),
    ("  cost", lambda r: fmt.cost_with_basis(r), "train_cost_usd"),
    ("  electricity", lambda r: fmt.electricity(r), "train_electricity_usd"),
    ("  CO2e", lambda r: fmt.carbon(r), "train_co2_t"),
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
        lambda r: fmt.pair_ms(
            r.get("infer_ttft_ms"), r.get("infer_ttft_p99_ms"), bool(r.get("infer_overloaded") and r.get("infer_fits"))
        ),
        "infer_ttft_p99_ms",
    ),
    (
        "  TPOT p50 / p99",
        lambda r: fmt.pair_ms(r.get("infer_tpot_ms"), r.get("infer_tpot_p99_ms")),
        "infer_tpot_p99_ms",
    ),
    ("    if capacity is off", fmt.latency_band, None),
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
        lambda r: fmt.cost_with_basis(r, "infer_"),
        "infer_cost_usd_per_1m_tokens",
    ),
    ("  electricity", lambda r: fmt.electricity(r, "infer_"), "infer_electricity_usd_per_1m_tokens"),
    ("  bottleneck", lambda r: r.get("infer_bottleneck_detail") or fmt.DASH, None),
]


def _shown(read, row: dict) -> str:
    """A cell's text; a figure the formatter cannot show (missing where its neighbours are not) is a dash,
    never a crash of the whole table."""
    try:
        return read(row)
    except (TypeError, ValueError, KeyError, OverflowError):
        return fmt.DASH


def print_results(scenarios, as_json: bool, markdown: bool) -> int:
    """Every figure of each scenario, one column each: a table, Markdown, or the JSON records."""
    results = evaluate(resolve(scenarios))
    recs = records(results, [s.training is not None for s in scenarios], [s.inference is not None for s in scenarios])
    if as_json:
        print(json.dumps(recs, indent=2))
        return 0
    rows = list(results.iter_rows(named=True))
    header = ["", *[common.plain(r["name"]) for r in rows]]
    body = []
    for label, read, _column in ROWS:
        if read is None:
            body.append([label] + [""] * len(rows))
            continue
        body.append([label, *[_shown(read, r) for r in rows]])
    if markdown:
        print("| " + " | ".join(c.replace("|", "/") for c in header) + " |")  # a '|' in a name splits no column
        print("|" + "---|" * len(header))
        for line in body:
            print("| " + " | ".join(c.replace("|", "/") for c in line) + " |")
        return 0
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for i, title in enumerate(header):
        table.add_column(common.cell(title), overflow="fold", style="bold" if i == 0 else None)
    for line in body:
        table.add_row(*(common.cell(c, None) for c in line))
    common.console().print(table)
    return 0
