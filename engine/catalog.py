"""The hardware, model and constant catalogs: TOML data shipped with the package, read once.

Each TOML table becomes a typed, frozen entry; a missing source, a negative figure or an unknown key in a
catalog file is a programming error and fails loudly at load (tests/test_catalog.py checks every entry).
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator


class _Frozen(BaseModel):
    """A catalog record: unknown keys are errors, and nothing changes once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Sourced(_Frozen):
    """A record that carries its source (at least a citation's length) and how sure it is."""

    source: str = Field(min_length=10)
    confidence: str = ""


class _Entry(_Frozen):
    """A named catalog entry with its source."""

    name: str
    source: str = Field(min_length=3)
    confidence: str = ""
    notes: str = ""


class Accelerator(_Entry):
    # "cpu": a CPU socket as the cluster's compute device, built from catalog/host_cpus.toml (HostCpu.as_device).
    kind: Literal["gpu", "cpu"] = "gpu"
    vendor: str
    arch: str
    form_factor: str
    bf16_tflops: PositiveFloat
    fp8_tflops: PositiveFloat | None = None
    fp4_tflops: PositiveFloat | None = None
    bf16_sparse_tflops: PositiveFloat | None = None
    hbm_gb: PositiveFloat
    hbm_tb_s: PositiveFloat
    gemm_bf16_tflops: PositiveFloat | None = None
    gemm_fp8_tflops: PositiveFloat | None = None
    gemm_fp4_tflops: PositiveFloat | None = None
    gemm_basis: str = ""
    tdp_w: PositiveFloat
    idle_w: PositiveFloat
    idle_basis: str
    scale_up: str
    scale_up_domain_gpus: PositiveInt
    host_link: str
    node_max_kw: PositiveFloat | None = None
    launch_year: int

    def peak_tflops(self, precision: str) -> float | None:
        """Dense peak at a training/serving precision, or None where the part has no such format."""
        return {"bf16": self.bf16_tflops, "fp8": self.fp8_tflops, "fp4": self.fp4_tflops}[precision]


class Fabric(_Entry):
    kind: Literal["scale-up", "scale-out", "host"]
    gb_s_per_direction: PositiveFloat
    busbw_efficiency: PositiveFloat | None = None
    busbw_basis: str = ""
    nvls_allreduce_gain: float = Field(default=1.0, ge=1.0, le=2.0)
    nvls_min_gpus: PositiveInt = 1_000_000
    nvls_basis: str = ""
    latency_us: PositiveFloat
    latency_basis: str


class Nvme(_Entry):
    pcie_gen: int = Field(ge=0)
    read_gb_s: float = Field(ge=0)
    write_gb_s: float = Field(ge=0)
    # Power while reading or writing at its rated rate (idle: constant nvme_idle_w).
    active_w: float = Field(default=0.0, ge=0)
    power_basis: str = ""


class SharedFs(_Entry):
    read_gb_s: float = Field(ge=0)
    write_gb_s: float = Field(ge=0)


class Cooling(_Entry):
    """What a cooling kind changes for the same building (cooling.toml): server fans, the site's cooling
    overhead and water, rack density, sustained clocks. The site's own PUE is in facilities.toml."""

    server_fan_share: float = Field(ge=0.0, lt=0.5)
    fan_basis: str = Field(min_length=3)
    pue_factor: float = Field(gt=0.5, le=1.5)
    pue_factor_basis: str = Field(min_length=3)
    water_factor: float = Field(ge=0.0, le=2.0)
    water_basis: str = Field(min_length=3)
    rack_limit_kw: PositiveFloat
    rack_basis: str
    sustained_clock_factor: float = Field(gt=0.5, le=1.0)
    clock_loss_min_tdp_w: float = Field(ge=0)
    clock_basis: str
    source: str = "see fan_basis, pue_factor_basis, water_basis, rack_basis and clock_basis"


class Site(_Entry):
    """A facility's published PUE and water use (facilities.toml)."""

    pue: float = Field(ge=1.0, le=3.0)
    pue_basis: str = Field(min_length=3)
    wue_l_per_kwh: float = Field(ge=0.0, le=20.0)
    wue_basis: str = Field(min_length=3)


class HostPlatform(_Entry):
    """The server a GPU type is sold in (hosts.toml): its host CPU (a host_cpus.toml key), sockets per GPU and
    storage NICs."""

    host_cpu: str
    cpus_per_gpu: float = Field(gt=0, le=4)
    storage_nics: int = Field(ge=0, le=16)


class FailureProfile(_Entry):
    """One fleet's unexpected-interruption rates (reliability.toml); inf: nothing charged to that term."""

    gpu_mtbf_hours: PositiveFloat
    node_mtbf_hours: PositiveFloat
    basis: str = Field(min_length=20)


_DATE = r"^(\d{4}-\d{2}|undated)$"


class RentalPrice(_Sourced):
    usd_per_gpu_hour: float = Field(ge=0)
    provider: str = Field(min_length=3)
    term: str = Field(min_length=3)
    date: str = Field(pattern=_DATE)
    # The GPU type whose price this is, where one entry of a type borrows another's (the cost label says so).
    priced_as: str | None = None


class PurchasePrice(_Sourced):
    usd_per_gpu: float = Field(ge=0)
    what: str = Field(min_length=3)
    date: str = Field(pattern=_DATE)
    priced_as: str | None = None


class GpuPrices(_Frozen):
    """A GPU type's dated prices (prices.toml), or the GPU type it is priced as."""

    default_rental: str | None = None
    default_purchase: str | None = None
    rental: dict[str, RentalPrice] = {}
    purchase: dict[str, PurchasePrice] = {}
    priced_as: str | None = None
    priced_as_basis: str = ""

    @model_validator(mode="after")
    def _defaults_exist(self) -> GpuPrices:
        if self.priced_as is not None:
            if self.rental or self.purchase or self.default_rental or len(self.priced_as_basis) < 10:
                raise ValueError("a GPU priced_as another has no prices of its own and says why (priced_as_basis)")
            return self
        if self.default_rental not in self.rental or self.default_purchase not in self.purchase:
            raise ValueError("default_rental and default_purchase must name one of the GPU's own prices")
        return self

    def rental_at(self, key: str | None) -> tuple[str, RentalPrice]:
        """The rental price `key` names, else the default one, with its key (of an entry with prices of its
        own, as Catalog.gpu_prices returns: the validator above makes sure it has both defaults)."""
        chosen = key if key in self.rental else self.default_rental
        assert chosen is not None, "an entry priced as another has no prices of its own"
        return chosen, self.rental[chosen]

    def default_purchase_price(self) -> tuple[str, PurchasePrice]:
        """The default purchase price and its key (of an entry with prices of its own)."""
        assert self.default_purchase is not None, "an entry priced as another has no prices of its own"
        return self.default_purchase, self.purchase[self.default_purchase]


class ModelShape(_Entry):
    layers: PositiveInt
    hidden: PositiveInt
    heads: PositiveInt
    kv_heads: PositiveInt
    ffn_hidden: PositiveInt
    vocab: PositiveInt
    ffn_kind: Literal["gelu", "swiglu"]
    tied_embeddings: bool
    params_total_b: PositiveFloat
    params_active_b: PositiveFloat | None = None
    experts: int = Field(default=0, ge=0)
    experts_per_token: int = Field(default=0, ge=0)
    moe_layers: int = Field(default=0, ge=0)
    expert_ffn_hidden: int = Field(default=0, ge=0)
    shared_experts: int = Field(default=0, ge=0)
    attention: Literal["mha", "gqa", "mla"] = "mha"
    kv_cache_width: PositiveInt | None = None
    head_dim: PositiveInt | None = None
    q_lora_rank: int = Field(default=0, ge=0)
    kv_lora_rank: int = Field(default=0, ge=0)
    qk_nope_head_dim: int = Field(default=0, ge=0)
    qk_rope_head_dim: int = Field(default=0, ge=0)
    v_head_dim: int = Field(default=0, ge=0)
    # Layers whose attention sees only the last sliding_window_tokens (banded / chunked local attention):
    # their KV cache stops growing there.
    sliding_window_tokens: int = Field(default=0, ge=0)
    sliding_window_layers: int = Field(default=0, ge=0)


class ArchEfficiency(_Frozen):
    """Per-generation kernel anchors (fractions of the datasheet's dense peak, from kernel measurements);
    see efficiency.toml and docs/model.md ("Efficiency")."""

    name: str
    gemm_bf16_fraction: float = Field(gt=0, le=1)
    gemm_fp8_fraction: float = Field(gt=0, le=1)
    gemm_fp4_fraction: float | None = Field(default=None, gt=0, le=1)
    attention_fraction: float = Field(gt=0, le=1)
    # FlashAttention forward only (serving prefill), causal at 8k, / dense BF16 peak; unset: attention_fraction.
    attention_forward_fraction: float | None = Field(default=None, gt=0, le=1)
    attention_flash2_fraction: float = Field(gt=0, le=1)
    memory_efficiency: float = Field(gt=0, le=1)
    # False: GEMMs run at their ceiling at every shape (kernels.toml's shape curve is fitted to GPU sweeps).
    gemm_shape_curve: bool = True
    basis: str = Field(min_length=3)


class GemmCurve(_Frozen):
    d_half: PositiveFloat
    t_fixed_us: float = Field(ge=0)
    basis: str = Field(min_length=3)


class AttentionCurve(_Frozen):
    seq_tokens: list[PositiveFloat]
    relative_rate: list[PositiveFloat]
    causal_half_tokens: PositiveFloat
    basis: str = Field(min_length=3)


class NcclModel(_Frozen):
    """NCCL's cost-model constants, per protocol in the order LL, LL128, Simple."""

    base_us: tuple[float, float, float]
    nvlink_step_us: tuple[float, float, float]
    net_step_us: tuple[float, float, float]
    protocol_bandwidth_share: tuple[float, float, float]
    tree_bandwidth_share: float = Field(gt=0, le=1)
    basis: str = Field(min_length=3)


class Kernels(_Frozen):
    gemm: dict[Literal["bf16", "fp8", "fp4"], GemmCurve]
    attention: AttentionCurve
    nccl: NcclModel


class Workload(_Entry):
    """A sample-based (non-LLM) training workload: bytes and compute per sample (catalog/workloads.toml)."""

    sample_bytes: PositiveFloat
    dataset_samples: PositiveInt
    batch_samples: PositiveInt
    compute_s_per_batch: dict[str, PositiveFloat]
    reference_gpu: dict[str, str]
    au_threshold: float = Field(gt=0, le=1)
    params_m: PositiveFloat | None = None
    train_gflop_per_sample: PositiveFloat | None = None


class HostCpu(_Entry):
    """One server CPU socket (catalog/host_cpus.toml [cpus.*]): the host that feeds the GPUs, and where it has
    a matrix or dot-product unit, a compute device of its own."""

    vendor: str
    family: str
    cores: PositiveInt
    base_ghz: PositiveFloat
    all_core_turbo_ghz: PositiveFloat | None = None
    max_turbo_ghz: PositiveFloat
    matrix_unit: Literal["amx", "avx512", "sve2", "none"]
    bf16_flop_per_cycle: PositiveFloat | None = None
    int8_ops_per_cycle: PositiveFloat | None = None
    mem_channels: PositiveInt | None = None
    mem_mt_s: PositiveFloat | None = None
    mem_gb_s: PositiveFloat
    # Memory per socket when the CPU is the compute device; unset: one DIMM of constants.dimm_gb per channel.
    mem_gb: PositiveFloat | None = None
    memory_in_tdp: bool = False
    tdp_w: PositiveFloat
    launch_year: int
    arch: str | None = None

    @property
    def bf16_tflops(self) -> float | None:
        """Dense BF16 peak per socket at the base clock: cores x FLOP per cycle x GHz."""
        return None if self.bf16_flop_per_cycle is None else self.cores * self.bf16_flop_per_cycle * self.base_ghz / 1e3

    @property
    def int8_tops(self) -> float | None:
        return None if self.int8_ops_per_cycle is None else self.cores * self.int8_ops_per_cycle * self.base_ghz / 1e3

    def as_device(self, dimm_gb: float, idle_share: float) -> Accelerator:
        """The socket as a cluster's compute device: its matrix peak as bf16_tflops, its DRAM bandwidth as
        hbm_tb_s, its memory as hbm_gb; each socket its own scale-up domain (sockets talk over the node's
        NICs: no measurement of UPI / xGMI socket links in the reference)."""
        arch, bf16 = self.arch, self.bf16_tflops
        if arch is None or bf16 is None:
            raise ValueError(f"host_cpus.toml: {self.name} needs arch and a BF16 rate to be a compute device")
        return Accelerator(
            kind="cpu",
            name=f"{self.name} (CPU socket)",
            vendor=self.vendor,
            arch=arch,
            form_factor="CPU socket",
            bf16_tflops=bf16,
            hbm_gb=self.mem_gb or (self.mem_channels or 1) * dimm_gb,
            hbm_tb_s=self.mem_gb_s / 1000.0,
            tdp_w=self.tdp_w,
            idle_w=idle_share * self.tdp_w,
            idle_basis="codecarbon's CPU load model floor: 10% of TDP (host_cpus.toml cpu_idle_load_share, H047)",
            scale_up="pcie-gen5",
            scale_up_domain_gpus=1,
            host_link="pcie-gen5",
            launch_year=self.launch_year,
            source=self.source,
            confidence=self.confidence,
            notes="A CPU socket as the compute device (catalog/host_cpus.toml). " + self.notes,
        )


class SamplePreprocessing(_Sourced):
    """Host core-milliseconds to decode and augment one sample, and GPU milliseconds to decode it there."""

    decode_core_ms: float = Field(ge=0)
    augment_core_ms: float = Field(ge=0)
    gpu_decode_ms: float = Field(ge=0)
    notes: str = ""


class TextPreprocessing(_Sourced):
    """Tokenising text on the host, an upper bound: tokenize_s_per_gb on reference_cores cores."""

    tokenize_s_per_gb: PositiveFloat
    bytes_per_token: PositiveFloat
    reference_cores: PositiveFloat

    @property
    def core_s_per_token(self) -> float:
        return self.tokenize_s_per_gb * self.reference_cores / 1e9 * self.bytes_per_token


class LengthProfile(_Entry):
    """A request length profile (catalog/lengths.toml): mean prompt and output tokens and their spreads."""

    prompt_tokens: PositiveFloat
    prompt_cv: float = Field(ge=0, le=10)
    output_tokens: PositiveFloat
    output_cv: float = Field(ge=0, le=10)


class Constant(_Frozen):
    value: float
    unit: str
    basis: str = Field(min_length=3)


class Fitted(_Frozen):
    """A fitted model constant (catalog/fitted.toml): its value, unit, the grid the fit searches, and basis."""

    value: float
    unit: str
    workload: Literal["training", "inference"]
    grid: list[float] = Field(min_length=2)
    basis: str = Field(min_length=3)


class ErrorBand(_Frozen):
    band_pct: float = Field(ge=0)
    cases: int = Field(ge=0)
    basis: str = Field(min_length=3)


class HostCatalog(_Frozen):
    """catalog/host_cpus.toml: CPUs, CPU efficiency, preprocessing costs and host constants (the CPU each GPU
    type's server carries is in hosts.toml)."""

    cpus: dict[str, HostCpu]
    efficiency: dict[str, ArchEfficiency]
    preprocessing: dict[str, SamplePreprocessing]
    text: TextPreprocessing
    constants: dict[str, Constant]

    def constant(self, key: str) -> float:
        return self.constants[key].value

    @model_validator(mode="after")
    def _keys(self) -> HostCatalog:
        for key, cpu in self.cpus.items():
            if cpu.arch is not None and cpu.arch not in self.efficiency:
                raise ValueError(f"cpus.{key}: arch {cpu.arch!r} is not an [efficiency.*] entry")
            if cpu.arch is not None and cpu.bf16_flop_per_cycle is None:
                raise ValueError(f"cpus.{key}: a compute device (arch set) needs bf16_flop_per_cycle")
        return self


class Catalog(BaseModel):
    model_config = ConfigDict(frozen=True)

    accelerators: dict[str, Accelerator]
    fabrics: dict[str, Fabric]
    nvme: dict[str, Nvme]
    shared_fs: dict[str, SharedFs]
    cooling: dict[str, Cooling]
    sites: dict[str, Site]
    hosts: dict[str, HostPlatform]
    failure_profiles: dict[str, FailureProfile]
    prices: dict[str, GpuPrices]
    models: dict[str, ModelShape]
    workloads: dict[str, Workload]
    lengths: dict[str, LengthProfile]
    efficiency: dict[str, ArchEfficiency]
    kernels: Kernels
    constants: dict[str, Constant]
    fitted: dict[str, Fitted]
    # workload -> generation -> "dense" | "moe" -> band (catalog/error_bands.toml, written by validate --cross)
    error_bands: dict[str, dict[str, dict[str, ErrorBand]]]
    # Host CPUs (catalog/host_cpus.toml); their compute-capable sockets are also in `accelerators` (kind "cpu").
    host: HostCatalog

    def constant(self, key: str) -> float:
        return self.constants[key].value

    def platform(self, gpu: str) -> HostPlatform:
        """The server the GPU type is sold in (hosts.toml; [default] where it has none of its own)."""
        return self.hosts.get(gpu, self.hosts["default"])

    def gpu_prices(self, gpu: str) -> tuple[GpuPrices, str]:
        """The prices a GPU type is charged at, and the GPU type whose prices they are (itself unless
        priced_as another)."""
        entry, key = self.prices[gpu], gpu
        while entry.priced_as is not None:
            key = entry.priced_as
            entry = self.prices[key]
        return entry, key

    @model_validator(mode="after")
    def _every_gpu_priced(self) -> Catalog:
        # CPU sockets (kind "cpu") carry no catalog price: the reference has none (facility.usd_per_gpu_hour
        # and facility.server_usd_per_gpu price them per socket).
        missing = {k for k, a in self.accelerators.items() if a.kind == "gpu"} - set(self.prices)
        unknown = set(self.prices) - set(self.accelerators)
        bad = {k for k, p in self.prices.items() if p.priced_as is not None and p.priced_as not in self.prices}
        bad |= {
            f"{k}.{key}"
            for k, p in self.prices.items()
            for key, e in (p.rental | p.purchase).items()
            if e.priced_as is not None and e.priced_as not in self.prices
        }
        if missing or unknown or bad:
            raise ValueError(f"prices.toml: no prices for {missing}, unknown GPUs {unknown}, bad priced_as {bad}")
        if "default" not in self.hosts or set(self.hosts) - set(self.accelerators) - {"default"}:
            raise ValueError("hosts.toml: a [default] platform, and only accelerator keys besides it")
        unknown_cpus = {k: h.host_cpu for k, h in self.hosts.items() if h.host_cpu not in self.host.cpus}
        if unknown_cpus:
            raise ValueError(f"hosts.toml: host_cpu not in host_cpus.toml [cpus.*]: {unknown_cpus}")
        return self

    def kinds(self) -> dict[str, Mapping[str, _Entry]]:
        """Catalog sections by the name users see in `whatif catalog` and in error messages."""
        return {
            "gpus": self.accelerators,
            "fabrics": self.fabrics,
            "nvme": self.nvme,
            "shared-fs": self.shared_fs,
            "cooling": self.cooling,
            "sites": self.sites,
            "hosts": self.hosts,
            "host-cpus": self.host.cpus,
            "models": self.models,
            "workloads": self.workloads,
        }


def close_matches(key: str, choices: list[str] | dict, n: int = 4) -> list[str]:
    """Catalog keys that look like a mistyped `key` (prefix matches first, then difflib)."""
    keys = list(choices)
    if len(key) > 100:  # no key is that long; difflib on megabytes of text would take seconds
        return []
    prefix = [k for k in keys if k.startswith(key.lower())] if key else []
    fuzzy = difflib.get_close_matches(key.lower(), keys, n=n, cutoff=0.5)
    return list(dict.fromkeys(prefix + fuzzy))[:n]


def _read(name: str) -> dict:
    return tomllib.loads(files("whatif.engine").joinpath("catalog", name).read_text(encoding="utf-8"))


def _host_catalog() -> HostCatalog:
    return HostCatalog.model_validate(_read("host_cpus.toml"))


@cache
def load_catalog() -> Catalog:
    storage = _read("storage.toml")
    host = _host_catalog()
    constants = _read("constants.toml")
    dimm_gb, idle = constants["dram_dimm_gb"]["value"], host.constant("cpu_idle_load_share")
    gpus = {k: Accelerator.model_validate(v) for k, v in _read("accelerators.toml").items()}
    cpus = {k: cpu.as_device(dimm_gb, idle) for k, cpu in host.cpus.items() if cpu.arch is not None}
    efficiency = {k: ArchEfficiency.model_validate(v) for k, v in _read("efficiency.toml").items()}
    return Catalog(
        accelerators=gpus | cpus,
        fabrics=_read("fabrics.toml"),
        nvme=storage["nvme"],
        shared_fs=storage["shared_fs"],
        cooling=_read("cooling.toml"),
        sites=_read("facilities.toml"),
        hosts=_read("hosts.toml"),
        failure_profiles=_read("reliability.toml"),
        prices=_read("prices.toml"),
        models=_read("models.toml"),
        workloads=_read("workloads.toml"),
        lengths=_read("lengths.toml"),
        efficiency=efficiency | dict(host.efficiency),
        kernels=Kernels.model_validate(_read("kernels.toml")),
        constants=constants,
        fitted=_read("fitted.toml"),
        error_bands=_read("error_bands.toml"),
        host=host,
    )
