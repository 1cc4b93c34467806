"""What the explorer asks of the engine on every change, without any Textual in it.

One request = the current scenario, every comparison row (presets and pinned scenarios) and the scale
sweep (the current training workload at every whole-node count of a log grid, each point resolved as its
own scenario). `Explorer.prepare` resolves them into polars frames and hashes every row; `finish` sends
the engine only the rows whose inputs it has not seen before: in one call (`run`), or a chunk at a time
so that a newer edit can stop a request it has overtaken. Results are cached by a hash of the resolved
input row (all columns except the row index and the name), so a keystroke in the GPU count field
evaluates one row, while a workload edit, which changes every comparison row, evaluates them all.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import polars as pl
from pydantic import ValidationError
from whatif.engine import ScenarioError, resolve
from whatif.engine.errors import from_validation_error
from whatif.engine.plan_memo import PlanMemo
from whatif.engine.presets_merge import workload_kinds
from whatif.engine.scenario import Scenario

from . import files

EvaluateFn = Callable[[pl.DataFrame], pl.DataFrame]

# The scale chart's GPU counts before rounding to whole nodes: a log grid from 8 to 32,768 with three
# points per doubling (8, 10.1, 12.7, 16, ...), so the curve is sampled evenly on its log axis and not
# only at powers of two.
POINTS_PER_DOUBLING = 3
SWEEP_TARGETS = tuple(8 * 2 ** (k / POINTS_PER_DOUBLING) for k in range(12 * POINTS_PER_DOUBLING + 1))
_NOT_KEYED = ("scenario", "name")


def sweep_counts(gpus_per_node: int) -> list[int]:
    """GPU counts for the scale chart: each point of the log grid rounded to whole nodes, duplicates
    dropped (the current count is added to the chart from the current row)."""
    return sorted({max(1, round(t / gpus_per_node)) * gpus_per_node for t in SWEEP_TARGETS})


@dataclass(frozen=True)
class Preset:
    """A scenario to compare against: shipped, the user's own, or one the user pinned."""

    key: str  # "shipped:default", "user:my-plan", "pinned:1"
    label: str  # what the table shows
    scenario: Scenario | None  # None: the file could not be used
    error: str | None = None
    source: str = "shipped"  # shipped | user | pinned


def discover_presets() -> list[Preset]:
    """Every shipped and saved preset; a file that cannot be used becomes a row that says why."""
    found: list[Preset] = []
    for source, entries in (("shipped", files.shipped_presets()), ("user", files.user_presets())):
        for stem, path in entries.items():
            try:
                scenario = files.load_scenario(path)
            except ScenarioError as exc:
                found.append(
                    Preset(f"{source}:{stem}", stem, None, str(exc.issues[0]) if exc.issues else str(exc), source)
                )
                continue
            found.append(Preset(f"{source}:{stem}", stem, scenario, None, source))
    return found


@dataclass(frozen=True)
class Comparison:
    preset: Preset
    scenario: Scenario | None  # as evaluated: the preset's hardware with the chosen workload
    error: str | None


def with_workload(hardware: Scenario, workload: Scenario) -> Scenario:
    """`hardware`'s cluster, network, storage, cooling and facility running `workload`'s training and serving,
    with the training's [data] (engine/presets_merge.py: the input goes with the training, not the hardware's
    own: a text model on the video preset read 768-byte patches)."""
    data = hardware.model_dump(exclude_none=True)
    for section in ("training", "inference"):
        value = getattr(workload, section)
        if value is None:
            data.pop(section, None)
        else:
            data[section] = value.model_dump(exclude_none=True)
    if workload.training is not None:
        data["data"] = workload.data.model_dump(exclude_none=True)
    return Scenario.model_validate(data)


def comparisons_for(current: Scenario, presets: Iterable[Preset], own_workload: bool) -> list[Comparison]:
    out = []
    for p in presets:
        if p.scenario is None:
            out.append(Comparison(p, None, p.error))
        elif own_workload or p.source == "pinned":
            out.append(Comparison(p, p.scenario, None))
        else:
            out.append(_on_preset_hardware(p, p.scenario, current))
    return out


_ONLY = {"training": "serving-only", "inference": "training-only"}


def _on_preset_hardware(preset: Preset, hardware: Scenario, current: Scenario) -> Comparison:
    """The current workload on the preset's hardware. Where only one workload cannot run there (e.g. FP8
    serving on an A100), the other still does, and the row says what was left out."""
    # The rule `--workload` follows (engine/presets_merge.py): a preset that runs only one kind of work (a
    # serving node, a training cluster) is not given the other.
    runs = workload_kinds(hardware.model_dump(exclude_none=True))
    skipped = [k for k in ("training", "inference") if runs and k not in runs and getattr(current, k) is not None]
    if skipped:
        current = current.model_copy(update={k: None for k in skipped})
        if current.training is None and current.inference is None:
            return Comparison(preset, None, f"{_ONLY[skipped[0]]} preset: it runs no {skipped[0]}")
    note = f"{' and '.join(skipped)} left out here: {_ONLY[skipped[0]]} preset" if skipped else None
    try:
        return Comparison(preset, with_workload(hardware, current), note)
    except ValidationError as exc:
        issues = from_validation_error(exc, Scenario).issues
    sections = {issue.key.split(".")[0] for issue in issues}
    if len(sections) == 1 and sections <= {"training", "inference"}:
        (left_out,) = sections
        try:
            partial = with_workload(hardware, current.model_copy(update={left_out: None}))
            return Comparison(preset, partial, f"{left_out} left out here: {issues[0]}")
        except ValidationError:
            pass
    return Comparison(preset, None, f"current workload cannot run here: {issues[0]}")


@dataclass
class Outcome:
    """The engine's answer to one request, as plain dicts (one per row) for the widgets."""

    scenario: Scenario
    current: dict
    comparisons: list[tuple[Comparison, dict | None]]
    sweep: list[dict]
    evaluated: int = 0  # rows the engine computed for this request (the rest came from the cache)
    engine_s: float = 0.0
    generation: int = 0
    partial: bool = False  # only the current row was computed; comparisons and sweep may be missing


def split_workloads(current: Scenario) -> tuple[Scenario, Scenario]:
    """(training only, serving only). The serving half forgets the cluster's GPU count when the serving
    workload names its own, so that its cache key does not change with it."""
    train = current.model_copy(update={"inference": None})
    serve = current.model_copy(update={"training": None})
    if current.inference is not None and current.inference.gpu_count:
        cluster = current.cluster.model_copy(update={"gpu_count": current.inference.gpu_count})
        serve = serve.model_copy(update={"cluster": cluster})
    return train, serve


def merge_workloads(train_row: dict | None, serve_row: dict | None) -> dict | None:
    """One result row from the training row and the serving row of the same scenario."""
    if train_row is None or serve_row is None:
        return None
    return train_row | {k: v for k, v in serve_row.items() if k.startswith("infer_")}


def _rows(parts: list[pl.DataFrame], index: list[int]) -> pl.DataFrame:
    """Rows `index` of the parts laid end to end, concatenating only the parts they come from (a typed GPU
    count needs just the current row: no copy of the comparison and sweep frames)."""
    picked, start = [], 0
    for part in parts:
        local = [i - start for i in index if start <= i < start + part.height]
        if local:
            picked.append(part if len(local) == part.height else part[local])
        start += part.height
    return picked[0] if len(picked) == 1 else pl.concat(picked, how="vertical_relaxed")


@dataclass
class Job:
    """One request, resolved and hashed: which rows it needs and which of them the engine must compute."""

    scenario: Scenario
    comparisons: list[Comparison]
    counts: list[int]
    hashes: list[int]
    frame: list[pl.DataFrame]
    missing: dict[int, int]  # row hash -> row index in the concatenated frame
    generation: int = 0
    own_rows_only: bool = False  # prepared without its comparison and sweep rows (Explorer.prepare)


@dataclass
class Explorer:
    """Holds the result cache. The UI thread may compute the current row while the worker thread computes
    the rest of a request, so every use of the caches holds the lock; the engine itself runs outside it
    (it is a pure function of its frame)."""

    # The engine, remembering the plans it searched: a token count or a price typed in keeps every row's plan
    # (engine/plan_memo.py), so those rows cost an explicit plan's evaluation, not a search.
    evaluate_fn: EvaluateFn = field(default_factory=lambda: PlanMemo().evaluate)
    capacity: int = 4096
    calls: int = 0
    _cache: OrderedDict = field(default_factory=OrderedDict)
    _comparison_frames: dict = field(default_factory=dict)
    _sweeps: dict = field(default_factory=dict)
    _rows: dict = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # The resolved frames are kept in small dictionaries; resolving happens outside the lock (the worker
    # may resolve a request's comparisons while the UI thread resolves a keystroke's current rows).

    def _resolved(self, scenario: Scenario) -> pl.DataFrame:
        """One scenario's row; the serving half repeats across GPU-count edits, so recent rows are kept."""
        with self._lock:
            hit = self._rows.get(scenario)
        if hit is None:
            hit = resolve([scenario])
            with self._lock:
                self._rows[scenario] = hit
                if len(self._rows) > 64:
                    self._rows.pop(next(iter(self._rows)))
        return hit

    def _resolve_comparisons(self, scenarios: tuple[Scenario, ...]) -> tuple[pl.DataFrame | None, list[int]]:
        """The comparison rows' frame and hashes; unchanged between keystrokes that do not touch the workload."""
        with self._lock:
            hit = self._comparison_frames.get(scenarios)
        if hit is None:
            frame = resolve(scenarios) if scenarios else None
            hashes = [] if frame is None else frame.drop(_NOT_KEYED).hash_rows().to_list()
            hit = (frame, hashes)
            with self._lock:
                self._comparison_frames = {scenarios: hit}
        return hit

    @staticmethod
    def _sweep_key(current: Scenario) -> tuple:
        c = current.cluster
        return (
            c.gpu,
            c.gpus_per_node,
            c.nodes_per_rack,
            c.hbm_gb,
            c.bf16_tflops,
            c.fp8_tflops,
            c.host_memory_gb,
            current.network,
            current.storage,
            current.cooling,
            current.facility,
            current.training,
            current.data,
            current.reliability,
        )

    def sweep_resolved(self, current: Scenario) -> bool:
        """Whether the sweep frame of `current` is resolved already (it is kept while only the GPU count
        changes)."""
        with self._lock:
            return self._sweep_key(current) in self._sweeps

    def _sweep(self, current: Scenario, cur: pl.DataFrame) -> tuple[list[int], pl.DataFrame, list[int]]:
        """The sweep rows: the current training row replicated with other GPU counts (whole nodes); the
        chart plots training only, so its rows carry no serving workload. They depend on everything but the
        GPU count, so they are kept while only the count changes."""
        c = current.cluster
        key = self._sweep_key(current)
        with self._lock:
            hit = self._sweeps.get(key)
        if hit is None:
            counts = sweep_counts(c.gpus_per_node)
            # Each point resolved as its own scenario: some resolved columns follow the GPU count (the
            # scale-out pod, a sample workload's batch), so a copy of the current row with another n_gpus
            # would price every point with the current count's pod.
            train = current.model_copy(update={"inference": None})
            try:
                frame = resolve([train.edited("cluster", gpu_count=n) for n in counts])
            except (ValidationError, ScenarioError):
                frame = pl.concat([cur] * len(counts)).with_columns(
                    n_gpus=pl.Series(counts, dtype=cur.schema["n_gpus"])
                )
            frame = frame.select(cur.columns) if set(frame.columns) == set(cur.columns) else frame
            hit = (counts, frame, frame.drop(_NOT_KEYED).hash_rows().to_list())
            with self._lock:
                self._sweeps = {key: hit}
        return hit

    def prepare(self, current: Scenario, comparisons: list[Comparison] | None, generation: int = 0) -> Job:
        """The request for `current` and its comparisons; with comparisons=None, for its own rows only
        (the explorer's keystroke path: a workload edit needs the comparison and sweep rows resolved anew,
        ~30 ms for 41 scenarios, which the worker does once typing pauses)."""
        # The current scenario as two rows, its training and its serving, cached apart: typing a GPU count
        # changes the training row only (serving sized by inference.gpu_count does not depend on it).
        train, serve = split_workloads(current)
        cur = pl.concat([self._resolved(train), self._resolved(serve)], how="vertical_relaxed")
        parts, hashes = [cur], cur.drop(_NOT_KEYED).hash_rows().to_list()
        counts: list[int] = []
        if comparisons is not None:
            counts, sweep, sweep_hashes = self._sweep(current, cur[0])
            valid = tuple(c.scenario for c in comparisons if c.scenario is not None)
            comp_frame, comp_hashes = self._resolve_comparisons(valid)
            parts += [sweep] + ([comp_frame] if comp_frame is not None else [])
            hashes += sweep_hashes + comp_hashes
        missing: dict[int, int] = {}
        with self._lock:
            for i, h in enumerate(hashes):
                if h not in self._cache and h not in missing:
                    missing[h] = i
        return Job(current, comparisons or [], counts, hashes, parts, missing, generation, comparisons is None)

    def finish(
        self,
        job: Job,
        current_only: bool = False,
        cancelled: Callable[[], bool] | None = None,
        chunk_rows: int | None = None,
    ) -> Outcome | None:
        """One engine call for every row not seen before; the outcome from the cache. With `current_only`
        just the current rows are computed (the figures of a keystroke); rows not in the cache are left
        out. With `chunk_rows` the rows go to the engine that many at a time, and `cancelled()` is asked
        between calls: a request overtaken by a newer edit stops (None), keeping what it computed."""
        started = time.perf_counter()
        with self._lock:
            missing = {h: i for h, i in job.missing.items() if h not in self._cache and (i <= 1 or not current_only)}
        items = list(missing.items())
        step = chunk_rows or max(len(items), 1)
        for start in range(0, len(items), step):
            if cancelled is not None and cancelled():
                return None
            part = items[start : start + step]
            todo = _rows(job.frame, [i for _, i in part]).with_columns(scenario=pl.int_range(pl.len(), dtype=pl.Int64))
            results = self.evaluate_fn(todo)
            with self._lock:
                self.calls += 1
                for (h, _), row in zip(part, results.iter_rows(named=True), strict=True):
                    self._store(h, row)
        engine_s = time.perf_counter() - started
        with self._lock:
            return self._outcome(job, missing, engine_s, current_only)

    def _outcome(self, job: Job, missing: dict, engine_s: float, current_only: bool) -> Outcome | None:
        hashes, current = job.hashes, job.scenario

        def row(i: int, name: str) -> dict | None:
            found = self._cache.get(hashes[i])
            return None if found is None else found | {"name": name}

        current_row = merge_workloads(row(0, current.name), row(1, current.name))
        if current_row is None:  # evicted by a larger request meanwhile (the current rows are computed first)
            return None
        sweep_rows = [r for k in range(len(job.counts)) if (r := row(2 + k, current.name)) is not None]
        if current.cluster.gpu_count not in job.counts:  # the current point, marked on the chart
            sweep_rows.append(current_row)
            sweep_rows.sort(key=lambda r: r["n_gpus"])
        out_comparisons: list[tuple[Comparison, dict | None]] = []
        index = 2 + len(job.counts)
        for c in job.comparisons:
            if c.scenario is None:
                out_comparisons.append((c, None))
            else:
                out_comparisons.append((c, row(index, c.scenario.name)))
                index += 1
        for h in hashes:  # keep what this request used at the young end of the cache
            if h in self._cache:
                self._cache.move_to_end(h)
        partial = current_only or job.own_rows_only
        return Outcome(
            current, current_row, out_comparisons, sweep_rows, len(missing), engine_s, job.generation, partial
        )

    def run(self, current: Scenario, comparisons: list[Comparison], generation: int = 0) -> Outcome:
        outcome = self.finish(self.prepare(current, comparisons, generation))
        if outcome is None:  # not cancellable here; only a cache smaller than one request loses its rows
            raise RuntimeError("the result cache is smaller than one request")
        return outcome

    def _store(self, key: int, row: dict) -> None:
        self._cache[key] = row
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
