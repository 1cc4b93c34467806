"""Comparing predictions with published runs: which figure each case publishes, and the error statistics.

The cases are scenario files in `cases/` (package data), each with a [published] table (id, metric, value,
source, notes, and optionally known_gap: why the case is not held to the target). Targets: training median
absolute error <= 10% and worst <= 25%; serving throughput median <= 15% and worst <= 35%.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from statistics import median

import polars as pl

from ..errors import FieldIssue, ScenarioError
from ..scenario import Scenario

TARGETS = {"training": (10.0, 25.0), "inference": (15.0, 35.0)}
# Serving latency percentiles are held to their own target (median only: a tail near saturation moves by
# several times any throughput error, docs/model.md "Serving calibration").
LATENCY_TARGET = 25.0

# metric name -> (what it is, how to read it from a result row)
METRICS: dict[str, tuple[str, Callable[[dict], float | None]]] = {
    "tflops_per_gpu": ("hardware TFLOP/s per GPU (recomputation counted)", lambda r: r["train_tflops_per_gpu"]),
    "mfu": ("model FLOPs utilisation", lambda r: r["train_mfu"]),
    "hfu": ("hardware FLOPs utilisation", lambda r: r["train_hfu"]),
    "gpu_hours": ("GPU-hours of the run", lambda r: r["train_gpu_hours"]),
    "time_to_train_min": (
        "wall-clock minutes",
        lambda r: None if r["train_wall_clock_days"] is None else r["train_wall_clock_days"] * 1440.0,
    ),
    "tokens_per_s_per_gpu": (
        "training tokens/s per GPU",
        lambda r: None if r["train_tokens_per_s"] is None else r["train_tokens_per_s"] / r["n_gpus"],
    ),
}


# Serving metrics (issue 5): throughput is what the target holds; everything not in METRICS is serving.
INFERENCE_METRICS: dict[str, tuple[str, Callable[[dict], float | None]]] = {
    "output_tokens_per_s": (
        "output tokens/s of the system, offline (every replica at its full batch)",
        lambda r: r.get("infer_tokens_per_s"),
    ),
    "slo_output_tokens_per_s": (
        "output tokens/s of the system at the highest request rate within the p99 TTFT/TPOT limits",
        lambda r: r.get("infer_slo_tokens_per_s"),
    ),
}


def _g(key):
    return lambda r: r.get(key)


def _per(key, scale=1.0):
    return lambda r: None if r.get(key) is None else r[key] * scale


INFERENCE_METRICS |= {
    "output_tokens_per_s_per_gpu": (
        "output tokens/s per serving GPU in replicas (both pools where disaggregated)",
        _g("infer_output_tokens_per_s_per_gpu"),
    ),
    "input_tokens_per_s_per_gpu": (
        "prompt tokens/s per serving GPU in replicas (prefill-only runs: one output token)",
        _g("infer_input_tokens_per_s_per_gpu"),
    ),
    "decode_output_tokens_per_s_per_gpu": (
        "output tokens/s per GPU of the decode pool (a disaggregated run whose prefill does not limit)",
        _g("infer_decode_output_tokens_per_s_per_gpu"),
    ),
    "requests_per_s": ("requests/s the fleet completes", _g("infer_requests_per_s")),
}
# Latency figures (ms): medians, p99s and means, at the published rate (closed loop where it is offline).
LATENCY_METRICS: dict[str, tuple[str, Callable[[dict], float | None]]] = {
    "ttft_p50_ms": ("median time to first token", _g("infer_ttft_ms")),
    "ttft_p99_ms": ("p99 time to first token", _g("infer_ttft_p99_ms")),
    "ttft_mean_ms": ("mean time to first token", _g("infer_ttft_mean_ms")),
    "tpot_p50_ms": ("median time per output token (or published median ITL)", _g("infer_tpot_ms")),
    "tpot_p99_ms": ("p99 time per output token", _g("infer_tpot_p99_ms")),
    "tpot_mean_ms": ("mean time per output token", _g("infer_tpot_mean_ms")),
}
INFERENCE_METRICS |= LATENCY_METRICS


def workload_of(metric: str) -> str:
    return "training" if metric in METRICS else "inference"


def kind_of(metric: str) -> str:
    """'latency' for serving latency percentiles, else 'throughput' (training figures included)."""
    return "latency" if metric in LATENCY_METRICS else "throughput"


@dataclass(frozen=True)
class Case:
    file: str
    id: str
    metric: str
    value: float
    source: str
    notes: str = ""
    known_gap: str = ""


# Latency metrics with a band (serving.fleet.latency_band): the result columns' stem.
BAND_STEMS = {
    "ttft_p50_ms": "infer_ttft",
    "ttft_p99_ms": "infer_ttft_p99",
    "tpot_p50_ms": "infer_tpot",
    "tpot_p99_ms": "infer_tpot_p99",
}


@dataclass
class Comparison:
    case: Case
    predicted: float | None
    detail: str = ""
    # The latency's [low, high] if capacity were off by the serving error band (high inf: past saturation);
    # None where the metric or the row has no band.
    band: tuple[float, float] | None = None

    @property
    def in_band(self) -> bool | None:
        if self.band is None:
            return None
        return self.band[0] <= self.case.value <= self.band[1]

    @property
    def error_pct(self) -> float | None:
        if self.predicted is None:
            return None
        return 100.0 * (self.predicted - self.case.value) / self.case.value


@dataclass
class Summary:
    workload: str
    n: int
    median_abs_pct: float
    worst_abs_pct: float
    worst_id: str
    gaps: list[str] = field(default_factory=list)
    kind: str = "throughput"

    @property
    def target(self) -> tuple[float, float]:
        return (LATENCY_TARGET, float("inf")) if self.kind == "latency" else TARGETS[self.workload]

    @property
    def meets_target(self) -> bool:
        med, worst = self.target
        return self.median_abs_pct <= med and self.worst_abs_pct <= worst


def compare(cases: list[Case], results: pl.DataFrame, extractors: dict | None = None) -> list[Comparison]:
    table = METRICS | INFERENCE_METRICS | (extractors or {})
    out = []
    for case, row in zip(cases, results.iter_rows(named=True), strict=True):
        value = table[case.metric][1](row)
        reason = "train_reason" if workload_of(case.metric) == "training" else "infer_reason"
        detail = row.get(reason) or ""
        out.append(Comparison(case, value, detail, _band(case.metric, row)))
    return out


def _band(metric: str, row: dict) -> tuple[float, float] | None:
    stem = BAND_STEMS.get(metric)
    low, high = (row.get(f"{stem}_low_ms"), row.get(f"{stem}_high_ms")) if stem else (None, None)
    if low is None or not math.isfinite(low):
        return None
    return float(low), math.inf if high is None else float(high)  # no high end: unbounded


def band_coverage(comparisons: list[Comparison]) -> tuple[int, int, int]:
    """Of the held serving latency percentiles: (inside their band, with a band, in all). The band is the
    honest statement near saturation, where the point estimate moves several times any capacity error."""
    held = [c for c in comparisons if c.case.metric in BAND_STEMS and not c.case.known_gap]
    banded = [c for c in held if c.band is not None]
    return sum(bool(c.in_band) for c in banded), len(banded), len(held)


def summarize(comparisons: list[Comparison], workload: str, kind: str = "throughput") -> Summary | None:
    """Median and worst absolute error over the cases held to the target (known gaps excluded); serving
    latency cases (kind 'latency') apart from throughput ones."""

    def mine(c):
        return workload_of(c.case.metric) == workload and kind_of(c.case.metric) == kind

    held = [c for c in comparisons if mine(c) and not c.case.known_gap]
    gaps = [c.case.id for c in comparisons if mine(c) and c.case.known_gap]
    if not held:
        return None
    errors = [(abs(c.error_pct) if c.error_pct is not None else float("inf"), c.case.id) for c in held]
    worst = max(errors)
    return Summary(workload, len(held), median(e for e, _ in errors), worst[0], worst[1], gaps, kind)


def load_cases() -> list[tuple[Case, Scenario]]:
    """Every shipped case, by file name: the published figure and the scenario that reproduces the run."""
    return list(_load_cases())


@cache
def _load_cases() -> tuple[tuple[Case, Scenario], ...]:
    # Read once a process: the cases are package data, and cases and scenarios are frozen (a new list each
    # call, the same objects). Parsing the 300-odd files takes a quarter of a second.
    from importlib.resources import files

    from ..text import parse_scenario

    out = []
    folder = files("whatif.engine.calibration") / "cases"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".toml"):
            continue
        scenario, extra = parse_scenario(entry.read_text(encoding="utf-8"), entry.name)
        pub = extra.get("published")
        if not pub:
            raise ScenarioError(
                [FieldIssue("published", "(missing)", "a calibration case needs [published]")], entry.name
            )
        out.append((Case(file=entry.name, **pub), scenario))
    return tuple(out)


@dataclass
class PlanCheck:
    """A published plan against the plan the search finds for the same scenario (both predicted)."""

    case: Case
    published_plan: str
    auto_plan: str
    speed_ratio: float | None  # auto tokens/s over published-plan tokens/s; None where either cannot run


def _plan_text(r: dict) -> str:
    return (
        f"TP{r['train_tp']} CP{r['train_cp']} PP{r['train_pp']}x{r['train_interleave']} DP{r['train_dp']} "
        f"EP{r['train_ep']} mb{r['train_microbatch']} ZeRO{r['train_zero']} {r['train_recompute']}"
    )


def auto_plans(cases: list[tuple[Case, Scenario]]) -> list[PlanCheck]:
    """For every training case that publishes (part of) its plan: the search's plan on the same scenario and how
    much faster the model finds it. Real teams pick near-best plans, so the ratios should sit near 1."""
    from ..evaluate import evaluate
    from ..resolve import resolve

    chosen = [
        (c, s)
        for c, s in cases
        if workload_of(c.metric) == "training" and s.training is not None and s.training.parallelism != "auto"
    ]
    if not chosen:
        return []

    def auto(s: Scenario) -> Scenario:
        d = s.model_dump(exclude_none=True)
        d["training"]["parallelism"] = "auto"
        d["training"]["recompute"] = "auto"
        d["training"].pop("recompute_layers", None)
        return Scenario.model_validate(d)

    pub = evaluate(resolve([s for _, s in chosen]))
    aut = evaluate(resolve([auto(s) for _, s in chosen]))
    out = []
    for (case, _), p, a in zip(chosen, pub.iter_rows(named=True), aut.iter_rows(named=True), strict=True):
        ok = p["train_fits"] and a["train_fits"]
        ratio = a["train_tokens_per_s"] / p["train_tokens_per_s"] if ok else None
        out.append(
            PlanCheck(case, _plan_text(p) if p["train_fits"] else "-", _plan_text(a) if a["train_fits"] else "-", ratio)
        )
    return out
