"""Fisher information of a soft committee machine (`plateaux.natural`): the erf closed form vs
Monte Carlo, the structured inverse vs the dense one, where finite N actually matters (the
second moment of the natural gradient step, O(1/N)), and the regularisation near the singular set.

A correction to the issue's premise, checked here: for Gaussian inputs the decomposition
G = [a (x) (I - P) + span part] / N is *exact at every N* (the Gaussian identity gives it with no
large-N step), so the structured inverse equals the dense inverse to round-off already at N = 20;
there is no O(1/N) error in it to shrink. The O(1/N) of the N -> infinity theory sits in the eta^2
term of the order-parameter ODE (the step's second moment), tested in
`test_eta_squared_term_is_the_large_N_limit`.
"""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plateaux as px
from plateaux.activations import AbstractActivation
from plateaux.natural import (
    NaturalGradientSGD,
    fisher_matrix,
    fisher_monte_carlo,
    fisher_structure,
    natural_gradient,
)
from plateaux.natural._fisher import span_block_fields, structure_from_weights


def _student(key, K, N, v=None, scale=1.0):
    return px.SoftCommittee.gaussian(K, N, key, scale=scale, v=v)


# z = (MC - closed form) / SE over all KN(KN+1)/2 distinct entries (820 for K=2, N=20; 4095 for
# K=3, N=30). With a correct closed form each z is ~N(0, 1) (2e5 samples: CLT holds, the SE is
# estimated to ~0.5%); P(|z| > 5.5) = 4e-8 per entry, so a max above 5.5 has probability < 2e-4.
# The RMS of the z's is 1 up to their correlations (measured 0.99 and 1.05); 1.25 leaves room.
MAX_Z, RMS_Z = 5.5, 1.25


@pytest.mark.parametrize("K, N, v", [(2, 20, (0.8, 1.3)), (3, 30, (1.0, -0.7, 1.2))])
def test_closed_form_matches_monte_carlo(getkey, K, N, v):
    student = _student(getkey(), K, N, v=jnp.array(v))
    G = np.asarray(fisher_matrix(student))
    mean, se = (np.asarray(x) for x in fisher_monte_carlo(student, getkey(), 200_000, batch=1000))
    iu = np.triu_indices(K * N)

    def accepted(candidate):
        z = ((mean - candidate) / se)[iu]
        return np.max(np.abs(z)) < MAX_Z and np.sqrt(np.mean(z**2)) < RMS_Z

    assert accepted(G)
    # Power: the same criterion rejects the closed form without its rank-2 (span) correction,
    # a (x) I / N (measured max |z| ~ 120), and a 5% error in the overall scale (RMS z ~ 3.7).
    assert not accepted(np.kron(np.asarray(fisher_structure(student).complement), np.eye(N)) / N)
    assert not accepted(1.05 * G)


class _Linear(AbstractActivation):
    """g(x) = x (test-only): g' = 1, so G = v v^T (x) I / N exactly. Averages are not needed."""

    name = "linear"

    def g(self, x):
        return x

    def dg(self, x):
        return jnp.ones_like(x)

    def i2(self, c11, c12, c22):
        raise NotImplementedError

    j2 = i3 = i4 = i2


def test_monte_carlo_works_for_any_activation(getkey):
    K, N = 2, 10
    v = jnp.array([0.5, -1.5])
    student = px.SoftCommittee(jax.random.normal(getkey(), (K, N)), v, _Linear())
    mean, se = (np.asarray(x) for x in fisher_monte_carlo(student, getkey(), 50_000, batch=1000))
    exact = np.kron(np.outer(v, v), np.eye(N)) / N
    iu = np.triu_indices(K * N)
    # Entries that are exactly 0 in every sample have se = 0; compare the others by z-score.
    nz = np.asarray(se)[iu] > 0
    z = ((mean - exact)[iu])[nz] / se[iu][nz]
    assert np.max(np.abs(z)) < MAX_Z  # 210 entries: P(any |z| > 5.5) < 1e-5
    assert np.array_equal(mean[iu][~nz], exact[iu][~nz])
    with pytest.raises(ValueError, match="erf activation only"):
        fisher_structure(student)
    with pytest.raises(ValueError, match="erf activation only"):
        fisher_matrix(student)


@pytest.mark.parametrize("N", [20, 50])
def test_structured_inverse_is_exact(getkey, N):
    """The structured Fisher (K x K complement block + K^2 x K^2 span block) equals the dense
    closed form, and its inverse applied to a vector equals the dense solve, to round-off at
    both N (no O(1/N): the decomposition is exact for Gaussian inputs; see module docstring)."""
    K = 3
    student = _student(getkey(), K, N, v=jnp.array([1.0, 0.6, 1.4]), scale=0.8)
    S = fisher_structure(student)
    G = np.asarray(fisher_matrix(student))
    # Entries of G are O(1/N); round-off of O(1) sums: 1e-15 absolute.
    np.testing.assert_allclose(np.asarray(S.dense()), G, rtol=0, atol=1e-15)
    u = np.asarray(jax.random.normal(getkey(), (K, N)))
    for damping in (0.0, 0.3):
        dense = np.linalg.solve(G + damping / N * np.eye(K * N), u.reshape(-1)).reshape(K, N)
        got = np.asarray(S.solve(jnp.asarray(u), damping))
        # Condition number of N G here is < 1e3: relative error ~1e-13 at most.
        np.testing.assert_allclose(got, dense, rtol=0, atol=1e-11 * np.max(np.abs(dense)))
    Gu = (G @ u.reshape(-1)).reshape(K, N)
    np.testing.assert_allclose(np.asarray(S.matvec(jnp.asarray(u))), Gu, rtol=0, atol=1e-14)
    report = S.report()
    assert not bool(report.regularised) and not bool(report.near_singular)
    assert int(report.span_rank) == K


def test_span_block_matches_theory_form():
    """<g'_i g'_j x_a x_b> (closed form without Q^-1) equals THEORY.md's A_ij [Q (I + D_ij Q)^-1]_ab."""
    Q = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, -0.1], [0.1, -0.1, 0.9]])
    v = np.array([1.0, 0.5, 1.2])
    B = np.asarray(span_block_fields(jnp.asarray(Q), jnp.asarray(v)))
    for i in range(3):
        for j in range(3):
            D = np.zeros((3, 3))
            D[i, i] += 1
            D[j, j] += 1
            A = v[i] * v[j] * (2 / np.pi) / np.sqrt(np.linalg.det(np.eye(3) + D @ Q))
            np.testing.assert_allclose(B[i, :, j, :], A * Q @ np.linalg.inv(np.eye(3) + D @ Q), atol=1e-14)


def test_regularisation_on_the_singular_set(getkey):
    K, N = 3, 30
    J = np.asarray(jax.random.normal(getkey(), (K, N)))
    u = jnp.asarray(jax.random.normal(getkey(), (K, N)))

    # Elimination: J_3 = 0. The erf Fisher stays regular (g'(0) != 0), the span loses a
    # direction: the structured solve (dropping it) still equals the dense solve.
    J0 = J.copy()
    J0[2] = 0.0
    student = px.SoftCommittee(J0)
    S = fisher_structure(student)
    G = np.asarray(fisher_matrix(student))
    dense = np.linalg.solve(G, np.asarray(u).reshape(-1)).reshape(K, N)
    np.testing.assert_allclose(np.asarray(S.solve(u)), dense, rtol=0, atol=1e-11 * np.abs(dense).max())
    report = S.report()
    assert int(report.span_rank) == 2 and bool(report.regularised) and not bool(report.near_singular)

    # Overlap singularity: J_1 = J_2. G is singular (u_1 = -u_2 in its null space for every
    # direction); the report says so. Damped: equals the dense damped solve. Undamped: the
    # pseudo-inverse equals numpy's minimum-norm least-squares solution.
    J1 = J.copy()
    J1[1] = J1[0]
    student = px.SoftCommittee(J1)
    S = fisher_structure(student)
    G = np.asarray(fisher_matrix(student))
    assert np.linalg.eigvalsh(G)[0] < 1e-15
    report = S.report()
    assert bool(report.near_singular) and bool(report.regularised) and float(report.condition) < 1e-12
    lam = 0.1
    damped = np.linalg.solve(G + lam / N * np.eye(K * N), np.asarray(u).reshape(-1)).reshape(K, N)
    np.testing.assert_allclose(np.asarray(S.solve(u, lam)), damped, rtol=0, atol=1e-11 * np.abs(damped).max())
    pinv = (np.linalg.pinv(G, rcond=1e-12) @ np.asarray(u).reshape(-1)).reshape(K, N)
    np.testing.assert_allclose(np.asarray(S.solve(u)), pinv, rtol=0, atol=1e-9 * np.abs(pinv).max())
    # natural_gradient is the same solve.
    via_helper = natural_gradient(student, u, damping=lam)
    np.testing.assert_allclose(np.asarray(via_helper), np.asarray(S.solve(u, lam)))


@functools.partial(jax.jit, static_argnums=3)
def _step_second_moment(J, B, key, n):
    """Per input xi: the N -> infinity complement-only second moment (a^-1 c)(a^-1 c)^T and the
    finite-N excess s s^T / N - (a^-1 c)(a^-1 c)^T, where s = NG^{-1}(c (x) xi) is the exact
    natural gradient direction (dJ = eta s / sqrt N). Returns means and standard errors."""
    N = J.shape[1]
    student, teacher = px.SoftCommittee(J), px.SoftCommittee(B)
    S = structure_from_weights(J, student.v)

    def one(xi):
        x = J @ xi / math.sqrt(N)
        c = (teacher(xi) - student(xi)) * student.activation.dg(x)
        z = S.basis.T @ xi
        coef = jnp.linalg.solve(S.complement, c)
        w = jnp.linalg.solve(S.span, jnp.outer(c, z).reshape(-1)).reshape(J.shape[0], -1)
        s = jnp.outer(coef, xi - S.basis @ z) + w @ S.basis.T
        limit = jnp.outer(coef, coef)
        return jnp.stack([limit, s @ s.T / N - limit])

    m = jax.lax.map(one, jax.random.normal(key, (n, N)), batch_size=4096)
    return m.mean(0), m.std(0) / math.sqrt(n)


def test_eta_squared_term_is_the_large_N_limit():
    """Where O(1/N) does enter: the eta^2 term of dQ/dalpha is the N -> infinity limit of the
    second moment of the exact finite-N step, N E[dJ_i . dJ_k] / N = eta^2 E[s_i . s_k] / N.

    (1) E[(a^-1 c)(a^-1 c)^T] equals the ODE's eta^2 term a^-1 D2 a^-1 (I4 sums) within 4 SE.
    (2) The exact finite-N excess is resolved and shrinks like 1/N: measured relative excess
        0.062/0.051/0.057 at N = 20 and 0.026/0.022/0.025 at N = 50 (entries 11/12/22), i.e.
        N * excess = 1.0-1.3 at both; the ratio 2.3-2.4 (1/N predicts 2.5; SE of the ratio
        ~0.25, so [1.8, 3.2] is +-3 SE). The control variate (same inputs for both terms) keeps
        the relative SE at 0.2-0.35% with 1e5 inputs.
    """
    p = px.OrderParams([[0.6, 0.1], [0.1, 0.4]], [[0.5, 0.1], [0.05, 0.4]], np.eye(2))
    rates = eqx.filter_jit(lambda dynamics, params: dynamics.vector_field(params).Q)
    full = rates(NaturalGradientSGD(1.0), p)
    first = rates(NaturalGradientSGD(1.0, eta_squared=False), p)
    ode = np.asarray(full - first)  # eta^2 a^-1 D2 a^-1 at eta = 1
    excess = {}
    for N in (20, 50):
        student, teacher = px.networks_from_order_params(p, N, jax.random.PRNGKey(1))
        mean, se = (np.asarray(x) for x in _step_second_moment(student.weights, teacher.weights,
                                                               jax.random.PRNGKey(2), 100_000))  # fmt: skip
        assert np.all(np.abs(mean[0] - ode) < 4 * se[0]), (mean[0], ode, se[0])
        rel = mean[1] / ode
        assert np.all(np.abs(mean[1]) > 5 * se[1])  # resolved
        excess[N] = rel
    ratio = excess[20] / excess[50]
    assert np.all((ratio > 1.8) & (ratio < 3.2)), ratio
    assert np.all(np.abs(excess[50]) < 0.04)  # percent-level agreement needs N of a few hundred
