"""The editor's fields, and the one place where what the user typed becomes a validated Scenario.

The explorer never edits a scenario in place. The editor keeps the raw text of every field; `build` lays
those values over the scenario that was opened (so keys the editor does not show, such as latency
overrides or a custom model shape, survive) and validates the whole thing with pydantic. It returns either
a new frozen `Scenario` or the problems, each keyed by `section.key` like the file format, with a message
that says what is allowed. Nothing here imports Textual: the rules are tested without a screen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError
from whatif.engine.catalog import load_catalog
from whatif.engine.errors import FieldIssue, from_validation_error
from whatif.engine.scenario import Inference, Scenario, Training, repriced

from . import numbers

# int / float: required; auto_*: empty means "auto" (searched or chosen by the engine); optional_*: empty
# leaves the key out (e.g. no latency limit); override: empty or the catalog value means the catalog's.
Kind = Literal[
    "choice", "int", "float", "override", "auto_int", "auto_float", "optional_int", "optional_float", "toggle"
]

# A choice whose value means "leave the key out" (the scenario's own default applies).
UNSET = "__unset__"
# A model choice meaning "the explicit model shape from the opened file".
CUSTOM = "__custom__"

Raw = dict[str, Any]


@dataclass(frozen=True)
class FieldSpec:
    key: str  # "cluster.gpu_count"; "training" alone is the workload's on/off switch
    label: str
    kind: Kind
    unit: str = ""
    help: str = ""
    choices: Callable[[Raw], list[tuple[str, str]]] | None = None
    # For an override: the catalog value that applies when the field holds no override.
    default: Callable[[Raw], float | None] | None = None
    # Changing this other field re-fills this one with its catalog default.
    follows: str | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    def options(self, raw: Raw) -> list[tuple[str, str]]:
        """A choice field's options in the editor's current state (none for other kinds)."""
        return self.choices(raw) if self.choices is not None else []

    def catalog_default(self, raw: Raw) -> float | None:
        """An override's catalog value in the editor's current state (None: it has none)."""
        return self.default(raw) if self.default is not None else None

    @property
    def workload(self) -> str | None:
        return self.section if self.section in ("training", "inference") else None


@dataclass(frozen=True)
class Pane:
    id: str
    title: str
    fields: tuple[FieldSpec, ...] = field(default_factory=tuple)


def _catalog_choices(section: str, kind: str | None = None) -> Callable[[Raw], list[tuple[str, str]]]:
    def choices(raw: Raw) -> list[tuple[str, str]]:
        entries = getattr(load_catalog(), section)
        return [(k, k) for k, e in entries.items() if kind is None or getattr(e, "kind", None) == kind]

    return choices


def _scale_up_choices(raw: Raw) -> list[tuple[str, str]]:
    return [(own_scale_up_label(raw.get("cluster.gpu", "")), UNSET)] + _catalog_choices("fabrics", "scale-up")(raw)


def _host_cpu_choices(raw: Raw) -> list[tuple[str, str]]:
    return [(own_host_label(raw.get("cluster.gpu", "")), UNSET)] + [(k, k) for k in load_catalog().host.cpus]


def own_host_label(gpu_key: str) -> str:
    """The 'leave it to the node type' choice, named by the CPU the catalog gives that GPU ('node: xeon-8480c')."""
    cat = load_catalog()
    gpu = cat.accelerators.get(gpu_key)
    if gpu is not None and gpu.kind == "cpu":
        return "itself"
    return f"node: {cat.platform(gpu_key).host_cpu}"


def own_scale_up_label(gpu_key: str) -> str:
    """The 'leave it to the GPU' choice, named by the fabric the catalog gives that GPU ('own: nvlink3')."""
    gpu = load_catalog().accelerators.get(gpu_key)
    return f"own: {gpu.scale_up}" if gpu else "the GPU's own"


def _model_choices(section: str) -> Callable[[Raw], list[tuple[str, str]]]:
    def choices(raw: Raw) -> list[tuple[str, str]]:
        out = [(k, k) for k in load_catalog().models]
        custom = raw.get(f"{section}.__custom_name__")
        if custom:
            out.insert(0, (f"custom: {custom}"[:24], CUSTOM))
        return out

    return choices


def _fixed(*values: str) -> Callable[[Raw], list[tuple[str, str]]]:
    return lambda raw: [(v, v) for v in values]


def _gpu_figure(attr: str) -> Callable[[Raw], float | None]:
    def default(raw: Raw) -> float | None:
        gpu = load_catalog().accelerators.get(raw.get("cluster.gpu", ""))
        return getattr(gpu, attr) if gpu else None

    return default


def _cooling_figure(attr: str) -> Callable[[Raw], float | None]:
    def default(raw: Raw) -> float | None:
        kind = load_catalog().cooling.get(raw.get("cooling.kind", ""))
        return getattr(kind, attr) if kind else None

    return default


def _site_pue(raw: Raw) -> float | None:
    site = load_catalog().sites.get(raw.get("facility.site", ""))
    return site.pue if site else None


def _rental_price(raw: Raw) -> float | None:
    """The catalog price the scenario rents at: its facility.rental_price where the GPU type has it, else
    the type's default (as scenario.repriced does when the GPU changes)."""
    cat = load_catalog()
    if raw.get("cluster.gpu", "") not in cat.prices:
        return None
    prices, _ = cat.gpu_prices(raw["cluster.gpu"])
    key = raw.get("facility.__rental_price__")
    return prices.rental_at(key)[1].usd_per_gpu_hour


def _fs_read(raw: Raw) -> float | None:
    fs = load_catalog().shared_fs.get(raw.get("storage.shared_fs", ""))
    return fs.read_gb_s if fs else None


PANES: tuple[Pane, ...] = (
    Pane(
        "cluster",
        "Cluster",
        (
            FieldSpec(
                "cluster.gpu",
                "GPU type",
                "choice",
                help="accelerator from the catalog",
                choices=_catalog_choices("accelerators"),
            ),
            FieldSpec("cluster.gpu_count", "GPU count", "int", "GPUs", "GPUs in the cluster", minimum=1),
            FieldSpec("cluster.gpus_per_node", "GPUs/node", "int", "", "GPUs in one server", minimum=1),
            FieldSpec("cluster.nodes_per_rack", "nodes/rack", "int", "", "servers in one rack", minimum=1),
            FieldSpec(
                "cluster.hbm_gb",
                "GPU memory",
                "override",
                "GB",
                "HBM per GPU; catalog value unless changed",
                default=_gpu_figure("hbm_gb"),
                follows="cluster.gpu",
            ),
            FieldSpec(
                "cluster.bf16_tflops",
                "BF16 peak",
                "override",
                "TFLOP/s",
                "dense BF16 peak per GPU",
                default=_gpu_figure("bf16_tflops"),
                follows="cluster.gpu",
            ),
            FieldSpec(
                "cluster.fp8_tflops",
                "FP8 peak",
                "override",
                "TFLOP/s",
                "dense FP8 peak per GPU (empty: none)",
                default=_gpu_figure("fp8_tflops"),
                follows="cluster.gpu",
            ),
            FieldSpec(
                "cluster.power_cap_w",
                "power cap",
                "override",
                "W",
                "board power limit per GPU (empty: its TDP); slows compute-bound kernels",
                default=_gpu_figure("tdp_w"),
                follows="cluster.gpu",
                minimum=1,
                maximum=5000,
            ),
            FieldSpec("cluster.host_memory_gb", "host memory", "float", "GB", "CPU memory per node", minimum=0),
            FieldSpec(
                "cluster.host_cpu",
                "host CPU",
                "choice",
                help="CPU of each node (default: the GPU's node type)",
                choices=_host_cpu_choices,
            ),
            FieldSpec(
                "cluster.host_cpus_per_node",
                "CPUs/node",
                "optional_int",
                "",
                "host CPU sockets per node (empty: the node type's)",
                minimum=1,
                maximum=64,
            ),
        ),
    ),
    Pane(
        "network",
        "Network",
        (
            FieldSpec(
                "network.scale_up",
                "scale-up",
                "choice",
                help="fabric inside a node (NVLink...)",
                choices=_scale_up_choices,
            ),
            FieldSpec(
                "network.scale_out",
                "scale-out",
                "choice",
                help="fabric between nodes",
                choices=_catalog_choices("fabrics", "scale-out"),
            ),
            FieldSpec("network.nics_per_node", "NICs/node", "int", "", "scale-out ports per node", minimum=1),
        ),
    ),
    Pane(
        "storage",
        "Storage",
        (
            FieldSpec("storage.nvme", "NVMe drive", "choice", choices=_catalog_choices("nvme")),
            FieldSpec("storage.nvme_drives_per_node", "drives/node", "int", "", "NVMe drives per node", minimum=0),
            FieldSpec("storage.shared_fs", "shared FS", "choice", choices=_catalog_choices("shared_fs")),
            FieldSpec(
                "storage.shared_fs_read_gb_s",
                "FS read",
                "override",
                "GB/s",
                "shared file system read bandwidth",
                default=_fs_read,
                follows="storage.shared_fs",
            ),
            FieldSpec("storage.checkpoint_mode", "checkpoint", "choice", choices=_fixed("async", "sync", "none")),
            FieldSpec(
                "storage.checkpoint_interval_min",
                "ckpt every",
                "auto_float",
                "min",
                "minutes between checkpoints (empty: auto)",
            ),
            FieldSpec(
                "reliability.profile",
                "failures",
                "choice",
                help="failure-rate profile of a published fleet (whatif catalog failure-profiles)",
                choices=_catalog_choices("failure_profiles"),
            ),
        ),
    ),
    Pane(
        "facility",
        "Cooling & facility",
        (
            FieldSpec("cooling.kind", "cooling", "choice", choices=_catalog_choices("cooling")),
            FieldSpec(
                "cooling.rack_limit_kw",
                "rack limit",
                "override",
                "kW",
                "power one rack can take",
                default=_cooling_figure("rack_limit_kw"),
                follows="cooling.kind",
            ),
            FieldSpec("facility.site", "site", "choice", choices=_catalog_choices("sites")),
            FieldSpec(
                "facility.pue",
                "PUE",
                "override",
                "",
                "the site's facility power / IT power (the cooling kind scales it)",
                default=_site_pue,
                follows="facility.site",
            ),
            FieldSpec("facility.electricity_usd_per_kwh", "electricity", "float", "USD/kWh", minimum=0),
            FieldSpec("facility.grid_gco2_per_kwh", "grid carbon", "float", "gCO2/kWh", minimum=0),
            FieldSpec("facility.cost_model", "cost model", "choice", choices=_fixed("rental", "owned")),
            FieldSpec(
                "facility.usd_per_gpu_hour",
                "GPU rental",
                "override",
                "USD/GPU-h",
                "rental price (empty: the GPU's catalog price)",
                default=_rental_price,
                follows="cluster.gpu",
            ),
        ),
    ),
    Pane(
        "training",
        "Training workload",
        (
            FieldSpec("training", "train a model", "toggle"),
            FieldSpec("training.model", "model", "choice", choices=_model_choices("training")),
            FieldSpec("training.train_tokens", "tokens", "float", "tokens", "tokens to train on, e.g. 15T", minimum=0),
            FieldSpec("training.seq_len_tokens", "sequence", "int", "tokens", minimum=1),
            FieldSpec("training.global_batch_seqs", "global batch", "int", "seqs", minimum=1),
            FieldSpec("training.precision", "precision", "choice", choices=_fixed("bf16", "fp8")),
            FieldSpec(
                "training.parallelism.tp",
                "TP",
                "auto_int",
                "",
                "tensor-parallel size (empty: searched)",
                minimum=1,
                maximum=512,
            ),
            FieldSpec(
                "training.parallelism.pp",
                "PP",
                "auto_int",
                "",
                "pipeline stages (empty: searched)",
                minimum=1,
                maximum=512,
            ),
            FieldSpec(
                "training.parallelism.dp",
                "DP",
                "auto_int",
                "",
                "data-parallel replicas (empty: searched)",
                minimum=1,
                maximum=1_048_576,
            ),
            FieldSpec(
                "training.parallelism.microbatch",
                "micro-batch",
                "auto_int",
                "seqs",
                "(empty: searched)",
                minimum=1,
                maximum=4096,
            ),
            FieldSpec(
                "training.parallelism.zero", "ZeRO stage", "auto_int", "", "0-3 (empty: searched)", minimum=0, maximum=3
            ),
            FieldSpec("training.recompute", "recompute", "choice", choices=_fixed("auto", "none", "selective", "full")),
            FieldSpec(
                "data.preprocess",
                "input prep",
                "choice",
                help="where samples are decoded (none: stored ready to use)",
                choices=_fixed("cpu", "gpu-decode", "none"),
            ),
        ),
    ),
    Pane(
        "inference",
        "Serving workload",
        (
            FieldSpec("inference", "serve a model", "toggle"),
            FieldSpec("inference.model", "model", "choice", choices=_model_choices("inference")),
            FieldSpec("inference.precision", "precision", "choice", choices=_fixed("fp8", "bf16", "fp4")),
            FieldSpec("inference.prompt_tokens", "prompt", "int", "tokens", minimum=1),
            FieldSpec("inference.output_tokens", "output", "int", "tokens", minimum=1),
            FieldSpec("inference.concurrency", "concurrency", "int", "requests", minimum=1),
            FieldSpec("inference.request_rate_per_s", "request rate", "float", "req/s", minimum=0),
            FieldSpec(
                "inference.tp", "TP", "auto_int", "", "GPUs per replica (empty: searched)", minimum=1, maximum=512
            ),
            FieldSpec(
                "inference.gpu_count",
                "serving GPUs",
                "optional_int",
                "GPUs",
                "GPUs that serve (empty: every GPU of the cluster)",
                minimum=1,
                maximum=1_048_576,
            ),
            FieldSpec(
                "inference.ttft_p99_limit_ms",
                "TTFT limit",
                "optional_float",
                "ms p99",
                "time-to-first-token limit, p99 (empty: none)",
                minimum=0,
            ),
            FieldSpec(
                "inference.tpot_p99_limit_ms",
                "TPOT limit",
                "optional_float",
                "ms p99",
                "time-per-output-token limit, p99 (empty: none)",
                minimum=0,
            ),
        ),
    ),
)

FIELDS: dict[str, FieldSpec] = {f.key: f for pane in PANES for f in pane.fields}
PARALLEL_KEYS = ("tp", "pp", "dp", "microbatch", "zero")


def show_number(value: Any) -> str:
    """A number as the user would type it, in engineering form: 1024, 0.0862, 15 T; '' for None."""
    return numbers.show(value)


def _get(data: dict, dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def form_values(scenario: Scenario) -> Raw:
    """What each field shows for `scenario`: text for inputs, values for choices, bools for switches.

    An absent workload is shown with the default workload's values and its switch off, so switching it on
    starts from something sensible."""
    data = scenario.model_dump(exclude_none=True)
    shown = dict(data)
    for section, model in (("training", Training), ("inference", Inference)):
        if section not in shown:
            shown[section] = model().model_dump(exclude_none=True)
    raw: Raw = {}
    for section in ("training", "inference"):
        raw[section] = section in data
        model = shown[section].get("model")
        if isinstance(model, dict):
            raw[f"{section}.__custom_name__"] = model.get("name", "custom model")
    raw["facility.__rental_price__"] = scenario.facility.rental_price
    for spec in FIELDS.values():
        if spec.kind == "toggle":
            continue
        value = _get(shown, spec.key)
        if spec.key.startswith("training.parallelism."):
            plan = shown["training"].get("parallelism")
            value = plan.get(spec.key.rsplit(".", 1)[1]) if isinstance(plan, dict) else None
        if spec.kind == "choice":
            if spec.key.endswith(".model") and isinstance(value, dict):
                raw[spec.key] = CUSTOM
            else:
                raw[spec.key] = UNSET if value is None else str(value)
        elif spec.kind == "override":
            raw[spec.key] = show_number(value if value is not None else spec.catalog_default(raw))
        elif value == "auto":
            raw[spec.key] = ""
        else:
            raw[spec.key] = show_number(value)
    return raw


def unit_of(spec: FieldSpec, raw: Raw) -> str:
    """A field's unit for the values shown: a CPU chosen as the compute device is counted in sockets."""
    if spec.key == "cluster.gpu_count":
        gpu = load_catalog().accelerators.get(raw.get("cluster.gpu", ""))
        if gpu is not None and gpu.kind == "cpu":
            return "sockets"
    return spec.unit


def refill_followers(raw: Raw, changed: str) -> Raw:
    """Fields whose catalog default depends on `changed` (e.g. GPU memory on the GPU type), re-filled."""
    updated = dict(raw)
    for spec in FIELDS.values():
        if spec.follows == changed and spec.default is not None:
            updated[spec.key] = show_number(spec.catalog_default(updated))
    return updated


def is_override(spec: FieldSpec, raw: Raw) -> bool:
    """Whether an override field holds something other than its catalog default."""
    if spec.kind != "override":
        return False
    text = str(raw.get(spec.key, "")).strip()
    if not text:
        return False
    try:
        value = numbers.parse(text, spec.unit)
    except numbers.NumberError:
        return True
    default = spec.catalog_default(raw)
    return default is None or not math.isclose(value, default, rel_tol=1e-9)


def _describe(spec: FieldSpec) -> str:
    """What a field takes, for the message under it."""
    if spec.kind in ("int", "auto_int", "optional_int"):
        if spec.minimum is not None and spec.maximum is not None:
            bounds = f" from {spec.minimum:g} to {numbers.show(spec.maximum)}"
        else:
            bounds = f" of at least {spec.minimum:g}" if spec.minimum is not None else ""
        text = f"a whole number{bounds} (2k = 2000)"
    else:
        text = f"a number {numbers.EXAMPLES}"
    empty = {"auto_int": "auto", "auto_float": "auto", "override": "the catalog value", "optional_int": "none"}
    empty["optional_float"] = "none"
    if spec.key == "inference.gpu_count":
        empty["optional_int"] = "every GPU of the cluster"
    if spec.key == "cluster.host_cpus_per_node":
        empty["optional_int"] = "the node type's"
    return text + (f" (empty: {empty[spec.kind]})" if spec.kind in empty else "")


def parse_field(spec: FieldSpec, text: Any, raw: Raw) -> tuple[Any, str | None]:
    """(value for the scenario, None) or (None, message). None as a value means 'leave the key out'.

    Numbers go through `numbers.parse`: 15T, 2k, 1.5e13 and 15_000 are read; anything else is a message,
    never a different number."""
    if spec.kind == "choice":
        return (None if text in (UNSET, None) else text), None
    if spec.kind == "toggle":
        return bool(text), None
    s = str(text or "").strip()
    if not s:
        if spec.kind in ("int", "float"):
            return None, f"empty; allowed: {_describe(spec)}"
        if spec.kind == "auto_float" or (spec.kind == "auto_int" and not spec.key.startswith("training.par")):
            return "auto", None
        return None, None
    try:
        number = numbers.parse(s, spec.unit)
    except numbers.NumberError as exc:
        return None, f"{exc}; allowed: {_describe(spec)}" if "allowed" not in str(exc) else str(exc)
    if spec.kind in ("int", "auto_int", "optional_int"):
        if not number.is_integer():
            return None, f"not a whole number; allowed: {_describe(spec)}"
        number = int(number)
        low = spec.minimum if spec.minimum is not None else -math.inf
        high = spec.maximum if spec.maximum is not None else math.inf
        if spec.kind in ("auto_int", "optional_int") and not (low <= number <= high):
            return None, f"out of range; allowed: {_describe(spec)}"
    if spec.kind == "optional_float" and spec.minimum is not None and number <= spec.minimum:
        return None, f"out of range; allowed: more than {spec.minimum:g} (empty: none)"
    if spec.kind == "override" and not is_override(spec, raw | {spec.key: s}):
        return None, None
    return number, None


def _set(data: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


WORKLOADS = ("training", "inference")


def scope_of(key: str) -> str:
    """Which figures a problem at `key` leaves without a valid input: 'training', 'inference' or 'all'
    (a cluster, network, storage or facility problem affects both workloads)."""
    section = key.split(".", 1)[0]
    return section if section in WORKLOADS else "all"


@dataclass(frozen=True)
class Built:
    """What the fields describe: the whole valid scenario, or the problems found. When every problem is in
    one workload, `usable` is the scenario without that workload (the other's figures stay live) and
    `stale` names the workload whose figures are kept from before."""

    scenario: Scenario | None
    issues: tuple[FieldIssue, ...] = ()
    usable: Scenario | None = None
    stale: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return self.scenario is not None


def _validate(data: dict) -> tuple[Scenario | None, list[FieldIssue]]:
    try:
        return Scenario.model_validate(data), []
    except ValidationError as exc:
        found = from_validation_error(exc, Scenario).issues
    # A `"auto" | table` key reports the failed "auto" branch too; the table's own problem says more.
    return None, [
        i
        for i in found
        if not (i.message.startswith("not one of the choices") and any(j.key.startswith(i.key + ".") for j in found))
    ]


def build(base: Scenario, raw: Raw) -> Built:
    """The scenario the fields describe, laid over `base`, validated; or every problem found (and, when
    they all sit in one workload, the scenario without it)."""
    data = base.model_dump(exclude_none=True)
    issues: list[FieldIssue] = []
    for section, model in (("training", Training), ("inference", Inference)):
        if not raw.get(section, section in data):
            data.pop(section, None)
            continue
        data.setdefault(section, model().model_dump(exclude_none=True))
    plan: dict[str, Any] = {}
    base_plan = data.get("training", {}).get("parallelism")
    for spec in FIELDS.values():
        if spec.kind == "toggle" or spec.key not in raw:
            continue
        if spec.workload and spec.workload not in data:
            continue
        value, problem = parse_field(spec, raw[spec.key], raw)
        if problem:
            issues.append(FieldIssue(spec.key, raw[spec.key], problem))
            continue
        if spec.key.startswith("training.parallelism."):
            plan[spec.key.rsplit(".", 1)[1]] = value
            continue
        if spec.key.endswith(".model") and value == CUSTOM:
            continue  # the opened file's explicit shape stays
        _set(data, spec.key, value)
    if "training" in data and not any(k in issues_keys(issues) for k in FIELDS if "parallelism" in k):
        kept = {k: v for k, v in base_plan.items() if k not in PARALLEL_KEYS} if isinstance(base_plan, dict) else {}
        chosen = {k: v for k, v in plan.items() if v is not None} | kept
        data["training"]["parallelism"] = chosen or "auto"
    data = repriced(data, base.cluster.gpu)
    scenario, found = _validate(data)
    issues.extend(found)
    if not issues:
        return Built(scenario)
    scopes = {scope_of(i.key) for i in issues}
    if "all" in scopes or len(scopes) > 1:
        return Built(None, tuple(issues), None, frozenset(WORKLOADS))
    (broken,) = scopes
    rest = {k: v for k, v in data.items() if k != broken}
    usable, more = _validate(rest)
    if usable is None:
        return Built(None, tuple(issues + more), None, frozenset(WORKLOADS))
    return Built(None, tuple(issues), usable, frozenset(scopes))


def issues_keys(issues: list[FieldIssue] | tuple[FieldIssue, ...]) -> set[str]:
    return {i.key for i in issues}


def field_for_issue(key: str) -> str | None:
    """The editor field that should show an issue with `key` (None: no such field; show it in general)."""
    if key in FIELDS:
        return key
    if key == "training.parallelism" or key.startswith("training.parallelism."):
        return "training.parallelism.tp"
    for candidate in FIELDS:
        if key.startswith(candidate + "."):
            return candidate
    return None


PANE_OF: dict[str, Pane] = {f.key: pane for pane in PANES for f in pane.fields}


def label_for(key: str) -> str:
    spec = FIELDS.get(key)
    return f"{spec.label}" if spec else key


def where(key: str) -> str:
    """'Serving workload > precision': the pane and the field a key is edited in (the key itself when the
    editor has no such field)."""
    target = field_for_issue(key)
    if target is None:
        return key
    return f"{PANE_OF[target].title} > {FIELDS[target].label}"


def _shown(spec: FieldSpec, value: Any, raw: Raw) -> str:
    """A field's value for a sentence: the choice's label, the number grouped with its unit."""
    if spec.kind == "toggle":
        return "on" if value else "off"
    if spec.kind == "choice":
        if value == UNSET:
            if spec.key == "cluster.host_cpu":
                return own_host_label(raw.get("cluster.gpu", ""))
            return own_scale_up_label(raw.get("cluster.gpu", "")) if spec.key == "network.scale_up" else "default"
        if value == CUSTOM:
            return "custom model"
        return str(value)
    text = str(value).strip()
    if not text:
        return "auto" if spec.kind.startswith("auto") else "none"
    try:
        number = numbers.parse(text, spec.unit)
    except numbers.NumberError:
        return text
    shown = numbers.grouped(number) if abs(number) < 1e6 else numbers.show(number)
    return f"{shown} {spec.unit}".rstrip() if spec.unit else shown


_SHARED_LABELS = {f.label for f in FIELDS.values() if f.workload == "training"} & {
    f.label for f in FIELDS.values() if f.workload == "inference"
}


def _sentence_label(spec: FieldSpec) -> str:
    """A label that names its workload where both have one like it ('serving precision')."""
    if spec.label in _SHARED_LABELS:
        return ("training " if spec.workload == "training" else "serving ") + spec.label
    return spec.label


def changes(base: Scenario, current: Scenario) -> list[str]:
    """What differs between two scenarios, field by field, in the editor's order and words:
    ['1,024 -> 2,048 GPUs', 'GPU type h100-sxm -> a100-sxm-80gb']. Keys the editor does not show are
    summed up as one entry."""
    a, b = form_values(base), form_values(current)
    out = []
    for spec in FIELDS.values():
        if spec.workload and not (a.get(spec.workload) and b.get(spec.workload)) and spec.kind != "toggle":
            continue
        old, new = a.get(spec.key), b.get(spec.key)
        if old == new:
            continue
        if spec.kind == "override" and not (is_override(spec, a) or is_override(spec, b)):
            continue  # both the catalog's value for their GPU (or cooling, or file system)
        before, after = _shown(spec, old, a), _shown(spec, new, b)
        if before == after:
            continue
        if spec.key == "cluster.gpu_count":  # the unit says what it is: "1,024 -> 2,048 GPUs"
            out.append(f"{before[: -len(spec.unit) - 1]} -> {after}")
        elif spec.unit and before.endswith(" " + spec.unit) and after.endswith(" " + spec.unit):
            out.append(f"{_sentence_label(spec)} {before[: -len(spec.unit) - 1]} -> {after}")
        elif spec.kind == "toggle":
            out.append(f"{spec.label}: {after}")
        else:
            out.append(f"{_sentence_label(spec)} {before} -> {after}")
    if not out and base.model_dump(exclude={"name", "description"}) != current.model_dump(
        exclude={"name", "description"}
    ):
        out.append("keys not in the editor")
    return out
