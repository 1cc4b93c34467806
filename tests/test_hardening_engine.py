"""Impossible figures: whatever valid scenario comes in, the engine answers with finite, non-negative
figures or with a reason. Each test walks a class of inputs: every numeric key at both ends of its range,
storage left out in every way, the smallest model shapes."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import tiers
from annotated_types import Ge, Gt, Le, Lt
from invariants import problems
from test_hardening_input import NUMBER_KEYS, base_data, with_key
from whatif.engine import evaluate, resolve
from whatif.engine.scenario import ModelSpec, Parallelism, Scenario
from whatif.tui.cli import main
from whatif.tui.files import validated


def _field(key: str):
    """The pydantic field of a dotted key (explicit model shapes and plans included)."""
    model: type = Scenario
    *path, name = key.split(".")
    for part in path:
        if part in ("model", "parallelism"):
            model = ModelSpec if part == "model" else Parallelism
            continue
        annotation = model.model_fields[part].annotation
        model = next(a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type))
    return model.model_fields[name]


def _bounds(key: str) -> tuple[float | None, float | None, bool]:
    """The range a key's Field declares: (low, high, whether the low end itself is excluded)."""
    info = _field(key)
    metadata = list(info.metadata)
    for arg in getattr(info.annotation, "__args__", ()):
        metadata += list(getattr(arg, "__metadata__", ()))
    lo = hi = None
    open_low = False
    for m in metadata:
        for c in getattr(m, "metadata", [m]):
            if isinstance(c, Ge | Gt):
                lo, open_low = (c.ge, False) if isinstance(c, Ge) else (c.gt, True)
            if isinstance(c, Le | Lt):
                hi = c.le if isinstance(c, Le) else c.lt
    return lo, hi, open_low


def _extremes() -> list[tuple[str, float]]:
    """Every numeric key at the lowest and the highest value its range allows."""
    out = []
    for key in NUMBER_KEYS:
        lo, hi, open_low = _bounds(key)
        whole = "int" in str(_field(key).annotation) and "float" not in str(_field(key).annotation)
        if lo is not None:
            low = (lo + 1 if whole else (lo * 1.000001 if lo > 0 else 1e-9)) if open_low else lo
            out.append((key, int(low) if whole else float(low)))
        if hi is not None:
            out.append((key, int(hi) if whole else float(hi)))
    return out


def _scenarios_at_extremes() -> list[tuple[str, Scenario]]:
    out = []
    for key, value in _extremes():
        try:
            out.append((f"{key}={value}", validated(with_key(key, value), "x")))
        except Exception:
            continue  # a bound another key's rule excludes here (gpus_per_node over gpu_count, ...)
    return out


EXTREMES = _scenarios_at_extremes()


def test_every_numeric_key_at_both_ends_of_its_range_gives_finite_figures_or_a_reason():
    assert len(EXTREMES) > 120  # nearly every key, both ends
    scenarios = [s for _, s in EXTREMES]
    found = problems(evaluate(resolve(scenarios)), scenarios)
    labels = [label for label, _ in EXTREMES]
    assert not found, "\n".join(f"{labels[int(f.split(':')[0].split()[1])]}: {f}" for f in found[:10])


@pytest.mark.slow
def test_every_numeric_key_at_both_ends_of_its_range_prints_in_every_format(tmp_path):
    for label, scenario in EXTREMES:
        path = tmp_path / "s.toml"
        from whatif.tui.files import scenario_to_toml

        path.write_text(scenario_to_toml(scenario))
        for fmt in ([], ["--json"], ["--markdown"]):
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(["eval", str(path), *fmt])
            assert code == 0, (label, err.getvalue())
            if fmt == ["--json"]:
                json.loads(out.getvalue())


STORAGE_LEFT_OUT = [
    {"nvme": "none", "shared_fs": "none"},
    {"nvme_drives_per_node": 0, "shared_fs": "none"},
    {"nvme": "none", "shared_fs_read_gb_s": 0.0, "shared_fs_write_gb_s": 0.0},
    {"nvme_drives_per_node": 0, "shared_fs_read_gb_s": 0.0},
]


@pytest.mark.parametrize("storage", STORAGE_LEFT_OUT)
@pytest.mark.parametrize("mode", tiers.share(["sync", "async", "none"], 2))
def test_a_scenario_without_storage_says_so(storage, mode):
    data = base_data() | {"storage": storage | {"checkpoint_mode": mode}}
    del data["inference"]
    s = validated(data, "x")
    row = evaluate(resolve([s])).row(0, named=True)
    # With no storage the training input cannot be read: no figure could be true (a hand reasoning, not a
    # number copied from the code).
    assert row["train_fits"] is False and "no storage" in row["train_reason"]
    assert row["train_step_time_s"] is None and row["train_wall_clock_days"] is None
    assert not problems(evaluate(resolve([s])), [s])


def test_checkpoints_without_anywhere_to_write_them_say_so():
    data = base_data() | {"storage": {"nvme": "none", "shared_fs_write_gb_s": 0.0, "checkpoint_mode": "sync"}}
    row = evaluate(resolve([validated(data, "x")])).row(0, named=True)
    assert row["train_fits"] is False and "checkpoints" in row["train_reason"]
    data["storage"]["checkpoint_mode"] = "none"
    row = evaluate(resolve([validated(data, "x")])).row(0, named=True)
    assert row["train_fits"] is True and row["train_checkpoint_write_s"] is None


@pytest.mark.parametrize("output", [1, 2, 16])
@pytest.mark.parametrize("vocab", tiers.share([1, 64, 262_144], 2))
@pytest.mark.parametrize("ffn", [1, 64])
def test_the_smallest_model_shapes_give_no_negative_or_missing_figures(output, vocab, ffn):
    shape = {"layers": 1, "hidden": 64, "heads": 1, "vocab": vocab, "ffn_hidden": ffn, "tied_embeddings": False}
    data = {
        "cluster": {"gpu_count": 8},
        "training": {"model": shape, "seq_len_tokens": 16, "global_batch_seqs": 8, "train_tokens": 1e6},
        "inference": {"model": shape, "prompt_tokens": 1, "output_tokens": output, "concurrency": 1},
    }
    s = validated(data, "x")
    results = evaluate(resolve([s]))
    assert not problems(results, [s])
    row = results.row(0, named=True)
    assert row["train_fits"] and row["infer_fits"]


def test_a_gpu_smaller_than_the_runtime_reserve_has_nothing_usable_not_a_negative_amount():
    data = base_data() | {"cluster": {"gpu_count": 64, "hbm_gb": 1.0}}
    row = evaluate(resolve([validated(data, "x")])).row(0, named=True)
    assert row["infer_fits"] is False and row["infer_mem_usable_gb"] == 0.0
    assert "-" not in row["infer_reason"] and "none usable" in row["infer_reason"]
