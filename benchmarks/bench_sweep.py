"""Sweep throughput: grid points per second through `whatif sweep`'s engine path (engine/sweep.py).

    python benchmarks/bench_sweep.py                 # 1,000,000 explicit-plan and 100,000 auto-plan points
    python benchmarks/bench_sweep.py --write         # also time writing the explicit grid (CSV and Parquet)

Targets on the 2-core development machine: 1,000,000 explicit-plan points <= 10 s and 100,000 auto-plan
points <= 60 s, from the preset to the result frame (validation, resolution, the grid, every figure).
Prints what it measured and what the engine alone gives (one evaluate() of a frame of that many rows,
without the sweep's savings); asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from whatif.engine import evaluate
from whatif.engine import sweep as sw
from whatif.engine.heap import keep_freed_heap
from whatif.tui import files

EXPLICIT_PLAN = {"tp": 8, "pp": 4, "microbatch": 1, "zero": 1, "interleave": 1}

# 3 x 8 x 4 x 25 x 100 x 5 = 1,200,000 points; training and serving (the default preset has both).
EXPLICIT_AXES = [
    "cluster.gpu=h100-sxm,h200-sxm,b200",
    "cluster.gpu_count=256:32768:x2",
    "training.global_batch_seqs=1024,2048,4096,8192",
    "training.train_tokens=1e12:25e12:1e12",
    "facility.electricity_usd_per_kwh=0.01:1.0:0.01",
    "reliability.restart_min=0,5,10,20,30",
]
# 2 x 5 x 4 x 5 x 25 x 20 = 100,000 points with the plan searched (parallelism = "auto"); token counts and
# prices do not change which plan is fastest, so the sweep searches 200 plans and reuses them.
AUTO_AXES = [
    "cluster.gpu=h100-sxm,h200-sxm",
    "cluster.gpu_count=512:8192:x2",
    "training.global_batch_seqs=512,1024,2048,4096",
    "training.seq_len_tokens=2048,4096,8192,16384,32768",
    "training.train_tokens=1e12:25e12:1e12",
    "facility.electricity_usd_per_kwh=0.025:0.5:0.025",
]
# 2 x 1,024 x 5 = 10,240 points, every one a search of its own (each GPU count and sequence length differs).
AUTO_DISTINCT_AXES = [
    "cluster.gpu=h100-sxm,h200-sxm",
    "cluster.gpu_count=8:8192:8",
    "training.seq_len_tokens=2048,4096,8192,16384,32768",
]


def timed_sweep(base, axes: list[str], label: str, target_s: float, scale_to: int | None = None):
    """Time one sweep; `scale_to`: also judge it as that many points at the same rate (target_s is then the
    target for `scale_to` points)."""
    start = time.perf_counter()
    grid = sw.build(base, [sw.parse_axis(a) for a in axes])
    built = time.perf_counter() - start
    result = sw.run(grid)
    total = time.perf_counter() - start
    res = result.results
    fits = int(res["train_fits"].sum())
    judged, points = (total, grid.points) if scale_to is None else (total * scale_to / grid.points, scale_to)
    verdict = "meets" if judged <= target_s else "MISSES"
    scaled = "" if scale_to is None else f"{scale_to:,} such points at this rate: {judged:.0f} s, "
    print(
        f"{label}: {grid.points:,} points in {total:.2f} s = {grid.points / total:,.0f} points/s "
        f"(build {built * 1e3:.0f} ms, {grid.combos.height} resolved combinations, {result.rows_evaluated:,} engine "
        f"rows; {fits:,} training plans fit; {res.width} columns): {scaled}{verdict} the {target_s:.0f} s target "
        f"for {points:,} points"
    )
    return grid, result


def engine_alone(grid, rows: int, label: str) -> None:
    """One evaluate() of `rows` grid points, as a caller without the sweep's savings would run it."""
    frame = sw.frame(grid, 0, rows).drop(sw.HELPERS)
    start = time.perf_counter()
    evaluate(frame)
    seconds = time.perf_counter() - start
    print(f"  engine alone ({label}): {rows:,} rows in {seconds:.2f} s = {rows / seconds:,.0f} rows/s")


def main() -> None:
    keep_freed_heap()  # as the whatif command does at start (engine/heap.py)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="also time writing the explicit grid to CSV and Parquet")
    p.add_argument("--skip-auto", action="store_true", help="only the explicit-plan grid")
    args = p.parse_args()

    default = files.load_scenario(files.shipped_presets()["default"])
    explicit = default.edited("training", parallelism=EXPLICIT_PLAN, recompute="selective")
    grid, result = timed_sweep(explicit, EXPLICIT_AXES, "explicit plans", 10.0)
    engine_alone(grid, 10_000, "explicit plans, training and serving at every point")
    training_only = explicit.model_copy(update={"inference": None})
    timed_sweep(training_only, EXPLICIT_AXES, "explicit plans, training only", 10.0)
    if args.write:
        with tempfile.TemporaryDirectory() as tmp:
            for suffix in (".parquet", ".csv"):
                path = Path(tmp) / f"grid{suffix}"
                start = time.perf_counter()
                from whatif.tui.commands.sweep import write

                write(result.results, str(path))
                print(f"  write {suffix}: {time.perf_counter() - start:.2f} s, {path.stat().st_size / 1e6:,.0f} MB")
    if not args.skip_auto:
        auto = default.model_copy(update={"inference": None})
        timed_sweep(auto, AUTO_AXES, "auto plans", 60.0)
        timed_sweep(auto, AUTO_DISTINCT_AXES, "auto plans, a search per point", 60.0, scale_to=100_000)


if __name__ == "__main__":
    main()
