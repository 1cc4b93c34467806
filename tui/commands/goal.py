"""`whatif goal SCENARIO --days 30 | --budget-usd N | --rate R [--ttft-p99-ms X] [--tpot-p99-ms Y]`:
the smallest GPU count (in whole nodes) that meets the goal, and with --vary-gpu the cheapest GPU type,
printed with the runners-up and what limits each (engine/goal.py)."""

from __future__ import annotations

import json
import math
import sys

from whatif.engine import ScenarioError, load_catalog
from whatif.engine import goal as engine_goal
from whatif.engine.catalog import close_matches
from whatif.engine.cost import basis_label, priced_as

from .. import goal_text
from . import common


def add(sub) -> None:
    g = sub.add_parser(
        "goal",
        help="the smallest GPU count (and cheapest GPU type) that meets a goal",
        description="Find the smallest cluster, in whole nodes, that meets a training goal (--days, "
        "--budget-usd) or a serving goal (--rate with p99 limits), on the scenario's own plans. With "
        "--vary-gpu, one answer per GPU type, the cheapest first, each with what limits it.",
        epilog="Example: whatif goal default --days 30 --vary-gpu h100-sxm,h200-sxm,b200",
    )
    g.add_argument("ref", metavar="SCENARIO", help="a preset name or .toml file (- for standard input)")
    g.add_argument("--days", type=float, help="train within this many days (wall clock)")
    g.add_argument("--budget-usd", type=float, help="cost at most this; alone: the fastest run within it")
    g.add_argument("--rate", type=float, metavar="REQUESTS_PER_S", help="serve this many requests per second")
    g.add_argument("--ttft-p99-ms", type=float, help="with --rate: time to first token p99 limit")
    g.add_argument("--tpot-p99-ms", type=float, help="with --rate: time per output token p99 limit")
    g.add_argument("--vary-gpu", metavar="GPU,...", help="GPU types to try (catalog keys, `whatif catalog gpus`)")
    g.add_argument("--json", action="store_true", help="print the answers as JSON")
    common.add_scenario_options(g, workload=True)


def _gpus(text: str | None) -> list[str] | None:
    if text is None:
        return None
    known = list(load_catalog().accelerators)
    gpus = [g.strip() for g in text.split(",") if g.strip()]
    for gpu in gpus:
        if gpu not in known:
            near = close_matches(gpu, known)
            hint = f"close matches: {', '.join(near)}" if near else f"choose from: {', '.join(known)}"
            raise ValueError(f"--vary-gpu: unknown GPU {gpu!r}; {hint} (`whatif catalog gpus` lists them)")
    if not gpus:
        raise ValueError("--vary-gpu: no GPU given; allowed: catalog keys separated by commas")
    return list(dict.fromkeys(gpus))


def run(args) -> int:
    try:
        gpus = _gpus(args.vary_gpu)
    except ValueError as exc:
        print(f"whatif: {common.plain(exc, 300)}", file=sys.stderr)
        return common.BAD_INPUT
    goal = engine_goal.Goal(args.days, args.budget_usd, args.rate, args.ttft_p99_ms, args.tpot_p99_ms)
    if goal.kind == "training" and (args.ttft_p99_ms or args.tpot_p99_ms):
        print("whatif: goal: --ttft-p99-ms and --tpot-p99-ms go with --rate", file=sys.stderr)
        return common.BAD_INPUT
    try:
        (item,) = common.load([args.ref], args.settings, args.workload)
        answers = engine_goal.seek(item.scenario, goal, gpus)
    except ScenarioError as exc:
        return common.report(exc)
    if args.json:
        print(json.dumps(_json(item, goal, answers), indent=2, allow_nan=False))
    else:
        _print(item, goal, answers)
    return 0


def _figures(goal, row: dict | None) -> dict | None:
    if row is None:
        return None
    keys: tuple[tuple[str, str], ...] = (
        ("wall_clock_days", "train_wall_clock_days"),
        ("cost_usd", "train_cost_usd"),
        ("gpu_hours", "train_gpu_hours"),
        ("mfu", "train_mfu"),
        ("bottleneck", "train_bottleneck"),
    )
    if goal.kind == "inference":
        keys = (
            ("requests_per_s_within_limits", "infer_slo_rps"),
            ("capacity_requests_per_s", "infer_capacity_rps"),
            ("ttft_p99_ms", "infer_ttft_p99_ms"),
            ("tpot_p99_ms", "infer_tpot_p99_ms"),
            ("cost_usd_per_1m_tokens", "infer_cost_usd_per_1m_tokens"),
            ("bottleneck", "infer_bottleneck"),
        )
    return {k: _clean(row.get(c)) for k, c in keys} | {"gpu_count": int(row["cluster.gpu_count"])}


def _clean(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _json(item, goal, answers) -> dict:
    gpn = item.scenario.cluster.gpus_per_node
    return {
        "scenario": item.label,
        "goal": {
            "kind": goal.kind,
            "days": goal.days,
            "budget_usd": goal.budget_usd,
            "rate_per_s": goal.rate_per_s,
            "ttft_p99_ms": goal.ttft_p99_ms,
            "tpot_p99_ms": goal.tpot_p99_ms,
            "text": goal.describe(),
        },
        "answers": [
            {
                "gpu": a.gpu,
                "meets": a.gpu_count is not None,
                "gpu_count": a.gpu_count,
                "nodes": None if a.gpu_count is None else a.gpu_count // gpn,
                "cost_usd": _clean(a.cost),
                "cost_basis": "run" if goal.kind == "training" else "per hour",
                "limit": a.limit,
                "figures": _figures(goal, a.row),
                "one_node_fewer": _figures(goal, a.one_node_fewer),
                "points_evaluated": a.points,
            }
            for a in answers
        ],
    }


def _print(item, goal, answers) -> None:
    con = common.console()
    gpn = item.scenario.cluster.gpus_per_node
    con.print(f"goal: {goal.describe()} ({common.markup(item.label)}: {common.markup(item.scenario.name)})")
    best = answers[0]
    if best.gpu_count is None:
        con.print(f"[bold]no GPU count up to {engine_goal.MAX_GPUS:,} meets it[/bold]")
    for line in goal_text.answer_lines(goal, answers, gpn, emphasis=lambda t: f"[bold]{t}[/bold]"):
        con.print(line)
    price = item.scenario.facility.usd_per_gpu_hour
    prefix = "train_" if goal.kind == "training" else "infer_"
    if best.row is not None and (label := basis_label(best.row, prefix)):
        who = f"{best.gpu}: " if len(answers) > 1 else ""
        con.print(f"cost: {who}{label}")
    if price is not None and len(answers) > 1:
        con.print(f"cost: every GPU type priced at facility.usd_per_gpu_hour = {price:g} per GPU-hour")
    elif len(answers) > 1:
        con.print("cost: each GPU type at its own catalog price (engine/catalog/prices.toml)")
        # A type priced as another compares on a borrowed price: say which, so the ranking is read with it.
        borrowed = [f"{a.gpu} as {other}" for a in answers if a.row is not None and (other := priced_as(a.row))]
        if borrowed:
            con.print(f"cost: no price of their own, priced as another type: {', '.join(borrowed)}")
