"""The host side (engine/host.py, the host parts of engine/energy.py) and CPU-only clusters, checked by hand
and on published figures: rows of reference kernels/host_cpu.csv (copied to tests/data/reference/host_cpu.csv)
and hardware_catalog.md table 4 (the CPUs of each DGX system). No figure here is read back from the engine.
"""

import csv
import json
from pathlib import Path

import pytest
from goodput_helpers import QUIET, merge, row, rows, scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from tiers import examples
from whatif.engine import evaluate, load_catalog, resolve
from whatif.engine.report import records
from whatif.tui import files
from whatif.tui.cli import main

CAT = load_catalog()
REF = {r["id"]: r for r in csv.DictReader((Path(__file__).parent / "data/reference/host_cpu.csv").open())}

# hardware_catalog.md table 4: a DGX H100 has 2x Xeon Platinum 8480C, 2x 56 cores, for 8 GPUs.
DGX_H100_CORES = 2 * 56
# ml-engineering's rule of thumb (H022): one core per training process and 4 for the OS are kept back.
KEPT = 8 * 1 + 4
# JPEG decode 2.54 s per 1,000 images on one thread (H048); the heavy "classification-complex" pipeline's
# augmentation 3.249 ms per sample (H051).
DECODE_MS, HEAVY_AUGMENT_MS = 2.54, 3.249

# ResNet-50 on two DGX H100 nodes with the GPU speed pinned (4,000 images/s per GPU: 400 images a step in
# 0.1 s), fed from local NVMe so that storage never waits: only the host can stall the step.
PINNED = merge(
    QUIET,
    {
        "name": "resnet50, pinned GPU speed",
        "cluster": {"gpu": "h100-sxm", "gpu_count": 16, "gpus_per_node": 8},
        "training": {"model": "resnet50", "train_samples": 6_400_000.0, "global_batch_samples": 6400},
        "data": {"samples_per_gpu_s": 4000.0, "source": "local-nvme", "augment_core_ms": HEAVY_AUGMENT_MS},
    },
)


def _ref(key: str, column: str = "value") -> float:
    return float(REF[key][column])


# --- The catalog ---------------------------------------------------------------------------------------


def test_the_catalog_holds_the_named_server_cpus_each_with_its_source():
    cpus = CAT.host.cpus
    families = {
        "xeon-8480c": "Sapphire Rapids",
        "xeon-8592plus": "Emerald Rapids",
        "xeon-6980p": "Granite Rapids",
        "epyc-9654": "Genoa",
        "epyc-9755": "Turin",
        "grace": "Grace",
    }
    for key, family in families.items():
        assert family in cpus[key].family, key
    for key, cpu in cpus.items():
        assert len(cpu.source) >= 40 and cpu.cores > 0 and cpu.tdp_w > 0 and cpu.mem_gb_s > 0, key
        if cpu.matrix_unit == "amx":
            # AMX: 1,024 BF16 FLOP and 2,048 INT8 ops per cycle per core (H006, H005).
            assert (cpu.bf16_flop_per_cycle, cpu.int8_ops_per_cycle) == (_ref("H006"), _ref("H005")), key


def test_cpu_specs_are_the_reference_rows():
    cpus = CAT.host.cpus
    assert cpus["xeon-6980p"].cores == _ref("H043") == _ref("H028") == 128
    assert cpus["epyc-9654"].cores == _ref("H035") and cpus["epyc-9755"].cores == _ref("H036")
    # Grace: 144 cores and ~1 TB/s per two-die superchip (H032, H033), 500 W with its memory (H034).
    assert 2 * cpus["grace"].cores == _ref("H032") and 2 * cpus["grace"].mem_gb_s == _ref("H033")
    assert 2 * cpus["grace"].tdp_w == 500 and cpus["grace"].memory_in_tdp
    assert cpus["xeon-8480c"].tdp_w == 350  # H039: the 8480+ is rated 350 W


def test_matrix_peaks_are_cores_x_flop_per_cycle_x_base_clock():
    # H006 notes: 56 cores x 1,024 x 2.0 GHz = ~115 TFLOP/s for an 8480C; H028 notes: 128 x 1,024 x 2.0 = ~262
    # for a 6980P; H005 notes: ~229 INT8 TOPS for the 8480C.
    cpus = CAT.host.cpus
    assert cpus["xeon-8480c"].bf16_tflops == pytest.approx(115, rel=0.005)
    assert cpus["xeon-6980p"].bf16_tflops == pytest.approx(262, rel=0.005)
    assert cpus["xeon-8480c"].int8_tops == pytest.approx(229, rel=0.005)
    # As a compute device: the matrix peak, its DRAM bandwidth as memory bandwidth (12 x 6,400 MT/s x 8 B).
    device = CAT.accelerators["xeon-6980p"]
    assert device.kind == "cpu" and device.bf16_tflops == pytest.approx(262.144)
    assert device.hbm_tb_s == pytest.approx(12 * 6400 * 8 / 1e6)
    # Older hosts without BF16 matrix or dot-product units cannot be compute devices.
    assert "epyc-7742" not in CAT.accelerators and "xeon-8380" not in CAT.accelerators


def test_every_server_names_a_host_cpu_and_a_dgx_h100_has_two_56_core_8480c():
    for key, platform in CAT.hosts.items():
        assert platform.host_cpu in CAT.host.cpus, key
    h100 = CAT.platform("h100-sxm")
    assert h100.host_cpu == "xeon-8480c" and h100.cpus_per_gpu * 8 == 2
    assert CAT.host.cpus["xeon-8480c"].cores == 56
    r = row(scenario(PINNED))
    assert r["host_cpu"] == "xeon-8480c"
    assert r["train_host_sockets_per_node"] == 2
    assert r["train_host_cores_free_per_gpu"] == pytest.approx((DGX_H100_CORES - KEPT) / 8)


def test_host_cpu_and_sockets_are_scenario_keys():
    r = row(scenario(PINNED, cluster={"host_cpu": "epyc-9755", "host_cpus_per_node": 1}))
    assert r["host_cpu"] == "epyc-9755"
    assert r["train_host_sockets_per_node"] == 1
    assert r["train_host_cores_free_per_gpu"] == pytest.approx((128 - KEPT) / 8)
    with pytest.raises(ValidationError, match="host CPU"):
        scenario(PINNED, cluster={"host_cpu": "xeon-9999"})
    with pytest.raises(ValidationError, match="its own host"):
        scenario(PINNED, cluster={"gpu": "xeon-6980p", "gpus_per_node": 2, "host_cpu": "grace"})


# --- Preprocessing on the host ---------------------------------------------------------------------------


def test_preprocessing_stall_by_hand():
    # Per node and step: 8 GPUs x 400 images x (2.54 + 3.249) core-ms = 18.525 core-s on 112 - 12 = 100 free
    # cores: 0.1852 s, against 0.1 s of GPU compute. The loader works ahead, so the step waits 0.0852 s.
    r = row(scenario(PINNED))
    t_prep = 8 * 400 * (DECODE_MS + HEAVY_AUGMENT_MS) / 1e3 / (DGX_H100_CORES - KEPT)
    assert t_prep == pytest.approx(0.185248)
    assert r["train_t_compute_s"] == pytest.approx(0.1)
    assert r["train_t_host_prep_s"] == pytest.approx(t_prep)
    assert r["train_t_host_stall_s"] == pytest.approx(t_prep - 0.1)
    assert r["train_step_time_s"] == pytest.approx(t_prep)
    # 4,000 images/s x 5.789 core-ms = 23.2 cores per GPU needed, 12.5 free.
    assert r["train_host_cores_needed_per_gpu"] == pytest.approx(4000 * (DECODE_MS + HEAVY_AUGMENT_MS) / 1e3)
    # The GPU-hours the stall costs are the idle cause 'host preprocessing'; the bottleneck names it.
    assert r["train_idle_host_preprocessing_pct"] == pytest.approx(100 * (t_prep - 0.1) / t_prep, rel=1e-6)
    assert r["train_bottleneck"] == "host preprocessing"
    assert "waiting for the host CPUs" in r["train_bottleneck_detail"]


def test_enough_cores_leave_no_stall():
    # Four sockets a node: 224 - 12 = 212 free cores: 18.525 / 212 = 0.087 s, inside the 0.1 s step.
    r = row(scenario(PINNED, cluster={"host_cpus_per_node": 4}))
    assert r["train_t_host_prep_s"] == pytest.approx(8 * 400 * 5.789e-3 / 212)
    assert r["train_t_host_stall_s"] == 0.0
    assert r["train_bottleneck"] == "compute"


def test_gpu_decode_moves_the_decode_onto_the_gpus():
    # nvJPEG decodes 1,000 images in 127,654.8 us on one A100 (H049): 0.1277 ms of GPU time per image, 51 ms a
    # step of 400; the host only augments: 3,200 x 3.249 ms / 100 cores = 0.104 s, inside the 0.151 s step.
    r = row(scenario(PINNED, data={"preprocess": "gpu-decode"}))
    gpu_decode = 400 * 127_654.8e-6 / 1000
    assert r["train_t_gpu_decode_s"] == pytest.approx(gpu_decode)
    assert r["train_t_compute_s"] == pytest.approx(0.1 + gpu_decode)
    assert r["train_t_host_prep_s"] == pytest.approx(8 * 400 * HEAVY_AUGMENT_MS / 1e3 / 100)
    assert r["train_t_host_stall_s"] == 0.0
    cpu = row(scenario(PINNED))
    assert r["train_wall_clock_days"] < cpu["train_wall_clock_days"]
    with pytest.raises(ValidationError, match="no images to decode"):
        scenario({}, cluster={"gpu": "h100-sxm", "gpu_count": 8}, data={"preprocess": "gpu-decode"})


SETTINGS = settings(
    max_examples=examples(int(__import__("os").environ.get("WHATIF_HYPOTHESIS_EXAMPLES", "25"))),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(
    st.integers(min_value=1, max_value=8),
    st.integers(min_value=1, max_value=8),
    st.sampled_from(["xeon-8480c", "xeon-6980p", "epyc-9654", "epyc-9965", "grace"]),
    st.floats(min_value=0.0, max_value=10.0),
    st.floats(min_value=200.0, max_value=20_000.0),
    st.sampled_from(["shared-fs", "local-nvme"]),
)
def test_more_cores_per_gpu_never_lengthen_the_stall(a, b, cpu, augment_ms, speed, source):
    few, many = sorted((a, b))
    base = merge(PINNED, {"data": {"augment_core_ms": augment_ms, "samples_per_gpu_s": speed, "source": source}})
    lo, hi = rows(
        scenario(base, cluster={"host_cpu": cpu, "host_cpus_per_node": few}),
        scenario(base, cluster={"host_cpu": cpu, "host_cpus_per_node": many}),
    )
    assert hi["train_host_cores_free_per_gpu"] >= lo["train_host_cores_free_per_gpu"]
    assert hi["train_t_host_stall_s"] <= lo["train_t_host_stall_s"] * (1 + 1e-12)
    assert hi["train_step_time_s"] <= lo["train_step_time_s"] * (1 + 1e-12)


def test_tokenised_text_costs_the_host_almost_nothing():
    # Tokenising: under 20 s per GB of text (H024), charged as if the 112 cores of a DGX H100 were busy those
    # 20 s, at ~4 bytes a token: 20 x 112 x 4 / 1e9 = 8.96 core-us a token, an upper bound.
    s = files.load_scenario(files.shipped_presets()["llama8b-finetune-dgx-h100"])
    r = row(s)
    core_s = 20 * 112 * 4 / 1e9
    assert r["train_host_core_us_per_unit"] == pytest.approx(core_s * 1e6)
    per_gpu = r["train_tokens_per_s"] / 8
    assert r["train_host_cores_needed_per_gpu"] == pytest.approx(per_gpu * core_s, rel=0.01)
    # A tenth of a core per GPU (of the 12.5 the framework leaves): no stall, nothing in the idle breakdown.
    assert r["train_host_cores_needed_per_gpu"] < 0.2
    assert r["train_t_host_stall_s"] == 0.0 and r["train_idle_host_preprocessing_pct"] == 0.0


def test_the_cpu_starved_vision_preset_waits_on_its_host():
    # DGX B200 nodes (2x 56-core Xeon 8570, hardware_catalog.md table 4) with heavy augmentation: each GPU
    # needs ~25 cores (H064: 14 a GPU on a DGX B200, of which 12.5 are free), about half the GPU time waits.
    r = row(files.load_scenario(files.shipped_presets()["vision-resnet50-b200-cpu-starved"]))
    assert r["train_bottleneck"] == "host preprocessing"
    assert r["train_host_cores_free_per_gpu"] == pytest.approx((2 * 56 - KEPT) / 8)
    assert r["train_host_cores_needed_per_gpu"] > 2 * r["train_host_cores_free_per_gpu"] * 0.9
    assert 40 < r["train_idle_host_preprocessing_pct"] < 60
    gpu_decode = row(
        files.load_scenario(files.shipped_presets()["vision-resnet50-b200-cpu-starved"]).edited(
            "data", preprocess="gpu-decode"
        )
    )
    assert gpu_decode["train_idle_host_preprocessing_pct"] < r["train_idle_host_preprocessing_pct"]


# --- Host power -------------------------------------------------------------------------------------------


def test_host_power_follows_the_chosen_cpu():
    # Input stored ready to use, so the host CPUs sit at the constant-mode half of TDP (H047): two 8480C draw
    # 2 x 350 x 0.5 = 350 W, two Xeon 6980P 2 x 500 x 0.5 = 500 W. Over the run (2 nodes, T seconds) the IT
    # energy grows by 2 x 150 W x T / (1 - 0.095 fans) / 0.96 supplies, the facility's by PUE 1.44 more.
    ready = merge(PINNED, {"data": {"preprocess": "none"}})
    low, high = rows(scenario(ready), scenario(ready, cluster={"host_cpu": "xeon-6980p"}))
    assert low["train_host_cpu_w_per_node"] == pytest.approx(350.0)
    assert high["train_host_cpu_w_per_node"] == pytest.approx(500.0)
    t = low["train_wall_clock_days"] * 86400
    assert high["train_wall_clock_days"] == low["train_wall_clock_days"]
    extra_j = 2 * 150 * t / (1 - 0.095) / 0.96
    assert (high["train_it_energy_mwh"] - low["train_it_energy_mwh"]) * 3.6e9 == pytest.approx(extra_j, rel=1e-6)
    assert high["train_energy_mwh"] > low["train_energy_mwh"]
    assert high["train_host_w_per_gpu"] - low["train_host_w_per_gpu"] == pytest.approx(150 / 8)


def test_busy_host_cores_draw_more_than_the_idle_half():
    # The starved case: every core busy (load 1), so the sockets draw TDP x 1 (codecarbon's TDP x load, H047):
    # 2 x 350 W; with the input stored ready to use only the 12 kept cores of 112 are busy, under the floor.
    starved = row(scenario(PINNED))
    assert starved["train_host_load"] == pytest.approx(1.0)
    assert starved["train_host_cpu_w_per_node"] == pytest.approx(2 * 350.0)
    ready = merge(PINNED, {"data": {"preprocess": "none"}})
    xeon, grace = rows(scenario(ready), scenario(ready, cluster={"host_cpu": "grace"}))
    assert xeon["train_host_load"] == pytest.approx(KEPT / DGX_H100_CORES)
    assert xeon["train_host_cpu_w_per_node"] == pytest.approx(2 * 350 * 0.5)
    # Grace's memory is inside its 250 W (H034): no DIMMs, where the Xeon node's 2 TB are 32 x 64 GB DIMMs at
    # 126 / 32 W each (H044). Per GPU: (350 + 126 - 2 x 250 x 0.5) / 8.
    assert grace["train_host_cpu_w_per_node"] == pytest.approx(2 * 250 * 0.5)
    assert xeon["train_host_w_per_gpu"] - grace["train_host_w_per_gpu"] == pytest.approx((350 + 126 - 250) / 8)


# --- CPU-only clusters ------------------------------------------------------------------------------------


def test_cpu_llm_decode_against_llama_cpp_on_dual_turin():
    # H054: llama.cpp decodes Llama 3.1 70B at FP16 on 2x EPYC 9175F with 16 DIMMs of DDR5-6400 (8 of the 12
    # channels of each socket) at 4.31 tokens/s. The roofline: 141 GB of BF16 weights streamed per token from
    # 2 x 8 x 6,400 MT/s x 8 B = 819 GB/s at memory_efficiency 0.8: 4.65 tokens/s by hand, the engine 4.61
    # (attention and per-layer traffic on top). Error +7%: stated in docs/model.md ("CPU-only clusters").
    s = scenario(
        {},
        name="H054",
        cluster={"gpu": "epyc-9175f", "gpu_count": 2, "gpus_per_node": 2, "hbm_tb_s": 8 * 6400 * 8 / 1e6},
        inference={
            "model": "llama-3.1-70b",
            "precision": "bf16",
            "prompt_tokens": 16,
            "output_tokens": 128,
            "concurrency": 1,
            "request_rate_per_s": 0.001,
            "tp": 2,
        },
    )
    r = row(s)
    by_hand = 2 * 8 * 6400 * 8 / 1e3 * 0.8 / 141
    assert by_hand == pytest.approx(4.65, abs=0.01)
    model = 1000.0 / r["infer_tpot_ms"]
    assert model == pytest.approx(by_hand, rel=0.03)
    measured = _ref("H054")
    assert measured == 4.31
    assert model / measured - 1 == pytest.approx(0.07, abs=0.03)


def test_cpu_fine_tuning_against_distilbert_on_sapphire_rapids():
    # H058: DistilBERT-base fine-tuned on SQuAD v1.1 (one epoch, batch 32, ~88k features of 384 tokens) on 32
    # Sapphire Rapids cores with AMX BF16 in 26 minutes. The socket: 32 cores x 1,024 FLOP x 2.0 GHz (the base
    # clock of the catalog's Sapphire Rapids part; r7iz's own clock is not in the reference) = 65.5 TFLOP/s,
    # memory as an 8480C. DistilBERT: 6 layers, hidden 768, 12 heads, FFN 3,072, vocabulary 30,522.
    # The engine: ~36 minutes, +37% (GEMMs at 1/8 of the AMX peak, H009); stated in docs/model.md.
    s = scenario(
        merge(QUIET, {"data": {"preprocess": "none"}}),
        name="H058",
        cluster={"gpu": "xeon-8480c", "gpu_count": 1, "gpus_per_node": 1, "bf16_tflops": 32 * 1024 * 2.0 / 1e3},
        training={
            "model": {
                "name": "distilbert-base",
                "layers": 6,
                "hidden": 768,
                "heads": 12,
                "ffn_hidden": 3072,
                "vocab": 30522,
            },
            "train_tokens": 88_000 * 384,
            "seq_len_tokens": 384,
            "global_batch_seqs": 32,
            "precision": "bf16",
            "recompute": "none",
            "parallelism": {"tp": 1, "pp": 1, "zero": 0},
        },
    )
    r = row(s)
    minutes = r["train_wall_clock_days"] * 24 * 60
    assert _ref("H058") == 26
    assert minutes / 26 - 1 == pytest.approx(0.37, abs=0.1)
    assert r["train_bottleneck"] == "compute"


PAIR = ("llama8b-finetune-dgx-h100", "llama8b-finetune-cpu-xeon6")


def test_the_same_fine_tune_takes_days_on_cpus_and_hours_on_gpus_at_about_the_same_power():
    gpu, cpu = rows(*(files.load_scenario(files.shipped_presets()[name]) for name in PAIR))
    assert gpu["train_wall_clock_days"] * 24 < 12  # hours
    assert cpu["train_wall_clock_days"] > 2  # days
    assert cpu["train_wall_clock_days"] / gpu["train_wall_clock_days"] > 10
    # About the same power: peak IT power within 10%, average facility power within 10%.
    assert cpu["train_peak_it_kw"] == pytest.approx(gpu["train_peak_it_kw"], rel=0.1)
    assert cpu["train_avg_power_mw"] == pytest.approx(gpu["train_avg_power_mw"], rel=0.1)
    # The CPUs' AMX GEMMs run at 1/8 of peak (H009): MFU ~11% against the H100's ~60%.
    assert cpu["train_mfu"] < 0.125 < gpu["train_mfu"]
    # A CPU socket is its own host: no host sockets, no preprocessing figures.
    assert cpu["train_host_sockets_per_node"] == 0 and cpu["train_host_cores_free_per_gpu"] is None
    # No catalog price for CPU sockets: the cost is blank, and says why.
    assert cpu["train_cost_usd"] is None and cpu["price_key"] == "none"


def test_a_cpu_cluster_also_serves():
    cpu = row(files.load_scenario(files.shipped_presets()[PAIR[1]]))
    gpu = row(files.load_scenario(files.shipped_presets()[PAIR[0]]))
    # Serving Llama 3.1 8B in BF16 streams its 16 GB of weights each token: memory-bound on a CPU socket,
    # whose memory is DRAM (the Xeon 6980P's MRDIMMs), not HBM.
    assert cpu["infer_bottleneck"] == "weight streaming (DRAM)"
    assert gpu["infer_bottleneck"] != "weight streaming (DRAM)"
    assert cpu["device_kind"] == "cpu" and gpu["device_kind"] == "gpu"
    assert cpu["infer_tpot_p99_ms"] > gpu["infer_tpot_p99_ms"]


def test_compare_shows_days_against_hours(capsys):
    assert main(["compare", *PAIR, "--figures", "days", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    text = json.dumps(out)
    assert "llama8b-finetune-cpu-xeon6" in text
    assert main(["compare", *PAIR]) == 0
    table = capsys.readouterr().out
    wall = next(line for line in table.splitlines() if "wall clock" in line)
    assert " h " in wall + " " and " d " in wall + " "


def test_cpu_sockets_are_not_counted_as_gpus(capsys):
    # The Xeon 6 preset trains on 10 sockets; the DGX H100 one on 8 GPUs. A count of other devices gets
    # no "+25%" against the baseline's.
    assert main(["compare", *PAIR]) == 0
    count = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("GPUs"))
    assert "10 CPU sockets" in count and "%" not in count
    assert main(["eval", PAIR[1]]) == 0
    assert "10 CPU sockets" in capsys.readouterr().out


def test_the_json_report_carries_the_host():
    s = scenario(PINNED)
    rec = records(evaluate(resolve([s])), [True], [False])[0]
    host = rec["training"]["host"]
    assert host["cpu"] == "xeon-8480c" and host["sockets_per_node"] == 2
    assert host["preprocessing_stall_per_step_s"] == pytest.approx(0.185248 - 0.1)
    assert rec["training"]["idle_breakdown_pct"]["host_preprocessing"] > 40
