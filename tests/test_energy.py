"""Power by activity, host parts, racks, water, carbon (engine/energy.py), by hand from catalog facts.

Every figure below is worked out in the test from published numbers (named) and the catalog's stated
assumptions, never read back from the engine.
"""

import pytest
from goodput_helpers import QUIET, RESNET_16, merge, row, rows, scenario

TDP = 700.0  # H100 SXM (NVIDIA H100 whitepaper v1.04, Table 3)
IDLE = 70.0  # H100 idle snapshot, 69-72 W (accelerators.toml)
F_MEM = 0.58  # decode draws 0.54 (H100) / 0.62 (A100) of TDP: Splitwise (reference power.csv P005, P006)
U_SAT = 0.157  # a 512-token H100 prefill at 15.7% of peak already runs at TDP (P004, P010)
WAIT_W = 0.35 * TDP  # a GPU waiting in P0 (constant gpu_wait_power_fraction)
FAN_AIR = 0.095  # air-cooled server fans (reference EN-LIQUID-VERTIV, cooling.toml)
PSU = 0.96  # 80 PLUS Titanium at half load


def host_dc_w(drive_w_each=5.0, drives=8, mem_gb=2048.0, nics=8, nic_gbps=400.0, storage_gbps=800.0):
    """A DGX H100's host parts, by hand: 2 x Xeon 8480C at 350 W x 0.5 load (reference host_cpu.csv H039,
    H047); 32 DIMMs of 64 GB at 126 / 32 W each (codecarbon's model for a DGX H100, H044); 8 compute NICs and
    800 Gb/s of storage NICs at 25 W per 400 Gb/s; 8 NVMe drives idle at 5 W; baseboard 40 W per GPU."""
    cpus = 2 * 350 * 0.5
    dram = mem_gb / 64 * (126 / 32)
    nic_w = nics * 25 * nic_gbps / 400 + 25 * storage_gbps / 400
    return cpus + dram + nic_w + drives * drive_w_each + 8 * 40


def wall(dc_w, fan=FAN_AIR):
    return dc_w / (1 - fan) / PSU


def test_dgx_h100_node_power_by_hand_against_its_measurement():
    # Every GPU at TDP: 5,600 + 350 + 126 + 250 + 40 + 320 = 6,686 W of DC power; / (1 - 0.095) / 0.96 at the wall.
    dc = 8 * TDP + host_dc_w()
    assert dc == pytest.approx(6686.0)
    r = row(scenario(merge(RESNET_16, QUIET)))
    assert r["train_node_peak_kw"] == pytest.approx(wall(dc) / 1000, rel=1e-9)
    assert r["train_host_w_per_gpu"] == pytest.approx(host_dc_w() / 8, rel=1e-9)
    # Latif et al. 2025 (IEEE Access 13:61740) measured at most ~8.4 kW on an 8-GPU H100 HGX node training with
    # its GPUs near full utilisation, 18% under the 10.2 kW rating (reference hardware_catalog.md table 4):
    # the bottom-up node is 8% under that maximum and 25% under the rating.
    assert wall(dc) / 8400 - 1 == pytest.approx(-0.084, abs=0.005)
    assert wall(dc) < 10_200


def test_power_per_phase_by_hand():
    # ResNet-50 on 16 H100 with 2 GB/s of shared file system (test_storage): steps of 0.3669 s, of which
    # 0.224 s compute and 0.1429 s waiting for input. Compute utilisation: 400 samples per GPU per step x 24.5
    # GFLOP (torchvision 4.09 GMAC x 2 x 3) in 0.224 s = 43.8 TFLOP/s = 4.4% of 989.4: below the 15.7% at which
    # the board reaches its limit, so P = 700 x (0.58 + 0.42 x 0.044 / 0.157); the stall draws the wait power.
    r = row(scenario(merge(RESNET_16, QUIET), storage={"shared_fs_read_gb_s": 2.0}))
    u = 400 * 24.5e9 / 0.224 / 989.4e12
    p_compute = TDP * (F_MEM + (1 - F_MEM) * u / U_SAT)
    step = 16 * 400 * 114_660.07 / 2e9
    assert r["train_gpu_utilisation"] == pytest.approx(u, rel=0.01)
    assert r["train_gpu_compute_w"] == pytest.approx(p_compute, rel=0.01)
    assert r["train_gpu_wait_w"] == pytest.approx(WAIT_W)
    assert r["train_gpu_avg_w"] == pytest.approx((p_compute * 0.224 + WAIT_W * (step - 0.224)) / step, rel=0.01)
    # Waiting is charged at P0 busy-wait power, not idle power.
    assert r["train_gpu_wait_w"] > 3 * IDLE


def test_llm_training_computes_at_the_power_limit():
    # Llama 3.1 8B on 64 H100: tensor utilisation far above 15.7%, so compute draws the full 700 W.
    r = row(
        scenario(
            {}, cluster={"gpu": "h100-sxm", "gpu_count": 64}, training={"model": "llama-3.1-8b", "train_tokens": 1e10}
        )
    )
    assert r["train_gpu_utilisation"] > 0.3
    assert r["train_gpu_compute_w"] == TDP


def test_power_cap_is_never_exceeded_and_slows_compute():
    # A 500 W cap on a 700 W part: compute at 500 W, waiting at min(245, 500), and compute-bound kernels at
    # (500/700)^0.736 of their speed (reference P010/P011: 0.70^0.736 = 1/1.30).
    base = scenario(
        {}, cluster={"gpu": "h100-sxm", "gpu_count": 64}, training={"model": "llama-3.1-8b", "train_tokens": 1e10}
    )
    free, capped = rows(base, base.edited("cluster", power_cap_w=500.0))
    assert capped["train_gpu_compute_w"] == 500.0
    assert capped["train_gpu_wait_w"] == pytest.approx(WAIT_W)
    assert capped["train_gpu_avg_w"] <= 500.0
    assert capped["train_node_peak_kw"] == pytest.approx(wall(8 * 500 + host_dc_w()) / 1000, rel=1e-9)
    assert capped["train_step_time_s"] > free["train_step_time_s"]


def test_energy_of_a_fully_busy_run_by_hand():
    # ResNet-50 from local NVMe, no failures, no checkpoints: 224 s of compute at P_compute (as above). The
    # local drives read for the step's I/O share: 6,400 x 114,660 B / (2 nodes x 8 x 7 GB/s) = 6.55 ms of 224 ms.
    r = row(scenario(merge(RESNET_16, QUIET), data={"source": "local-nvme"}))
    t = 224.0
    u = 400 * 24.5e9 / 0.224 / 989.4e12
    p_compute = TDP * (F_MEM + (1 - F_MEM) * u / U_SAT)
    duty = 6400 * 114_660.07 / (16 * 7e9) / 0.224
    host = host_dc_w(drive_w_each=5 + (25 - 5) * duty)
    switch_w = 16 * 20  # 16 NIC ports of 400 Gb/s on one tier of switches, one switch port each, 20 W
    fs_w = 25 * 100  # the default DDN appliance's 100 GB/s at 25 W per GB/s
    gpu_j = 16 * p_compute * t
    it_j = wall(gpu_j + 2 * host * t) + (switch_w + fs_w) * t
    assert r["train_wall_clock_days"] * 86400 == pytest.approx(t)
    assert r["train_gpu_energy_mwh"] == pytest.approx(gpu_j / 3.6e9, rel=0.01)
    assert r["train_it_energy_mwh"] == pytest.approx(it_j / 3.6e9, rel=0.01)
    # Facility: the default site, Uptime 2025's average for data centres of 20 MW and more (PUE 1.44), air.
    assert r["train_pue"] == 1.44
    assert r["train_energy_mwh"] == pytest.approx(1.44 * it_j / 3.6e9, rel=0.01)
    assert r["train_avg_power_mw"] < r["train_peak_power_mw"]


def test_rack_limit_spreads_nodes():
    # 8 DGX H100 per rack at full power: 8 x 7.696 kW = 61.6 kW, over air's 40 kW: only floor(40 / 7.696) = 5
    # fit, so 128 nodes need ceil(128 / 5) = 26 racks instead of 16, and the scenario is flagged. Floor: 2.6 m^2
    # per rack.
    s = scenario(
        {},
        cluster={"gpu": "h100-sxm", "gpu_count": 1024, "nodes_per_rack": 8},
        training={"model": "llama-3.1-8b", "train_tokens": 1e10},
    )
    r = row(s)
    node_kw = wall(8 * TDP + host_dc_w()) / 1000
    assert r["train_rack_kw"] == pytest.approx(8 * node_kw, rel=1e-9)
    assert r["train_rack_over_limit"]
    assert r["train_racks"] == 26
    assert r["train_floor_m2"] == pytest.approx(26 * 2.6)
    # Direct liquid takes 132 kW per rack and removes 3/4 of the fan power: 8 nodes fit, 16 racks, no flag.
    liquid = row(s.edited("cooling", kind="direct-liquid"))
    assert not liquid["train_rack_over_limit"]
    assert liquid["train_racks"] == 16
    assert liquid["train_node_peak_kw"] == pytest.approx(wall(8 * TDP + host_dc_w(), fan=0.024) / 1000, rel=1e-9)
    # What `whatif eval` says: the racks as they are filled (5 nodes, 5 x 7.696 = 38.5 kW), and why.
    from whatif.tui.format import racks

    assert (
        racks(r)
        == f"26 at up to {5 * node_kw:.1f} kW (5 nodes each: 8 would draw {8 * node_kw:.1f} kW, over the 40 kW limit)"
    )
    assert racks(liquid) == f"16 at up to {8 * liquid['train_node_peak_kw']:.1f} kW (limit 132 kW)"


def test_fat_tree_switch_ports_scale_with_port_speed():
    # 128 nodes x 8 NICs = 1,024 ports <= 64^2 / 2: two tiers, 3 switch ports per NIC port, 3,072 x 20 W.
    # 2,048 nodes x 8 = 16,384 ports > 2,048: three tiers, 5 ports each, 81,920 x 20 W. At 100 Gb/s (RoCE) a
    # port draws a quarter of a 400 Gb/s one.
    base = {"training": {"model": "llama-3.1-8b", "train_tokens": 1e10}}
    small, big, slow = rows(
        scenario(base, cluster={"gpu": "h100-sxm", "gpu_count": 1024}),
        scenario(base, cluster={"gpu": "h100-sxm", "gpu_count": 16384}),
        scenario(base, cluster={"gpu": "h100-sxm", "gpu_count": 1024}, network={"scale_out": "roce-100g"}),
    )
    for r, watts in ((small, 3 * 1024 * 20), (big, 5 * 16384 * 20), (slow, 3 * 1024 * 20 / 4)):
        t = r["train_wall_clock_days"] * 86400
        assert r["train_switch_energy_mwh"] == pytest.approx(watts * t / 3.6e9, rel=1e-9)


def test_same_b200_racks_air_vs_direct_liquid_differ_as_the_sources_say():
    # One building (the default site), the same B200 nodes: the cooling changes the fans, the facility's
    # cooling overhead, rack density and water, not "old facility vs new facility".
    s = scenario(
        {}, cluster={"gpu": "b200", "gpu_count": 256}, training={"model": "llama-3.1-70b", "train_tokens": 1e11}
    )
    air, liquid = rows(s, s.edited("cooling", kind="direct-liquid"))
    # PUE: the same site's 1.44, x 0.967 for direct liquid (reference EN-LIQUID-VERTIV: -3.3%).
    assert (air["train_pue"], liquid["train_pue"]) == (1.44, pytest.approx(1.44 * 0.967))
    # Node: 8 x 1,000 W + host, over (1 - fan share) / 0.96: the liquid node draws (1 - 0.095) / (1 - 0.024)
    # = 0.927 of the air node, the Vertiv analysis' 7.1% lower IT power.
    assert liquid["train_node_peak_kw"] / air["train_node_peak_kw"] == pytest.approx((1 - 0.095) / (1 - 0.024))
    # Racks at 4 nodes each: a DGX B200-class node at ~10.1 kW fits 3 per 40 kW air rack, all 4 per 132 kW
    # liquid rack: 32 nodes need ceil(32 / 3) = 11 racks on air, 8 on liquid.
    assert (air["train_racks"], liquid["train_racks"]) == (11, 8)
    # Facility energy: 0.927 x 0.967 = 0.896 of air's for the same work (Vertiv: total -10.2%), before the
    # air-cooled B200's 1.5% clock loss (Llama 3's diurnal DVFS), which liquid does not have.
    ratio = liquid["train_energy_mwh"] / air["train_energy_mwh"]
    assert ratio < (1 - 0.095 * 0.75) / (1 - 0.024) * 0.967 + 0.01
    # Clocks: only the air-cooled part (>= 700 W) loses 1.5% on its compute-bound kernels, so the air step is
    # longer, by at most 1 / 0.985 (memory-bound work and communication do not slow).
    assert 1 < air["train_step_time_s"] / liquid["train_step_time_s"] <= 1 / 0.985 + 1e-9
    # Water: the site's WUE x 0.585 (Alissa et al., Nature 2025: -31 to -52%, the midpoint).
    assert liquid["train_water_m3"] / liquid["train_it_energy_mwh"] == pytest.approx(
        0.585 * air["train_water_m3"] / air["train_it_energy_mwh"]
    )


def test_facility_pue_is_the_sites_and_the_industry_average_is_a_choice():
    s = scenario(
        {}, cluster={"gpu": "h100-sxm", "gpu_count": 64}, training={"model": "llama-3.1-8b", "train_tokens": 1e10}
    )
    large, average, aws, own = rows(
        s,
        s.edited("facility", site="uptime-2025-average"),
        s.edited("facility", site="aws-2025"),
        s.edited("facility", pue=1.2),
    )
    # Uptime 2025: 1.44 for sites >= 20 MW (default), 1.54 on average; AWS's 2025 fleet 1.14; one's own 1.2.
    assert [r["train_pue"] for r in (large, average, aws, own)] == [1.44, 1.54, 1.14, 1.2]
    assert average["train_it_energy_mwh"] == pytest.approx(large["train_it_energy_mwh"])
    # Water: AWS's 0.15 L per IT kWh (2024) against the academic industry average of ~1.8.
    assert aws["train_water_m3"] == pytest.approx(aws["train_it_energy_mwh"] * 1000 * 0.15 / 1000)


def test_carbon_location_market_and_embodied_by_hand():
    r = row(
        scenario(
            merge(RESNET_16, QUIET),
            data={"source": "local-nvme"},
            facility={"grid_gco2_per_kwh": 400.0, "market_gco2_per_kwh": 50.0},
        )
    )
    kwh = r["train_energy_mwh"] * 1000
    assert r["train_co2_t"] == pytest.approx(kwh * 400 / 1e6)
    assert r["train_co2_market_t"] == pytest.approx(kwh * 50 / 1e6)
    # Embodied (Luccioni et al. 2022): 16 GPUs x 150 kg + 2 servers x 2,500 kg, spread over 6 years at 85% use;
    # 224 s of it.
    share = 224 / 3600 / (6 * 8760 * 0.85)
    assert r["train_co2_embodied_t"] == pytest.approx((16 * 150 + 2 * 2500) * share / 1000, rel=1e-6)


def test_market_based_carbon_defaults_to_the_grid():
    r = row(scenario(merge(RESNET_16, QUIET), data={"source": "local-nvme"}))
    assert r["train_co2_market_t"] == pytest.approx(r["train_co2_t"])


def test_tokens_per_kwh_for_text():
    r = row(
        scenario(
            {}, cluster={"gpu": "h100-sxm", "gpu_count": 64}, training={"model": "llama-3.1-8b", "train_tokens": 1e10}
        )
    )
    assert r["train_tokens_per_kwh"] == pytest.approx(1e10 / (r["train_energy_mwh"] * 1000))


def test_more_nics_and_drives_draw_more_host_power():
    base = scenario(merge(RESNET_16, QUIET))
    fewer, more = rows(
        base.edited("network", nics_per_node=4).edited("storage", nvme_drives_per_node=2),
        base.edited("network", nics_per_node=8).edited("storage", nvme_drives_per_node=8),
    )
    # 4 more NIC ports at 25 W and 6 more idle drives at 5 W per node: 130 W, 16.25 W per GPU.
    assert more["train_host_w_per_gpu"] - fewer["train_host_w_per_gpu"] == pytest.approx((4 * 25 + 6 * 5) / 8)


def test_dgx_b200_runs_at_its_default_700_w_set_point():
    # Reference power.csv P016 (NVIDIA DGX B200 user guide, power capping): the DGX B200's default TGP set
    # point is 700 W of the B200's 1,000 W maximum. The dgx-b200 preset is hgx-b200 with that set point, so:
    # compute draws 700 W; waiting 0.35 x 1,000 = 350 W (below the cap); the node's peak is 8 x 700 W + the
    # host (2 x Xeon 8570 at 350 W, as the DGX H100's 8480C: host_dc_w) at the wall; compute-bound kernels run
    # at 0.7^0.736 = 0.769 of their speed (P010), memory-bound ones at full speed, so the step is longer by
    # more than 1 and at most 1 / 0.769 = 1.30.
    from whatif.tui.files import load_scenario, shipped_presets

    hgx, dgx = (
        load_scenario(shipped_presets()[n]).model_copy(update={"inference": None}) for n in ("hgx-b200", "dgx-b200")
    )
    assert dgx.cluster.power_cap_w == 700.0 and hgx.cluster.power_cap_w is None
    full, capped = rows(hgx, dgx)
    assert (full["train_gpu_compute_w"], capped["train_gpu_compute_w"]) == (1000.0, 700.0)
    assert capped["train_gpu_wait_w"] == pytest.approx(0.35 * 1000)
    assert capped["train_node_peak_kw"] == pytest.approx(wall(8 * 700 + host_dc_w()) / 1000, rel=1e-9)
    assert full["train_node_peak_kw"] == pytest.approx(wall(8 * 1000 + host_dc_w()) / 1000, rel=1e-9)
    slower = capped["train_step_time_s"] / full["train_step_time_s"]
    assert 1.0 < slower <= 0.7**-0.736 + 1e-9
