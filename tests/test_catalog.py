"""Catalog integrity: every entry sourced, every figure positive and consistent."""

import pytest
from whatif.engine import load_catalog
from whatif.engine.resolve import model_columns

CAT = load_catalog()
SECTIONS = {**CAT.kinds()}


@pytest.mark.parametrize("kind", list(SECTIONS))
def test_every_entry_has_a_source(kind):
    for key, entry in SECTIONS[kind].items():
        assert len(entry.source.strip()) >= 10, f"{kind}.{key} has no source"


def test_every_constant_and_efficiency_has_a_basis():
    for key, const in CAT.constants.items():
        assert len(const.basis) >= 20 and const.unit, key
    for key, eff in CAT.efficiency.items():
        assert len(eff.basis) >= 20, key
        assert "placeholder" not in eff.basis, key


def test_accelerator_figures_are_positive_and_dense_not_above_sparse():
    for key, gpu in CAT.accelerators.items():
        for field in ("bf16_tflops", "hbm_gb", "hbm_tb_s", "tdp_w", "idle_w"):
            assert getattr(gpu, field) > 0, (key, field)
        assert gpu.idle_w < gpu.tdp_w, key
        if gpu.bf16_sparse_tflops:
            assert gpu.bf16_tflops <= gpu.bf16_sparse_tflops, key
        if gpu.fp8_tflops:
            assert gpu.fp8_tflops >= gpu.bf16_tflops, key  # FP8 is never slower than BF16 on the same part
        assert gpu.arch in CAT.efficiency, key


def test_required_accelerators_are_present():
    required = {
        "v100-sxm2",
        "a100-sxm-40gb",
        "a100-sxm-80gb",
        "h100-sxm",
        "h100-pcie",
        "h200-sxm",
        "h800-sxm",
        "b200",
        "gb200",
        "mi300x",
        "mi325x",
        "gaudi3",
        "l40s",
        "l4",
    }
    assert required <= set(CAT.accelerators)


def test_datasheet_figures_match_the_reference():
    # H100 SXM: NVIDIA H100 whitepaper v1.04 - 989.4 dense BF16, 1,978.9 dense FP8, 3.35 TB/s, 700 W.
    h100 = CAT.accelerators["h100-sxm"]
    assert (h100.bf16_tflops, h100.fp8_tflops, h100.hbm_tb_s, h100.tdp_w) == (989.4, 1978.9, 3.35, 700)
    # A100 80GB: NVIDIA A100 datasheet - 312 TFLOP/s BF16, 2,039 GB/s, 400 W.
    a100 = CAT.accelerators["a100-sxm-80gb"]
    assert (a100.bf16_tflops, a100.hbm_tb_s, a100.tdp_w) == (312.0, 2.039, 400)


def test_default_fabrics_exist_with_the_right_kind():
    for key, gpu in CAT.accelerators.items():
        assert CAT.fabrics[gpu.scale_up].kind == "scale-up", key
    required = {
        "nvlink2",
        "nvlink3",
        "nvlink4",
        "nvlink5",
        "pcie-gen4",
        "pcie-gen5",
        "ib-hdr",
        "ib-ndr",
        "ib-xdr",
        "roce-100g",
        "roce-200g",
        "roce-400g",
        "eth-800g",
    }
    assert required <= set(CAT.fabrics)


def test_fabric_bandwidth_is_per_direction():
    # NVLink 4: 900 GB/s bidirectional aggregate per GPU = 450 each way; NDR: 400 Gb/s = 50 GB/s each way.
    assert CAT.fabrics["nvlink4"].gb_s_per_direction == 450.0
    assert CAT.fabrics["ib-ndr"].gb_s_per_direction == 400 / 8


def test_cooling_kinds_change_fans_overhead_and_water_in_order():
    kinds = CAT.cooling
    assert set(kinds) == {"air", "rear-door", "direct-liquid", "immersion"}
    order = [kinds[k] for k in ("air", "rear-door", "direct-liquid", "immersion")]
    for attr in ("server_fan_share", "pue_factor", "water_factor"):
        values = [getattr(k, attr) for k in order]
        assert values == sorted(values, reverse=True), attr
    # Reference EN-LIQUID-VERTIV: 100% air -> 75% direct-to-chip liquid, total data-centre power -10.2% and
    # PUE -3.3%, so IT power -7.1%; with the fans of the remaining 25% of heat kept, the air fan share is
    # 0.071 / 0.75 = 0.095 and direct liquid keeps a quarter of it.
    it_drop = 1 - (1 - 0.102) / (1 - 0.033)
    assert kinds["air"].server_fan_share == pytest.approx(it_drop / 0.75, abs=0.001)
    assert kinds["direct-liquid"].server_fan_share == pytest.approx(0.25 * it_drop / 0.75, abs=0.001)
    assert kinds["direct-liquid"].pue_factor == pytest.approx(1 - 0.033)


def test_every_gpu_has_a_dated_nonzero_default_rental_and_purchase_price():
    # CPU sockets (kind "cpu") have none: the reference holds no CPU server price.
    for key in (k for k, a in CAT.accelerators.items() if a.kind == "gpu"):
        prices, via = CAT.gpu_prices(key)
        rental = prices.rental[prices.default_rental]
        purchase = prices.purchase[prices.default_purchase]
        assert rental.usd_per_gpu_hour > 0 and purchase.usd_per_gpu > 0, key
        assert rental.date and purchase.date and len(rental.source) >= 10, key
        assert via == key or len(CAT.prices[key].priced_as_basis) >= 10, key


def test_catalog_prices_are_the_reference_rows():
    # reference kernels/prices.csv R001 (p5.48xlarge $55.04 / 8), R017 (RunPod H100 3.99, 2024-07), R022
    # (HGX H100 listing / 8, 2025-01), R024 (DGX B200 listing / 8).
    h100, _ = CAT.gpu_prices("h100-sxm")
    assert h100.rental["aws-2026-01"].usd_per_gpu_hour == pytest.approx(55.04 / 8, abs=0.001)
    assert (h100.rental["runpod-2024-07"].usd_per_gpu_hour, h100.rental["runpod-2024-07"].date) == (3.99, "2024-07")
    assert h100.purchase["hgx-listing-2025-01"].usd_per_gpu == 31904.63
    b200, _ = CAT.gpu_prices("b200")
    assert b200.rental["aws-2026-01"].usd_per_gpu_hour == pytest.approx(113.9328 / 8, abs=0.001)
    assert b200.purchase["dgx-listing-2024-12"].usd_per_gpu == 47409.13


@pytest.mark.parametrize("key", [k for k, m in CAT.models.items() if m.attention != "mla"])
def test_model_shapes_reproduce_their_published_parameter_count(key):
    # The shape alone must give the published count within 5% (checks layers, widths, vocab, experts).
    model = CAT.models[key]
    computed = model_columns("x_", model.model_copy(update={"params_total_b": None, "params_active_b": None}))
    assert computed["x_params"] == pytest.approx(model.params_total_b * 1e9, rel=0.05), key
    if model.params_active_b:
        assert computed["x_params_active"] == pytest.approx(model.params_active_b * 1e9, rel=0.05), key


def test_required_models_are_present():
    required = {
        "llama-2-7b",
        "llama-2-13b",
        "llama-2-70b",
        "llama-3.1-8b",
        "llama-3.1-70b",
        "llama-3.1-405b",
        "gpt-3-175b",
        "mixtral-8x7b",
        "deepseek-v3",
    }
    assert required <= set(CAT.models)
    assert CAT.models["deepseek-v3"].params_active_b == 37.0 and CAT.models["mixtral-8x7b"].experts == 8


def test_storage_entries_are_non_negative():
    for key, drive in CAT.nvme.items():
        assert drive.read_gb_s >= 0 and drive.write_gb_s >= 0, key
    assert CAT.nvme["micron-9400"].pcie_gen == 4 and CAT.nvme["micron-9550"].pcie_gen == 5
