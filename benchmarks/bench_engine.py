"""Engine throughput: scenarios per second for explicit plans and for searched ("auto") plans.

    python benchmarks/bench_engine.py            # 100,000 explicit-plan and 1,000 auto-plan scenarios

Targets on the 2-core development machine: >= 1,000,000 explicit-plan scenarios/s, and one auto-plan
scenario in <= 5 ms. The frames are built as the explorer builds its sweeps: a few resolved scenarios,
tiled and varied column-wise in polars (no Python object per scenario). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import polars as pl
from whatif.engine import Scenario, evaluate, resolve

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--explicit", type=int, default=100_000, help="explicit-plan scenarios (default 100,000)")
    p.add_argument("--auto", type=int, default=1_000, help="auto-plan scenarios (default 1,000)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()

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


if __name__ == "__main__":
    main()
