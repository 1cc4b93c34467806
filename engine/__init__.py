"""whatif's engine: a pure, UI-free analytical model of AI clusters.

    from whatif.engine import Scenario, resolve, evaluate
    results = evaluate(resolve([Scenario()]))

`resolve` turns validated scenarios into a polars frame of numbers; `evaluate` turns that frame into a frame
of results with no Python loop over scenarios. Every formula and constant is documented in docs/model.md.
"""

from .catalog import Catalog, load_catalog
from .errors import FieldIssue, ScenarioError
from .evaluate import evaluate
from .resolve import resolve
from .scenario import Scenario

__all__ = ["Catalog", "FieldIssue", "Scenario", "ScenarioError", "evaluate", "load_catalog", "resolve"]
