"""Serving: one replica's physics (`physics`), its latency under load (`queueing`), and the plan search
and results for a fleet of replicas (`fleet`). Formulas: docs/model.md ("Serving")."""

from .fleet import BOTTLENECKS, REASONS, serve

__all__ = ["BOTTLENECKS", "REASONS", "serve"]
