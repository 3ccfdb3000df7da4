"""The activation family: closed forms vs independent quadrature / SciPy integration / Monte
Carlo, convergence of the generic Gauss-Hermite path, student/teacher pairs, degenerate
covariances, bad input.

Witnesses independent of the engine: `plateaux.reference` (NumPy Gauss-Hermite and Monte
Carlo), `scipy.integrate` over the positive orthant for ReLU (where Gauss-Hermite converges
only like 1/order), `scipy.stats.multivariate_normal.cdf` for orthant probabilities.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import erf as sp_erf

import plateaux as px
from plateaux import reference
from plateaux._averages import i2_matrix, i3_tensor, i4_tensor, j2_matrix
from plateaux.activations import activation_from_name, as_pair, quadrature_report
from plateaux.activations._orthant import orthant_probability

from .helpers import random_covariance, random_order_params

_i2 = eqx.filter_jit(i2_matrix)
_j2 = eqx.filter_jit(j2_matrix)
_i3 = eqx.filter_jit(i3_tensor)
_i4 = eqx.filter_jit(i4_tensor)


def _entries4(C):
    return [
        C[a, b] for a, b in [(0, 0), (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3)]
    ]


def _relu(x):
    return np.maximum(x, 0.0)


def _step(x):
    return (x > 0).astype(float)


def _orthant_integral(f, S):
    """E[f(u1, u2) 1[u1>0, u2>0]] for u ~ N(0, S) (2x2, non-singular) by scipy dblquad."""
    Sinv, det = np.linalg.inv(S), np.linalg.det(S)

    def integrand(u2, u1):
        u = np.array([u1, u2])
        return f(u1, u2) * math.exp(-0.5 * u @ Sinv @ u) / (2 * math.pi * math.sqrt(det))

    return integrate.dblquad(integrand, 0, 12, 0, 12, epsabs=1e-12, epsrel=1e-11)[0]


# --- closed forms ---------------------------------------------------------------------------


def test_linear_closed_forms_match_quadrature(rng):
    # g = x is a polynomial: Gauss-Hermite of order >= 2 is exact (round-off only).
    lin = px.Linear()
    C = random_covariance(rng, 4)
    c = _entries4(C)
    assert abs(float(lin.i2(C[0, 0], C[0, 1], C[1, 1])) - C[0, 1]) == 0
    quad = {
        "i2": reference.gaussian_average(lambda u: u[0] * u[1], C[:2, :2], order=4),
        "i3": reference.gaussian_average(lambda u: u[1] * u[2], C[:3, :3], order=4),
        "i4": reference.gaussian_average(lambda u: u[2] * u[3], C, order=4),
    }
    assert abs(float(lin.i3(C[0, 0], C[0, 1], C[0, 2], C[1, 2], C[2, 2])) - quad["i3"]) < 1e-14
    assert abs(float(lin.i4(*c)) - quad["i4"]) < 1e-14
    assert abs(float(lin.i2(C[0, 0], C[0, 1], C[1, 1])) - quad["i2"]) < 1e-14
    assert float(lin.j2(C[0, 0], C[0, 1], C[1, 1])) == 1.0
    # The generic (quadrature) defaults agree with the closed forms.
    generic = px.activations.AbstractActivation
    assert abs(float(generic.i4(lin, *c)) - C[2, 3]) < 1e-13
    assert abs(float(generic.i3(lin, C[0, 0], C[0, 1], C[0, 2], C[1, 2], C[2, 2])) - C[1, 2]) < 1e-13


def test_relu_closed_forms_match_scipy_integration(rng):
    """I2, J2, I3 of ReLU against adaptive SciPy integration over the positive quadrant
    (tolerance 1e-9: dblquad's requested accuracy is 1e-11 relative; a wrong term changes
    the averages by O(0.01..0.1))."""
    relu = px.ReLU()
    for _ in range(3):
        C = random_covariance(rng, 3)
        S = C[:2, :2]
        i2 = _orthant_integral(lambda a, b: a * b, S)
        j2 = stats.multivariate_normal(mean=[0, 0], cov=S).cdf([0, 0])  # P(u1 < 0, u2 < 0) = P(u > 0)
        assert abs(float(relu.i2(S[0, 0], S[0, 1], S[1, 1])) - i2) < 1e-9
        assert abs(float(relu.j2(S[0, 0], S[0, 1], S[1, 1])) - j2) < 1e-7  # cdf: Genz, ~1e-8
        # I3: u2 enters linearly; integrate <u2 | u1, u3> u3 over the (u1, u3) quadrant.
        S13 = C[np.ix_([0, 2], [0, 2])]
        beta = np.linalg.solve(S13, [C[0, 1], C[1, 2]])
        i3 = _orthant_integral(lambda a, b: (beta[0] * a + beta[1] * b) * b, S13)
        closed = relu.i3(C[0, 0], C[0, 1], C[0, 2], C[1, 2], C[2, 2])
        assert abs(float(closed) - i3) < 1e-9


def test_relu_orthant_probability_matches_scipy(rng):
    # P(u > 0) in 4-d: Plackett's integral vs SciPy's (Genz) multivariate normal cdf.
    for _ in range(3):
        S = random_covariance(rng, 4)
        want = stats.multivariate_normal(
            mean=np.zeros(4), cov=S, abseps=1e-10, releps=1e-10, maxpts=10**6
        ).cdf(np.zeros(4))
        assert abs(float(orthant_probability(jnp.asarray(S))) - want) < 1e-7


def test_closed_forms_match_monte_carlo(rng):
    """Independent witness: 1e6 Monte-Carlo samples, within 4 standard errors (a chance
    failure ~6e-5 per average; SE ~2e-4..1e-3, far below a wrong formula's change)."""
    C = random_covariance(rng, 4)
    c = _entries4(C)
    relu = px.ReLU()
    cases = {
        "relu I2": (relu.i2(C[0, 0], C[0, 1], C[1, 1]), lambda u: _relu(u[0]) * _relu(u[1])),
        "relu J2": (relu.j2(C[0, 0], C[0, 1], C[1, 1]), lambda u: _step(u[0]) * _step(u[1])),
        "relu I3": (
            relu.i3(C[0, 0], C[0, 1], C[0, 2], C[1, 2], C[2, 2]),
            lambda u: _step(u[0]) * u[1] * _relu(u[2]),
        ),
        "relu I4": (relu.i4(*c), lambda u: _step(u[0]) * _step(u[1]) * _relu(u[2]) * _relu(u[3])),
        "linear I4": (px.Linear().i4(*c), lambda u: u[2] * u[3]),
    }
    for name, (closed, f) in cases.items():
        mean, se = reference.monte_carlo_average(f, C, 1_000_000, rng)
        assert abs(float(closed) - mean) < 4 * se, (name, float(closed), mean, se)


def test_relu_i4_tensor_matches_monte_carlo_entrywise(rng):
    """Every entry of the ReLU I4 tensor (distinct-field orthant moments) against one
    Monte-Carlo sample of the joint fields (4e5 samples, 4.5 SE over 64 entries: a chance
    failure ~4e-4 for the whole tensor), plus the 4-field formula with *repeated* fields
    (a different code path: Plackett's integral with rho = 1) against the deduplicated one."""
    params = random_order_params(rng, 2, 2)
    C = np.asarray(params.covariance)
    I4 = np.asarray(_i4(px.ReLU(), params.covariance, 2))
    direct = jax.jit(px.ReLU().i4)
    u = rng.standard_normal((400_000, 4)) @ np.linalg.cholesky(C).T
    for idx in np.ndindex(*I4.shape):
        i, k, a, b = idx
        v = _step(u[:, i]) * _step(u[:, k]) * _relu(u[:, a]) * _relu(u[:, b])
        assert abs(I4[idx] - v.mean()) < 4.5 * v.std() / math.sqrt(v.size), idx
        sub = C[np.ix_([i, k, a, b], [i, k, a, b])]
        # Degenerate 4x4 covariance, Gauss-Legendre after t = 1 - s^2: measured 1e-14.
        assert abs(float(direct(*_entries4(sub))) - I4[idx]) < 1e-10, idx


# --- quadrature path ------------------------------------------------------------------------


@eqx.filter_jit
def _all_tensors(act, C, K):
    return [f(act, C, K) for f in (i2_matrix, j2_matrix, i3_tensor, i4_tensor)]


def _tensors(act, params):
    return [np.asarray(x) for x in _all_tensors(act, params.covariance, params.K)]


def _max_change(a, b):
    return max(np.abs(x - y).max() for x, y in zip(a, b))


def test_custom_erf_converges_to_the_closed_form(rng):
    """Custom(erf(x/sqrt 2)) goes through the generic quadrature; its error against Erf's
    closed forms falls with the order (K = M = 1, so at most 2-field integrals) and ends at
    round-off."""
    params = random_order_params(rng, 1, 1)
    exact = _tensors(px.Erf(), params)
    errors = []
    for order in (2, 4, 8, 16):
        custom = px.Custom(lambda x: jax.scipy.special.erf(x / math.sqrt(2.0)), name="erf", order=order)
        errors.append(_max_change(_tensors(custom, params), exact))
    assert all(e2 < e1 for e1, e2 in zip(errors[:-1], errors[1:-1])), errors
    assert errors[-1] < 1e-9, errors  # measured 2e-10 at order 16
    assert errors[0] > 1e-5, errors  # the low order really is inaccurate (the test has power)


@pytest.mark.parametrize(
    "name, orders, reference_order", [("tanh", (4, 8, 16), 48), ("sigmoid", (2, 4, 8), 24)]
)
def test_quadrature_converges_with_order(rng, name, orders, reference_order):
    """Error against a high-order reference falls with the order (K = 1, M = 1); the
    `quadrature_report` estimate (order vs 2 x order) bounds it within a factor 3."""
    params = random_order_params(rng, 1, 1)
    cls = type(activation_from_name(name))
    exact = _tensors(cls(order=reference_order), params)
    errors = []
    for order in orders:
        errors.append(_max_change(_tensors(cls(order=order), params), exact))
    assert errors[2] < errors[1] < errors[0], errors
    report = quadrature_report(cls(order=orders[1]), params)
    assert errors[1] <= 3 * report["max"], (errors[1], report)


def test_tanh_matches_monte_carlo(rng):
    # Default order (16) against Monte Carlo (2e6 samples, 4 SE; the quadrature error of
    # these 2-field averages, < 1e-6 by the convergence test, is far below the SE ~3e-4).
    tanh = px.Tanh()
    C = random_covariance(rng, 3)
    d = lambda x: 1 - np.tanh(x) ** 2  # noqa: E731
    cases = {
        "J2": (tanh.j2(C[0, 0], C[0, 1], C[1, 1]), lambda u: d(u[0]) * d(u[1])),
        "I3": (
            tanh.i3(C[0, 0], C[0, 1], C[0, 2], C[1, 2], C[2, 2]),
            lambda u: d(u[0]) * u[1] * np.tanh(u[2]),
        ),
    }
    for name, (value, f) in cases.items():
        mean, se = reference.monte_carlo_average(f, C, 2_000_000, rng)
        assert abs(float(value) - mean) < 4 * se, (name, float(value), mean, se)


# --- student / teacher pairs ------------------------------------------------------------------


def _mc_tensors(C, K, numpy_fns, n, rng):
    """Monte-Carlo I2, J2, I3, I4 tensors (means and SEs) of a student/teacher pair;
    `numpy_fns` = (student g, student g', teacher g, teacher g')."""
    u = rng.standard_normal((n, C.shape[0])) @ np.linalg.cholesky(C).T
    s_g, s_dg, t_g, t_dg = numpy_fns
    g = np.concatenate([s_g(u[:, :K]), t_g(u[:, K:])], axis=1)
    dg = np.concatenate([s_dg(u[:, :K]), t_dg(u[:, K:])], axis=1)
    out = {}
    for name, samples in {
        "I2": g[:, :, None] * g[:, None, :],
        "J2": dg[:, :, None] * dg[:, None, :],
        "I3": dg[:, :K, None, None] * u[:, None, :, None] * g[:, None, None, :],
        "I4": dg[:, :K, None, None, None]
        * dg[:, None, :K, None, None]
        * g[:, None, None, :, None]
        * g[:, None, None, None, :],
    }.items():
        out[name] = (samples.mean(axis=0), samples.std(axis=0) / math.sqrt(n))
    return out


_ERF_NP = (lambda x: sp_erf(x / math.sqrt(2)), lambda x: math.sqrt(2 / math.pi) * np.exp(-0.5 * x**2))
_RELU_NP = (_relu, _step)
_TANH_NP = (np.tanh, lambda x: 1 - np.tanh(x) ** 2)


@pytest.mark.parametrize(
    "pair, numpy_fns",
    [((px.ReLU(), px.Erf()), _RELU_NP + _ERF_NP), ((px.Erf(order=8), px.Tanh(order=8)), _ERF_NP + _TANH_NP)],
    ids=["relu-student-erf-teacher", "erf-student-tanh-teacher"],
)
def test_mixed_pair_tensors_match_monte_carlo(rng, pair, numpy_fns):
    """Every entry of the mixed tensors against Monte Carlo (3e5 samples): within 4.5 SE
    plus twice the quadrature report (ReLU's g' steps make Gauss-Hermite on the mixed blocks
    converge only algebraically; the report says by how much)."""
    K = 1
    params = random_order_params(rng, K, 2, var_range=(0.3, 1.0))
    C = np.asarray(params.covariance)
    got = dict(zip(("I2", "J2", "I3", "I4"), _tensors(pair, params)))
    report = quadrature_report(pair, params)
    mc = _mc_tensors(C, K, numpy_fns, 300_000, rng)
    for name, value in got.items():
        mean, se = mc[name]
        bound = 4.5 * se + 2 * report[name] + 1e-12
        assert np.all(np.abs(value - mean) <= bound), (name, np.max(np.abs(value - mean) - bound))
    # The student block uses the student's closed forms exactly.
    student = pair[0]
    np.testing.assert_allclose(
        got["I2"][:K, :K], np.asarray(_i2(student, params.covariance)[:K, :K]), atol=1e-15
    )


def test_generalization_error_of_a_pair_matches_real_networks(getkey):
    """eps_g of a ReLU student learning an erf teacher, from the order parameters, against
    the squared error of the actual networks on 2e5 Gaussian inputs (4 SE)."""
    N = 60
    student = px.SoftCommittee.gaussian(
        2, N, getkey(), scale=0.8, v=jnp.array([0.7, 1.2]), activation=px.ReLU()
    )
    teacher = px.SoftCommittee.gaussian(2, N, getkey(), v=jnp.array([1.0, -0.5]), activation=px.Erf())
    params = px.order_parameters(student, teacher)
    eg = float(px.generalization_error(params, (px.ReLU(), px.Erf())))
    xi = jax.random.normal(getkey(), (200_000, N))
    err = 0.5 * np.asarray(student(xi) - teacher(xi)) ** 2
    se = err.std() / math.sqrt(err.size)
    assert abs(eg - err.mean()) < 4 * se, (eg, err.mean(), se)
    # The same networks judged with erf for both would be wrong by far more than that.
    assert abs(float(px.generalization_error(params)) - err.mean()) > 10 * se


# --- degenerate covariances and derivatives ---------------------------------------------------


@pytest.mark.parametrize("act", [px.Tanh(), px.ReLU(), px.Custom(jnp.sin, name="sin")], ids=lambda a: a.name)
def test_degenerate_covariances_are_finite_and_correct(rng, act):
    """Identical fields and a zero-norm unit: the 4-field method (eigh square root, clipped)
    equals the average over the distinct fields (1-2 field quadrature, NumPy reference)."""
    C2 = random_covariance(rng, 2)
    q, r, t = C2[0, 0], C2[0, 1], C2[1, 1]
    g, dg = (np.tanh, lambda x: 1 - np.tanh(x) ** 2) if act.name == "tanh" else (_relu, _step)
    if act.name == "sin":
        g, dg = np.sin, np.cos
    # I4(x, x, y, y) = <g'(x)^2 g(y)^2>: a 2-field integral.
    got = float(act.i4(q, q, r, r, q, r, r, t, t, t))
    want = reference.gaussian_average(lambda u: dg(u[0]) ** 2 * g(u[1]) ** 2, C2, order=200)
    tol = 1e-3 if act.name == "relu" else 1e-6  # ReLU's witness is Gauss-Hermite on a step
    assert np.isfinite(got) and abs(got - want) < tol, (got, want)
    # A zero-norm unit (Q_ii = 0): x = 0 identically.
    zero = [float(act.i2(0.0, 0.0, t)), float(act.j2(0.0, 0.0, t)), float(act.i3(0.0, 0.0, 0.0, r, t))]
    assert np.all(np.isfinite(zero))
    want_j2 = float(dg(np.zeros(1))[0]) * reference.gaussian_average(
        lambda u: dg(u[0]), C2[1:, 1:], order=200
    )
    assert (
        abs(zero[0] - float(g(np.zeros(1))[0]) * reference.gaussian_average(lambda u: g(u[0]), C2[1:, 1:]))
        < 1e-12
    )
    # Tolerance: 2-field Gauss-Hermite of order 32 on a g' factor (measured 2e-10 for tanh).
    assert abs(zero[1] - want_j2) < (1e-3 if act.name == "relu" else 1e-8)
    # <g'(0) u2 g(u3)> = g'(0) (c23 / c33) <u3 g(u3)> (ReLU: g'(0) = 0).
    want_i3 = (
        float(dg(np.zeros(1))[0])
        * r
        / t
        * reference.gaussian_average(lambda u: u[0] * g(u[0]), C2[1:, 1:], order=200)
    )
    assert abs(zero[2] - want_i3) < 1e-10


def test_jacobian_is_finite_at_repeated_eigenvalues():
    """T = I and R = 0 give sub-covariances with repeated eigenvalues, where eigh's own JVP
    is infinite; the square root's Sylvester JVP keeps the Jacobian finite and equal to
    central finite differences (step 1e-5: truncation ~1e-10, round-off ~1e-11)."""
    from plateaux import analysis as pa

    params = px.OrderParams(np.array([[1.0]]), np.zeros((1, 2)), np.eye(2))
    dyn = px.OnlineSGD(0.3, activation=px.Tanh(order=6))
    jac = np.asarray(pa.jacobian(dyn, params))
    assert np.all(np.isfinite(jac))
    y0 = np.asarray(px.flatten_learned(params))
    f = eqx.filter_jit(lambda y: dyn.flat_vector_field(y, params))
    h = 1e-5
    fd = np.stack(
        [(np.asarray(f(y0 + h * e)) - np.asarray(f(y0 - h * e))) / (2 * h) for e in np.eye(y0.size)], 1
    )
    np.testing.assert_allclose(jac, fd, rtol=0, atol=1e-8)


# --- API and bad input --------------------------------------------------------------------------


def test_activation_names_and_pairs():
    for name, cls in [
        ("erf", px.Erf),
        ("linear", px.Linear),
        ("relu", px.ReLU),
        ("tanh", px.Tanh),
        ("sigmoid", px.Sigmoid),
    ]:
        act = activation_from_name(name.upper())
        assert type(act) is cls and act.name == name
    relu, erf = px.ReLU(), px.Erf()
    assert as_pair(relu) == (relu, relu)
    assert as_pair((relu, erf)) == (relu, erf)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown activation 'swish'.*erf.*linear.*relu.*sigmoid.*tanh"):
        activation_from_name("swish")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="order"):
            px.Tanh(order=bad)
    with pytest.raises(ValueError, match="callable.*42"):
        px.Custom(42)
    with pytest.raises(ValueError, match="pair"):
        as_pair((px.Erf(), px.Erf(), px.Erf()))
    C = np.eye(3)
    with pytest.raises(ValueError, match="K .*required"):
        i2_matrix((px.ReLU(), px.Erf()), C)
    with pytest.raises(ValueError, match="K"):
        quadrature_report(px.Tanh(), C)
