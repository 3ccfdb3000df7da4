"""The order-parameter ODE of online SGD and its diffrax integration.

Witnesses: the published symmetric fixed point (Saad & Solla 1995), the loop-based NumPy
reference (`reference.ode_rhs`, `reference.integrate_reference` with scipy's DOP853),
finite differences, and exact invariances (permutations of student units, the symmetric
subspace).

Compilation is the main cost here (`integrate` compiles once per (K, M, batch, grid length,
solver settings)), so the integrations below share a few shapes: K = M = 2 or 3, grids of
`NUM_SAVES` points, default tolerances except where a test is about tolerances.
"""

import inspect

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plateaux as px
from plateaux import reference

from .helpers import (
    NUM_SAVES,
    random_order_params,
    specialised_start,
    stack,
    symmetric_fixed_point,
    symmetric_state,
    tree_allclose,
)

# Jitted helpers: one compile per shape instead of op-by-op compiles of every primitive.
_vector_field = eqx.filter_jit(lambda dynamics, params: dynamics.vector_field(params))
_flatten = eqx.filter_jit(px.flatten_learned)
_unflatten = eqx.filter_jit(px.unflatten_learned)

# The early-stopping thresholds the tests below exercise are integrate()'s defaults.
_DEFAULTS = inspect.signature(px.integrate).parameters
STOP_EG = _DEFAULTS["stop_eg"].default
STOP_RATE = _DEFAULTS["stop_rate"].default


@eqx.filter_jit
def _max_rate(dynamics, params):
    """max |dy/dalpha| in minimal coordinates: the quantity the early-stopping rule uses."""
    return jnp.max(jnp.abs(dynamics.flat_vector_field(px.flatten_learned(params), params)))


def _np(p):
    return tuple(np.asarray(x) for x in (p.Q, p.R, p.T, p.v, p.w))


# ---------------------------------------------------------------------------------------
# Vector field
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("K", [2, 3, 4])
def test_symmetric_fixed_point_is_stationary(K):
    """Saad & Solla's plateau point R_in = 1/sqrt(K(2K-1)), Q_ik = 1/(2K-1) (T = I) is a
    fixed point of the eta -> 0 equations."""
    params = symmetric_fixed_point(K)
    rates = _vector_field(px.OnlineSGD(0.3, eta_squared=False), params)
    # Exact zero up to round-off in sums of O(1) terms (observed <= 3e-17).
    assert float(jnp.max(jnp.abs(rates.Q))) < 1e-12
    assert float(jnp.max(jnp.abs(rates.R))) < 1e-12
    # Sanity of the witness: the eta^2 term does not vanish there (it is O(eta^2) ~ 1e-3),
    # so the check above is not trivially satisfied by a vector field that is always ~0.
    with_eta2 = _vector_field(px.OnlineSGD(0.3), params)
    assert float(jnp.max(jnp.abs(with_eta2.Q))) > 1e-4


@pytest.mark.parametrize("K, M", [(2, 2), (3, 2), (2, 3)])
def test_vector_field_matches_reference(rng, K, M):
    for _ in range(3):
        params = random_order_params(rng, K, M, random_vw=True)
        for eta_squared in (True, False):
            for noise in (0.0, 0.3):
                eta = rng.uniform(0.05, 2.0)
                rates = _vector_field(px.OnlineSGD(eta, noise, eta_squared=eta_squared), params)
                dQ, dR = reference.ode_rhs(*_np(params), eta, noise=noise, eta_squared=eta_squared)
                # Same averages, different code (scalar loops vs broadcast tensors): round-off
                # in sums of ~(K+M)^2 O(1) terms, ~1e-15. 1e-13 leaves a margin; a wrong term
                # or index would be O(eta * 1e-2) or larger.
                np.testing.assert_allclose(np.asarray(rates.Q), dQ, rtol=0, atol=1e-13)
                np.testing.assert_allclose(np.asarray(rates.R), dR, rtol=0, atol=1e-13)
                # Teacher and second layers are not learned.
                for field in (rates.T, rates.v, rates.w):
                    assert not np.any(np.asarray(field))


def test_vector_field_is_permutation_equivariant(rng):
    """Relabelling student units permutes the rates; symmetric states get symmetric rates."""
    params = random_order_params(rng, 3, 2)
    dynamics = px.OnlineSGD(0.7, 0.2)
    perm = np.array([2, 0, 1])
    permuted = px.OrderParams(params.Q[perm][:, perm], params.R[perm], params.T, params.v[perm], params.w)
    rates = _vector_field(dynamics, params)
    rates_p = _vector_field(dynamics, permuted)
    # Exact in exact arithmetic; round-off reorders sums, ~1e-16.
    np.testing.assert_allclose(np.asarray(rates_p.Q), np.asarray(rates.Q)[perm][:, perm], atol=1e-14)
    np.testing.assert_allclose(np.asarray(rates_p.R), np.asarray(rates.R)[perm], atol=1e-14)

    sym = _vector_field(dynamics, symmetric_state(3))
    Q, R = np.asarray(sym.Q), np.asarray(sym.R)
    off = Q[~np.eye(3, dtype=bool)]
    # Rates of a symmetric state are symmetric up to round-off (~1e-17 here); this one-step
    # statement is what makes the subspace invariant.
    assert np.ptp(np.diag(Q)) < 1e-15 and np.ptp(off) < 1e-15 and np.ptp(R) < 1e-15


def test_jacobian_matches_finite_differences(rng):
    """Autodiff Jacobian of the flat vector field vs central differences (float64)."""
    params = random_order_params(rng, 2, 2)
    dynamics = px.OnlineSGD(0.5, 0.1)
    y0 = px.flatten_learned(params)
    f = eqx.filter_jit(lambda y: dynamics.flat_vector_field(y, params))
    jac = np.asarray(eqx.filter_jit(jax.jacfwd(f))(y0))
    h = 1e-5
    fd = np.stack(
        [(np.asarray(f(y0 + h * e)) - np.asarray(f(y0 - h * e))) / (2 * h) for e in np.eye(y0.size)],
        axis=1,
    )
    # Central differences: truncation ~h^2 |f'''| ~ 1e-10, round-off ~1e-16/h ~ 1e-11.
    np.testing.assert_allclose(jac, fd, rtol=0, atol=1e-8)
    assert np.abs(jac).max() > 1e-2  # a non-trivial Jacobian


# ---------------------------------------------------------------------------------------
# Minimal coordinates
# ---------------------------------------------------------------------------------------


def test_minimal_coordinates_round_trip(rng):
    params = random_order_params(rng, 3, 2, random_vw=True)
    y = _flatten(params)
    # Upper triangle of Q (row-major, with diagonal) then R row-major: D = K(K+1)/2 + KM,
    # exactly the layout of the independent reference.pack_state.
    assert y.shape == (6 + 6,)
    np.testing.assert_array_equal(np.asarray(y), reference.pack_state(params.Q, params.R))
    assert tree_allclose(_unflatten(y, params), params)  # exact
    # And the other way round, from arbitrary coordinates.
    z = jnp.asarray(rng.standard_normal(12))
    back = _unflatten(z, params)
    np.testing.assert_array_equal(np.asarray(back.Q), np.asarray(back.Q).T)
    np.testing.assert_array_equal(np.asarray(_flatten(back)), np.asarray(z))
    # With the second layer.
    yv = _flatten(params, learn_v=True)
    assert yv.shape == (15,)
    np.testing.assert_array_equal(np.asarray(yv[-3:]), np.asarray(params.v))
    zv = jnp.asarray(rng.standard_normal(15))
    back_v = _unflatten(zv, params, learn_v=True)
    np.testing.assert_array_equal(np.asarray(back_v.v), np.asarray(zv[-3:]))
    np.testing.assert_array_equal(np.asarray(_flatten(back_v, learn_v=True)), np.asarray(zv))
    # Batched (template with the same batch axes).
    batch = stack([params, random_order_params(rng, 3, 2, random_vw=True)])
    yb = _flatten(batch)
    assert yb.shape == (2, 12)
    assert tree_allclose(_unflatten(yb, batch), batch)


# ---------------------------------------------------------------------------------------
# Integration
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plateau_run():
    """K = M = 2, T = I, eta = 0.5 from a classic start, through the plateau and its exit.

    overlap_max = 1e-6 instead of the classic 1e-12: with 1e-12 the exit time is not
    reproducible beyond ~0.3% *in either integrator*: scanning rtol over 1e-7..1e-12
    (diffrax) and 1e-9..1e-13 (DOP853), the alpha where eps_g crosses 1e-3 scatters over
    1123..1131 for both without converging (round-off seeds asymmetries of ~1e-16 that compete with the
    1e-12 seed), i.e. eps_g differs by up to 1e-3 between *correct* solvers. With 1e-6 the
    seed dominates round-off by 10 orders and both agree to ~1e-8; the exit is at ~690.
    """
    key = jax.random.PRNGKey(1)
    params0 = px.classic_start(2, px.correlated_teacher(2), key, overlap_max=1e-6)
    ts = np.linspace(0.0, 1000.0, NUM_SAVES)
    # The reference is the more accurate one: DOP853 at rtol 1e-12 (its own changes from
    # rtol 1e-11 -> 1e-12 are 3.5e-9 in eps_g, so its error is below ~1e-9).
    ref = reference.integrate_reference(*_np(params0), 0.5, ts, rtol=1e-12, atol=1e-14)
    assert ref["success"]
    return params0, ts, ref


def test_integrate_matches_reference_through_plateau(plateau_run):
    params0, ts, ref = plateau_run
    traj = px.integrate(params0, 0.5, ts)
    assert traj.status == px.Status.REACHED_HORIZON
    eg = np.asarray(traj.eg)
    # The trajectory really has a plateau and an exit (else the comparison is weak):
    # flat at ~0.0147 over alpha in [100, 350], exit around 500, learned by alpha = 1000.
    plateau = (ts >= 100) & (ts <= 350)
    assert np.all(eg[plateau] > 0.0144) and np.all(eg[plateau] < 0.016)
    assert eg[-1] < 1e-6
    # Tsit5 at rtol 1e-8 / atol 1e-10: measured max |diff| = 1e-8 (global error ~ rtol, see
    # test_error_is_proportional_to_tolerance); 1e-7 leaves a 10x margin. Through the
    # exit eps_g falls by 0.015 within ~100 alpha, so a shifted exit (wrong vector field,
    # wrong asymmetry handling) would show up at the 1e-4..1e-2 level.
    np.testing.assert_allclose(eg, ref["eg"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(np.asarray(traj.Q), ref["Q"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(np.asarray(traj.R), ref["R"], rtol=0, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(traj.t), ts)


def test_error_is_proportional_to_tolerance(plateau_run):
    """Global error vs the tight reference scales like rtol (tolerance proportionality)."""
    params0, ts, ref = plateau_run
    errors = {}
    for rtol in (1e-6, 1e-8):
        traj = px.integrate(params0, 0.5, ts, rtol=rtol, atol=rtol / 100)
        errors[rtol] = np.abs(np.asarray(traj.eg) - ref["eg"]).max()
    # Measured: 1.5e-6 and 1.0e-8 (ratio 150; error ~ 1-2 x rtol across rtol = 1e-4..1e-9).
    # Require error < 10 rtol at both, and at least a 10x gain for 100x tighter rtol.
    assert errors[1e-6] < 1e-5
    assert errors[1e-8] < 1e-7
    assert errors[1e-6] > 10 * errors[1e-8]


def test_batched_starts_match_one_by_one():
    key = jax.random.PRNGKey(2)
    starts = [
        px.classic_start(2, px.correlated_teacher(2), k, overlap_max=1e-6) for k in jax.random.split(key, 8)
    ]
    ts = np.linspace(0.0, 1000.0, NUM_SAVES)
    batched = px.integrate(stack(starts), 0.5, ts)
    assert batched.eg.shape == (8, NUM_SAVES)
    assert batched.Q.shape == (8, NUM_SAVES, 2, 2)
    for b, start in enumerate(starts):
        single = px.integrate(start, 0.5, ts)
        # vmap runs the same arithmetic per member (each with its own step size); observed
        # bitwise equal. 1e-12 allows round-off from reassociated batched reductions; a
        # different step sequence would show up at the rtol = 1e-8 level and fail.
        assert int(batched.num_steps[b]) == int(single.num_steps)
        np.testing.assert_allclose(np.asarray(batched.eg[b]), np.asarray(single.eg), rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.asarray(batched.Q[b]), np.asarray(single.Q), rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.asarray(batched.R[b]), np.asarray(single.R), rtol=0, atol=1e-12)
        assert int(batched.status[b]) == int(single.status)


def _asymmetry(traj):
    Q, R = np.asarray(traj.Q), np.asarray(traj.R)
    K = Q.shape[-1]
    off = Q[:, ~np.eye(K, dtype=bool)]
    diag = np.diagonal(Q, axis1=-2, axis2=-1)
    return max(
        np.ptp(diag, axis=-1).max(), np.ptp(off, axis=-1).max(), np.ptp(R.reshape(len(R), -1), axis=-1).max()
    )


def test_symmetric_subspace_is_invariant():
    """All Q_ii equal, all Q_ik equal, all R_in equal (T = I) stays so: the plateau.

    In exact arithmetic forever. In float64 the rates of a symmetric state are symmetric
    only to ~1e-17 (see test_vector_field_is_permutation_equivariant), and that round-off
    grows at the escape rate lambda_+ (~0.03 here): measured asymmetry 3e-15 at alpha = 100,
    5e-12 at 500, 3e-9 at 800, O(1) (plateau left) by alpha = 2000 for K = 3, eta = 0.5;
    the NumPy reference leaks the same way: a symmetric start leaves the plateau after
    ~ln(1e16)/lambda_+.
    So the check runs to alpha = 500, well into the plateau, with a 1e-10 bound (20x the
    measured 5e-12); a vector field that broke the symmetry at any O(1e-12) level would be
    amplified far beyond it.
    """
    traj = px.integrate(symmetric_state(3), 0.5, np.linspace(0.0, 500.0, NUM_SAVES))
    assert _asymmetry(traj) < 1e-10
    eg = np.asarray(traj.eg)
    # On the plateau (K = 3, eta = 0.5: eps_g ~ 0.0321) and flat: no exit.
    assert abs(eg[-1] - eg[NUM_SAVES // 2]) < 1e-4
    assert 0.03 < eg[-1] < 0.035
    assert traj.status == px.Status.REACHED_HORIZON


def test_plateau_does_not_trigger_early_stopping():
    """On a plateau the vector field can be tinier than `stop_rate`; only the error
    threshold keeps the solve going (K = 3, eta = 1: rates ~2e-9 at alpha = 500)."""
    ts = np.linspace(0.0, 500.0, NUM_SAVES)
    eta = 1.0
    traj = px.integrate(symmetric_state(3), eta, ts)
    final = traj.final
    rate = float(_max_rate(px.OnlineSGD(eta), final))
    assert rate < STOP_RATE  # the rate criterion alone would have fired
    assert float(traj.eg[-1]) > 0.05  # far above stop_eg
    assert traj.status == px.Status.REACHED_HORIZON
    assert float(traj.t_stop) == 500.0
    assert np.all(np.isfinite(np.asarray(traj.eg)))


def test_early_stopping_at_convergence():
    ts = np.linspace(0.0, 2000.0, NUM_SAVES)
    eta = 0.5
    traj = px.integrate(specialised_start("K2M2"), eta, ts)
    assert traj.status == px.Status.CONVERGED
    t_stop = float(traj.t_stop)
    assert 0.0 < t_stop < ts[-1]
    after = ts > t_stop
    assert after.sum() > 10  # the test exercises the fill-in
    # Saves after the stop repeat the final (converged) state exactly.
    idx_after = np.flatnonzero(after)
    for field in ("Q", "R", "eg"):
        values = np.asarray(getattr(traj, field))
        np.testing.assert_array_equal(values[idx_after], np.broadcast_to(values[-1], values[idx_after].shape))
    # The stop condition (default stop_eg, stop_rate) holds at the final state.
    # (It is checked at step ends only, so it may first hold mid-step, at an interpolated
    # save before t_stop; "stopped exactly when first true" is not a property to test.)
    dynamics = px.OnlineSGD(eta)
    final = traj.final
    assert abs(float(traj.eg[-1])) < STOP_EG
    assert float(_max_rate(dynamics, final)) < STOP_RATE
    # Before the stop the state still moves (no premature freezing of the saves).
    before = np.asarray(traj.eg)[~after]
    assert np.all(np.diff(before) != 0)
    # And the student learned the teacher.
    np.testing.assert_allclose(np.asarray(final.R), np.eye(2), atol=1e-4)


def test_converging_trajectory_stays_valid():
    """Every saved state is a valid state by the library's own check (its PSD tolerance,
    1e-7 max|C|, admits the ~-3e-10 eigenvalues that an rtol = 1e-8 integration leaves on the
    boundary of the PSD cone at the optimum)."""
    params0 = px.classic_start(2, px.correlated_teacher(2), jax.random.PRNGKey(0), overlap_max=1e-6)
    traj = px.integrate(params0, 0.5, np.linspace(0.0, 2000.0, NUM_SAVES))
    for i in range(NUM_SAVES):
        px.check_order_params(px.take_time(traj.params, i), f"state {i}")
    # eps_g >= 0 up to its resolution near the optimum: the covariance is singular there and
    # state errors of order rtol = 1e-8 shift eps_g linearly (README, "Early stopping").
    assert float(np.min(np.asarray(traj.eg))) >= -1e-8
