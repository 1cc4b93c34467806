"""Training: step time, FLOPs and memory of a transformer under a parallel plan, and the plan search.

`plans.expand` turns scenarios into candidate plans (rows), `step.step` times each candidate, and
`plans.select` keeps the fastest one that fits per scenario. Formulas: docs/model.md ("Training step").
"""

from . import plans
from .step import step

__all__ = ["plans", "step"]
