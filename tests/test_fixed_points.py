"""Fixed points, spectra and the reduced parameter space (issue: singularities and slow manifolds)."""

import jax
import numpy as np
import pytest

import plateaux as px
from plateaux import _reduced as reduced, analysis as pa

ETA = 0.1
GRADIENT_FLOW = px.OnlineSGD(ETA, eta_squared=False)


def _symmetric_guess(K, M=None):
    M = K if M is None else M
    return px.OrderParams(np.full((K, K), 0.3) + 0.01 * np.eye(K), np.full((K, M), 0.3), np.eye(M))


@pytest.mark.parametrize("K", [2, 3])
def test_symmetric_fixed_point_matches_published_closed_form(K):
    point = pa.find_fixed_point(GRADIENT_FLOW, _symmetric_guess(K), symmetric=True)
    assert point.converged and point.residual < 1e-14
    # The eta -> 0 plateau point lies exactly on the overlap singularity (identical students);
    # find_fixed_point solves there on the invariant set of identical students, so the
    # closed form is met to round-off.
    np.testing.assert_allclose(point.params.Q, 1 / (2 * K - 1), atol=1e-12)
    np.testing.assert_allclose(point.params.R, 1 / np.sqrt(K * (2 * K - 1)), atol=1e-12)
    published = (K / np.pi) * (np.pi / 6 - K * np.arcsin(1 / (2 * K)))
    assert point.eg == pytest.approx(published, rel=1e-9)
    assert point.spectrum.index >= 1 and "saddle" in point.kind
    assert point.spectrum.escape_rate > 0


def test_escape_rate_matches_growth_of_symmetry_breaking():
    K = 2
    point = pa.find_fixed_point(GRADIENT_FLOW, _symmetric_guess(K), symmetric=True)
    # Perturb in parameter space (so the state stays realisable) by 1e-9 and integrate.
    W = reduced.reduced_student(point.params)
    W = W + 1e-9 * jax.random.normal(jax.random.key(1), W.shape)
    start = reduced.reduced_order_params(W, point.params)
    traj = px.integrate(start, GRADIENT_FLOW, np.linspace(0, 4000, 401))
    breaking = np.asarray(pa.symmetry_breaking(traj.params))
    # Fit where the unstable mode dominates (stable modes decayed) and is still linear.
    window = (breaking > 1e-6) & (breaking < 1e-3)
    assert window.sum() > 50
    rate = np.polyfit(np.asarray(traj.t)[window], np.log(breaking[window]), 1)[0]
    # Linear theory: e^{lambda_+ alpha}; nonlinear corrections are O(1e-3) relative here.
    assert rate == pytest.approx(point.spectrum.escape_rate, rel=1e-3)


def test_plateau_length_scales_like_log_of_initial_asymmetry():
    K = 2
    point = pa.find_fixed_point(GRADIENT_FLOW, _symmetric_guess(K), symmetric=True)
    asymmetries = np.array([1e-4, 1e-6, 1e-8, 1e-10, 1e-12])
    exits = []
    for a in asymmetries:
        start = px.classic_start(K, np.eye(K), jax.random.key(0), overlap_max=a)
        traj = px.integrate(start, GRADIENT_FLOW, px.log_grid(3e4, 400))
        exits.append(pa.find_plateau(traj.t, traj.eg).exit)
    slope, _ = np.polyfit(np.log(1 / asymmetries), exits, 1)
    residuals = np.asarray(exits) - np.polyval(
        np.polyfit(np.log(1 / asymmetries), exits, 1), np.log(1 / asymmetries)
    )
    # The exit time grows by 1/lambda_+ per e-fold of asymmetry; the grid (400 log-spaced
    # saves to 3e4: ~2.4% spacing) and the O(1) exit threshold allow a few percent.
    assert slope == pytest.approx(1 / point.spectrum.escape_rate, rel=0.05)
    assert np.max(np.abs(residuals)) < 0.05 * np.ptp(exits)


@pytest.mark.parametrize("K", [2, 3])
def test_optimum_is_stable_and_spectrum_invariant_to_unit_order(K):
    T = np.eye(K)
    for dynamics in (GRADIENT_FLOW, px.OnlineSGD(ETA)):
        point = pa.find_fixed_point(dynamics, px.OrderParams(0.9 * np.eye(K), 0.9 * np.eye(K), T))
        assert point.converged and point.eg < 1e-12
        assert np.all(point.spectrum.eigenvalues.real < 0) and point.kind == "stable"
    # Permuting student units (and, separately, teacher units) leaves the spectrum unchanged.
    rng = np.random.default_rng(0)
    state = jax.tree.map(
        lambda x: x[0], pa.random_states(px.OrderParams(np.eye(K), np.eye(K), T), 1, jax.random.key(2))
    )
    base = np.sort_complex(pa.spectrum(px.OnlineSGD(ETA), state).eigenvalues)
    perm = rng.permutation(K)
    permuted = px.OrderParams(state.Q[perm][:, perm], state.R[perm], T)
    np.testing.assert_allclose(
        np.sort_complex(pa.spectrum(px.OnlineSGD(ETA), permuted).eigenvalues), base, atol=1e-12
    )
    teacher_perm = px.OrderParams(state.Q, state.R[:, perm], T[perm][:, perm])
    np.testing.assert_allclose(
        np.sort_complex(pa.spectrum(px.OnlineSGD(ETA), teacher_perm).eigenvalues), base, atol=1e-12
    )


def test_jacfwd_matches_finite_differences():
    dynamics = px.OnlineSGD(0.3, noise=0.2)
    state = jax.tree.map(lambda x: x[0], pa.random_states(_symmetric_guess(3, 2), 1, jax.random.key(5)))
    J = pa.jacobian(dynamics, state)
    y = np.asarray(px.flatten_learned(state))
    h = 1e-6
    fd = np.empty_like(J)
    for j in range(y.size):
        e = np.zeros_like(y)
        e[j] = h
        plus = dynamics.flat_vector_field(y + e, state)
        minus = dynamics.flat_vector_field(y - e, state)
        fd[:, j] = (np.asarray(plus) - np.asarray(minus)) / (2 * h)
    # Central differences: truncation O(h^2) ~ 1e-12, round-off O(eps/h) ~ 1e-10.
    np.testing.assert_allclose(J, fd, atol=1e-8)


def test_reduced_gradient_flow_pushes_forward_to_order_parameter_flow():
    state = jax.tree.map(lambda x: x[0], pa.random_states(_symmetric_guess(3, 2), 1, jax.random.key(7)))
    W = reduced.reduced_student(state)
    back = reduced.reduced_order_params(W, state)
    np.testing.assert_allclose(back.Q, state.Q, atol=1e-12)
    np.testing.assert_allclose(back.R, state.R, atol=1e-12)
    dW = -ETA * np.asarray(reduced.reduced_gradient(W, state))
    B = np.asarray(reduced.reduced_teacher(state.T, state.K))
    W = np.asarray(W)
    rates = GRADIENT_FLOW.vector_field(state)
    np.testing.assert_allclose(dW @ W.T + W @ dW.T, rates.Q, atol=1e-14)
    np.testing.assert_allclose(dW @ B.T, rates.R, atol=1e-14)


def test_hessian_spectrum_maps_to_order_parameter_spectrum_at_fixed_points(spurious_minimum):
    K = 2
    optimum = px.OrderParams(np.eye(K), np.eye(K), np.eye(K))
    H = reduced.reduced_hessian(optimum)
    np.testing.assert_allclose(H, H.T, atol=1e-12)  # -eta * H is the (symmetric) Jacobian
    predicted = reduced.order_parameter_rates(optimum, ETA)
    actual = np.sort(pa.spectrum(GRADIENT_FLOW, optimum).eigenvalues.real)
    np.testing.assert_allclose(predicted, actual, atol=1e-12)
    # The K = 3, M = 2 spurious minimum (students in the teacher span) obeys the same map.
    point = spurious_minimum
    np.testing.assert_allclose(
        reduced.order_parameter_rates(point.params, ETA),
        np.sort(point.spectrum.eigenvalues.real),
        atol=1e-10,
    )


def test_search_finds_optimum_plateau_and_spurious_minimum():
    starts = pa.random_states(
        px.OrderParams(0.5 * np.eye(2), np.zeros((2, 2)), np.eye(2)), 64, jax.random.key(0), scale=0.8
    )
    points = pa.search_fixed_points(GRADIENT_FLOW, starts)
    egs = np.array([p.eg for p in points])
    assert any(p.eg < 1e-12 and p.kind == "stable" for p in points)
    published = (2 / np.pi) * (np.pi / 6 - 2 * np.arcsin(1 / 4))
    plateau = [p for p in points if abs(p.eg - published) < 1e-8]
    assert plateau and "saddle" in plateau[0].kind
    assert float(plateau[0].distances["overlap_min"]) < 1e-6  # on the overlap singularity
    assert np.all(np.diff(egs) >= 0)  # sorted
    for p in points:  # every reported point is a genuine, valid fixed point
        assert p.residual < 1e-9 and p.converged


def test_continuation_in_teacher_correlation():
    def family(c):
        return GRADIENT_FLOW, px.OrderParams(np.eye(2), np.eye(2), px.correlated_teacher(2, c))

    points = pa.continuation(family, [0.0, 0.3, 0.6, 0.9], _symmetric_guess(2), symmetric=True)
    assert all(p.converged for p in points)
    published = (2 / np.pi) * (np.pi / 6 - 2 * np.arcsin(1 / 4))
    assert points[0].eg == pytest.approx(published, rel=1e-9)
    egs = [p.eg for p in points]
    # A more correlated teacher is easier to approximate by one repeated unit.
    assert all(a > b for a, b in zip(egs, egs[1:]))
    # The escape rate shrinks as the optimum approaches the singular set.
    rates = [p.spectrum.escape_rate for p in points]
    assert all(a > b for a, b in zip(rates, rates[1:]))


def test_singular_distances_match_network_geometry():
    params = jax.tree.map(lambda x: x[0], pa.random_states(_symmetric_guess(3, 2), 1, jax.random.key(9)))
    student, _ = px.networks_from_order_params(params, 50, jax.random.key(1))
    J = np.asarray(student.weights)
    d = pa.singular_distances(params)
    pairs = [(0, 1), (0, 2), (1, 2)]
    expected = [np.sum((J[i] - J[k]) ** 2) / 50 for i, k in pairs]
    np.testing.assert_allclose(d["overlap"], expected, rtol=1e-10)
    np.testing.assert_allclose(d["norm"], np.sum(J**2, axis=1) / 50, rtol=1e-10)
    np.testing.assert_allclose(d["output_weight"], 1.0)
    assert float(d["overlap_min"]) == pytest.approx(min(expected), rel=1e-10)


def test_bad_solver_name():
    with pytest.raises(ValueError, match="unknown root finder 'bisect'"):
        pa.find_fixed_point(GRADIENT_FLOW, _symmetric_guess(2), solver="bisect")
