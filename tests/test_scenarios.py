"""The three scenario constructors."""

import jax
import numpy as np
import pytest

import plateaux as px
from plateaux import scenarios


def test_regular():
    s = scenarios.regular(3, key=jax.random.key(1))
    assert (s.K, s.M, s.name) == (3, 3, "regular")
    np.testing.assert_allclose(s.params0.T, np.eye(3))
    px.check_order_params(s.params0)
    assert np.all(np.asarray(s.params0.R) <= 1e-12)  # classic start


def test_near_singular_correlation_and_small_weight():
    s = scenarios.near_singular(2, c=0.95)
    np.testing.assert_allclose(s.params0.T, [[1, 0.95], [0.95, 1]])
    assert "overlap" in s.singular_region
    s = scenarios.near_singular(2, 3, small_weight=0.05)
    np.testing.assert_allclose(s.params0.w, [1, 1, 0.05])
    assert (s.K, s.M) == (2, 3) and "elimination" in s.singular_region
    with pytest.raises(ValueError, match="c < 1"):
        scenarios.near_singular(2, c=1.0)
    with pytest.raises(ValueError, match="small_weight"):
        scenarios.near_singular(2, small_weight=0.0)


def test_on_singular_kinds():
    s = scenarios.on_singular(3, 2, c=0.9)
    assert (s.K, s.M) == (3, 2)
    s = scenarios.on_singular(2, kind="identical")
    np.testing.assert_allclose(s.params0.T, np.ones((2, 2)))
    s = scenarios.on_singular(2, kind="zero_weight")
    np.testing.assert_allclose(s.params0.w, [1, 0])
    with pytest.raises(ValueError, match="K > M"):
        scenarios.on_singular(2, 2)
    with pytest.raises(ValueError, match="unknown on-singular kind 'sideways'"):
        scenarios.on_singular(3, 2, kind="sideways")
