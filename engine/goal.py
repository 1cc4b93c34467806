"""Goal seek: the smallest cluster (in whole nodes) that meets a goal, per GPU type, found on sweeps.

    training: smallest gpu_count with wall_clock_days <= days (and cost <= budget, if given);
              with a budget alone: the fewest days whose cost <= budget
    serving:  smallest gpu_count whose requests/s within the p99 limits >= rate (no limits: whose
              capacity >= rate); the serving GPUs are the whole cluster

Search: a doubling pass (gpus_per_node x 1, 2, 4 ... up to MAX_GPUS), then every whole-node count between
the last doubling count that misses and the first that meets, so the answer meets the goal and one node
fewer does not. Plans are the engine's own (searched where the scenario leaves them to the search).
GPU types are ranked by what the answer costs: the run (training) or an hour of the fleet (serving).
Pure: scenarios in, answers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl
from pydantic import ValidationError

from . import sweep
from .errors import FieldIssue, Problem, ScenarioError, from_validation_error
from .scenario import Scenario

MAX_GPUS = 1_048_576
# A budget-only goal refines between doubling counts on at most this many whole-node counts.
BUDGET_REFINE_POINTS = 512


@dataclass(frozen=True)
class Goal:
    days: float | None = None
    budget_usd: float | None = None
    rate_per_s: float | None = None
    ttft_p99_ms: float | None = None
    tpot_p99_ms: float | None = None

    @property
    def kind(self) -> str:
        return "inference" if self.rate_per_s is not None else "training"

    def describe(self) -> str:
        if self.kind == "inference":
            limits = [f"TTFT p99 <= {self.ttft_p99_ms:g} ms" if self.ttft_p99_ms else "", ""]
            limits[1] = f"TPOT p99 <= {self.tpot_p99_ms:g} ms" if self.tpot_p99_ms else ""
            within = " and ".join(x for x in limits if x)
            return f"serve {self.rate_per_s:g} requests/s" + (f" within {within}" if within else "")
        parts = []
        if self.days is not None:
            parts.append(f"train in <= {self.days:g} days")
        if self.budget_usd is not None:
            parts.append(("for" if parts else "train fastest for") + f" <= ${self.budget_usd:,.0f}")
        return " ".join(parts)


@dataclass(frozen=True)
class Answer:
    """One GPU type's answer. `gpu_count` None: no count up to MAX_GPUS meets the goal (`limit` says why)."""

    gpu: str
    gpu_count: int | None
    row: dict | None  # the result row at the answer (or at the closest miss)
    limit: str  # what limits the answer, or why nothing meets the goal
    cost: float | None  # the run's cost (training) or the fleet's cost per hour (serving), USD
    points: int  # grid points evaluated for this GPU type
    one_node_fewer: dict | None = None  # the result row one node below the answer (it misses the goal)


def check(goal: Goal, base: Scenario) -> None:
    """Raise ScenarioError (naming the flag) for a goal that cannot be sought on `base`."""
    issues: list[FieldIssue] = []
    if goal.kind == "training":
        if goal.days is None and goal.budget_usd is None:
            issues.append(Problem("", None, "give --days, --budget-usd or --rate"))
        if base.training is None:
            issues.append(Problem("", None, "the scenario has no [training] workload to time"))
    else:
        if goal.days is not None or goal.budget_usd is not None:
            issues.append(Problem("", None, "--rate is a serving goal; it does not combine with --days"))
        if base.inference is None:
            issues.append(Problem("", None, "the scenario has no [inference] workload to serve"))
    for name, value in (
        ("--days", goal.days),
        ("--budget-usd", goal.budget_usd),
        ("--rate", goal.rate_per_s),
        ("--ttft-p99-ms", goal.ttft_p99_ms),
        ("--tpot-p99-ms", goal.tpot_p99_ms),
    ):
        if value is not None and not (math.isfinite(value) and value > 0):
            issues.append(FieldIssue(name, value, "out of range; allowed: more than 0"))
    if issues:
        raise ScenarioError(issues, "goal")


def prepared(base: Scenario, goal: Goal) -> Scenario:
    """The scenario the search varies: only the goal's kind of work; for serving, the goal's rate and
    limits, and the whole cluster serving."""
    data = base.model_dump(exclude_none=True)
    if goal.kind == "training":
        data.pop("inference", None)
    else:
        data.pop("training", None)
        inf = data["inference"]
        inf.pop("gpu_count", None)
        inf["request_rate_per_s"] = goal.rate_per_s
        for key, value in (("ttft_p99_limit_ms", goal.ttft_p99_ms), ("tpot_p99_limit_ms", goal.tpot_p99_ms)):
            if value is not None:
                inf[key] = value
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        # The goal's figures went into the scenario: name them by their flags.
        flags = {
            "inference.request_rate_per_s": "--rate",
            "inference.ttft_p99_limit_ms": "--ttft-p99-ms",
            "inference.tpot_p99_limit_ms": "--tpot-p99-ms",
        }
        err = from_validation_error(exc, Scenario, "goal")
        issues = [FieldIssue(flags.get(i.key, i.key), i.value, i.message) for i in err.issues]
        raise ScenarioError(issues, "goal") from None


def _meets(goal: Goal) -> pl.Expr:
    if goal.kind == "inference":
        limited = goal.ttft_p99_ms is not None or goal.tpot_p99_ms is not None
        rate = pl.col("infer_slo_rps") if limited else pl.col("infer_capacity_rps")
        return pl.col("infer_fits").fill_null(False) & (rate.fill_null(0.0) >= goal.rate_per_s)
    ok = pl.col("train_fits").fill_null(False)
    if goal.days is not None:
        ok &= pl.col("train_wall_clock_days").fill_null(math.inf) <= goal.days
    if goal.budget_usd is not None:
        ok &= pl.col("train_cost_usd").fill_null(math.inf) <= goal.budget_usd
    return ok


def _cost(goal: Goal) -> pl.Expr:
    if goal.kind == "training":
        return pl.col("train_cost_usd")
    # The fleet's hour: cost per token x tokens served per hour at the goal's rate.
    return pl.col("infer_cost_usd_per_1m_tokens") * pl.col("infer_tokens_per_s") * 3600.0 / 1e6


def _evaluate(base: Scenario, gpu: str, counts: list[int]) -> pl.DataFrame:
    grid = sweep.build(
        base,
        [sweep.Axis("cluster.gpu", (gpu,)), sweep.Axis("cluster.gpu_count", tuple(counts))],
    )
    return sweep.run(grid).results


def _doubling(gpn: int) -> list[int]:
    out, n = [], gpn
    while n <= MAX_GPUS:
        out.append(n)
        n *= 2
    return out


def seek_one(base: Scenario, goal: Goal, gpu: str) -> Answer:
    """The answer for one GPU type (base already `prepared`)."""
    gpn = base.cluster.gpus_per_node
    coarse = _evaluate(base, gpu, _doubling(gpn)).with_columns(meets=_meets(goal), cost=_cost(goal))
    points = coarse.height
    if goal.kind == "training" and goal.days is None:
        return _fastest_within_budget(base, goal, gpu, coarse, gpn)
    hits = coarse.filter(pl.col("meets"))
    if hits.height == 0:
        return Answer(gpu, None, _closest(coarse, goal), _why_not(coarse, goal), None, points)
    first = int(hits["cluster.gpu_count"][0])
    below = [int(c) for c in coarse["cluster.gpu_count"] if c < first]
    lo = below[-1] if below else 0
    fine_counts = list(range(lo + gpn, first, gpn))
    best = hits.row(0, named=True)
    seen = coarse
    if fine_counts:
        fine = _evaluate(base, gpu, fine_counts).with_columns(meets=_meets(goal), cost=_cost(goal))
        points += fine.height
        seen = pl.concat([coarse, fine], how="diagonal_relaxed")
        fine_hits = fine.filter(pl.col("meets"))
        if fine_hits.height:
            best = fine_hits.row(0, named=True)
    n = int(best["cluster.gpu_count"])
    one_below = seen.filter(pl.col("cluster.gpu_count") == n - gpn)
    fewer = one_below.row(0, named=True) if one_below.height else None
    return Answer(gpu, n, best, _limit(best, goal), best["cost"], points, fewer)


def _fastest_within_budget(base, goal, gpu, coarse: pl.DataFrame, gpn: int) -> Answer:
    hits = coarse.filter(pl.col("meets"))
    points = coarse.height
    if hits.height == 0:
        return Answer(gpu, None, _closest(coarse, goal), _why_not(coarse, goal), None, points)
    pick = hits.sort(["train_wall_clock_days", "cluster.gpu_count"]).row(0, named=True)
    n = int(pick["cluster.gpu_count"])
    # Between the doubling counts on either side of the fastest one, on whole nodes (evenly thinned).
    lo, hi = max(gpn, n // 2), min(MAX_GPUS, n * 2)
    nodes = list(range(lo, hi + 1, gpn))
    stride = max(1, math.ceil(len(nodes) / BUDGET_REFINE_POINTS))
    fine = _evaluate(base, gpu, nodes[::stride]).with_columns(meets=_meets(goal), cost=_cost(goal))
    points += fine.height
    hits = pl.concat([hits, fine.filter(pl.col("meets"))], how="diagonal_relaxed")
    best = hits.sort(["train_wall_clock_days", "cluster.gpu_count"]).row(0, named=True)
    return Answer(gpu, int(best["cluster.gpu_count"]), best, _limit(best, goal), best["cost"], points)


def _limit(row: dict, goal: Goal) -> str:
    detail = row.get("train_bottleneck_detail" if goal.kind == "training" else "infer_bottleneck_detail")
    return detail or "-"


def _closest(frame: pl.DataFrame, goal: Goal) -> dict | None:
    """The doubling point that comes nearest: the fastest training run, or the most serving rate."""
    fits = frame.filter(pl.col("train_fits" if goal.kind == "training" else "infer_fits").fill_null(False))
    if fits.height == 0:
        return None
    if goal.kind == "training":
        return fits.sort(["train_wall_clock_days", "cluster.gpu_count"]).row(0, named=True)
    limited = goal.ttft_p99_ms is not None or goal.tpot_p99_ms is not None
    column = "infer_slo_rps" if limited else "infer_capacity_rps"
    return fits.sort(column, descending=True, nulls_last=True).row(0, named=True)


def _why_not(frame: pl.DataFrame, goal: Goal) -> str:
    best = _closest(frame, goal)
    if best is None:
        reason_col = "train_reason" if goal.kind == "training" else "infer_reason"
        reasons = [r for r in frame[reason_col].to_list() if r] if reason_col in frame.columns else []
        return f"no count up to {MAX_GPUS:,} GPUs runs: {reasons[0] if reasons else 'no plan'}"
    n = int(best["cluster.gpu_count"])
    if goal.kind == "inference":
        limited = goal.ttft_p99_ms is not None or goal.tpot_p99_ms is not None
        rate = best["infer_slo_rps"] if limited else best["infer_capacity_rps"]
        got = "nothing" if rate is None or rate <= 0 else f"{rate:,.3g} requests/s"
        return f"at most {got} within the limits (at {n:,} GPUs); limit: {_limit(best, goal)}"
    days, cost = best["train_wall_clock_days"], best["train_cost_usd"]
    if goal.days is not None and days > goal.days:
        return f"at best {days:,.1f} days (at {n:,} GPUs); limit: {_limit(best, goal)}"
    in_time = frame.filter(pl.col("train_fits").fill_null(False))
    if goal.days is not None:
        in_time = in_time.filter(pl.col("train_wall_clock_days") <= goal.days)
    if in_time.height:
        cheapest = in_time.sort(["train_cost_usd", "cluster.gpu_count"]).row(0, named=True)
        cost, n = cheapest["train_cost_usd"], int(cheapest["cluster.gpu_count"])
    if cost is None:  # a device without a catalog price (a CPU socket) has no cost to hold to a budget
        return "no cost to hold to a budget: no catalog price for this device; set facility.usd_per_gpu_hour"
    within = " that meets the time" if goal.days is not None else ""
    return f"over budget: the cheapest run{within} costs ${cost:,.0f} (at {n:,} GPUs)"


def seek(base: Scenario, goal: Goal, gpus: list[str] | None = None) -> list[Answer]:
    """Every GPU type's answer, best first: those that meet the goal by cost (then GPU count), then the
    rest. `gpus` None: the scenario's own GPU."""
    check(goal, base)
    scenario = prepared(base, goal)
    answers = []
    for gpu in gpus or [base.cluster.gpu]:
        try:
            answers.append(seek_one(scenario, goal, gpu))
        except ScenarioError as exc:  # this workload cannot run on this GPU at all (e.g. FP8 on an A100)
            answers.append(Answer(gpu, None, None, f"cannot run here: {exc.issues[0].message}", None, 0))

    def rank(a: Answer):
        if a.gpu_count is None:
            return (1, math.inf, math.inf)
        cost = a.cost if a.cost is not None and math.isfinite(a.cost) else math.inf
        if goal.kind == "training" and goal.days is None:
            assert a.row is not None  # an answer with a GPU count has its row
            return (0, a.row["train_wall_clock_days"], a.gpu_count)
        return (0, cost, a.gpu_count)

    return sorted(answers, key=rank)
