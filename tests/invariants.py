"""What every result must satisfy, whatever the scenario (tests/test_invariants.py; fuzzing by hand with
`python tests/invariants.py COUNT SEED`).

    no NaN or infinity in any figure, nor in the JSON record
    no negative time, rate, throughput, memory, energy, power or cost
    p99 >= p50 (TTFT and TPOT), 0 <= MFU <= 1
    every infeasible result has a reason; every feasible one has its headline figures
"""

from __future__ import annotations

import json
import math
import random
import sys

import polars as pl

# Float columns that may be negative by meaning: none. (A runner-up is never faster than the chosen plan.)
SIGNED: set[str] = set()


def problems(results: pl.DataFrame, scenarios: list) -> list[str]:
    """Every broken invariant, as 'row N (name): what' lines (empty: all hold)."""
    from whatif.engine.report import records

    out: list[str] = []
    rows = results.iter_rows(named=True)
    recs = records(results, [s.training is not None for s in scenarios], [s.inference is not None for s in scenarios])
    for i, (row, rec, s) in enumerate(zip(rows, recs, scenarios, strict=True)):
        where = f"row {i}"

        def bad(what: str) -> None:
            out.append(f"{where}: {what}")  # noqa: B023

        for key, value in row.items():
            if isinstance(value, float):
                if not math.isfinite(value):
                    bad(f"{key} = {value}")
                elif value < 0 and key not in SIGNED:
                    bad(f"{key} = {value} < 0")
        try:
            json.dumps(rec, allow_nan=False)
        except ValueError as exc:
            bad(f"JSON record: {exc}")
        for p50, p99 in (("infer_ttft_ms", "infer_ttft_p99_ms"), ("infer_tpot_ms", "infer_tpot_p99_ms")):
            a, b = row.get(p50), row.get(p99)
            if a is not None and b is not None and b < a * (1 - 1e-9):
                bad(f"{p99} {b} < {p50} {a}")
        for fig in ("ttft", "ttft_p99", "tpot", "tpot_p99"):
            # A latency band holds its point estimate (low end never above it, high end never below it; a
            # missing high end beside a low one is "unbounded").
            low, mid, high = row.get(f"infer_{fig}_low_ms"), row.get(f"infer_{fig}_ms"), row.get(f"infer_{fig}_high_ms")
            if low is not None and mid is not None and low > mid * (1 + 1e-6) + 1e-9:
                bad(f"infer_{fig}_low_ms {low} > infer_{fig}_ms {mid}")
            if high is not None and mid is not None and high < mid * (1 - 1e-6) - 1e-9:
                bad(f"infer_{fig}_high_ms {high} < infer_{fig}_ms {mid}")
        for mfu in ("train_mfu", "train_hfu"):
            v = row.get(mfu)
            if v is not None and not 0 <= v <= 1:
                bad(f"{mfu} = {v}")
        if s.training is not None:
            if not row["train_fits"] and not row.get("train_reason"):
                bad(f"training does not fit and says no reason (code {row['train_reason_code']})")
            if row["train_fits"]:
                for key in ("train_step_time_s", "train_wall_clock_days", "train_gpu_hours", "train_mem_gb"):
                    if row.get(key) is None:
                        bad(f"training fits but {key} is missing")
        if s.inference is not None:
            if not row["infer_fits"] and not row.get("infer_reason"):
                bad(f"serving does not fit and says no reason (code {row['infer_reason_code']})")
            if row["infer_fits"]:
                keys = ["infer_tpot_ms", "infer_tpot_p99_ms", "infer_tokens_per_s", "infer_capacity_tokens_per_s"]
                if not row["infer_overloaded"] and row["infer_offered_rps"] > 0:
                    keys += ["infer_ttft_ms", "infer_ttft_p99_ms"]
                for key in keys:
                    if row.get(key) is None:
                        bad(f"serving fits but {key} is missing")
                if row.get("infer_tokens_per_s") is not None and not row["infer_tokens_per_s"] > 0:
                    bad("serving fits but serves no tokens")
    return out


def fuzz(count: int, seed: int, batch: int = 64, evaluated: list | None = None) -> list[str]:
    """Evaluate `count` random scenarios in batches; every broken invariant with its scenario. `evaluated`
    (a list) gets the number of valid scenarios evaluated appended."""
    from scenario_space import Source, scenario_data, valid
    from whatif.engine import evaluate, resolve

    rng = random.Random(seed)
    found: list[str] = []
    done = 0
    while done < count:
        batch = min(batch, count - done)
        datas = [scenario_data(Source(rng=rng)) for _ in range(batch)]
        pairs = [(d, s) for d in datas if (s := valid(d)) is not None]
        scenarios = [s for _, s in pairs]
        if evaluated is not None:
            evaluated.append(len(scenarios))
        try:
            results = evaluate(resolve(scenarios))
        except Exception as exc:  # a crash: find the scenario
            for d, s in pairs:
                try:
                    evaluate(resolve([s]))
                except Exception as one:
                    found.append(f"CRASH {type(one).__name__}: {one}\n  {d}")
                    break
            else:
                found.append(f"CRASH in the batch only: {type(exc).__name__}: {exc}")
            done += batch
            continue
        for line in problems(results, scenarios):
            i = int(line.split(":")[0].split()[1])
            found.append(f"{line}\n  {pairs[i][0]}")
        done += batch
    return found


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    lines = fuzz(count, seed)
    kinds: dict[str, list[str]] = {}
    for line in lines:
        head = line.split("\n")[0].split(": ", 1)[-1]
        key = head.split(" = ")[0].split(" < ")[0][:70]
        kinds.setdefault(key, []).append(line)
    for key, items in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        print(f"{len(items):5d}  {key}\n       e.g. {items[0][:1500]}")
    print(f"{len(lines)} problems in {count} scenarios")
