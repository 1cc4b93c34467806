"""Power, racks and energy by phase (engine/energy.py), by hand from catalog facts."""

import pytest
from goodput_helpers import QUIET, RESNET_16, merge, row, rows, scenario

# DGX H100: 10.2 kW maximum (NVIDIA user guide); measured while training: 82% of it (Latif et al. 2025,
# 8.4 kW). Less 8 GPUs at their 700 W TDP: (10,200 x 0.82 - 8 x 700) / 8 = 345.5 W of host per GPU.
HOST_W = (10_200 * 0.82 - 8 * 700) / 8
H100_IDLE_W = 70.0
# Input stored ready to use: the host CPUs run at the framework's load alone, the load the measured node
# figure holds, so the host is that figure (the host CPUs at other loads: tests/test_host_cpu.py).
READY = {"data": {"preprocess": "none"}}


def test_h100_node_power_by_hand():
    assert HOST_W == pytest.approx(345.5)
    r = row(scenario(merge(merge(RESNET_16, QUIET), READY), data={"source": "local-nvme"}))
    # Node peak: 8 x (700 + 345.5) W = 8.364 kW; 4 nodes per rack = 33.456 kW under air's 40 kW.
    assert r["train_node_peak_kw"] == pytest.approx(8 * (700 + HOST_W) / 1000)
    assert r["train_rack_kw"] == pytest.approx(4 * 8 * (700 + HOST_W) / 1000)
    assert not r["train_rack_over_limit"]
    assert r["train_racks"] == 1
    # Peak facility power: 16 GPUs x 1,045.5 W + 16 NIC ports on one switch tier x 20 W, x PUE 1.44.
    assert r["train_peak_power_mw"] == pytest.approx((16 * (700 + HOST_W) + 16 * 20) * 1.44 / 1e6)


def test_energy_of_a_fully_busy_run_by_hand():
    # ResNet-50 from local NVMe, no failures, no checkpoints: GPUs compute the whole time (224 s).
    # IT energy = 16 x (700 + 345.5) W x 224 s + 320 W of switch ports x 224 s; facility = x 1.44.
    r = row(scenario(merge(merge(RESNET_16, QUIET), READY), data={"source": "local-nvme"}))
    t = 224.0
    gpu_j = 16 * 700 * t
    it_j = gpu_j + 16 * HOST_W * t + 320 * t
    assert r["train_wall_clock_days"] * 86400 == pytest.approx(t)
    assert r["train_gpu_energy_mwh"] == pytest.approx(gpu_j / 3.6e9)
    assert r["train_it_energy_mwh"] == pytest.approx(it_j / 3.6e9)
    assert r["train_energy_mwh"] == pytest.approx(1.44 * it_j / 3.6e9)
    assert r["train_avg_power_mw"] == pytest.approx(1.44 * it_j / t / 1e6)
    assert r["train_avg_power_mw"] == pytest.approx(r["train_peak_power_mw"])


def test_waiting_gpus_draw_idle_power():
    # The 2 GB/s file system case of test_storage: steps of 0.3669 s, of which 0.224 s compute. GPUs draw
    # 700 W for 0.224 s and 70 W (catalog idle, H100 snapshot) for the 0.1429 s stall of every step.
    r = row(scenario(merge(RESNET_16, QUIET), storage={"shared_fs_read_gb_s": 2.0}))
    step = 16 * 400 * 114_660.07 / 2e9
    avg_w = (700 * 0.224 + H100_IDLE_W * (step - 0.224)) / step
    assert r["train_gpu_avg_w"] == pytest.approx(avg_w, rel=1e-9)
    assert r["train_avg_power_mw"] < r["train_peak_power_mw"]


def test_rack_limit_spreads_nodes():
    # 8 DGX H100 per rack would draw 8 x 8.364 = 66.9 kW, over air's 40 kW: only floor(40 / 8.364) = 4 fit,
    # so 128 nodes need 32 racks instead of 16, and the scenario is flagged.
    s = scenario(
        {},
        cluster={"gpu": "h100-sxm", "gpu_count": 1024, "nodes_per_rack": 8},
        training={"model": "llama-3.1-8b", "train_tokens": 1e10},
        data={"preprocess": "none"},
    )
    r = row(s)
    assert r["train_rack_kw"] == pytest.approx(8 * 8 * (700 + HOST_W) / 1000)
    assert r["train_rack_over_limit"]
    assert r["train_racks"] == 32
    # Direct liquid cooling takes 132 kW per rack: 8 nodes fit, 16 racks, no flag.
    liquid = row(s.edited("cooling", kind="direct-liquid"))
    assert not liquid["train_rack_over_limit"]
    assert liquid["train_racks"] == 16


def test_fat_tree_switch_ports():
    # 128 nodes x 8 NICs = 1,024 ports <= 64^2 / 2: two tiers, 3 switch ports per NIC port, 3,072 x 20 W.
    # 2,048 nodes x 8 = 16,384 ports > 2,048: three tiers, 5 ports each, 81,920 x 20 W.
    base = {"training": {"model": "llama-3.1-8b", "train_tokens": 1e10}}
    small, big = rows(
        scenario(base, cluster={"gpu": "h100-sxm", "gpu_count": 1024}),
        scenario(base, cluster={"gpu": "h100-sxm", "gpu_count": 16384}),
    )
    for r, watts in ((small, 3 * 1024 * 20), (big, 5 * 16384 * 20)):
        t = r["train_wall_clock_days"] * 86400
        assert r["train_switch_energy_mwh"] == pytest.approx(watts * t / 3.6e9, rel=1e-9)


def test_cooling_kind_sets_pue_and_clock():
    # Air: PUE 1.44 and 1.5% sustained-clock loss on >= 700 W parts (Llama 3 diurnal 1-2%); direct liquid:
    # PUE 1.08, no loss. Same run: liquid is faster and needs 1.08/1.44 of the facility overhead.
    s = scenario(
        {}, cluster={"gpu": "h100-sxm", "gpu_count": 64}, training={"model": "llama-3.1-8b", "train_tokens": 1e10}
    )
    air, liquid = rows(s, s.edited("cooling", kind="direct-liquid"))
    assert air["train_pue"] == 1.44 and liquid["train_pue"] == 1.08
    assert liquid["train_step_time_s"] < air["train_step_time_s"]
    assert liquid["train_energy_mwh"] < air["train_energy_mwh"] * 1.08 / 1.44


def test_cost_and_carbon_by_hand():
    r = row(
        scenario(
            merge(RESNET_16, QUIET),
            data={"source": "local-nvme"},
            facility={"electricity_usd_per_kwh": 0.10, "grid_gco2_per_kwh": 400.0, "gpu_hour_usd": 2.0},
        )
    )
    kwh = r["train_energy_mwh"] * 1000
    assert r["train_cost_usd"] == pytest.approx(kwh * 0.10 + r["train_gpu_hours"] * 2.0)
    assert r["train_co2_t"] == pytest.approx(kwh * 400 / 1e6)
    assert r["train_gpu_hours"] == pytest.approx(16 * 224 / 3600)


def test_tokens_per_kwh_for_text():
    r = row(
        scenario(
            {}, cluster={"gpu": "h100-sxm", "gpu_count": 64}, training={"model": "llama-3.1-8b", "train_tokens": 1e10}
        )
    )
    assert r["train_tokens_per_kwh"] == pytest.approx(1e10 / (r["train_energy_mwh"] * 1000))
