"""Error bands: how far a figure may be off, from the cross-validated errors of its regime.

A regime is a GPU generation and the model's kind (dense or MoE). Its band is the 80th percentile of the
absolute leave-one-source-out errors of the cases held to the target in that regime; with fewer than
MIN_CASES cases it falls back to the generation, then to the kind across generations, widened by
THIN_FACTOR; a generation with no case at all borrows every constant and gets the 90th percentile of all
cases widened by BORROWED_FACTOR. The table is written to catalog/error_bands.toml by
`whatif validate --cross --write` and read by the engine as a column, so every output shows the same band.
"""

from __future__ import annotations

import numpy as np

from ..catalog import Catalog
from .fit import CrossValidation

PERCENTILE = 80.0
MIN_CASES = 5
THIN_FACTOR = 1.25
BORROWED_FACTOR = 1.5
KINDS = ("dense", "MoE")


def _band(errors: np.ndarray, q: float = PERCENTILE) -> float:
    e = np.abs(errors[np.isfinite(errors)])
    return float(np.percentile(e, q)) * 100.0 if len(e) else float("nan")


def bands(cv: CrossValidation, cat: Catalog) -> dict[str, dict[str, dict]]:
    """{generation key: {kind: {"band_pct", "cases", "basis"}}} for every generation in the catalog. Serving
    bands come from the throughput cases (a latency near saturation can miss by any factor; its band would say
    nothing about the throughput and capacity figures most decisions rest on)."""
    held = cv.held()
    if cv.workload == "inference":
        held = held & np.array([g.get("figure") == "throughput" for g in cv.groups])
    gen_name = {key: e.name for key, e in cat.efficiency.items()}
    gens = np.array([g["generation"] for g in cv.groups])
    kinds = np.array([g["kind"] for g in cv.groups])
    cross = cv.cross
    overall = _band(cross[held], 90.0) * BORROWED_FACTOR
    out: dict[str, dict[str, dict]] = {}
    for key, name in gen_name.items():
        out[key] = {}
        in_gen = held & (gens == name)
        for kind in KINDS:
            here = in_gen & (kinds == kind)
            if here.sum() >= MIN_CASES:
                entry = (_band(cross[here]), int(here.sum()), f"{name} {kind} cases")
            elif in_gen.sum() >= MIN_CASES:
                entry = (
                    _band(cross[in_gen]) * THIN_FACTOR,
                    int(in_gen.sum()),
                    f"all {name} cases, x {THIN_FACTOR} (fewer than {MIN_CASES} {kind} cases)",
                )
            elif in_gen.any():
                same_kind = held & (kinds == kind)
                entry = (
                    _band(cross[same_kind]) * THIN_FACTOR,
                    int(same_kind.sum()),
                    f"all {kind} cases, x {THIN_FACTOR} ({int(in_gen.sum())} {name} case(s) only)",
                )
            else:
                entry = (
                    overall,
                    int(held.sum()),
                    f"no {name} case: constants borrowed; 90th percentile of all cases x {BORROWED_FACTOR}",
                )
            out[key][kind] = {"band_pct": round(entry[0], 1), "cases": entry[1], "basis": entry[2]}
    return out


def bands_toml(table: dict[str, dict[str, dict]], workload: str) -> str:
    lines = [
        f"# Error bands of {workload} figures (percent, +/-): the {PERCENTILE:.0f}th percentile of the cross-validated",
        "# (leave-one-source-out) absolute errors of the regime's calibration cases. Written by",
        "# `whatif validate --cross --write`; engine/calibration/bands.py says how thin regimes fall back.",
        "",
    ]
    for gen, kinds in table.items():
        for kind, entry in kinds.items():
            lines.append(f"[{workload}.{gen}.{kind.lower()}]")
            lines.append(f"band_pct = {entry['band_pct']}")
            lines.append(f"cases = {entry['cases']}")
            lines.append(f'basis = "{entry["basis"]}"')
            lines.append("")
    return "\n".join(lines)
