"""Evaluating rows whose training plan was searched before, with that plan given instead of searched again.

The plan search (hundreds of candidate plans a row, ~5-7 ms for one row alone) reads the cluster, the model,
the batch and the sequence; it never reads the run's length, prices, carbon, the facility or reliability
(`PLAN_NEUTRAL`). A row that differs from one searched before only in those columns has the same plan, so
`PlanMemo.evaluate` gives it that plan (as the sweep does for such axes, engine/sweep.py) and copies what
only the search knows (the number of plans searched and the runner-up): the same figures as a search, for
the cost of an explicit plan. This is what makes typing a token count or a price in the explorer cheap.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import polars as pl

from .evaluate import add_text, evaluate
from .resolve import AUTO

# Resolved columns the plan search never reads: the run's length, electricity and carbon, the facility,
# prices and capital cost, checkpoints, failures and restarts. tests/test_plan_memo.py checks them
# against what the search reads (sweep.plan_reads) on every shipped preset. Left out of a row's plan key.
PLAN_NEUTRAL = (
    "tokens",
    "usd_per_kwh",
    "gco2_per_kwh",
    "gco2_market_per_kwh",
    "pue",
    "site_pue",
    "pue_factor",
    "wue_l_per_kwh",
    "water_factor",
    "usd_per_gpu_hour",
    "price_date",
    "price_key",
    "price_provider",
    "price_source",
    "price_term",
    "price_via",
    "cost_model",
    "cost_owned",
    "depreciation_years",
    "usd_per_kw_month",
    "server_usd_per_gpu",
    "network_capex_share",
    "storage_capex_share",
    "purchase_date",
    "purchase_key",
    "purchase_source",
    "purchase_via",
    "purchase_what",
    "restart_s",
    "gpu_mtbf_h",
    "node_mtbf_h",
    "ckpt_interval_min",
)
# Columns that only name a row.
_NOT_KEYED = ("scenario", "name")

# The plan's input columns and the result columns that hold the plan chosen (engine/sweep.py keeps the same
# map for its own reuse).
PLAN_INPUTS = {
    "p_tp": "train_tp",
    "p_cp": "train_cp",
    "p_pp": "train_pp",
    "p_dp": "train_dp",
    "p_mb": "train_microbatch",
    "p_zero": "train_zero",
    "p_shard": "train_dp_shard",
    "p_v": "train_interleave",
    "p_ep": "train_ep",
    "p_etp": "train_etp",
    "p_rc": "train_recompute_code",
    "p_rcl": "train_recompute_layers",
}
# train_recompute_code (none, selective, full, partial, selective + partial) as the p_rc input codes
# (none, selective, full); the layer count travels in p_rcl.
RECOMPUTE_INPUT = {0: 0, 1: 1, 2: 2, 3: 2, 4: 1}


def searched_only(columns) -> list[str]:
    """The result columns only a search fills: how many plans it tried, and its runner-up."""
    return ["train_plans_searched", *(c for c in columns if c.startswith("train_runner_up_"))]


def plan_picks(results: pl.DataFrame) -> pl.DataFrame:
    """Each result row's chosen plan as plan input values (PLAN_INPUTS' keys), and what only the search knew."""
    return results.select(
        *(pl.col(out).alias(key) for key, out in PLAN_INPUTS.items()), *searched_only(results.columns)
    ).with_columns(p_rc=pl.col("p_rc").replace_strict(RECOMPUTE_INPUT, return_dtype=pl.Int64))


def _scatter(frame: pl.DataFrame, columns: list[str], rows: list[int], picks: list[dict]) -> pl.DataFrame:
    """`frame` with `columns` at `rows` set to the values in `picks` (one dict a row), keeping each dtype."""
    schema = frame.schema
    replaced = []
    for c in columns:
        series = frame[c]
        values = series.to_list()
        for i, pick in zip(rows, picks, strict=True):
            values[i] = pick[c]
        replaced.append(pl.Series(c, values, dtype=schema[c], strict=False))
    return frame.with_columns(replaced)


class PlanMemo:
    """Plans found by earlier searches, keyed by a hash of every input column the search may read; a
    bounded cache, safe to share between the explorer's threads."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._picks: OrderedDict[int, dict] = OrderedDict()
        self._lock = threading.Lock()
        self.reused = 0  # rows given a remembered plan (for tests and benchmarks)

    def __len__(self) -> int:
        return len(self._picks)

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        """`evaluate(frame)`, with the plan of every row searched before given instead of searched."""
        columns = set(frame.columns)  # (frame.columns builds a list of ~250 names on every call)
        plan_cols = [c for c in PLAN_INPUTS if c in columns]
        if not plan_cols or "has_train" not in columns or frame.height == 0:
            return evaluate(frame)
        auto = np.zeros(frame.height, dtype=bool)
        for c in plan_cols:
            auto |= frame[c].to_numpy() == AUTO
        is_searched = auto & (frame["has_train"].to_numpy() == 1)
        if not is_searched.any():
            return evaluate(frame)
        neutral = [c for c in (*PLAN_NEUTRAL, *_NOT_KEYED) if c in columns]
        keys = frame.drop(neutral).hash_rows().to_list()
        with self._lock:
            known = {int(i): self._picks[keys[i]] for i in np.flatnonzero(is_searched) if keys[i] in self._picks}
            for i in known:
                self._picks.move_to_end(keys[i])
        given = frame
        rows = list(known)
        if rows:
            picks = [known[i] for i in rows]
            given = _scatter(frame, plan_cols, rows, picks)
            self.reused += len(rows)
        out = evaluate(given, text=False)
        if rows:
            out = _scatter(out, [c for c in searched_only(out.columns) if c in picks[0]], rows, picks)
        self._remember(out, keys, is_searched, known)
        return add_text(out)

    def _remember(self, out: pl.DataFrame, keys: list[int], is_searched: np.ndarray, known: dict) -> None:
        new = [int(i) for i in np.flatnonzero(is_searched) if i not in known]
        if not new or "train_fits" not in out.columns:
            return
        fits = out["train_fits"].fill_null(False).to_numpy()
        new = [i for i in new if fits[i]]
        if not new:
            return
        picks = plan_picks(out[new]).to_dicts()
        with self._lock:
            for i, pick in zip(new, picks, strict=True):
                self._picks[keys[i]] = pick
            while len(self._picks) > self.capacity:
                self._picks.popitem(last=False)
