"""Linear activation: the order-parameter ODE is the closed-form linear-network dynamics.

For g(x) = x (derivation in the docstring of `px.Linear`), with r = R w - Q v and
2 eps_g = v^T Q v - 2 v^T R w + w^T T w:
    dR/dalpha = eta v (T w - R^T v)^T,
    dQ/dalpha = eta (v r^T + r v^T) + eta^2 (2 eps_g + s^2) v v^T.
These matrix expressions are written here independently of the engine's tensors.
"""

import equinox as eqx
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import plateaux as px

from .helpers import NUM_SAVES, random_order_params

_field = eqx.filter_jit(lambda dynamics, p: dynamics.vector_field(p))


def linear_rates(Q, R, T, v, w, eta, noise):
    r = R @ w - Q @ v
    two_eg = v @ Q @ v - 2 * v @ R @ w + w @ T @ w
    dR = eta * np.outer(v, T @ w - R.T @ v)
    dQ = eta * (np.outer(v, r) + np.outer(r, v)) + eta**2 * (two_eg + noise**2) * np.outer(v, v)
    return dQ, dR


@pytest.mark.parametrize("K, M", [(2, 3), (3, 2)])
def test_vector_field_is_the_matrix_closed_form(rng, K, M):
    for _ in range(3):
        p = random_order_params(rng, K, M)
        eta, noise = rng.uniform(0.05, 1.0), rng.uniform(0.0, 0.5)
        rates = _field(px.OnlineSGD(eta, noise, activation=px.Linear()), p)
        dQ, dR = linear_rates(*(np.asarray(x) for x in (p.Q, p.R, p.T, p.v, p.w)), eta, noise)
        # Same polynomial, different arithmetic: round-off only (entries O(1)).
        np.testing.assert_allclose(np.asarray(rates.Q), dQ, rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.asarray(rates.R), dR, rtol=0, atol=1e-12)
        assert np.abs(dQ).max() > 1e-3  # not a trivial comparison of zeros
        # eps_g is the quadratic form too.
        v, w = np.asarray(p.v), np.asarray(p.w)
        two_eg = v @ np.asarray(p.Q) @ v - 2 * v @ np.asarray(p.R) @ w + w @ np.asarray(p.T) @ w
        eg = float(px.generalization_error(p, px.Linear()))
        assert abs(eg - 0.5 * two_eg) < 1e-13


def test_integration_matches_scipy_solution_of_the_matrix_ode(rng):
    K, M, eta, noise = 2, 2, 0.3, 0.2
    p0 = random_order_params(rng, K, M)
    Q0, R0, T, v, w = (np.asarray(x) for x in (p0.Q, p0.R, p0.T, p0.v, p0.w))
    ts = np.linspace(0.0, 20.0, NUM_SAVES)

    def rhs(t, y):
        Q, R = y[: K * K].reshape(K, K), y[K * K :].reshape(K, M)
        dQ, dR = linear_rates(Q, R, T, v, w, eta, noise)
        return np.concatenate([dQ.ravel(), dR.ravel()])

    sol = solve_ivp(
        rhs, (0, ts[-1]), np.concatenate([Q0.ravel(), R0.ravel()]), t_eval=ts, rtol=1e-11, atol=1e-13
    )
    traj = px.integrate(p0, px.OnlineSGD(eta, noise, activation=px.Linear()), ts, stop_eg=0.0)
    Q = np.asarray(traj.params.Q).reshape(len(ts), -1)
    R = np.asarray(traj.params.R).reshape(len(ts), -1)
    # Both solvers run at rtol <= 1e-8 on O(1) states: agreement to ~1e-7.
    np.testing.assert_allclose(Q, sol.y[: K * K].T, rtol=0, atol=1e-7)
    np.testing.assert_allclose(R, sol.y[K * K :].T, rtol=0, atol=1e-7)
    # The run goes somewhere: eps_g falls by more than 2x.
    assert traj.eg[-1] < 0.5 * traj.eg[0]
