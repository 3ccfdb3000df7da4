"""Closed-form Gaussian averages of the erf activation vs independent quadrature and Monte Carlo.

Witnesses: `plateaux.reference.gaussian_average` (tensor-product Gauss-Hermite on the
symmetric square root of C, written independently in NumPy) and, once per average, a plain
Monte-Carlo estimate so that the quadrature is not the only witness.
"""

import equinox as eqx
import numpy as np
import pytest

import plateaux as px
from plateaux import reference
from plateaux._averages import i2_matrix, i3_tensor, i4_tensor, j2_matrix

from .helpers import random_covariance, random_order_params, repeated_field_covariance

ERF = px.Erf()
g, dg = reference.g, reference.dg

# Jitted builders: one compile per shape instead of op-by-op dispatch (which compiles ~100
# primitives per shape eagerly, seconds in total).
_i2_matrix = eqx.filter_jit(i2_matrix)
_j2_matrix = eqx.filter_jit(j2_matrix)
_i3_tensor = eqx.filter_jit(i3_tensor)
_i4_tensor = eqx.filter_jit(i4_tensor)

# Quadrature orders per dimension. Gauss-Hermite converges slowly when g' factors of fields
# with large variance appear (g'(x)^2 = (2/pi) exp(-x^2) is a narrow Gaussian in the
# quadrature variable). Measured against order 200/90/48 on 18 random full, rank-deficient
# and repeated-field covariances with variances <= 1.5: order 60 (2-d), 40 (3-d), 32 (4-d)
# are within 2.2e-14 (order 24 in 4-d: 3e-11, so these orders are needed). QUAD_ATOL = 1e-12
# leaves a ~50x margin for quadrature error, while a wrong term, sign or index changes the
# averages by O(1e-3..1) and fails.
ORDER = {2: 60, 3: 40, 4: 32}
QUAD_ATOL = 1e-12
# For the tensor builders each entry is integrated over its *distinct* fields only (1-3
# fields), where a repeated field can contribute g'(x)^2 g(x)^2; these orders agree with
# order 300/200/100 to 2e-16 on all I4 entries of random states with variances <= 1.5
# (measured).
SUB_ORDER = {1: 120, 2: 100, 3: 60}


def _covariances(rng, n):
    """Full-rank, rank-deficient and repeated-field (two identical fields) covariances."""
    return {
        "full": random_covariance(rng, n),
        "full2": random_covariance(rng, n),
        "rank1" if n == 2 else "rank-deficient": random_covariance(rng, n, rank=max(1, n - 2)),
        "repeated": repeated_field_covariance(rng, n),
    }


def _quad(f, C):
    return reference.gaussian_average(f, C, order=ORDER[np.shape(C)[0]])


def test_covariance_cases_are_what_they_claim(rng):
    # Guard the fixtures: singular cases really are singular, variances really are modest.
    for n in (2, 3, 4):
        for name, C in _covariances(rng, n).items():
            lam = np.linalg.eigvalsh(C)
            assert lam.min() > -1e-12
            assert np.diag(C).max() <= 1.5 + 1e-12
            if name in ("rank1", "rank-deficient", "repeated"):
                assert lam.min() < 1e-12, name


def test_i2_j2_match_quadrature(rng):
    for name, C in _covariances(rng, 2).items():
        c11, c12, c22 = C[0, 0], C[0, 1], C[1, 1]
        i2 = _quad(lambda u: g(u[0]) * g(u[1]), C)
        j2 = _quad(lambda u: dg(u[0]) * dg(u[1]), C)
        assert abs(float(ERF.i2(c11, c12, c22)) - i2) < QUAD_ATOL, name
        assert abs(float(ERF.j2(c11, c12, c22)) - j2) < QUAD_ATOL, name


def test_i3_matches_quadrature(rng):
    for name, C in _covariances(rng, 3).items():
        # c22 does not enter I3; pass the entries in the documented order.
        closed = ERF.i3(C[0, 0], C[0, 1], C[0, 2], C[1, 2], C[2, 2])
        quad = _quad(lambda u: dg(u[0]) * u[1] * g(u[2]), C)
        assert abs(float(closed) - quad) < QUAD_ATOL, name


def test_i4_matches_quadrature(rng):
    for name, C in _covariances(rng, 4).items():
        c = C
        closed = ERF.i4(
            c[0, 0], c[0, 1], c[0, 2], c[0, 3], c[1, 1], c[1, 2], c[1, 3], c[2, 2], c[2, 3], c[3, 3]
        )
        quad = _quad(lambda u: dg(u[0]) * dg(u[1]) * g(u[2]) * g(u[3]), C)
        assert abs(float(closed) - quad) < QUAD_ATOL, name


def _identity(x):
    return x


def _quad_fields(C, *factors):
    """<prod_j f_j(u_{a_j})> for factors (f_j, a_j), integrating over the distinct fields."""
    fields = sorted({a for _, a in factors})
    pos = {a: j for j, a in enumerate(fields)}
    sub = C[np.ix_(fields, fields)]

    def integrand(u):
        out = np.ones(u.shape[1])
        for f, a in factors:
            out = out * f(u[pos[a]])
        return out

    return reference.gaussian_average(integrand, sub, order=SUB_ORDER[len(fields)])


def _tensor_cases(rng):
    """Joint covariances of (x_1..x_K, y_1..y_M) with 3 fields (cheap 3-d quadrature),
    including a singular one where both student units equal the teacher unit."""
    singular = px.OrderParams(np.full((2, 2), 0.8), np.full((2, 1), 0.8), [[0.8]])
    return {
        "K2M1": random_order_params(rng, 2, 1),
        "K1M2": random_order_params(rng, 1, 2),
        "K2M1-singular": singular,
    }


@pytest.mark.parametrize("case", ["K2M1", "K1M2", "K2M1-singular"])
def test_tensor_builders_index_the_joint_covariance(rng, case):
    params = _tensor_cases(rng)[case]
    C = np.asarray(params.covariance)
    K, n = params.K, C.shape[0]
    I2 = np.asarray(_i2_matrix(ERF, params.covariance))
    J2 = np.asarray(_j2_matrix(ERF, params.covariance))
    I3 = np.asarray(_i3_tensor(ERF, params.covariance, K))
    I4 = np.asarray(_i4_tensor(ERF, params.covariance, K))
    assert I2.shape == J2.shape == (n, n)
    assert I3.shape == (K, n, n)
    assert I4.shape == (K, K, n, n)
    # Every entry against a quadrature over the fields it involves, picked out of C by index
    # here (independently of the builders' broadcasting); same QUAD_ATOL reasoning.
    for a in range(n):
        for b in range(n):
            assert abs(I2[a, b] - _quad_fields(C, (g, a), (g, b))) < QUAD_ATOL, (a, b)
            assert abs(J2[a, b] - _quad_fields(C, (dg, a), (dg, b))) < QUAD_ATOL, (a, b)
            for i in range(K):
                want = _quad_fields(C, (dg, i), (_identity, a), (g, b))
                assert abs(I3[i, a, b] - want) < QUAD_ATOL, (i, a, b)
                for k in range(K):
                    want = _quad_fields(C, (dg, i), (dg, k), (g, a), (g, b))
                    assert abs(I4[i, k, a, b] - want) < QUAD_ATOL, (i, k, a, b)


def test_i2_matrix_maps_over_batch_axes(rng):
    params = [random_order_params(rng, 2, 2) for _ in range(3)]
    Cs = np.stack([np.asarray(p.covariance) for p in params])
    batched = np.asarray(_i2_matrix(ERF, Cs))
    for b, p in enumerate(params):
        # Same arithmetic per element; only round-off could differ.
        np.testing.assert_allclose(batched[b], np.asarray(_i2_matrix(ERF, p.covariance)), atol=1e-15)


def test_averages_match_monte_carlo(rng):
    """Independent witness: plain Monte Carlo, 2e6 samples, within 4 standard errors.

    With a fixed seed this is deterministic; 4 SE makes a chance failure (~6e-5 per
    average) negligible, while the SE (~2e-4) is far below what a wrong formula changes.
    """
    C4 = random_covariance(rng, 4)
    c = C4
    averages = {
        "I3": (
            ERF.i3(c[0, 0], c[0, 1], c[0, 2], c[1, 2], c[2, 2]),
            lambda u: dg(u[0]) * u[1] * g(u[2]),
            C4[:3, :3],
        ),
        "I4": (
            ERF.i4(c[0, 0], c[0, 1], c[0, 2], c[0, 3], c[1, 1], c[1, 2], c[1, 3], c[2, 2], c[2, 3], c[3, 3]),
            lambda u: dg(u[0]) * dg(u[1]) * g(u[2]) * g(u[3]),
            C4,
        ),
        "J2": (ERF.j2(c[0, 0], c[0, 1], c[1, 1]), lambda u: dg(u[0]) * dg(u[1]), C4[:2, :2]),
    }
    for name, (closed, f, C) in averages.items():
        mean, se = reference.monte_carlo_average(f, C, 2_000_000, rng)
        assert se > 0
        assert abs(float(closed) - mean) < 4 * se, (name, float(closed), mean, se)
