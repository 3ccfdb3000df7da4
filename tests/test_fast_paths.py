"""The speed paths of the ODE: the vectorisable float64 arcsin and the batch-last vector field
under vmap agree with the ordinary code to round-off, values and derivatives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plateaux as px
from plateaux._order_params import flatten_learned
from plateaux.activations._arcsin import arcsin
from plateaux.dynamics import AbstractDynamics
from plateaux.dynamics._batch_last import supports_batch_last


def test_arcsin_matches_numpy():
    grid = np.concatenate(
        [
            np.linspace(-1, 1, 200_001),
            1 - np.logspace(-16, 0, 2_000),  # approaching 1 (the I4 diagonal sits there)
            np.logspace(-300, 0, 2_000),  # tiny arguments
            [0.625, np.nextafter(0.625, 0), np.nextafter(0.625, 1), 1.0, 0.0],  # branch switch
        ]
    )
    x = np.concatenate([grid, -grid])
    got = np.asarray(jax.jit(arcsin)(jnp.asarray(x)))
    want = np.arcsin(x)
    # Within 2 ulp of NumPy's libm arcsin (measured: 1 ulp; jnp.arcsin itself is ~1.2 ulp off).
    assert np.all(np.abs(got - want) <= 2 * np.spacing(np.abs(want)) + 1e-300)
    assert np.isnan(arcsin(jnp.asarray(1.5)))
    for x0 in (-0.9, -0.3, 0.0, 0.5, 0.99):
        np.testing.assert_allclose(jax.grad(arcsin)(x0), 1 / np.sqrt(1 - x0**2), rtol=1e-15)


def _random_batch(rng, K, M, B):
    X = rng.standard_normal((B, K + M, 3 * (K + M)))
    C = X @ np.swapaxes(X, 1, 2) / X.shape[-1]
    v, w = rng.uniform(0.5, 1.5, (B, K)), rng.uniform(0.5, 1.5, (B, M))
    return px.OrderParams(C[:, :K, :K], C[:, :K, K:], C[:, K:, K:], v, w)


@pytest.mark.parametrize(
    "dynamics",
    [
        # noise, weight decay, a trained second layer and the eta^2 terms in one
        px.OnlineSGD(0.3, 0.2, weight_decay=0.01, eta_v=0.2),
        px.OnlineSGD(0.5, eta_squared=False),
    ],
)
def test_batch_last_vector_field(dynamics, rng):
    assert supports_batch_last(dynamics)
    params = _random_batch(rng, 3, 2, 5)
    y = jax.vmap(lambda p: flatten_learned(p, learn_v=dynamics.learn_v))(params)

    def fast(y, p):
        return dynamics.flat_vector_field(y, p)

    def plain(y, p):
        return AbstractDynamics.flat_vector_field(dynamics, y, p)

    @jax.jit
    def compare(y, params):
        tangent, zeros = jnp.ones_like(y), jax.tree.map(jnp.zeros_like, params)
        return (
            jax.vmap(fast)(y, params),
            jax.vmap(plain)(y, params),
            fast(y[0], jax.tree.map(lambda x: x[0], params)),  # unbatched
            jax.jvp(jax.vmap(fast), (y, params), (tangent, zeros))[1],
            jax.jvp(jax.vmap(plain), (y, params), (tangent, zeros))[1],
        )

    got, want, one, jvp_fast, jvp_plain = compare(y, params)
    # Same closed forms in another array layout: round-off only (rates are O(0.1-1)).
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)
    np.testing.assert_allclose(one, want[0], rtol=0, atol=1e-14)
    # Derivatives go through the ordinary code.
    np.testing.assert_allclose(jvp_fast, jvp_plain, rtol=0, atol=1e-14)
    assert float(jnp.max(jnp.abs(want))) > 1e-2


def test_batch_last_inside_vmapped_cond_and_batched_eta(rng):
    """The integrator's stop rule calls the vector field inside a `cond` (a `select` under
    vmap), and a sweep maps eta with the states."""
    params = _random_batch(rng, 2, 2, 4)
    y = jax.vmap(flatten_learned)(params)
    eta = jnp.asarray([0.1, 0.2, 0.3, 0.4])

    def f(e, y, p, ordinary=False):
        dyn = px.OnlineSGD(e)
        rhs = (
            (lambda: AbstractDynamics.flat_vector_field(dyn, y, p))
            if ordinary
            else (lambda: dyn.flat_vector_field(y, p))
        )
        return jax.lax.cond(jnp.sum(y) > 0, rhs, lambda: jnp.zeros_like(y))

    got = jax.jit(jax.vmap(f))(eta, y, params)
    want = jax.jit(jax.vmap(lambda e, y, p: f(e, y, p, True)))(eta, y, params)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)
    assert float(jnp.max(jnp.abs(want))) > 1e-3
