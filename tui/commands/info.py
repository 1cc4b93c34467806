"""`whatif validate`, `whatif catalog` and `whatif presets`: what the model is checked against, what the
catalog holds, and which preset names a command accepts."""

from __future__ import annotations

import json
import sys

from whatif.engine import ScenarioError, evaluate, load_catalog, resolve

from .. import files
from . import common


def add(sub) -> None:
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
    v.set_defaults(run=validate)

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
    k.set_defaults(run=catalog)

    p = sub.add_parser(
        "presets",
        help="list the preset names every command accepts",
        description="List the presets shipped with whatif, the shipped workloads (for --workload) and those "
        "saved in your presets folder. Any command that takes a scenario file takes these names too.",
    )
    p.set_defaults(run=presets)


def validate(args) -> int:
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
    console = common.console()
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


def catalog(args) -> int:
    from rich.table import Table

    cat = load_catalog()
    kinds = cat.kinds()
    console = common.console()
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


def presets(args) -> int:
    """Names any scenario argument accepts, with each preset's title and what it holds."""
    groups = [
        ("shipped", files.shipped_presets()),
        ("workloads (for --workload)", files.shipped_workloads()),
        (f"saved in {files.user_presets_dir()}", files.user_presets()),
    ]
    for title, entries in groups:
        print(f"{title}:" + ("" if entries else " (none)"))
        for name, path in entries.items():
            try:
                scenario, data = _load(path)
                line = f"{scenario.name}  [{_holds(data)}]"
            except ScenarioError as exc:
                line = f"(invalid: {exc.issues[0]})"
            print(f"  {name:32s} {line}")
    return 0


def _load(path):
    import tomllib

    text = path.read_text(encoding="utf-8")
    scenario, _ = files.parse_scenario(text, str(path))
    return scenario, tomllib.loads(text)


def _holds(data: dict) -> str:
    """'hardware, training, serving' from the sections a preset file holds."""
    from whatif.engine.presets_merge import HARDWARE_SECTIONS

    parts = []
    if any(k in data for k in HARDWARE_SECTIONS):
        parts.append("hardware")
    parts += [label for key, label in (("training", "training"), ("inference", "serving")) if key in data]
    return ", ".join(parts) or "defaults only"
