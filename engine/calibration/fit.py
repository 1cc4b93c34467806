"""Fitting the few fitted constants, and proving that the fit generalises (leave-one-source-out).

Every fitted constant (catalog/fitted.toml) is a frame column k_<name>, so one evaluate() call prices every
case under many candidate values at once. The fit is a deterministic coordinate descent over each constant's
grid (all constants of one workload), minimising the mean absolute log error of the cases held to the target;
cross-validation refits on all sources but one and predicts the one left out, for every source in turn.

    fit(cases)            -> the best value of each constant and the in-sample errors
    cross_validate(cases) -> for each source, the errors of its cases under the constants fitted without it
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import median

import numpy as np
import polars as pl

from ..catalog import Catalog, load_catalog
from ..evaluate import evaluate
from ..resolve import resolve
from ..scenario import Scenario
from . import Case, kind_of, workload_of

# Publications (a case's id prefix) that count as one source for leave-one-source-out.
SOURCE_PREFIXES = (
    ("PAPER-MEGATRON-SC21", "Megatron-LM SC21 (Narayanan et al. 2021)"),
    ("PAPER-KORTHIKANTI", "Korthikanti et al. 2022"),
    ("PAPER-BLOOM", "BLOOM-176B"),
    ("PAPER-OPT", "OPT-175B"),
    ("PAPER-LLAMA2", "Llama 2 model card"),
    ("BENCH-MPT", "MosaicML llm-foundry"),
    ("MLPT-v3.0-Intel", "MLPerf Training Intel"),
    ("MLPT-v3.1-Intel", "MLPerf Training Intel"),
    ("MLPT", "MLPerf Training NVIDIA and partners"),
    ("MLM-README", "Megatron-LM README"),
    ("DGXC", "NVIDIA dgxc-benchmarking"),
    ("MBRIDGE", "Megatron-Bridge performance summary"),
    ("NEMO-LONGSEQ", "NeMo long-sequence benchmarks"),
    ("NEMO", "NeMo performance summary"),
    ("TT", "TorchTitan benchmarks"),
    ("NANOTRON", "nanotron Ultra-Scale Playbook"),
    ("AMD-PRIMUS", "AMD Primus"),
    ("MLPI", "MLPerf Inference v4.1"),
    ("TRTLLM-BP", "TensorRT-LLM DeepSeek-R1 best practices"),
    ("TRTLLM-BLOG1", "TensorRT-LLM DeepSeek-R1 low-latency blog"),
    ("TRTLLM", "TensorRT-LLM performance overview"),
    ("DSTACK", "dstack benchmarks"),
    ("VLLMBLOG", "vLLM blog"),
    ("NIM", "NVIDIA NIM benchmarking guide"),
    ("SGL", "SGLang DeepSeek-V3 benchmarks"),
    ("MOONCAKE", "Mooncake disaggregation benchmarks"),
)


def source_of(case: Case) -> str:
    for prefix, name in SOURCE_PREFIXES:
        if case.id.startswith(prefix):
            return name
    return case.id.split("-")[0]


def scale_band(n_gpus: int) -> str:
    return "< 64 GPUs" if n_gpus < 64 else "64-1,023 GPUs" if n_gpus < 1024 else ">= 1,024 GPUs"


def groups_of(case: Case, scenario: Scenario, cat: Catalog) -> dict[str, str]:
    """The regimes a case belongs to. Training: GPU generation, scale, dense or MoE, precision, context
    parallelism. Serving: generation, dense or MoE, serving features, and whether the figure is a throughput or
    a latency (engine/serving/regimes.py)."""
    if scenario.training is None and scenario.inference is not None:
        from ..serving.regimes import serving_groups

        return serving_groups(scenario, cat) | {"figure": kind_of(case.metric)}
    gpu = cat.accelerators[scenario.cluster.gpu]
    w = scenario.training or scenario.inference
    assert w is not None  # a case measures a training or a serving figure: its scenario has that workload
    model = w.model if not isinstance(w.model, str) else cat.models.get(w.model)
    moe = bool(getattr(model, "experts", 0))
    out = {
        "generation": cat.efficiency[gpu.arch].name,
        "scale": scale_band(scenario.cluster.gpu_count),
        "kind": "MoE" if moe else "dense",
        "precision": w.precision.upper(),
    }
    if scenario.training is not None:
        p = scenario.training.parallelism
        cp = 1 if p == "auto" or p.cp is None else p.cp
        out["context"] = "context parallel" if cp > 1 or scenario.training.seq_len_tokens >= 32768 else "no CP"
    return out


# The result column each serving metric reads (the same as INFERENCE_METRICS' extractors, as whole columns).
SERVING_COLUMNS = {
    "output_tokens_per_s": "infer_tokens_per_s",
    "slo_output_tokens_per_s": "infer_slo_tokens_per_s",
    "output_tokens_per_s_per_gpu": "infer_output_tokens_per_s_per_gpu",
    "input_tokens_per_s_per_gpu": "infer_input_tokens_per_s_per_gpu",
    "decode_output_tokens_per_s_per_gpu": "infer_decode_output_tokens_per_s_per_gpu",
    "requests_per_s": "infer_requests_per_s",
    "ttft_p50_ms": "infer_ttft_ms",
    "ttft_p99_ms": "infer_ttft_p99_ms",
    "ttft_mean_ms": "infer_ttft_mean_ms",
    "tpot_p50_ms": "infer_tpot_ms",
    "tpot_p99_ms": "infer_tpot_p99_ms",
    "tpot_mean_ms": "infer_tpot_mean_ms",
}


def predicted(results: pl.DataFrame, metric: str) -> np.ndarray:
    """The figure a case publishes, from a result frame (NaN where the plan cannot run)."""
    n = results["n_gpus"].to_numpy().astype(float)

    def col(name):
        return results[name].to_numpy().astype(float) if name in results.columns else np.full(results.height, np.nan)

    table = {
        "tokens_per_s_per_gpu": lambda: col("train_tokens_per_s") / n,
        "time_to_train_min": lambda: col("train_wall_clock_days") * 1440.0,
        "gpu_hours": lambda: col("train_gpu_hours"),
        "mfu": lambda: col("train_mfu"),
        "hfu": lambda: col("train_hfu"),
        "tflops_per_gpu": lambda: col("train_tflops_per_gpu"),
    }
    if metric in table:
        return table[metric]()
    return col(SERVING_COLUMNS[metric])


@dataclass
class ErrorTable:
    """Log errors of every case under every constant set evaluated so far (a cache keyed by the set)."""

    cases: list[Case]
    scenarios: list[Scenario]
    names: list[str]
    cat: Catalog
    base: pl.DataFrame = field(init=False)
    cache: dict[tuple, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.base = resolve(self.scenarios, self.cat)
        self.published = np.array([c.value for c in self.cases], dtype=float)

    def errors(self, sets: list[tuple]) -> list[np.ndarray]:
        todo = [s for s in dict.fromkeys(sets) if s not in self.cache]
        if todo:
            n = self.base.height
            frame = pl.concat(
                [
                    self.base.with_columns(**{f"k_{k}": pl.lit(float(v)) for k, v in zip(self.names, s, strict=True)})
                    for s in todo
                ]
            )
            frame = frame.with_columns(scenario=pl.int_range(0, frame.height).cast(pl.Int64))
            results = evaluate(frame, self.cat, text=False)
            for i, s in enumerate(todo):
                part = results.slice(i * n, n)
                pred = np.array([predicted(part, c.metric)[j] for j, c in enumerate(self.cases)])
                with np.errstate(invalid="ignore", divide="ignore"):
                    self.cache[s] = np.log(pred / self.published)
        return [self.cache[s] for s in sets]


def _objective(err: np.ndarray, held: np.ndarray) -> float:
    e = np.abs(err[held])
    e = np.where(np.isfinite(e), e, 3.0)  # a plan that cannot run counts as a 20x miss
    return float(e.mean()) if len(e) else 0.0


def coordinate_descent(
    table: ErrorTable, grids: list[list[float]], start: tuple, held: np.ndarray, passes: int = 3
) -> tuple:
    """The grid point that minimises the objective on `held` cases, one constant at a time from `start`."""
    best = tuple(start)
    best_obj = _objective(table.errors([best])[0], held)
    for _ in range(passes):
        moved = False
        for i, grid in enumerate(grids):
            options = [best[:i] + (v,) + best[i + 1 :] for v in grid]
            objs = [_objective(e, held) for e in table.errors(options)]
            j = int(np.argmin(objs))
            if objs[j] < best_obj - 1e-12:
                best, best_obj, moved = options[j], objs[j], True
        if not moved:
            break
    return best


@dataclass
class CrossValidation:
    workload: str
    names: list[str]
    fitted: tuple
    cases: list[Case]
    groups: list[dict[str, str]]
    sources: list[str]
    in_sample: np.ndarray  # relative errors (predicted / published - 1) under the full fit
    cross: np.ndarray  # relative errors under the fit without the case's source
    fitted_without: dict[str, tuple]

    def held(self) -> np.ndarray:
        return np.array([not c.known_gap for c in self.cases])

    def summary(self, errors: np.ndarray, mask: np.ndarray) -> tuple[int, float, float]:
        e = np.abs(errors[mask & self.held()])
        e = np.where(np.isfinite(e), e, np.inf)
        if not len(e):
            return 0, math.nan, math.nan
        return len(e), 100.0 * float(median(e)), 100.0 * float(e.max())

    def rows(self) -> list[tuple[str, str, int, float, float, float, float]]:
        """(grouping, group, cases, in-sample median %, worst %, cross-validated median %, worst %)."""
        out = []
        everything = np.ones(len(self.cases), dtype=bool)
        n, im, iw = self.summary(self.in_sample, everything)
        _, cm, cw = self.summary(self.cross, everything)
        out.append(("all", self.workload, n, im, iw, cm, cw))
        keys = sorted(
            {k for g in self.groups for k in g},
            key=["generation", "scale", "kind", "precision", "context", "feature", "figure"].index,
        )
        for key in keys:
            for value in sorted({g.get(key, "") for g in self.groups}):
                mask = np.array([g.get(key, "") == value for g in self.groups])
                n, im, iw = self.summary(self.in_sample, mask)
                _, cm, cw = self.summary(self.cross, mask)
                if n:
                    out.append((key, value, n, im, iw, cm, cw))
        return out


def _fitted_names(cat: Catalog, workload: str) -> list[str]:
    return [k for k, f in cat.fitted.items() if f.workload == workload]


def cross_validate(
    cases: list[tuple[Case, Scenario]], workload: str = "training", catalog: Catalog | None = None
) -> CrossValidation:
    """Fit on all cases, then leave each source out in turn; deterministic."""
    cat = catalog or load_catalog()
    chosen = [(c, s) for c, s in cases if workload_of(c.metric) == workload]
    names = _fitted_names(cat, workload)
    table = ErrorTable([c for c, _ in chosen], [s for _, s in chosen], names, cat)
    grids = [cat.fitted[k].grid for k in names]
    # Start from the middle of every grid, not from the catalog's values: the fit must not depend on itself.
    start = tuple(grid[len(grid) // 2] for grid in grids)
    held = np.array([not c.known_gap for c, _ in chosen])
    sources = [source_of(c) for c, _ in chosen]
    full = coordinate_descent(table, grids, start, held) if names else ()
    in_sample = np.expm1(table.errors([full])[0])
    cross = np.full(len(chosen), np.nan)
    without = {}
    for src in sorted(set(sources)):
        mine = np.array([s == src for s in sources])
        best = coordinate_descent(table, grids, full, held & ~mine) if names else ()
        without[src] = best
        cross[mine] = np.expm1(table.errors([best])[0])[mine]
    return CrossValidation(
        workload,
        names,
        full,
        [c for c, _ in chosen],
        [groups_of(c, s, cat) for c, s in chosen],
        sources,
        in_sample,
        cross,
        without,
    )
