"""Learning-rate schedules eta(alpha): the schedule classes, the time-dependent ODE
(`Scheduled`, `px.integrate(params0, schedule, ts)`), the scheduled finite-N simulation, and
bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plateaux as px
from plateaux import schedules as S

from .helpers import specialised_start


def test_schedule_values():
    """Each family evaluates to its formula (hand-computed points)."""
    assert float(S.Constant(0.3)(7.0)) == 0.3
    pc = S.PiecewiseConstant([1.0, 2.0], [0.5, 0.2, 0.1])
    np.testing.assert_array_equal(
        pc(jnp.array([0.0, 0.999, 1.0, 1.5, 2.0, 9.0])), [0.5, 0.5, 0.2, 0.2, 0.1, 0.1]
    )
    pl = S.PiecewiseLinear([0.0, 10.0], [1.0, 0.5])
    np.testing.assert_allclose(pl(jnp.array([-1.0, 0.0, 5.0, 10.0, 20.0])), [1.0, 1.0, 0.75, 0.5, 0.5])
    inv = S.InverseTime(2.0, 10.0, 1.0)
    np.testing.assert_allclose(inv(jnp.array([0.0, 10.0, 30.0])), [2.0, 1.0, 0.5])
    b = S.Bounded.from_values([0.0, 10.0], [0.5, 1.5], 2.0)
    np.testing.assert_allclose(b(jnp.array([0.0, 10.0])), [0.5, 1.5], rtol=1e-14)
    # Between knots: sigmoid of the interpolated logit, inside (0, eta_max).
    mid = float(b(5.0))
    assert 0.5 < mid < 1.5
    np.testing.assert_allclose(mid, 2.0 / (1 + np.exp(-0.5 * (np.log(1 / 3) + np.log(3)))))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: S.Constant(-0.1), "eta"),
        (lambda: S.Constant(np.nan), "eta"),
        (lambda: S.PiecewiseConstant([1.0, 1.0], [0.1, 0.2, 0.3]), "boundaries"),
        (lambda: S.PiecewiseConstant([1.0], [0.1, 0.2, 0.3]), "one more value"),
        (lambda: S.PiecewiseConstant([1.0], [0.1, -0.2]), "values"),
        (lambda: S.PiecewiseLinear([0.0, 2.0, 1.0], [0.1, 0.2, 0.3]), "knots"),
        (lambda: S.PiecewiseLinear([0.0, 1.0], [0.1, np.inf]), "values"),
        (lambda: S.PiecewiseLinear([0.0, 1.0], [0.1]), "one value per knot"),
        (lambda: S.InverseTime(1.0, 0.0), "alpha0"),
        (lambda: S.InverseTime(1.0, 1.0, -1.0), "beta"),
        (lambda: S.Bounded.from_values([0.0, 1.0], [0.5, 2.0], 2.0), "eta_max"),
        (lambda: S.Bounded([0.0, 1.0], [0.0, np.nan], 2.0), "logits"),
        (lambda: S.Bounded([1.0, 0.0], [0.0, 0.0], 2.0), "knots"),
        (lambda: S.Scheduled(px.OnlineSGD(0.1), 0.5), "AbstractSchedule"),
    ],
)
def test_bad_schedules_raise(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_scheduled_vector_field_needs_a_time():
    """Scheduled(base, schedule) at time t is the base field at eta(t), for online SGD and
    natural gradient; the autonomous vector_field refuses."""
    p = specialised_start("K2M2")
    for base, plain in (
        (px.OnlineSGD(1.0), px.OnlineSGD(0.2)),
        (px.natural.NaturalGradientSGD(1.0), px.natural.NaturalGradientSGD(0.2)),
    ):
        dyn = S.Scheduled(base, S.PiecewiseConstant([1.0], [0.7, 0.2]))
        with pytest.raises(ValueError, match="time dependent"):
            dyn.vector_field(p)
        at = eqx.filter_jit(lambda d, q: px.flatten_learned(d.vector_field_at(q, 3.0)))(dyn, p)
        ref = eqx.filter_jit(lambda d, q: px.flatten_learned(d.vector_field(q)))(plain, p)
        np.testing.assert_allclose(np.asarray(at), np.asarray(ref), rtol=1e-14, atol=1e-16)


GRID = np.linspace(0.0, 60.0, 13)


def test_constant_schedule_equals_plain_eta():
    """A Constant schedule runs exactly the same arithmetic as the plain eta (bitwise)."""
    p0 = px.scenarios.regular(2).params0
    a = px.integrate(p0, S.Constant(0.7), GRID)
    b = px.integrate(p0, 0.7, GRID)
    np.testing.assert_array_equal(np.asarray(a.eg), np.asarray(b.eg))
    np.testing.assert_array_equal(np.asarray(a.Q), np.asarray(b.Q))


def test_piecewise_schedule_equals_hand_piecewise_integration():
    """PiecewiseConstant in one adaptive solve == two solves with constant eta, the second
    started from the first's end state at the boundary. Both at rtol = 1e-10, atol = 1e-12:
    the global error of each is ~1e-9 in the state over alpha = 60 of transient and plateau
    approach (no exponential amplification yet), so 1e-7 is tolerance with margin; the
    schedule's effect (eta 0.5 -> 1.5) moves the state by > 1e-2, so the test has power.
    (All grids have 13 points, so the plain-eta solves share one compilation.)"""
    p0 = specialised_start("K2M2")
    boundary, etas = 20.0, (0.5, 1.5)
    tol = dict(rtol=1e-10, atol=1e-12)
    sched = px.integrate(p0, S.PiecewiseConstant([boundary], etas), GRID, **tol)
    first = px.integrate(p0, etas[0], np.linspace(0.0, boundary, 13), **tol)
    second = px.integrate(px.take_time(first.params, -1), etas[1], np.linspace(boundary, 60.0, 13), **tol)
    # GRID[4] = 20 = end of the first piece; GRID[8] = 40 = second[6]; GRID[12] = 60 = second[12].
    for i, (piece, j) in {4: (first, 12), 8: (second, 6), 12: (second, 12)}.items():
        np.testing.assert_allclose(np.asarray(sched.Q[i]), np.asarray(piece.Q[j]), atol=1e-7)
        np.testing.assert_allclose(np.asarray(sched.R[i]), np.asarray(piece.R[j]), atol=1e-7)
    constant = px.integrate(p0, etas[0], GRID, **tol)
    assert np.max(np.abs(np.asarray(constant.R[-1]) - np.asarray(second.R[-1]))) > 1e-2


# ODE vs simulation with a schedule: same protocol and allowance as tests/test_simulation.py
# (mean over seeds within 3 standard errors plus C / N, C = 0.05 measured there for K = M = 2
# from this start; the schedule stays within the eta range measured there or below).
# 13 records (every 2 alpha to 24), the grid length of GRID: the plain-eta solve is shared.
N, N_SEEDS, HORIZON, RECORD_EVERY = 500, 8, 24, 1000
CHECK = (4.0, 8.0, 12.0, 16.0, 20.0, 24.0)
SCHEDULE = S.PiecewiseLinear([0.0, 24.0], [1.0, 0.2])


@pytest.fixture(scope="module")
def scheduled_simulation():
    p0 = specialised_start("K2M2")
    k_nets, k_sim = jax.random.split(jax.random.PRNGKey(7))
    student, teacher = px.networks_from_order_params(p0, N, k_nets)
    run = jax.vmap(
        lambda k: px.simulate(student, teacher, SCHEDULE, N * HORIZON, k, record_every=RECORD_EVERY)
    )
    sims = run(jax.random.split(k_sim, N_SEEDS))
    return sims, px.integrate_from_simulation(sims)


def _discrepancy(sims, eg):
    t = np.asarray(sims.t[0])
    idx = [int(np.argmin(np.abs(t - c))) for c in CHECK]
    np.testing.assert_allclose(t[idx], CHECK)
    d = np.asarray(sims.eg) - np.asarray(eg)
    return d.mean(axis=0)[idx], d.std(axis=0, ddof=1)[idx] / np.sqrt(N_SEEDS)


def test_scheduled_simulation_matches_ode(scheduled_simulation):
    sims, traj = scheduled_simulation
    assert isinstance(sims.rule, S.ScheduledRule)
    mean, se = _discrepancy(sims, traj.eg)
    assert np.all(np.abs(mean) <= 3 * se + 0.05 / N), (mean, se)
    # Power: the ODE at the constant eta(0) = 1.0 (the schedule ignored) is rejected.
    p0 = jax.tree.map(lambda x: x[0], px.take_time(sims.params, 0))
    wrong = px.integrate(p0, 1.0, np.asarray(sims.t[0]))
    mean_w, se_w = _discrepancy(sims, np.asarray(wrong.eg)[None])
    assert np.any(np.abs(mean_w) > 3 * se_w + 0.05 / N), (mean_w, se_w)
