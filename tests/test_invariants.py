"""Invariants every result keeps, over thousands of random valid scenarios spanning the whole schema
(tests/scenario_space.py; the invariants in tests/invariants.py): no NaN or infinity, no negative time,
throughput, memory, energy or cost, p99 >= p50, 0 <= MFU <= 1, every infeasible result with its reason.

Each example is a seed for a batch of scenarios evaluated together (one engine call, as a sweep is), drawn
the same way on every run (the "ci" hypothesis profile is derandomized; tests/conftest.py). A failure
prints each broken invariant with the scenario's data, ready to paste into a file."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from invariants import fuzz

# Draws per example: about 87% of draws are valid scenarios (the rest break a rule joining two keys), so
# 100 examples of 60 draws evaluate over 5,000.
BATCH = 60


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**31 - 1))
def test_invariants_hold_over_5000_random_scenarios(seed):
    evaluated: list[int] = []
    found = fuzz(BATCH, seed, batch=BATCH, evaluated=evaluated)
    _COUNT.append(sum(evaluated))
    assert not found, "\n".join(found[:5])


_COUNT: list[int] = []


@pytest.mark.slow
def test_the_invariant_run_evaluated_at_least_5000_scenarios():
    # Runs after the test above in file order; alone, it runs that test's examples itself.
    if not _COUNT:
        test_invariants_hold_over_5000_random_scenarios()
    assert sum(_COUNT) >= 5000


def test_invariants_hold_over_a_few_hundred_random_scenarios():
    """The quick tier's share: the same check on fewer scenarios (other seeds than the slow run's)."""
    evaluated: list[int] = []
    found = fuzz(300, 2024, batch=100, evaluated=evaluated)
    assert sum(evaluated) >= 240
    assert not found, "\n".join(found[:5])
