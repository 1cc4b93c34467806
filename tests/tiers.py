"""How many examples each tier draws. The whole suite (`pytest`, the README's test command and CI) draws a
property test's full count; the quick tier (`pytest -m "not slow"`, run before every commit) an eighth of
it, at least five, so it stays under 30 s. tests/conftest.py sets QUICK from the mark expression before the test
modules are imported."""

QUICK = False


def examples(full: int) -> int:
    return max(5, full // 8) if QUICK else full


def share(values, every: int = 4) -> list:
    """A parametrized list's quick-tier share: every `every`-th value runs in both tiers, the others carry
    the slow mark (the whole suite runs them all)."""
    import pytest

    return [v if i % every == 0 else pytest.param(v, marks=pytest.mark.slow) for i, v in enumerate(values)]
