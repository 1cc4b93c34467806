"""Engine throughput: scenarios per second for explicit plans and for searched ("auto") plans.

    python benchmarks/bench_engine.py            # 100,000 explicit-plan and 1,000 auto-plan scenarios

Targets on the 2-core development machine: >= 1,000,000 explicit-plan scenarios/s, and one auto-plan
scenario in <= 5 ms. Serving (issue 10): a serving scenario with its TP search <= 2 ms in a batch of 1,000 and
<= 5 ms alone; the fleet search for one goal <= 50 ms. The frames are built as the explorer builds its
sweeps: a few resolved scenarios, tiled and varied column-wise in polars (no Python object per scenario).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import polars as pl
from whatif.engine import Scenario, evaluate, load_catalog, resolve
from whatif.engine.columns import Columns
from whatif.engine.heap import keep_freed_heap
from whatif.engine.serving import serve
from whatif.engine.serving.fleet_goal import fleet_goal

MODELS = ["llama-3.1-8b", "llama-3.1-70b", "llama-2-13b", "gpt-3-175b"]
GPUS = ["h100-sxm", "a100-sxm-80gb", "h200-sxm", "b200"]


def base_scenarios(plan) -> list[Scenario]:
    return [
        Scenario.model_validate(
            {
                "name": f"{gpu} {model}",
                "cluster": {"gpu": gpu, "gpu_count": 1024},
                "training": {
                    "model": model,
                    "seq_len_tokens": 4096,
                    "global_batch_seqs": 1024,
                    "parallelism": plan,
                    "recompute": "selective" if plan != "auto" else "auto",
                },
            }
        )
        for gpu in GPUS
        for model in MODELS
    ]


def sweep(base: pl.DataFrame, n: int, seed: int = 0) -> pl.DataFrame:
    """n scenarios: the base rows tiled, with GPU counts and global batches varied per row."""
    rng = np.random.default_rng(seed)
    frame = base.sample(n, with_replacement=True, seed=seed)
    return frame.with_columns(
        scenario=pl.arange(0, n),
        n_gpus=pl.Series(rng.choice([256, 512, 1024, 2048, 4096, 8192], n)).cast(pl.Int64),
        gbs=pl.Series(rng.choice([1024, 2048, 4096], n)).cast(pl.Int64),
    )


def timed(frame: pl.DataFrame, repeats: int, text: bool = True) -> tuple[float, pl.DataFrame]:
    evaluate(frame.head(8))  # warm caches and imports
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = evaluate(frame, text=text)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def serving_scenario(limits: bool) -> Scenario:
    """The serve-llama70b-8xh100 preset: Llama 3.1 70B FP8 on 8 H100, TP searched, optionally p99 limits."""
    inference = {
        "model": "llama-3.1-70b",
        "precision": "fp8",
        "prompt_tokens": 1024,
        "output_tokens": 256,
        "concurrency": 256,
        "request_rate_per_s": 20.0,
        "tp": "auto",
    }
    if limits:
        inference |= {"ttft_p99_limit_ms": 450.0, "tpot_p99_limit_ms": 40.0}
    return Scenario.model_validate({"cluster": {"gpu": "h100-sxm", "gpu_count": 8}, "inference": inference})


def best_of(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench_serving(n: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    catalog = load_catalog()
    for limits in (False, True):
        one = resolve([serving_scenario(limits)])
        label = "with p99 limits" if limits else "no limits"
        seconds = best_of(lambda one=one: evaluate(one, text=False), repeats * 4)
        stage = best_of(lambda one=one: serve(Columns.from_frame(one), catalog), repeats * 4)
        print(
            f"serving ({label}): one scenario alone, TP searched: {seconds * 1e3:.2f} ms "
            f"(of which the serving stage {stage * 1e3:.2f} ms)"
        )
        batch = one.sample(n, with_replacement=True, seed=0).with_columns(
            scenario=pl.arange(0, n), i_rate=pl.Series(rng.uniform(2.0, 40.0, n))
        )
        seconds = best_of(lambda batch=batch: evaluate(batch, text=False), max(1, repeats // 2))
        print(f"serving ({label}): {n:,} scenarios in {seconds * 1e3:.0f} ms = {seconds / n * 1e3:.2f} ms each")
    s = serving_scenario(True)
    seconds = best_of(lambda: fleet_goal(s, 100.0), repeats * 2)
    print(f"fleet goal (100 req/s, one GPU type, 7 TPs): {seconds * 1e3:.1f} ms")
    gpus = ["h100-sxm", "h200-sxm", "b200", "mi300x"]
    seconds = best_of(lambda: fleet_goal(s, 100.0, gpus=gpus), repeats * 2)
    print(f"fleet goal (100 req/s, {len(gpus)} GPU types x 7 TPs): {seconds * 1e3:.1f} ms")


def main() -> None:
    keep_freed_heap()  # as the whatif command does at start (engine/heap.py)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--explicit", type=int, default=100_000, help="explicit-plan scenarios (default 100,000)")
    p.add_argument("--auto", type=int, default=1_000, help="auto-plan scenarios (default 1,000)")
    p.add_argument("--serving", type=int, default=1_000, help="serving scenarios in a batch (default 1,000)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--only-serving", action="store_true", help="run only the serving benchmarks")
    args = p.parse_args()
    if args.only_serving:
        bench_serving(args.serving, args.repeats)
        return

    explicit = resolve(base_scenarios({"tp": 8, "pp": 4, "microbatch": 1, "zero": 1, "interleave": 1}))
    frame = sweep(explicit, args.explicit)
    seconds, result = timed(frame, args.repeats, text=False)
    print(
        f"explicit plans: {args.explicit:,} scenarios in {seconds * 1e3:.1f} ms = "
        f"{args.explicit / seconds:,.0f} scenarios/s ({int(result['train_fits'].sum()):,} fit; figures only)"
    )
    seconds, result = timed(frame, args.repeats, text=True)
    print(
        f"explicit plans: {args.explicit:,} scenarios in {seconds * 1e3:.1f} ms = "
        f"{args.explicit / seconds:,.0f} scenarios/s (with the reason and bottleneck sentences)"
    )

    auto = resolve(base_scenarios("auto"))
    frame = sweep(auto, args.auto)
    seconds, result = timed(frame, max(1, args.repeats // 2))
    searched = int(result["train_plans_searched"].sum())
    print(
        f"auto plans:     {args.auto:,} scenarios in {seconds * 1e3:.0f} ms = {args.auto / seconds:,.0f} "
        f"scenarios/s, {seconds / args.auto * 1e3:.2f} ms per scenario ({searched / args.auto:,.0f} candidate "
        f"plans each)"
    )

    one = auto.head(1)
    seconds, _ = timed(one, 20)
    print(f"one auto scenario alone: {seconds * 1e3:.2f} ms (the explorer's keystroke path)")
    bench_serving(args.serving, args.repeats)


if __name__ == "__main__":
    main()
