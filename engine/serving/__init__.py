"""Serving: one replica's physics (`physics`), its latency under load (`queueing`), and the plan search
and results for a fleet of replicas (`fleet`). Formulas: docs/model.md ("Serving")."""

from .fleet import BOTTLENECKS, MEMORY_CODE, OVERLOAD_CODE, REASONS, serve

__all__ = ["BOTTLENECKS", "MEMORY_CODE", "OVERLOAD_CODE", "REASONS", "serve"]
