"""The scenario: one immutable, validated description of a cluster and its workloads (pydantic v2).

Pydantic is the edge (files, UI). The engine core works on a polars frame built by `resolve.py`.
Every numeric key carries its unit in its name: *_gb (binary GB of memory), *_gb_s (gigabytes per second),
*_gbps (gigabits per second, network convention), *_us, *_min, *_kw, *_usd_*, *_gco2_*, *_tokens, *_seqs.
Bandwidths are per direction. Errors name the `section.key`, the value and what is allowed
(see `errors.py` and docs/presets.md).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .catalog import close_matches, load_catalog
from .errors import printable

SCHEMA_VERSION: Literal[1] = 1
NAME_MAX = 120
DESCRIPTION_MAX = 4000


# Strict types, as docs/presets.md promises: no bool -> int, "64" -> 64, "off" -> False or 1.0 -> 1 coercion (an
# integer is still a number where a float is asked for); `inf` and `nan` are rejected for every key.
STRICT = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True, allow_inf_nan=False)
# Control characters (ESC, BEL, ...) in a name would reach the terminal: not allowed in any text key.
# (Bidirectional overrides too: they reorder what the terminal shows.)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _no_control(value: str, lines: bool = False) -> str:
    if (_CONTROL_BUT_LINES if lines else _CONTROL).search(value):
        raise PydanticCustomError(
            "control_character",
            "holds a control character; allowed: printable text" + (" (new lines and tabs too)" if lines else ""),
        )
    return value


class _Section(BaseModel):
    model_config = STRICT


def _catalog_key(section: str | tuple[str, ...], label: str, value: str) -> str:
    """Check `value` against one or more catalog sections; unknown keys list the close matches."""
    sections = (section,) if isinstance(section, str) else section
    choices = [key for name in sections for key in getattr(load_catalog(), name)]
    if value in choices:
        return value
    near = close_matches(value, choices)
    hint = f"close matches: {', '.join(near)}" if near else f"choose one of: {', '.join(choices)}"
    raise PydanticCustomError(
        "unknown_catalog_key",
        "unknown {label} '{value}'; {hint} (`whatif catalog` lists them)",
        {"label": label, "value": printable(value, 40), "hint": hint},
    )


class Cluster(_Section):
    gpu: str = "h100-sxm"
    gpu_count: Annotated[int, Field(ge=1, le=1_048_576)] = 1024
    gpus_per_node: Annotated[int, Field(ge=1, le=72)] = 8
    nodes_per_rack: Annotated[int, Field(ge=1, le=72)] = 4
    hbm_gb: Annotated[float, Field(gt=0, le=65536)] | None = None
    # Memory bandwidth per device (HBM of a GPU, DRAM of a CPU socket), TB/s; unset: the catalog's.
    hbm_tb_s: Annotated[float, Field(gt=0, le=1000)] | None = None
    bf16_tflops: Annotated[float, Field(ge=0.1, le=100_000)] | None = None
    fp8_tflops: Annotated[float, Field(ge=0.1, le=100_000)] | None = None
    host_memory_gb: Annotated[float, Field(gt=0, le=65536)] = 2048.0
    # A board power limit below the GPU's TDP (nvidia-smi -pl): compute-bound kernels slow down with it,
    # memory-bound ones do not (docs/model.md, "Power cap").
    power_cap_w: Annotated[float, Field(ge=1, le=5000)] | None = None
    # The host CPUs of each node (catalog/host_cpus.toml): they decode and augment the training input
    # (engine/host.py) and draw the host's CPU power (engine/energy.py). Unset: the GPU's node type
    # (catalog/hosts.toml: a DGX H100 has two 56-core Xeon 8480C), scaled to gpus_per_node at the same sockets
    # per GPU. A CPU as `gpu` is its own host.
    host_cpu: str | None = None
    host_cpus_per_node: Annotated[int, Field(ge=1, le=64)] | None = None

    @field_validator("gpu")
    @classmethod
    def _gpu(cls, v: str) -> str:
        return _catalog_key("accelerators", "GPU", v)

    @field_validator("host_cpu")
    @classmethod
    def _host_cpu(cls, v: str | None) -> str | None:
        if v is None:
            return None
        choices = list(load_catalog().host.cpus)
        if v in choices:
            return v
        near = close_matches(v, choices)
        hint = f"close matches: {', '.join(near)}" if near else f"choose one of: {', '.join(choices)}"
        raise PydanticCustomError(
            "unknown_catalog_key",
            "unknown host CPU '{value}'; {hint} (`whatif catalog host-cpus` lists them)",
            {"value": v, "hint": hint},
        )

    @model_validator(mode="after")
    def _host(self) -> Self:
        cat = load_catalog()
        if cat.accelerators[self.gpu].kind == "cpu":
            for key in ("host_cpu", "host_cpus_per_node"):
                value = getattr(self, key)
                if value is not None and value != self.gpu:
                    raise PydanticCustomError(
                        "cpu_is_its_own_host",
                        "the compute device {gpu} is a CPU socket, its own host; allowed: leave it out",
                        {"gpu": self.gpu, "field": key},
                    )
        return self

    @model_validator(mode="after")
    def _whole_nodes(self) -> Self:
        if self.gpus_per_node > self.gpu_count:
            raise PydanticCustomError(
                "too_many_per_node",
                "gpus_per_node {per_node} is more than gpu_count {count}; allowed: 1 to {count}",
                {"per_node": self.gpus_per_node, "count": self.gpu_count, "field": "gpus_per_node"},
            )
        if self.gpu_count % self.gpus_per_node:
            raise PydanticCustomError(
                "partial_node",
                "gpu_count {count} is not a whole number of {per_node}-GPU nodes; allowed: a multiple of gpus_per_node",
                {"per_node": self.gpus_per_node, "count": self.gpu_count, "field": "gpu_count"},
            )
        return self


class Network(_Section):
    scale_up: str | None = None
    scale_out: str = "ib-ndr"
    nics_per_node: Annotated[int, Field(ge=1, le=64)] = 8
    scale_up_gb_s: Annotated[float, Field(ge=0.01, le=1e6)] | None = None
    nic_gbps: Annotated[float, Field(ge=0.1, le=1e7)] | None = None
    scale_up_latency_us: Annotated[float, Field(gt=0, le=1e7)] | None = None
    scale_out_latency_us: Annotated[float, Field(gt=0, le=1e7)] | None = None
    # A scale-out fabric that is non-blocking only inside pods of pod_gpus GPUs and oversubscribed
    # oversubscription:1 above them (traffic of a group that spans pods gets 1/oversubscription of the links).
    oversubscription: Annotated[float, Field(ge=1.0, le=64.0)] = 1.0
    pod_gpus: Annotated[int, Field(ge=1, le=1_048_576)] | None = None

    @field_validator("scale_up", "scale_out")
    @classmethod
    def _fabric(cls, v: str | None) -> str | None:
        return None if v is None else _catalog_key("fabrics", "fabric", v)


class Storage(_Section):
    nvme: str = "micron-9400"
    nvme_drives_per_node: Annotated[int, Field(ge=0, le=64)] = 8
    shared_fs: str = "ddn-ai400x2-turbo"
    shared_fs_read_gb_s: Annotated[float, Field(ge=0, le=1e6)] | None = None
    shared_fs_write_gb_s: Annotated[float, Field(ge=0, le=1e6)] | None = None
    checkpoint_mode: Literal["sync", "async", "none"] = "async"
    checkpoint_interval_min: Literal["auto"] | Annotated[float, Field(gt=0, le=100_000)] = "auto"
    # Each node's own path to the shared file system (storage NICs), Gb/s per direction; unset: the
    # catalog's DGX SuperPOD figure (constants.toml storage_network_gbps_per_node).
    node_network_gbps: Annotated[float, Field(gt=0, le=1e7)] | None = None
    # Asynchronous checkpoints: the seconds training stops for each (besides copying the GPU's shard to host
    # memory; unset: PyTorch DCP's measured 6.3 s) and the share of the write bandwidth the background write
    # drains at (unset: Tectonic's sustained / peak, constants.toml).
    checkpoint_blocking_s: Annotated[float, Field(ge=0, le=100_000)] | None = None
    checkpoint_write_share: Annotated[float, Field(gt=0, le=1)] | None = None

    @field_validator("nvme")
    @classmethod
    def _nvme(cls, v: str) -> str:
        return _catalog_key("nvme", "NVMe drive", v)

    @field_validator("shared_fs")
    @classmethod
    def _fs(cls, v: str) -> str:
        return _catalog_key("shared_fs", "shared file system", v)


class Cooling(_Section):
    """What the cooling changes for the same building (catalog cooling.toml): server fan power, the site's
    cooling overhead and water use, rack density and sustained clocks. The site's PUE is facility.pue."""

    kind: str = "air"
    rack_limit_kw: Annotated[float, Field(gt=0, le=10_000)] | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        return _catalog_key("cooling", "cooling kind", v)


class Data(_Section):
    """The training input: what a step reads and where it is read from (engine/storage.py).

    Text: bytes_per_token (unset: 2 bytes per token id for vocabularies up to 65,536, else 4). Sample
    workloads (training.model from catalog/workloads.toml): sample_mb and samples_per_gpu_s override the
    catalog's sample size (MB = 10^6 bytes) and full-speed samples per second per GPU. A dataset that fits in
    a node's host memory is read from storage once, then served from the page cache.
    """

    bytes_per_token: Annotated[float, Field(gt=0, le=1e9)] | None = None
    sample_mb: Annotated[float, Field(gt=0, le=1e6)] | None = None
    samples_per_gpu_s: Annotated[float, Field(ge=1e-6, le=1e9)] | None = None
    source: Literal["shared-fs", "local-nvme"] = "shared-fs"
    dataset_gb: Annotated[float, Field(gt=0, le=1e10)] | None = None
    # Where the input is prepared (engine/host.py): "cpu" decodes and augments each sample (tokenises text) on
    # the host cores; "gpu-decode" decodes JPEGs on the GPUs (nvJPEG / DALI) and augments on the host; "none":
    # stored ready to use (pre-decoded samples, pre-tokenised text). decode_core_ms and augment_core_ms
    # override the catalog's host core-milliseconds per sample (catalog/host_cpus.toml [preprocessing]).
    preprocess: Literal["cpu", "gpu-decode", "none"] = "cpu"
    decode_core_ms: Annotated[float, Field(ge=0, le=1e6)] | None = None
    augment_core_ms: Annotated[float, Field(ge=0, le=1e6)] | None = None


class Reliability(_Section):
    """Unexpected interruptions and recovery (engine/goodput.py). `profile` picks a fleet's failure rates
    (catalog reliability.toml: Llama 3's H100 fleet by default); gpu_mtbf_hours / node_mtbf_hours override
    either term. restart_min is the fixed part of a restart (detection, rescheduling); job start-up and the
    checkpoint read are added (constants.toml)."""

    interruptions: bool = True
    profile: str = "llama3-h100-2024"
    gpu_mtbf_hours: Annotated[float, Field(gt=0, le=1e9)] | None = None
    node_mtbf_hours: Annotated[float, Field(gt=0, le=1e9)] | None = None
    restart_min: Annotated[float, Field(ge=0, le=100_000)] | None = None

    @field_validator("profile")
    @classmethod
    def _profile(cls, v: str) -> str:
        return _catalog_key("failure_profiles", "failure-rate profile", v)


class Facility(_Section):
    """The building and the bill (engine/energy.py, engine/cost.py; docs/model.md, "Cost").

    site: a catalog facility (facilities.toml) giving the PUE and water use; pue / wue_l_per_kwh override it.
    cost_model "rental": GPU-hours x a dated catalog price per GPU-hour (rental_price names one of the GPU's
    catalog prices; usd_per_gpu_hour sets a price of your own); electricity is in the price. "owned": the
    servers' capex (server_usd_per_gpu, catalog default) with network and storage as shares of it,
    depreciated over depreciation_years, the facility's cost per kW-month of peak IT power, plus electricity.
    CO2: grid_gco2_per_kwh is the location-based factor; market_gco2_per_kwh the contractual (market-based)
    one, unset: the same.
    """

    site: str = "uptime-2025-large"
    pue: Annotated[float, Field(ge=1.0, le=3.0)] | None = None
    wue_l_per_kwh: Annotated[float, Field(ge=0, le=20)] | None = None
    electricity_usd_per_kwh: Annotated[float, Field(ge=0, le=10)] = 0.0862
    grid_gco2_per_kwh: Annotated[float, Field(ge=0, le=2000)] = 384.0
    market_gco2_per_kwh: Annotated[float, Field(ge=0, le=2000)] | None = None
    cost_model: Literal["rental", "owned"] = "rental"
    rental_price: str | None = None
    usd_per_gpu_hour: Annotated[float, Field(ge=0, le=1000)] | None = None
    server_usd_per_gpu: Annotated[float, Field(ge=0, le=10_000_000)] | None = None
    network_capex_share: Annotated[float, Field(ge=0, le=10)] | None = None
    storage_capex_share: Annotated[float, Field(ge=0, le=10)] | None = None
    depreciation_years: Annotated[float, Field(gt=0, le=50)] | None = None
    facility_usd_per_kw_month: Annotated[float, Field(ge=0, le=100_000)] | None = None

    @field_validator("site")
    @classmethod
    def _site(cls, v: str) -> str:
        return _catalog_key("sites", "facility site", v)


class ModelSpec(_Section):
    """An explicit model shape, for models not in the catalog (same keys as catalog/models.toml)."""

    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)] = "custom model"
    layers: Annotated[int, Field(ge=1, le=1024)]
    hidden: Annotated[int, Field(ge=64, le=262_144)]
    heads: Annotated[int, Field(ge=1, le=4096)]
    kv_heads: Annotated[int, Field(ge=1, le=4096)] | None = None
    ffn_hidden: Annotated[int, Field(ge=1, le=1_048_576)] | None = None
    vocab: Annotated[int, Field(ge=1, le=4_194_304)] = 51200
    ffn_kind: Literal["gelu", "swiglu"] = "gelu"
    tied_embeddings: bool = True
    params_total_b: Annotated[float, Field(ge=1e-6, le=100_000)] | None = None
    params_active_b: Annotated[float, Field(ge=1e-6, le=100_000)] | None = None
    experts: Annotated[int, Field(ge=0, le=4096)] = 0
    experts_per_token: Annotated[int, Field(ge=0, le=64)] = 0
    moe_layers: Annotated[int, Field(ge=0, le=1024)] = 0
    expert_ffn_hidden: Annotated[int, Field(ge=0, le=1_048_576)] = 0
    shared_experts: Annotated[int, Field(ge=0, le=64)] = 0
    attention: Literal["mha", "gqa", "mla"] = "mha"
    kv_cache_width: Annotated[int, Field(ge=1, le=16_777_216)] | None = None
    # Query/key head width when heads x head_dim differs from hidden (Qwen3, Gemma); unset: hidden / heads.
    head_dim: Annotated[int, Field(ge=8, le=1024)] | None = None
    # Multi-head latent attention (DeepSeek-V2/V3 config.json names): low-rank query and key/value
    # projections, and the per-head widths of the attention core.
    q_lora_rank: Annotated[int, Field(ge=0, le=65536)] = 0
    kv_lora_rank: Annotated[int, Field(ge=0, le=65536)] = 0
    qk_nope_head_dim: Annotated[int, Field(ge=0, le=1024)] = 0
    qk_rope_head_dim: Annotated[int, Field(ge=0, le=1024)] = 0
    v_head_dim: Annotated[int, Field(ge=0, le=1024)] = 0
    # Layers whose attention (and KV cache) is bounded by a window of the last sliding_window_tokens.
    sliding_window_tokens: Annotated[int, Field(ge=0, le=4_194_304)] = 0
    sliding_window_layers: Annotated[int, Field(ge=0, le=1024)] = 0

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _no_control(v)

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.head_dim is None and self.hidden % self.heads:
            raise PydanticCustomError(
                "heads_split",
                "hidden {hidden} is not divisible by heads {heads}; allowed: heads dividing hidden",
                {"hidden": self.hidden, "heads": self.heads, "field": "heads"},
            )
        if self.kv_heads is not None and self.heads % self.kv_heads:
            raise PydanticCustomError(
                "kv_heads_split",
                "heads {heads} is not a multiple of kv_heads {kv}; allowed: a divisor of heads",
                {"heads": self.heads, "kv": self.kv_heads, "field": "kv_heads"},
            )
        if self.experts and not (0 < self.experts_per_token <= self.experts):
            raise PydanticCustomError(
                "moe_topk",
                "experts_per_token {k} must be between 1 and experts ({e})",
                {"k": self.experts_per_token, "e": self.experts, "field": "experts_per_token"},
            )
        for key in ("moe_layers", "sliding_window_layers"):
            if getattr(self, key) > self.layers:
                raise PydanticCustomError(
                    "more_than_layers",
                    "{key} {n} is more than layers {layers}; allowed: 0 to {layers}",
                    {"key": key, "n": getattr(self, key), "layers": self.layers, "field": key},
                )
        if self.experts and self.moe_layers and not self.expert_ffn_hidden:
            raise PydanticCustomError(
                "expert_width",
                "needed with experts = {e}; allowed: each expert's FFN width, 1 or more",
                {"e": self.experts, "field": "expert_ffn_hidden"},
            )
        if self.kv_lora_rank and not (self.v_head_dim and self.qk_nope_head_dim + self.qk_rope_head_dim):
            field = "v_head_dim" if not self.v_head_dim else "qk_nope_head_dim"
            raise PydanticCustomError(
                "mla_widths",
                "needed with kv_lora_rank = {r} (multi-head latent attention); allowed: 1 or more",
                {"r": self.kv_lora_rank, "field": field},
            )
        self._published_counts()
        return self

    def _published_counts(self) -> None:
        """A published parameter count must describe this shape: within 25% of what the shape implies (the
        catalog's models agree within 1.2%), and the active parameters no more than all of them. A count far
        from the shape would give figures the shape cannot run (MFU above 100%, negative memory)."""
        from .resolve import shape_params  # resolve imports this module

        implied = shape_params(self)
        total = self.params_total_b * 1e9 if self.params_total_b is not None else implied["total"]
        if self.params_total_b is not None and self.params_active_b is not None:
            if self.params_active_b > self.params_total_b:
                raise PydanticCustomError(
                    "active_over_total",
                    "params_active_b {a} is more than params_total_b {t}; allowed: at most params_total_b",
                    {"a": f"{self.params_active_b:g}", "t": f"{self.params_total_b:g}", "field": "params_active_b"},
                )
        for key, shape_count in (("params_total_b", implied["total"]), ("params_active_b", implied["active"])):
            given = getattr(self, key)
            if given is None:
                continue
            lo, hi = 0.8 * shape_count / 1e9, 1.25 * shape_count / 1e9
            if key == "params_active_b":
                hi = min(hi, total / 1e9)
            if not lo <= given <= hi:
                raise PydanticCustomError(
                    "count_off_shape",
                    "{key} {n} does not match the shape ({s} B parameters); allowed: {lo} to {hi}, or leave it out",
                    {
                        "key": key,
                        "n": f"{given:g}",
                        "s": f"{shape_count / 1e9:.4g}",
                        "lo": f"{lo:.4g}",
                        "hi": f"{hi:.4g}",
                        "field": key,
                    },
                )


def _model_ref(v: Any) -> Any:
    if isinstance(v, str):
        return _catalog_key("models", "model", v.strip())
    return v


def _training_model_ref(v: Any) -> Any:
    """A transformer from models.toml, or a sample-based workload from workloads.toml."""
    if isinstance(v, str):
        return _catalog_key(("models", "workloads"), "model or workload", v.strip())
    return v


class Parallelism(_Section):
    """An explicit parallel plan. Keys left out are searched, like `parallelism = "auto"` does, except cp (1),
    etp (1: whole experts on a GPU, as current Megatron-Core MoE recipes run) and dp_shard (the whole
    data-parallel group)."""

    tp: Annotated[int, Field(ge=1, le=512)] | None = None
    pp: Annotated[int, Field(ge=1, le=512)] | None = None
    dp: Annotated[int, Field(ge=1, le=1_048_576)] | None = None
    # Context parallelism: each sequence split over cp GPUs (ring attention, load-balanced causal chunks).
    cp: Annotated[int, Field(ge=1, le=1024)] | None = None
    microbatch: Annotated[int, Field(ge=1, le=4096)] | None = None
    # ZeRO stage: 1 shards optimizer states (Megatron's distributed optimizer), 2 also gradients, 3 also
    # weights (FSDP); over dp_shard ranks of the data-parallel group (HSDP when smaller than dp x cp:
    # shard inside a group, replicate across groups).
    zero: Annotated[int, Field(ge=0, le=3)] | None = None
    dp_shard: Annotated[int, Field(ge=1, le=1_048_576)] | None = None
    interleave: Annotated[int, Field(ge=1, le=64)] | None = None
    ep: Annotated[int, Field(ge=1, le=4096)] | None = None
    # Expert tensor parallelism (Megatron-Core's ETP): 1 keeps each expert whole on a GPU.
    etp: Annotated[int, Field(ge=1, le=512)] | None = None


class Training(_Section):
    model: str | ModelSpec = "llama-3.1-70b"
    train_tokens: Annotated[float, Field(gt=0, le=1e16)] = 15e12
    seq_len_tokens: Annotated[int, Field(ge=16, le=4_194_304)] = 8192
    global_batch_seqs: Annotated[int, Field(ge=1, le=16_777_216)] = 2048
    precision: Literal["bf16", "fp8", "fp4"] = "bf16"
    parallelism: Literal["auto"] | Parallelism = "auto"
    recompute: Literal["auto", "none", "selective", "full"] = "auto"
    # With recompute = "full": how many layers of each pipeline stage are recomputed (Megatron-Core's
    # --recompute-num-layers); unset: all of them. "auto" picks the fewest that fit.
    recompute_layers: Annotated[int, Field(ge=0, le=1024)] | None = None
    # What "selective" recomputes: "norms" (Megatron-Core with FlashAttention: the norms and the activation
    # function) or "op" (TorchTitan's per-op selective activation checkpointing: every op's output is saved
    # except every second matmul of each block, so the K, output and FFN up projections run again, with the
    # norms, the activation function and the all-gathers that feed them).
    selective_recompute: Literal["norms", "op"] = "norms"
    # "flash": the generation's current FlashAttention kernel (FA3 on Hopper, FA4 on Blackwell); "flash2":
    # FlashAttention-2 (2023 software); "unfused": score matrices written to memory (2021-2022 software).
    attention: Literal["flash", "flash2", "unfused"] = "flash"
    sequence_parallel: bool = True
    tp_comm_overlap: bool = True
    # Gradient reduce-scatter overlapped with the backward pass and parameter all-gather with the forward
    # (Megatron-Core --overlap-grad-reduce --overlap-param-gather; FSDP prefetching).
    dp_comm_overlap: bool = True
    # Mixture of experts: all-to-all overlapped with another micro-batch's compute (DualPipe-style
    # schedules, Megatron-Core's EP overlap); dispatch sent in FP8; tokens routed to at most moe_max_nodes
    # nodes (DeepSeek-V3's node-limited routing); the busiest expert's load over the mean.
    moe_a2a_overlap: bool = False
    # "alltoall": NCCL all-to-all, one copy per routed expert; "deepep": DeepEP / HybridEP kernels, which send a
    # token once to each remote node that hosts one of its experts and fan it out over NVLink there.
    moe_dispatcher: Literal["alltoall", "deepep"] = "alltoall"
    moe_dispatch_fp8: bool = False
    moe_max_nodes: Annotated[int, Field(ge=1, le=65536)] | None = None
    moe_imbalance: Annotated[float, Field(ge=1.0, le=16.0)] | None = None
    dropout: bool = False
    eval_tokens: Annotated[float, Field(ge=0, le=1e16)] = 0.0
    # Sample-based workloads (model from catalog/workloads.toml) count samples, not tokens. Unset: five
    # passes over the catalog's dataset, and the catalog's per-GPU batch on every GPU.
    train_samples: Annotated[float, Field(gt=0, le=1e16)] | None = None
    global_batch_samples: Annotated[int, Field(ge=1, le=1_000_000_000)] | None = None

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, v: Any) -> Any:
        return _training_model_ref(v)


class Inference(_Section):
    """A serving workload. `concurrency` is the most requests one replica batches at once (the engine's max
    batch size); `request_rate_per_s` is Poisson arrivals at the whole serving fleet, 0 meaning offline
    (every replica kept at its full batch). See docs/model.md ("Serving")."""

    model: str | ModelSpec = "llama-3.1-70b"
    precision: Literal["bf16", "fp8", "fp4"] = "fp8"
    prompt_tokens: Annotated[int, Field(ge=1, le=4_194_304)] = 2048
    output_tokens: Annotated[int, Field(ge=1, le=1_048_576)] = 256
    concurrency: Annotated[int, Field(ge=1, le=1_000_000)] = 64
    request_rate_per_s: Annotated[float, Field(ge=0, le=1e7)] = 10.0
    tp: Literal["auto"] | Annotated[int, Field(ge=1, le=512)] = "auto"
    pp: Annotated[int, Field(ge=1, le=64)] = 1
    # GPUs that serve (replicas = gpu_count // (tp x pp)); left out: every GPU of the cluster.
    gpu_count: Annotated[int, Field(ge=1, le=1_048_576)] | None = None
    # Share of the memory left after the weights and the runtime reserve that the engine gives to the KV
    # cache (TensorRT-LLM's kv_cache_free_gpu_mem_fraction, whose default is 0.9).
    kv_cache_memory_fraction: Annotated[float, Field(gt=0, le=1)] = 0.9
    # Instead: the share of the whole GPU memory the engine may use, its KV cache getting what the weights and
    # the runtime reserve leave of it (vLLM's gpu_memory_utilization, default 0.9; SGLang's mem_fraction_static).
    gpu_memory_fraction: Annotated[float, Field(gt=0, le=1)] | None = None
    # "auto": the weights' precision, but never below fp8 (quantized checkpoints keep an fp8 KV cache).
    kv_cache_precision: Literal["auto", "bf16", "fp8", "fp4"] = "auto"
    # Mixed batching always; chunking caps the prompt tokens one iteration takes (Sarathi-Serve style).
    chunked_prefill: bool = True
    prefill_chunk_tokens: Annotated[int, Field(ge=16, le=1_048_576)] = 2048
    # Latency targets (p99). When given, results add the highest request rate that meets them.
    ttft_p99_limit_ms: Annotated[float, Field(ge=0.001, le=1e9)] | None = None
    tpot_p99_limit_ms: Annotated[float, Field(ge=0.001, le=1e9)] | None = None

    # --- request lengths ----------------------------------------------------------------------------------
    # prompt_tokens and output_tokens are means; the _cv keys their spread (standard deviation / mean, lognormal;
    # 0: every request the same). A named profile (catalog/lengths.toml: a published trace's statistics) sets
    # all four instead.
    length_profile: str = "fixed"
    prompt_tokens_cv: Annotated[float, Field(ge=0, le=10)] = 0.0
    output_tokens_cv: Annotated[float, Field(ge=0, le=10)] = 0.0

    # --- the engine's KV cache ---------------------------------------------------------------------------
    # "paged": blocks allocated as tokens arrive, a request admitted while its prompt fits, preempted (and
    # recomputed, or swapped with kv_offload = "host") when the cache runs out (vLLM, SGLang, TensorRT-LLM's
    # MAX_UTILIZATION). "reserve": a request is admitted only with room for its whole context and never
    # preempted (TensorRT-LLM's default GUARANTEED_NO_EVICT).
    kv_admission: Literal["paged", "reserve"] = "paged"
    # "host": KV blocks can live in host memory (swap on preemption, prefix-cache hits read back over the host
    # link: vLLM/LMCache CPU offload, SGLang HiCache).
    kv_offload: Literal["none", "host"] = "none"
    # Share of prompt tokens whose KV is found in the prefix cache (not recomputed); of those hits, the share
    # read back from host memory (needs kv_offload = "host").
    prefix_cache_hit_rate: Annotated[float, Field(ge=0, le=0.999)] = 0.0
    prefix_cache_host_share: Annotated[float, Field(ge=0, le=1)] = 0.0

    # --- speculative decoding ----------------------------------------------------------------------------
    # "mtp": a one-layer draft head on the target's hidden states (DeepSeek MTP, EAGLE); "draft": a separate
    # draft model (spec_draft_model). spec_draft_tokens tokens are drafted per step and verified in one target
    # pass; each is accepted with probability spec_acceptance_rate (given the previous was).
    speculative: Literal["none", "draft", "mtp"] = "none"
    spec_draft_tokens: Annotated[int, Field(ge=1, le=16)] = 3
    spec_acceptance_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    spec_draft_model: str | None = None

    # --- mixture of experts ------------------------------------------------------------------------------
    # Expert parallelism inside a replica: experts split whole over ep groups of its TP GPUs (each expert
    # tensor-parallel over tp / ep); "tp": ep = tp (every GPU holds whole experts). dp_attention: attention
    # data-parallel over the replica's GPUs (each holds the attention weights and its own sequences' KV
    # cache); moe_a2a_overlap: the expert all-to-all hidden behind another micro-batch's compute (two-batch
    # overlap). expert_precision: the routed experts' weight format ("auto": precision); on a GPU without
    # that format's tensor cores the weights are unpacked in the kernel and multiplied at `precision`.
    ep: Literal["tp"] | Annotated[int, Field(ge=1, le=512)] = 1
    dp_attention: bool = False
    moe_a2a_overlap: bool = False
    expert_precision: Literal["auto", "bf16", "fp8", "fp4"] = "auto"

    # --- disaggregated prefill and decode ----------------------------------------------------------------
    # Separate pools: prefill_gpu_count of the serving GPUs run prompts only (replicas of prefill_tp GPUs;
    # unset: the decode replica's TP) and send each request's KV cache over the fabric to the decode pool,
    # the other GPUs, which run decode iterations only.
    disaggregated: bool = False
    prefill_gpu_count: Annotated[int, Field(ge=1, le=1_048_576)] | None = None
    prefill_tp: Annotated[int, Field(ge=1, le=512)] | None = None

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, v: Any) -> Any:
        return _model_ref(v)

    @field_validator("spec_draft_model", mode="before")
    @classmethod
    def _draft(cls, v: Any) -> Any:
        return _catalog_key("models", "draft model", v.strip()) if isinstance(v, str) else v

    @field_validator("length_profile")
    @classmethod
    def _profile(cls, v: str) -> str:
        choices = ["fixed", *load_catalog().lengths]
        if v in choices:
            return v
        near = close_matches(v, choices)
        raise PydanticCustomError(
            "unknown_length_profile",
            "unknown length profile '{value}'; allowed: {choices}",
            {"value": v, "choices": ", ".join(near or choices)},
        )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        def fail(field: str, message: str, **ctx: Any) -> None:
            raise PydanticCustomError("inference_" + field, message, {**ctx, "field": field})

        if self.length_profile != "fixed":
            clash = {"prompt_tokens", "output_tokens", "prompt_tokens_cv", "output_tokens_cv"} & self.model_fields_set
            if clash:
                fail(
                    sorted(clash)[0],
                    "set by length_profile '{profile}'; allowed: one of the two (remove this key, or set "
                    "length_profile = 'fixed')",
                    profile=self.length_profile,
                )
        if self.speculative != "none" and self.spec_acceptance_rate is None:
            fail(
                "spec_acceptance_rate",
                "needed with speculative = '{kind}'; allowed: 0 to 1 (the chance each drafted token is accepted)",
                kind=self.speculative,
            )
        if self.speculative == "draft" and self.spec_draft_model is None:
            fail("spec_draft_model", "needed with speculative = 'draft'; allowed: a catalog model key")
        if self.prefix_cache_host_share > 0 and self.kv_offload != "host":
            fail(
                "prefix_cache_host_share",
                "hits read from host memory need kv_offload = 'host'; allowed: 0 with kv_offload = 'none'",
            )
        if self.disaggregated and self.prefill_gpu_count is None:
            fail("prefill_gpu_count", "needed with disaggregated = true; allowed: 1 to the serving GPUs less one")
        if not self.disaggregated and (self.prefill_gpu_count is not None or self.prefill_tp is not None):
            fail(
                "prefill_gpu_count" if self.prefill_gpu_count is not None else "prefill_tp",
                "a prefill pool needs disaggregated = true; allowed: leave it out",
            )
        if isinstance(self.ep, int) and isinstance(self.tp, int) and self.tp % self.ep:
            fail("ep", "ep {ep} does not divide tp {tp}; allowed: a divisor of tp, or 'tp'", ep=self.ep, tp=self.tp)
        return self


def repriced(data: dict, old_gpu: str | None) -> dict:
    """`data` (a scenario as a dict) after its GPU type changed from `old_gpu`: a catalog rental price the new
    type does not have gives way to the new type's default (a price belongs to a GPU type). Used where the
    GPU is changed by an edit, a sweep or a goal search, never when a file is read (there it is an error)."""
    gpu = (data.get("cluster") or {}).get("gpu", Cluster().gpu)
    key = (data.get("facility") or {}).get("rental_price")
    if key is None or gpu == old_gpu or gpu not in load_catalog().prices:
        return data
    if key not in load_catalog().gpu_prices(gpu)[0].rental:
        data = data | {"facility": {k: v for k, v in data["facility"].items() if k != "rental_price"}}
    return data


# Keys that moved: a file that still uses one is told where it went.
MOVED_KEYS = {
    ("cooling", "pue"): "facility.pue (the site's PUE; the cooling kind scales it)",
    ("facility", "gpu_hour_usd"): "facility.usd_per_gpu_hour (or a catalog price: facility.rental_price)",
}


class Scenario(BaseModel):
    """A whole what-if scenario, as stored in a preset TOML file."""

    model_config = STRICT

    schema_version: Literal[1] = SCHEMA_VERSION
    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)] = "untitled"
    description: Annotated[str, Field(max_length=DESCRIPTION_MAX)] = ""
    cluster: Cluster = Cluster()
    network: Network = Network()
    storage: Storage = Storage()
    cooling: Cooling = Cooling()
    facility: Facility = Facility()
    data: Data = Data()
    reliability: Reliability = Reliability()
    # A section left out of a file means no such workload (a serving-only or training-only scenario).
    training: Training | None = None
    inference: Inference | None = None

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for (section, key), new in MOVED_KEYS.items():
                if isinstance(data.get(section), dict) and key in data[section]:
                    raise PydanticCustomError(
                        "moved_key",
                        "{old} is now {new}",
                        {"old": f"{section}.{key}", "new": new, "field": f"{section}.{key}"},
                    )
        return data

    @field_validator("schema_version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        if type(v) is not int:  # 1.0 and true compare equal to 1
            raise PydanticCustomError("schema_version_type", "not a whole number; allowed: 1")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _no_control(v)

    @field_validator("description")
    @classmethod
    def _description(cls, v: str) -> str:
        return _no_control(v, lines=True)

    @model_validator(mode="after")
    def _fits_hardware(self) -> Self:
        gpu = load_catalog().accelerators[self.cluster.gpu]
        bf16 = self.cluster.bf16_tflops or gpu.bf16_tflops
        if self.cluster.fp8_tflops is not None and self.cluster.fp8_tflops < bf16:
            # FP8 tensor cores run at least at the BF16 rate on every part; below it, attention (BF16) would
            # outrun the FP8 peak and the utilisation figures pass 100%.
            raise PydanticCustomError(
                "fp8_below_bf16",
                "cluster.fp8_tflops {fp8} is below the BF16 peak ({bf16} TFLOPS); allowed: at least {bf16}",
                {"fp8": f"{self.cluster.fp8_tflops:g}", "bf16": f"{bf16:g}", "field": "cluster.fp8_tflops"},
            )
        # The same rule from the other side: a BF16 peak raised past the part's own FP8 (or FP4) peak.
        low = [p for p in (None if self.cluster.fp8_tflops is not None else gpu.fp8_tflops, gpu.fp4_tflops) if p]
        if self.cluster.bf16_tflops is not None and low and self.cluster.bf16_tflops > min(low):
            raise PydanticCustomError(
                "bf16_above_fp8",
                "cluster.bf16_tflops {bf16} is above the part's {which} peak ({low} TFLOPS); allowed: at most "
                "{low}, or set cluster.fp8_tflops with it",
                {
                    "bf16": f"{self.cluster.bf16_tflops:g}",
                    "which": "FP8" if gpu.fp8_tflops and min(low) == gpu.fp8_tflops else "FP4",
                    "low": f"{min(low):g}",
                    "field": "cluster.bf16_tflops",
                },
            )
        checks = []
        if self.training is not None:
            checks.append(("training", self.training.precision, self.cluster.fp8_tflops))
        if self.inference is not None:
            checks.append(("inference", self.inference.precision, self.cluster.fp8_tflops))
        for section, precision, fp8_override in checks:
            if precision == "bf16" or gpu.peak_tflops(precision) or (precision == "fp8" and fp8_override):
                continue
            allowed = [p for p in ("bf16", "fp8", "fp4") if gpu.peak_tflops(p)]
            raise PydanticCustomError(
                "precision_unsupported",
                "{gpu} has no {precision} tensor cores; allowed: {allowed}",
                {
                    "gpu": gpu.name,
                    "precision": precision,
                    "allowed": ", ".join(allowed),
                    "field": f"{section}.precision",
                },
            )
        return self

    @model_validator(mode="after")
    def _preprocessing(self) -> Self:
        cat = load_catalog()
        device = cat.accelerators[self.cluster.gpu]
        model = self.training.model if self.training is not None else None
        samples = isinstance(model, str) and model in cat.workloads
        if self.data.preprocess == "gpu-decode":
            decodes = samples and model in cat.host.preprocessing
            if device.kind == "cpu" or not decodes:
                why = (
                    f"the compute device {self.cluster.gpu} is a CPU"
                    if device.kind == "cpu"
                    else "the training workload has no images to decode"
                )
                raise PydanticCustomError(
                    "gpu_decode_without_images",
                    "'gpu-decode' moves JPEG decoding to the GPUs, but {why}; allowed: 'cpu' or 'none'",
                    {"why": why, "field": "data.preprocess"},
                )
        workload = cat.workloads.get(model) if isinstance(model, str) else None
        if (
            workload is not None
            and device.kind == "cpu"
            and workload.train_gflop_per_sample is None
            and self.data.samples_per_gpu_s is None
        ):
            raise PydanticCustomError(
                "cpu_sample_workload",
                "{model} publishes no FLOPs per sample to time on the CPU {gpu}; allowed: a workload with "
                "train_gflop_per_sample (resnet50), a transformer, or data.samples_per_gpu_s",
                {"model": model, "gpu": self.cluster.gpu, "field": "training.model"},
            )
        return self

    @model_validator(mode="after")
    def _rental_price(self) -> Self:
        key = self.facility.rental_price
        if key is None:
            return self
        cat = load_catalog()
        if self.cluster.gpu not in cat.prices:
            raise PydanticCustomError(
                "unknown_price",
                "{gpu} has no catalog prices (a CPU socket); set facility.usd_per_gpu_hour instead",
                {"gpu": self.cluster.gpu, "field": "facility.rental_price"},
            )
        prices, via = cat.gpu_prices(self.cluster.gpu)
        if key not in prices.rental:
            raise PydanticCustomError(
                "unknown_price",
                "no rental price {key} for {gpu}{via}; choose one of: {choices} (or set facility.usd_per_gpu_hour)",
                {
                    "key": key,
                    "gpu": self.cluster.gpu,
                    "via": "" if via == self.cluster.gpu else f" (priced as {via})",
                    "choices": ", ".join(prices.rental),
                    "field": "facility.rental_price",
                },
            )
        return self

    @model_validator(mode="after")
    def _serving_gpus(self) -> Self:
        i = self.inference
        if i is not None and i.gpu_count is not None and i.gpu_count > self.cluster.gpu_count:
            raise PydanticCustomError(
                "too_many_serving_gpus",
                "inference.gpu_count {n} is more than the cluster's gpu_count {count}; allowed: 1 to {count}",
                {"n": i.gpu_count, "count": self.cluster.gpu_count, "field": "inference.gpu_count"},
            )
        if i is not None and i.disaggregated:
            serving = i.gpu_count or self.cluster.gpu_count
            assert i.prefill_gpu_count is not None  # Inference requires it when disaggregated
            if i.prefill_gpu_count >= serving:
                raise PydanticCustomError(
                    "prefill_pool_too_large",
                    "inference.prefill_gpu_count {n} leaves no decode GPUs of the {serving} serving; allowed: 1 to "
                    "{most}",
                    {
                        "n": i.prefill_gpu_count,
                        "serving": serving,
                        "most": serving - 1,
                        "field": "inference.prefill_gpu_count",
                    },
                )
        return self

    def edited(self, section: str | None, **changes: Any) -> Scenario:
        """A new, validated scenario with `changes` applied to `section` (None: top level)."""
        data = self.model_dump(exclude_none=True)
        if section is None:
            data |= changes
        else:
            data[section] = (data.get(section) or {}) | changes
        return Scenario.model_validate(repriced(data, self.cluster.gpu))
