"""Shared test configuration: float64 everywhere and reproducible PRNG keys.

Strict dtype promotion (the diffrax/optimistix habit, see STYLE.md) is on: an implicit
int/float mix in the engine fails the tests.
"""

import itertools

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def getkey():
    """Return a function that hands out a fresh `jax.random` key on every call.

    The sequence is fixed per test (seeded), so statistical tests are reproducible: they
    either pass or fail deterministically, and a failure can be rerun and inspected.
    """
    base = jax.random.PRNGKey(5678)
    counter = itertools.count()

    def _getkey():
        return jax.random.fold_in(base, next(counter))

    return _getkey


@pytest.fixture
def rng():
    """A seeded NumPy generator (for random covariances and reference-side sampling)."""
    return np.random.default_rng(20240607)


@pytest.fixture(scope="session")
def spurious_minimum():
    """The K = 3, M = 2 (T = I) spurious local minimum of the eta -> 0 flow (eta = 0.1),
    found once per session by a multi-start search (the search compiles two root finders)."""
    import plateaux as px
    from plateaux import analysis as pa

    flow = px.OnlineSGD(0.1, eta_squared=False)
    template = px.OrderParams(0.5 * np.eye(3), np.zeros((3, 2)), np.eye(2))
    starts = pa.random_states(template, 64, jax.random.key(0), scale=0.8)
    found = [p for p in pa.search_fixed_points(flow, starts) if p.kind == "stable" and p.eg > 1e-4]
    assert found, "K = 3, M = 2 should have a spurious (non-zero error) local minimum"
    return found[0]
