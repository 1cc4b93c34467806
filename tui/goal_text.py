"""The words of a goal-seek answer, shared by `whatif goal` and the explorer's Goal view: one line per GPU
type (answer, runner-up, also), what limits it, and the figures one node fewer."""

from __future__ import annotations

from collections.abc import Callable

from whatif.engine import goal as engine_goal

from . import format as fmt


def summary(goal: engine_goal.Goal, row: dict | None) -> str:
    """One line of the figures at an answer: days, cost, MFU and plan (training); rate within the limits,
    p99 latencies and fleet cost per hour (serving)."""
    if row is None:
        return "-"
    if goal.kind == "inference":
        rate = row.get("infer_slo_rps") or row.get("infer_capacity_rps")
        return (
            f"{fmt.number(rate)} req/s, TTFT p99 {fmt.ms(row.get('infer_ttft_p99_ms'))}, "
            f"TPOT p99 {fmt.ms(row.get('infer_tpot_p99_ms'))}, {fmt.money(row.get('cost'))}/h"
        )
    return (
        f"{fmt.duration_days(row.get('train_wall_clock_days'))}, {fmt.money(row.get('train_cost_usd'))}, "
        f"MFU {fmt.pct(row.get('train_mfu'))}, {fmt.plan(row)}"
    )


def answer_lines(
    goal: engine_goal.Goal,
    answers: list[engine_goal.Answer],
    gpus_per_node: int,
    emphasis: Callable[[str], str] = lambda text: text,
) -> list[str]:
    """The answers in rank order; `emphasis` wraps the best answer's count and GPU (bold in a terminal)."""
    lines: list[str] = []
    for rank, a in enumerate(answers):
        title = "answer" if rank == 0 else "runner-up" if rank == 1 else "also"
        if a.gpu_count is None:
            lines.append(f"{title}: {a.gpu}: does not meet it: {a.limit}")
            continue
        nodes = a.gpu_count // gpus_per_node
        head = f"{a.gpu_count:,} {a.gpu}"
        lines.append(
            f"{title}: {emphasis(head) if rank == 0 else head} "
            f"({nodes:,} node{'s' if nodes != 1 else ''} of {gpus_per_node}): {summary(goal, a.row)}"
        )
        lines.append(f"    limit: {a.limit}")
        if rank == 0 and a.one_node_fewer is not None:
            lines.append(
                f"    one node fewer ({a.gpu_count - gpus_per_node:,}) misses: {summary(goal, a.one_node_fewer)}"
            )
    return lines
