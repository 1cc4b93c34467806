"""The regimes a serving case belongs to, for per-group calibration figures and error bands: the GPU
generation, dense or mixture-of-experts, and the serving features it uses (docs/model.md, "Calibration")."""

from __future__ import annotations

from ..catalog import Catalog
from ..scenario import Inference, Scenario

# In the order a case's feature label lists them.
FEATURES = ("speculative", "disaggregated", "prefix cache", "length spread")


def features(i: Inference) -> list[str]:
    """The serving features a workload uses (none: a plain colocated service of fixed lengths)."""
    used = {
        "speculative": i.speculative != "none",
        "disaggregated": i.disaggregated,
        "prefix cache": i.prefix_cache_hit_rate > 0,
        "length spread": i.length_profile != "fixed" or i.prompt_tokens_cv > 0 or i.output_tokens_cv > 0,
    }
    return [f for f in FEATURES if used[f]]


def serving_groups(scenario: Scenario, catalog: Catalog) -> dict[str, str]:
    """generation (the GPU's architecture), kind ("dense" / "MoE"), feature ("plain" or the features joined
    by "+") of a scenario with a serving workload."""
    i = scenario.inference
    if i is None:
        raise ValueError("serving_groups needs a scenario with an [inference] section")
    gpu = catalog.accelerators[scenario.cluster.gpu]
    model = catalog.models[i.model] if isinstance(i.model, str) else i.model
    return {
        "generation": catalog.efficiency[gpu.arch].name,
        "kind": "MoE" if getattr(model, "experts", 0) else "dense",
        "feature": "+".join(features(i)) or "plain",
    }
