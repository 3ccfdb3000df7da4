"""Generalization error: Monte Carlo with real networks, NumPy reference, published values."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plateaux as px
from plateaux import reference

from .helpers import (
    published_plateau_error,
    random_order_params,
    stack,
    symmetric_fixed_point,
    tree_allclose,
)

# Jitted once per shape (op-by-op dispatch would compile every primitive per shape). `noise`
# goes in as an array so that different values share one compilation.
_eg = eqx.filter_jit(lambda params, noise=jnp.array(0.0): px.generalization_error(params, noise=noise))


def _reference_eg(p):
    return reference.generalization_error(*(np.asarray(x) for x in (p.Q, p.R, p.T, p.v, p.w)))


def test_networks_realise_the_order_parameters(rng, getkey):
    params = random_order_params(rng, 3, 2)
    student, teacher = px.networks_from_order_params(params, 40, getkey())
    assert student.weights.shape == (3, 40) and teacher.weights.shape == (2, 40)
    # Exact construction up to float64 round-off of O(1) products (~1e-15); 1e-12 is generous.
    assert tree_allclose(px.order_parameters(student, teacher), params, atol=1e-12)


def test_matches_monte_carlo_over_inputs(rng, getkey):
    """eps_g = <(sigma - tau)^2>/2 estimated with actual networks on Gaussian inputs.

    400k inputs; the test passes within 4 standard errors (SE ~ 1e-3 relative). A fixed seed
    makes it deterministic; 4 SE keeps a chance failure negligible (~6e-5). Also the error
    against *noisy* labels tau + s zeta, whose mean must be eps_g + s^2/2.
    """
    params = random_order_params(rng, 3, 2)
    s = 0.4
    student, teacher = px.networks_from_order_params(params, 40, getkey())
    n_chunks, chunk = 4, 100_000
    clean, noisy = [], []
    for _ in range(n_chunks):
        xi = jax.random.normal(getkey(), (chunk, 40))
        zeta = jax.random.normal(getkey(), (chunk,))
        diff = student(xi) - teacher(xi)
        clean.append(0.5 * diff**2)
        noisy.append(0.5 * (diff - s * zeta) ** 2)
    for samples, want in (
        (jnp.concatenate(clean), _eg(params)),
        (jnp.concatenate(noisy), _eg(params, jnp.array(s))),
    ):
        samples = np.asarray(samples)
        mean, se = samples.mean(), samples.std(ddof=1) / np.sqrt(samples.size)
        assert abs(mean - float(want)) < 4 * se, (mean, float(want), se)
    # The noisy-label target differs from the clean one by s^2/2 = 0.08 >> 4 SE, so the two
    # checks really distinguish the conventions.
    assert 0.5 * s**2 > 20 * se


@pytest.mark.parametrize("K, M", [(1, 1), (2, 2), (3, 2), (2, 3), (4, 4)])
def test_matches_reference(rng, K, M):
    for random_vw in (False, True):
        params = random_order_params(rng, K, M, random_vw=random_vw)
        # Same closed form, different code (loops over scalar math.asin): only round-off of a
        # sum of (K+M)^2 O(1) terms differs, ~1e-15.
        np.testing.assert_allclose(float(_eg(params)), _reference_eg(params), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("K", [2, 3, 4])
def test_symmetric_fixed_point_published_value(K):
    eg = float(_eg(symmetric_fixed_point(K)))
    # Closed form vs closed form: round-off only.
    assert abs(eg - published_plateau_error(K)) < 1e-13
    # THEORY.md quotes 0.0116 (K=2) and 0.0203 (K=3), rounded to 4 decimals.
    quoted = {2: 0.0116, 3: 0.0203}
    if K in quoted:
        assert abs(eg - quoted[K]) < 5e-5


def test_zero_when_student_equals_teacher():
    T = px.correlated_teacher(3, 0.3)
    w = jnp.array([0.7, 1.0, 1.3])
    params = px.OrderParams(T, T, T, w, w)
    # Cancellation of O(1) arcsin terms: round-off ~1e-16.
    assert abs(float(_eg(params))) < 1e-14


def test_batch_axes(rng):
    states = [random_order_params(rng, 3, 2) for _ in range(6)]
    batched = stack(states)
    eg = _eg(batched)
    assert eg.shape == (6,)
    want = np.array([_reference_eg(p) for p in states])
    np.testing.assert_allclose(np.asarray(eg), want, rtol=1e-12, atol=1e-14)
    # Two batch axes.
    two = jax.tree.map(lambda x: x.reshape((2, 3) + x.shape[1:]), batched)
    eg2 = _eg(two)
    assert eg2.shape == (2, 3)
    np.testing.assert_allclose(np.asarray(eg2).ravel(), want, rtol=1e-12, atol=1e-14)


def test_noise_adds_half_s_squared(rng):
    params = random_order_params(rng, 2, 3)
    clean = float(_eg(params))
    for s in (0.0, 0.1, 0.5, 2.0):
        noisy = float(_eg(params, jnp.array(s)))
        assert abs(noisy - (clean + 0.5 * s**2)) < 1e-14
