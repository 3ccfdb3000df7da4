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
