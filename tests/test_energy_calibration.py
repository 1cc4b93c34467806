"""The energy model against published training energy: BLOOM-176B and GPT-3 175B (reference calibration
energy.csv), each comparison on the published figure's own basis.

Both runs go end to end through the engine (its own step time, plan, goodput losses and power model); the
published figures and the assumptions each comparison needs are written out below.
"""

import pytest
from goodput_helpers import row
from whatif.engine import Scenario
from whatif.tui.files import calibration_cases

# --- BLOOM-176B ---------------------------------------------------------------------------------------------
# Luccioni, Viguier & Ligozat, "Estimating the Carbon Footprint of BLOOM" (arXiv 2211.02001, JMLR 24 (2023));
# reference row EN-BLOOM-TRAIN: 1,082,990 GPU-hours x 0.4 kW (A100 TDP) = 433,196 kWh of GPU "dynamic"
# energy (TDP-based, not metered), and a further 256,646 kWh of idle/infrastructure consumption of the
# cluster; PUE 1.2 and the French grid (~57 gCO2e/kWh).
BLOOM_GPU_HOURS = 1_082_990.0
BLOOM_GPU_MWH = 433.196
BLOOM_IDLE_INFRA_MWH = 256.646


def _bloom() -> Scenario:
    # The calibration case (plan, software and network as published; 366B tokens; 384 A100 on Jean Zay) with
    # the facility as published. Assumptions: sync checkpoints to the default shared file system (BLOOM saved
    # 2.3 TB in 40 s to GPFS), failures at the Llama 3-derived rates (BLOOM: "every week or so" a GPU died).
    case = next(s for c, s in calibration_cases() if c.id == "PAPER-BLOOM-176B")
    s = case.edited("facility", pue=1.2, grid_gco2_per_kwh=57.0)
    return s.edited("storage", checkpoint_mode="sync")


def test_bloom_gpu_energy_within_20_percent_on_the_published_tdp_basis():
    # The published GPU energy is TDP-based (energy.csv notes: GPU-hours x 0.4 kW, not metered), so like for
    # like is the engine's GPU-hours x 400 W. The engine's own GPU energy is by activity (compute at the power
    # limit, waiting in P0 at 35% of TDP): below the TDP basis, by the run's waiting share (-14.5%).
    r = row(_bloom())
    assert r["train_gpu_hours"] == pytest.approx(BLOOM_GPU_HOURS, rel=0.20)
    assert r["train_gpu_hours"] * 0.4 / 1000 == pytest.approx(BLOOM_GPU_MWH, rel=0.20)
    assert r["train_gpu_energy_mwh"] < r["train_gpu_hours"] * 0.4 / 1000
    assert r["train_gpu_energy_mwh"] == pytest.approx(BLOOM_GPU_MWH, rel=0.20)


def test_bloom_it_energy_within_20_percent():
    # Assumption: the published idle/infrastructure energy is the rest of the nodes and the cluster (host,
    # network) outside the GPUs' dynamic energy, so dynamic + idle (689.8 MWh) compares with the engine's IT
    # energy (GPUs + host + switches), before PUE.
    r = row(_bloom())
    assert r["train_it_energy_mwh"] == pytest.approx(BLOOM_GPU_MWH + BLOOM_IDLE_INFRA_MWH, rel=0.20)


def test_bloom_carbon_operational_and_embodied():
    # Luccioni et al. (reference EN-BLOOM-TRAIN): 24.7 t dynamic + 14.6 t idle/infrastructure = 39.3 t of
    # operational CO2e on the French grid, and 50.5 t in all including embodied: 50.5 - 39.3 = 11.2 t
    # embodied. The engine's embodied figure uses the paper's own per-unit figures (constants.toml).
    r = row(_bloom())
    assert r["train_co2_t"] == pytest.approx(24.7 + 14.6, rel=0.10)
    assert r["train_co2_embodied_t"] == pytest.approx(50.5 - 24.7 - 14.6, rel=0.05)


# --- GPT-3 175B ---------------------------------------------------------------------------------------------
# Patterson et al. 2021 (arXiv 2104.10350) Table 4, reference row EN-PAT-GPT-3: 10,000 V100 for 14.8 days
# (21,312 min), average system power per accelerator 330 W, PUE 1.1, 1,287 MWh of facility energy.
GPT3_MWH = 1287.0
GPT3_W_PER_GPU = 330.0


def _gpt3() -> Scenario:
    # Assumptions: 8-GPU V100 SXM2 servers with 400 Gb/s each (Microsoft's May 2020 announcement of the
    # OpenAI supercomputer: 10,000 GPUs, "400 gigabits per second of network connectivity for each GPU
    # server"), as 4 x 100 Gb/s RoCE; 300B tokens of 2,048 (Brown et al. 2020, Table 2.1); a global batch of
    # 1,250 sequences (2.56M tokens; the paper's 3.2M tokens is not a whole number of sequences per replica
    # at 10,000 GPUs); 2020 software: synchronous checkpoints to the default shared file system, no
    # FlashAttention (2022), sequence parallelism (2022) or tensor-parallel overlap, activation checkpointing
    # of every layer (Megatron-LM's 2020 practice); the engine chooses the plan. PUE 1.1 as published.
    return Scenario.model_validate(
        {
            "name": "GPT-3 175B on 10,000 V100",
            "cluster": {"gpu": "v100-sxm2", "gpu_count": 10_000, "gpus_per_node": 8},
            "network": {"scale_out": "roce-100g", "nics_per_node": 4},
            "storage": {"checkpoint_mode": "sync"},
            "facility": {"pue": 1.1},
            "training": {
                "model": "gpt-3-175b",
                "train_tokens": 300e9,
                "seq_len_tokens": 2048,
                "global_batch_seqs": 1250,
                "precision": "bf16",
                "attention": "unfused",
                "sequence_parallel": False,
                "tp_comm_overlap": False,
                "recompute": "full",
            },
        }
    )


def test_gpt3_facility_energy_within_20_percent():
    r = row(_gpt3())
    assert r["train_energy_mwh"] == pytest.approx(GPT3_MWH, rel=0.20)


def test_gpt3_power_per_gpu_within_10_percent():
    # The power model alone, free of the time model's error. Patterson et al.'s 330 W is the measured system
    # power per accelerator including its memory, network interface, fans and host CPU: the server's share,
    # not the scale-out switches or the file system. So: the nodes' energy (GPUs, host parts, fans, power
    # supplies) / GPU-hours. (With the switches and storage the IT power per GPU is 9.5% above 330 W.)
    r = row(_gpt3())
    servers = r["train_it_energy_mwh"] - r["train_switch_energy_mwh"] - r["train_storage_energy_mwh"]
    w_per_gpu = servers * 1e6 / r["train_gpu_hours"]
    assert w_per_gpu == pytest.approx(GPT3_W_PER_GPU, rel=0.10)
    assert r["train_it_energy_mwh"] * 1e6 / r["train_gpu_hours"] == pytest.approx(GPT3_W_PER_GPU, rel=0.10)


# --- Llama 2 70B --------------------------------------------------------------------------------------------
# Reference row EN-TDP-Llama270B: 688.1 MWh = 1,720,320 GPU-hours (Llama 2 model card, training.csv
# PAPER-LLAMA2-70B) x 400 W, the model card's "peak power capacity per GPU device adjusted for power usage
# efficiency": an upper-bound style estimate, not measured energy. 291.42 t CO2e on it.
LLAMA2_70B_GPU_HOURS = 1_720_320.0
LLAMA2_70B_MWH = 688.1


def test_llama2_70b_energy_on_the_model_cards_basis():
    # On the card's own basis (GPU-hours x 400 W) the engine's energy error is its GPU-hours error, nothing
    # else: -23% (docs/model.md, Energy calibration). That is the calibration case's known gap (the card's
    # GPU-hours imply 40-47% MFU where the engine plans ~60%), not the power model; it is stated, bounded here.
    assert LLAMA2_70B_GPU_HOURS * 0.4 / 1000 == pytest.approx(LLAMA2_70B_MWH, abs=0.1)
    case = next(s for c, s in calibration_cases() if c.id == "PAPER-LLAMA2-70B")
    r = row(case)
    on_card_basis = r["train_gpu_hours"] * 0.4 / 1000
    error = on_card_basis / LLAMA2_70B_MWH - 1
    assert error == pytest.approx(r["train_gpu_hours"] / LLAMA2_70B_GPU_HOURS - 1, rel=1e-3)
    assert -0.40 < error < 0.0
    # By activity the GPUs draw less than 400 W on average (waits at 35% of TDP), so the engine's own GPU
    # energy is below the card's basis for the same GPU-hours.
    assert r["train_gpu_energy_mwh"] < on_card_basis
