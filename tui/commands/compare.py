"""`whatif compare A B ...`: the figures you choose, side by side, each against the baseline you choose.

A cell is the value and its change against the baseline: a percentage where the baseline is a usable
denominator, else the difference ('+$1.2M'), and '-' where either side has no figure. Text rows (plans,
bottlenecks) carry no change. Better is marked ✓ and worse ✗ (and green/red on a terminal). A scenario that
runs no training (or no serving) shows '-' in those rows, the first of them with the reason.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys

from whatif.engine import ScenarioError, evaluate, resolve
from whatif.engine.presets_merge import workload_kinds
from whatif.engine.report import records

from .. import files
from . import common
from . import figures as figs

FORMATS = ("table", "markdown", "csv", "json")
SECTION_TITLES = {"training": "training", "inference": "serving"}


def add(sub) -> None:
    c = sub.add_parser(
        "compare",
        help="compare scenarios side by side against a baseline",
        description="Evaluate scenarios (files, preset names, or - for standard input) and show the chosen "
        "figures side by side, each with its change against the baseline.",
        epilog="Figures: "
        + ", ".join(figs.BY_ID)
        + ". The default is the headline set: "
        + ", ".join(f.id for f in figs.HEADLINE)
        + ".",
    )
    c.add_argument("refs", nargs="+", metavar="SCENARIO", help="preset names or .toml files (- for standard input)")
    c.add_argument(
        "--baseline", metavar="NAME", help="the scenario the others are measured against (default: the first)"
    )
    c.add_argument("--figures", metavar="ID,...", help="figures to show, comma-separated, or 'all'")
    c.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    c.add_argument("--json", action="store_const", const="json", dest="format", help="--format json")
    c.add_argument(
        "--markdown", action="store_const", const="markdown", dest="format", help="same as --format markdown"
    )
    common.add_scenario_options(c)


def run(args) -> int:
    try:
        chosen = figs.choose(args.figures)
    except ValueError as exc:
        print(f"whatif: {common.plain(exc, None)}", file=sys.stderr)  # the user's text in it is cut already
        return common.BAD_INPUT
    try:
        items = common.load(args.refs, args.settings, args.workload, lenient=True)
    except ScenarioError as exc:
        return common.report(exc)
    base_index = _baseline(items, args.baseline)
    if base_index is None:
        names = ", ".join(dict.fromkeys(common.plain(i.label) for i in items))
        given = common.plain(repr(args.baseline))
        print(f"whatif: --baseline {given} is none of the scenarios compared; allowed: {names}", file=sys.stderr)
        return common.BAD_INPUT
    if args.workload and args.workload != "-" and args.figures is None:
        # The comparison is about the workload: rows of the kinds of work it brings.
        kinds = workload_kinds(files.read(args.workload).data)
        chosen = [f for f in chosen if f.kind is None or f.kind in kinds]
    table = build(items, chosen, base_index)
    out = {"table": _table, "markdown": _markdown, "csv": _csv, "json": _json}[args.format](table)
    if out is not None:
        sys.stdout.write(out)
    return 0


def _baseline(items: list[common.Item], name: str | None) -> int | None:
    if name is None:
        return 0
    for i, item in enumerate(items):
        if name in (item.ref, item.label, item.scenario.name):
            return i
    return None


class Table:
    """The comparison as data: one row per figure, one cell per scenario."""

    def __init__(self, items, chosen, base_index, rows, recs):
        self.items, self.figures, self.base, self.rows, self.records = items, chosen, base_index, rows, recs


def build(items: list[common.Item], chosen: list[figs.Figure], base_index: int) -> Table:
    scenarios = [i.scenario for i in items]
    results = evaluate(resolve(scenarios))
    rows = list(results.iter_rows(named=True))
    recs = records(results, [s.training is not None for s in scenarios], [s.inference is not None for s in scenarios])
    return Table(items, chosen, base_index, rows, recs)


def _absent(item: common.Item, kind: str | None) -> str | None:
    """Why a scenario has no figures of this kind, or None if it has them."""
    if kind is None:
        return None
    if kind in item.left_out:
        return item.left_out[kind]
    if getattr(item.scenario, kind) is None:
        return f"runs no {kind}"
    return None


def cells(t: Table, marks: bool = True) -> list[tuple[figs.Figure, list[str], list[figs.Change | None]]]:
    """Formatted cells per figure (value, then its change) and the changes themselves."""
    out = []
    reason_shown: set[tuple[int, str]] = set()
    for f in t.figures:
        base_row = t.rows[t.base]
        base_value = None if _absent(t.items[t.base], f.kind) else f.value(base_row)
        texts: list[str] = []
        changes: list[figs.Change | None] = []
        for j, (item, row) in enumerate(zip(t.items, t.rows, strict=True)):
            why = _absent(item, f.kind)
            if why is not None:
                first = (j, f.kind) not in reason_shown
                reason_shown.add((j, f.kind))
                texts.append(f"- ({why})" if first else "-")
                changes.append(None)
                continue
            # Ten CPU sockets are not "+25%" on eight GPUs: a count of other devices carries no change.
            other_kind = f.id == "gpus" and row.get("device_kind") != base_row.get("device_kind")
            ch = None if j == t.base or other_kind else figs.change(f, f.value(row), base_value)
            text = f.show(row)
            delta = figs.change_text(f, ch) if marks else ""
            texts.append(f"{text} ({delta})" if delta else text)
            changes.append(ch)
        out.append((f, texts, changes))
    return out


def _titles(t: Table) -> list[str]:
    labels = [common.plain(i.label) for i in t.items]
    return [f"{label} (baseline)" if j == t.base else label for j, label in enumerate(labels)]


def _table(t: Table) -> None:
    from rich.table import Table as RichTable
    from rich.text import Text

    table = RichTable(box=None, pad_edge=False, header_style="bold")
    table.add_column("")
    for title in _titles(t):
        table.add_column(Text(title), overflow="fold")
    section = None
    for f, texts, changes in cells(t):
        if f.kind != section and f.kind is not None:
            table.add_row(Text(SECTION_TITLES[f.kind], style="bold"), *[""] * len(texts))
            section = f.kind
        styled = []
        for text, ch in zip(texts, changes, strict=True):
            style = None if ch is None or ch.better is None else ("green" if ch.better else "red")
            styled.append(Text(text, style=style or ""))
        table.add_row("  " + f.label if f.kind else f.label, *styled)
    con = common.console()
    con.print(table)
    con.print(
        "  ".join(f"{common.markup(i.label)}: {common.markup(i.scenario.name)}" for i in t.items)
        + "\n✓ better, ✗ worse than the baseline; a change is a difference where the baseline is zero or far off."
    )


def _markdown(t: Table) -> str:
    titles = [title.replace("|", "/") for title in _titles(t)]  # a '|' in a name splits no column
    lines = ["| figure | " + " | ".join(titles) + " |", "|---|" + "---|" * len(t.items)]
    for f, texts, _ in cells(t):
        label = f"{SECTION_TITLES[f.kind]}: {f.label}" if f.kind else f.label
        lines.append("| " + " | ".join(c.replace("|", "/") for c in [label, *texts]) + " |")
    lines.append("")
    lines.append(
        "✓ better, ✗ worse than "
        + common.plain(t.items[t.base].label).replace("|", "/")
        + ". "
        + "; ".join(f"{common.plain(i.label)}: {common.plain(i.scenario.name)}" for i in t.items).replace("|", "/")
    )
    return "\n".join(lines) + "\n"


def _raw(f: figs.Figure, item: common.Item, row: dict):
    if _absent(item, f.kind) is not None:
        return None
    value = f.value(row) if f.column else f.show(row)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _csv(t: Table) -> str:
    """One row per figure: its id, label and better direction, each scenario's raw value (empty where it has
    none), then each other scenario's relative change against the baseline (a fraction; empty where there
    is no usable ratio)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    others = [j for j in range(len(t.items)) if j != t.base]
    base = common.plain(t.items[t.base].label, None)
    w.writerow(
        [
            "figure",
            "label",
            "better",
            *[common.plain(i.label, None) for i in t.items],
            *[f"{common.plain(t.items[j].label, None)} vs {base}" for j in others],
        ]
    )
    for f, _, changes in cells(t, marks=False):
        values = [_raw(f, i, r) for i, r in zip(t.items, t.rows, strict=True)]
        rel = [c.relative if (c := changes[j]) is not None else None for j in others]
        w.writerow(
            [
                f.id,
                f.label,
                f.better or "",
                *["" if v is None else v for v in values],
                *["" if x is None else x for x in rel],
            ]
        )
    return buf.getvalue()


def _json(t: Table) -> str:
    body = {
        "baseline": t.items[t.base].label,
        "scenarios": [
            {"label": i.label, "ref": i.ref, "name": i.scenario.name, "left_out": i.left_out or None} for i in t.items
        ],
        "figures": [],
        "records": t.records,
    }
    for f, texts, changes in cells(t):
        body["figures"].append(
            {
                "id": f.id,
                "label": f.label,
                "kind": f.kind,
                "better": f.better,
                "values": [_raw(f, i, r) for i, r in zip(t.items, t.rows, strict=True)],
                "shown": texts,
                "changes": [
                    None if c is None else {"relative": c.relative, "absolute": c.absolute, "better": c.better}
                    for c in changes
                ],
            }
        )
    return json.dumps(body, indent=2, allow_nan=False) + "\n"
