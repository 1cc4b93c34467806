"""The serving latency band: each latency if the replica's capacity were off by its regime's error band.

The band's ends are the same model at other rates (lam / (1 + b) and lam / (1 - b), b the band as a fraction),
so each end is checked against an evaluation at that rate; near saturation the high end has no bound."""

from __future__ import annotations

import json
import math

import pytest
from goodput_helpers import merge, row, scenario
from whatif.tui.cli import main

# Llama 3.1 8B on one H100, 1,024-token prompts and 256-token outputs, at a stated request rate.
SERVE = {
    "name": "band",
    "cluster": {"gpu": "h100-sxm", "gpu_count": 1, "gpus_per_node": 1},
    "inference": {
        "model": "llama-3.1-8b",
        "precision": "bf16",
        "prompt_tokens": 1024,
        "output_tokens": 256,
        "concurrency": 256,
        "tp": 1,
    },
}


def _at(rate: float) -> dict:
    return row(scenario(merge(SERVE, {"inference": {"request_rate_per_s": rate}})))


def test_near_saturation_the_high_end_has_no_bound():
    capacity = _at(1.0)["infer_capacity_rps"]
    r = _at(0.97 * capacity)
    b = r["infer_error_band_pct"] / 100.0
    assert 0.97 / (1.0 - b) > 1.0  # capacity b lower would not hold the rate
    assert r["infer_ttft_p99_high_ms"] is None  # beside a finite low end: unbounded
    assert math.isfinite(r["infer_ttft_p99_low_ms"])
    # The TPOT stays finite (every slot taken) and no lower than at the offered rate.
    assert math.isfinite(r["infer_tpot_p99_high_ms"]) and r["infer_tpot_p99_high_ms"] >= r["infer_tpot_p99_ms"]


def test_an_overloaded_fleet_keeps_the_low_end_where_more_capacity_would_hold_the_rate():
    capacity = _at(1.0)["infer_capacity_rps"]
    r = _at(1.05 * capacity)
    assert r["infer_overloaded"] and r["infer_ttft_p99_ms"] is None
    b = r["infer_error_band_pct"] / 100.0
    assert 1.05 / (1.0 + b) < 1.0
    assert math.isfinite(r["infer_ttft_p99_low_ms"]) and r["infer_ttft_p99_high_ms"] is None


# Llama 3.1 70B FP8 on 8 H200: one prefill replica of 2 GPUs (TP2), three decode replicas of TP2.
DISAGG = {
    "name": "band-pd",
    "cluster": {"gpu": "h200-sxm", "gpu_count": 8, "gpus_per_node": 8},
    "inference": {
        "model": "llama-3.1-70b",
        "precision": "fp8",
        "prompt_tokens": 2048,
        "output_tokens": 256,
        "concurrency": 256,
        "tp": 2,
        "disaggregated": True,
        "prefill_gpu_count": 2,
        "prefill_tp": 2,
    },
}


def _pd_at(rate: float) -> dict:
    return row(scenario(merge(DISAGG, {"inference": {"request_rate_per_s": rate}})))


@pytest.mark.parametrize("at", [_at, _pd_at], ids=["colocated", "disaggregated"])
def test_each_end_is_the_latency_at_the_rate_a_capacity_error_would_give(at):
    # Disaggregated: both pools' capacity off by b, so the whole fleet at the shifted rate.
    capacity = at(1.0)["infer_capacity_rps"]
    rate = 0.5 * capacity
    r = at(rate)
    b = r["infer_error_band_pct"] / 100.0
    assert 0.0 < b < 0.5
    if at is _pd_at:
        assert r["infer_kv_transfer_ms"] > 0  # the disaggregated path
    # Capacity b higher: the same load is lam / (1 + b) of the model's; b lower: lam / (1 - b).
    low, high = at(rate / (1.0 + b)), at(rate / (1.0 - b))
    for fig in ("ttft", "ttft_p99", "tpot", "tpot_p99"):
        assert r[f"infer_{fig}_low_ms"] == pytest.approx(low[f"infer_{fig}_ms"], rel=1e-6)
        assert r[f"infer_{fig}_high_ms"] == pytest.approx(high[f"infer_{fig}_ms"], rel=1e-6)
        assert r[f"infer_{fig}_low_ms"] <= r[f"infer_{fig}_ms"] <= r[f"infer_{fig}_high_ms"]


def test_a_disaggregated_fleet_near_saturation_has_no_high_end():
    capacity = _pd_at(1.0)["infer_capacity_rps"]
    near = _pd_at(0.95 * capacity)
    b = near["infer_error_band_pct"] / 100.0
    assert 0.95 / (1.0 - b) > 1.0  # the prefill or decode pool at capacity b lower would not hold the rate
    assert near["infer_ttft_p99_high_ms"] is None and math.isfinite(near["infer_ttft_p99_low_ms"])


def test_offline_has_no_band():
    # Offline (rate 0: every slot kept full, as a fixed-concurrency client does) sets its own load: a capacity
    # error moves its throughput, not its place on the load curve.
    r = row(scenario(merge(SERVE, {"inference": {"request_rate_per_s": 0.0}})))
    assert r["infer_ttft_p99_low_ms"] is None or math.isnan(r["infer_ttft_p99_low_ms"])


def test_json_and_table_show_the_band(capsys, tmp_path):
    capacity = _at(1.0)["infer_capacity_rps"]
    path = tmp_path / "band.toml"
    path.write_text(
        "\n".join(
            [
                'name = "band"',
                "[cluster]",
                'gpu = "h100-sxm"',
                "gpu_count = 1",
                "gpus_per_node = 1",
                "[inference]",
                'model = "llama-3.1-8b"',
                'precision = "bf16"',
                "prompt_tokens = 1024",
                "output_tokens = 256",
                "concurrency = 256",
                "tp = 1",
                f"request_rate_per_s = {0.97 * capacity}",
            ]
        )
    )
    assert main(["eval", "--json", str(path)]) == 0
    band = json.loads(capsys.readouterr().out)[0]["inference"]["latency_band"]
    assert band["ttft_p99_ms"][1] is None  # unbounded
    assert band["tpot_p99_ms"][0] < band["tpot_p99_ms"][1]
    assert main(["eval", str(path)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "if capacity is off" in x)
    assert "to unbounded" in line and f"+/-{band['capacity_error_pct']:.0f}%" in line


def test_the_figures_panel_cell_reads_the_band():
    from whatif.tui.widgets.figures import p99_band

    # TTFT p99 610 ms at the low end and no bound at the high; TPOT p99 28.6 to 56.4 ms.
    row = {"infer_ttft_p99_low_ms": 609.7, "infer_ttft_p99_high_ms": None}
    row |= {"infer_tpot_p99_low_ms": 28.6, "infer_tpot_p99_high_ms": 56.4}
    assert p99_band(row) == "610-∞/29-56 ms"
    # Overloaded at both ends: the TTFT has no bound at all, the TPOT is the overloaded fleet's.
    row = {"infer_ttft_p99_low_ms": None, "infer_tpot_p99_low_ms": 36.26, "infer_tpot_p99_high_ms": 36.26}
    assert p99_band(row) == "∞/36 ms"
    assert p99_band({}) == "-"
