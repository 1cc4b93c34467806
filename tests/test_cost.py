"""Cost on each basis (engine/cost.py), by hand from dated catalog prices (reference kernels/prices.csv)."""

import json

import pytest
from goodput_helpers import QUIET, RESNET_16, merge, row, rows, scenario
from whatif.engine import Scenario, ScenarioError, evaluate, load_catalog, resolve
from whatif.engine.cost import basis_label
from whatif.engine.report import records
from whatif.tui.cli import main
from whatif.tui.files import parse_scenario

# ResNet-50 on 2 DGX H100 nodes, no failures, no checkpoints: 224 s of work (test_energy), fed by the default
# shared file system without stalls.
RUN = merge(RESNET_16, QUIET)
GPU_HOURS = 16 * 224 / 3600
AWS_H100 = 55.04 / 8  # R001: p5.48xlarge on-demand, us-east-1, 2026-01-21
HGX_H100 = 31904.63  # R022: 8-GPU HGX H100 listing / 8, 2025-01


def node_peak_w():
    # test_energy: 8 x 700 W + 1,086 W of host parts, / (1 - 0.095 fans) / 0.96 supplies.
    host = 350 + 2048 / 64 * 3.9375 + 8 * 25 + 2 * 25 + 8 * 5 + 8 * 40
    return (8 * 700 + host) / (1 - 0.095) / 0.96


def test_rental_default_is_a_dated_catalog_price_never_zero():
    r = row(scenario(RUN))
    assert r["train_cost_usd"] == pytest.approx(GPU_HOURS * AWS_H100)
    assert r["train_cost_compute_usd"] == pytest.approx(r["train_cost_usd"])
    for part in ("network", "storage", "facility", "electricity"):
        assert r[f"train_cost_{part}_usd"] == 0.0
    # The electricity is in the rental price; its metered cost is still shown.
    assert r["train_electricity_usd"] == pytest.approx(r["train_energy_mwh"] * 1000 * 0.0862)
    assert basis_label(r) == "rental at $6.88/GPU-h (2026-01)"


def test_rental_price_chosen_from_the_catalog_or_given():
    runpod, own = rows(
        scenario(RUN, facility={"rental_price": "runpod-2024-07"}),
        scenario(RUN, facility={"usd_per_gpu_hour": 2.5}),
    )
    # R017: RunPod H100 $3.99 on 2024-07-27.
    assert runpod["train_cost_usd"] == pytest.approx(GPU_HOURS * 3.99)
    assert basis_label(runpod) == "rental at $3.99/GPU-h (2024-07)"
    assert own["train_cost_usd"] == pytest.approx(GPU_HOURS * 2.5)
    assert basis_label(own) == "rental at $2.50/GPU-h (set by the scenario)"


def test_owned_cost_by_hand():
    r = row(scenario(RUN, facility={"cost_model": "owned"}))
    hours = 224 / 3600
    compute = GPU_HOURS * HGX_H100 / (5 * 8760)  # straight line over 5 years (Amazon's server life from 2025)
    peak_it_kw = (2 * node_peak_w() + 16 * 20 + 25 * 100) / 1000  # nodes, switch ports, file system
    facility = peak_it_kw * 196.25 * hours / 730  # CBRE H2 2025 wholesale colocation, per kW-month
    electricity = r["train_energy_mwh"] * 1000 * 0.0862  # EIA 2025 US industrial average
    assert r["train_cost_compute_usd"] == pytest.approx(compute)
    assert r["train_cost_network_usd"] == pytest.approx(0.15 * compute)
    assert r["train_cost_storage_usd"] == pytest.approx(0.05 * compute)
    assert r["train_cost_facility_usd"] == pytest.approx(facility, rel=1e-9)
    assert r["train_cost_electricity_usd"] == pytest.approx(electricity)
    total = compute * 1.2 + facility + electricity
    assert r["train_cost_usd"] == pytest.approx(total, rel=1e-9)
    assert r["train_cost_usd_per_gpu_hour"] == pytest.approx(total / GPU_HOURS, rel=1e-9)
    # An owned H100 comes out well under the rental list price per GPU-hour, as the issue expects.
    assert 0.5 < r["train_cost_usd_per_gpu_hour"] < AWS_H100
    assert basis_label(r).startswith("owned at $") and "servers $31.9k/GPU 2025-01, 5 y" in basis_label(r)


def test_zero_prices_cost_nothing_but_electricity_when_owned():
    rental, owned = rows(
        scenario(RUN, facility={"usd_per_gpu_hour": 0.0}),
        scenario(RUN, facility={"cost_model": "owned", "server_usd_per_gpu": 0.0, "facility_usd_per_kw_month": 0.0}),
    )
    assert rental["train_cost_usd"] == 0.0
    assert owned["train_cost_usd"] == pytest.approx(owned["train_energy_mwh"] * 1000 * 0.0862)


def test_gpu_without_a_price_is_priced_as_its_stated_stand_in():
    r = row(
        scenario(
            {}, cluster={"gpu": "v100-sxm2", "gpu_count": 64}, training={"model": "gpt-3-175b", "train_tokens": 1e9}
        )
    )
    # No V100 price in the reference: the A100 40GB's AWS p4d price (R004, $21.957642 / 8) stands in.
    assert r["usd_per_gpu_hour"] == pytest.approx(21.957642 / 8, abs=1e-3)
    assert "v100-sxm2 priced as a100-sxm-40gb" in r["price_via"]
    assert basis_label(r) == "rental at $2.75/GPU-h (2026-01, priced as a100-sxm-40gb)"


def test_a_single_borrowed_price_is_named_in_the_label():
    # GB200 has a purchase price of its own (an NVL72 rack / 72, R029) but no rental price: its default
    # rental entry is AWS's B200 p6-b200 price (R003, $113.9328 / 8). B300 rents at its own Nebius price but
    # is bought at the DGX B200 listing (R024, $47,409.13 per GPU). Each label names the borrowed type.
    base = merge(RUN, {"cluster": {"gpu_count": 16}})
    gb200, b300 = rows(
        scenario(base, cluster={"gpu": "gb200", "gpus_per_node": 4}),
        scenario(base, cluster={"gpu": "b300"}, facility={"cost_model": "owned"}),
    )
    assert gb200["usd_per_gpu_hour"] == pytest.approx(113.9328 / 8, abs=1e-3)
    assert basis_label(gb200) == "rental at $14.24/GPU-h (2026-01, priced as b200)"
    assert b300["server_usd_per_gpu"] == pytest.approx(47409.13)
    assert "servers $47.4k/GPU 2024-12, priced as b200, 5 y" in basis_label(b300)


def test_json_cost_breakdown_and_basis():
    scenarios = [
        Scenario.model_validate(RUN),
        Scenario.model_validate(merge(RUN, {"facility": {"cost_model": "owned"}})),
    ]
    rental, owned = (rec["training"] for rec in records(evaluate(resolve(scenarios)), [True, True], [False, False]))
    assert rental["cost_breakdown_usd"] == {"compute": pytest.approx(rental["cost_usd"])}
    basis = rental["cost_basis"]
    assert basis["model"] == "rental" and basis["includes_electricity"]
    assert basis["electricity_counted"] == "in the rental price"
    assert basis["price"]["key"] == "aws-2026-01" and basis["price"]["date"] == "2026-01"
    assert "R001" in basis["price"]["source"]
    assert set(owned["cost_breakdown_usd"]) == {"compute", "network", "storage", "facility", "electricity"}
    assert sum(owned["cost_breakdown_usd"].values()) == pytest.approx(owned["cost_usd"])
    assert owned["cost_basis"]["purchase"]["usd_per_gpu"] == HGX_H100
    # The owned cost includes the metered electricity as its own part: a reader must not add it again.
    assert owned["cost_basis"]["includes_electricity"]
    assert owned["cost_basis"]["electricity_counted"] == "metered, its own part"
    assert owned["cost_breakdown_usd"]["electricity"] == pytest.approx(owned["energy"]["electricity_usd"])
    assert set(rental["co2_breakdown_t"]) == {"location_based", "market_based", "embodied"}
    json.dumps(rental)


def test_serving_cost_per_1m_tokens_uses_the_same_basis(capsys):
    code = main(["eval", "serve-llama70b-8xh100", "--json"])
    assert code == 0
    inference = json.loads(capsys.readouterr().out)[0]["inference"]
    # serve-llama70b-8xh100 states its basis: the AWS Capacity Block price, $4.916 per GPU-hour.
    assert inference["cost_basis"]["price"]["key"] == "aws-capacity-block-2024"
    usd_per_hour = 8 * 4.916
    assert inference["cost_usd_per_1m_tokens"] == pytest.approx(usd_per_hour / (inference["tokens_per_s"] * 3600) * 1e6)
    assert inference["electricity_usd_per_1m_tokens"] < inference["cost_usd_per_1m_tokens"]


def test_explorer_shows_the_serving_cost_and_its_basis():
    # A scenario that only serves has no training cost line: the explorer labels the serving cost instead, and
    # shows the cost per 1M tokens beside the energy per 1k tokens.
    from whatif.tui.files import load_scenario, shipped_presets
    from whatif.tui.format import money_small
    from whatif.tui.widgets.figures import SERVING, cost_basis_line

    r = row(load_scenario(shipped_presets()["serve-llama70b-8xh100"]))
    assert cost_basis_line(r) == ""
    assert cost_basis_line(r, "infer_") == "serving cost, rental at $4.92/GPU-h (2024-12); electricity in the price"
    read = {fid: f for fid, _, f in SERVING}["serve_cost_1m"]
    assert read(r, {}) == money_small(8 * 4.916 / (r["infer_tokens_per_s"] * 3600) * 1e6)


def test_bad_cost_keys_name_the_field():
    with pytest.raises(ScenarioError) as err:
        parse_scenario('[facility]\nrental_price = "aws-2099"\n', "x.toml")
    assert "facility.rental_price = 'aws-2099': no rental price aws-2099 for h100-sxm" in str(err.value)
    with pytest.raises(ScenarioError) as err:
        parse_scenario("[facility]\ngpu_hour_usd = 2.0\n", "x.toml")
    assert "facility.gpu_hour_usd is now facility.usd_per_gpu_hour" in str(err.value)
    with pytest.raises(ScenarioError) as err:
        parse_scenario("[cooling]\npue = 1.2\n", "x.toml")
    assert "cooling.pue is now facility.pue" in str(err.value)


def test_changing_the_gpu_type_drops_a_price_it_does_not_have():
    s = scenario(RUN, facility={"rental_price": "runpod-2024-07"})
    assert s.edited("cluster", gpu="mi300x").facility.rental_price is None
    assert s.edited("cluster", gpu="h100-sxm").facility.rental_price == "runpod-2024-07"


def test_every_shipped_preset_states_its_cost_basis():
    from whatif.tui.files import load_scenario, shipped_presets

    for name, path in shipped_presets().items():
        text = path.read_text()
        if "[cluster]" not in text:
            continue  # workload-only presets carry no hardware
        s = load_scenario(path)
        assert 'cost_model = "' in text and "# Cost basis:" in text, name
        if s.cluster.gpu not in load_catalog().prices:
            # A CPU cluster: no catalog price, so the basis says why the cost is blank.
            assert "# Cost basis: none" in text, name
            continue
        assert "rental_price" in text and s.facility.rental_price is not None, name
