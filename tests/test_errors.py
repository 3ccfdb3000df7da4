"""Bad input gives clear errors that name the problem."""

import equinox as eqx
import jax
import numpy as np
import pytest

import plateaux as px

from .helpers import NUM_SAVES, specialised_start, stack

GOOD_Q = np.array([[0.6, 0.05], [0.05, 0.4]])
GOOD_R = np.array([[0.7, 0.0], [0.05, 0.5]])
T2 = np.eye(2)
TS = np.linspace(0.0, 2000.0, NUM_SAVES)


# ---------------------------------------------------------------------------------------
# Invalid states
# ---------------------------------------------------------------------------------------


def test_non_psd_overlaps():
    # R_11 = 1.5 > sqrt(Q_11 T_11) = 1: no vectors have these overlaps.
    bad = px.OrderParams(np.eye(2), [[1.5, 0.0], [0.0, 0.0]], T2)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        px.check_order_params(bad)
    with pytest.raises(ValueError, match="params0.*not positive semi-definite"):
        px.integrate(bad, 0.1, TS)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        px.networks_from_order_params(bad, 10, jax.random.PRNGKey(0))


def test_non_psd_overlaps_under_jit():
    bad = px.OrderParams(np.eye(2), [[1.5, 0.0], [0.0, 0.0]], T2)
    with pytest.raises(RuntimeError, match="non-PSD joint covariance"):
        eqx.filter_jit(px.check_order_params)(bad).Q.block_until_ready()


def test_mismatched_shapes():
    with pytest.raises(ValueError, match=r"Q has shape \(2, 2\) but R has shape \(3, 2\)"):
        px.OrderParams(np.eye(2), np.zeros((3, 2)), T2)
    with pytest.raises(ValueError, match=r"T has shape \(3, 3\).*must have shape \(2, 2\)"):
        px.OrderParams(np.eye(2), np.zeros((2, 2)), np.eye(3))
    with pytest.raises(ValueError, match=r"v has shape \(3,\)"):
        px.OrderParams(np.eye(2), np.zeros((2, 2)), T2, v=np.ones(3))
    with pytest.raises(ValueError, match="must be matrices"):
        px.OrderParams(np.ones(2), np.zeros((2, 2)), T2)


def test_nan_in_q():
    Q = GOOD_Q.copy()
    Q[0, 1] = Q[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"params\.Q has non-finite entries"):
        px.check_order_params(px.OrderParams(Q, GOOD_R, T2))
    with pytest.raises(ValueError, match=r"params0\.Q has non-finite entries"):
        px.integrate(px.OrderParams(Q, GOOD_R, T2), 0.1, TS)


def test_non_symmetric_q():
    Q = GOOD_Q.copy()
    Q[0, 1] += 1e-3
    with pytest.raises(ValueError, match=r"Q is not symmetric"):
        px.check_order_params(px.OrderParams(Q, GOOD_R, T2))


def test_no_units():
    with pytest.raises(ValueError, match="at least one student"):
        px.OrderParams(np.zeros((0, 0)), np.zeros((0, 2)), T2)
    with pytest.raises(ValueError, match="K=0"):
        px.classic_start(0, T2, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="M=0"):
        px.correlated_teacher(0)
    with pytest.raises(ValueError, match="K >= 1"):
        px.SoftCommittee.gaussian(0, 10, jax.random.PRNGKey(0))


def test_correlated_teacher_range():
    with pytest.raises(ValueError, match=r"teacher correlation c=1.5 must lie in \[-0.5, 1\]"):
        px.correlated_teacher(3, 1.5)
    # -1/(M-1) is the PSD limit: -0.6 < -0.5 for M = 3.
    with pytest.raises(ValueError, match="teacher correlation c=-0.6"):
        px.correlated_teacher(3, -0.6)
    with pytest.raises(ValueError, match="teacher correlation c=nan"):
        px.correlated_teacher(2, float("nan"))
    # The boundaries themselves are valid (PSD, singular).
    for c in (-0.5, 1.0):
        px.check_order_params(px.OrderParams(np.zeros((1, 1)), np.zeros((1, 3)), px.correlated_teacher(3, c)))


# ---------------------------------------------------------------------------------------
# Invalid dynamics / integration settings
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("eta", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_learning_rate(eta):
    with pytest.raises(ValueError, match="learning rate eta must be finite and > 0"):
        px.OnlineSGD(eta)
    with pytest.raises(ValueError, match="learning rate eta must be finite and > 0"):
        px.integrate(specialised_start("K2M2"), eta, TS)


def test_bad_noise():
    with pytest.raises(ValueError, match="output noise .* >= 0"):
        px.OnlineSGD(0.1, noise=-0.1)
    with pytest.raises(ValueError, match="pass noise to the dynamics object"):
        px.integrate(specialised_start("K2M2"), px.OnlineSGD(0.1), TS, noise=0.1)


def test_bad_saving_times():
    params = specialised_start("K2M2")
    with pytest.raises(ValueError, match="strictly increasing"):
        px.integrate(params, 0.1, [0.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        px.integrate(params, 0.1, [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        px.integrate(params, 0.1, [0.0, np.nan])
    with pytest.raises(ValueError, match="at least two times"):
        px.integrate(params, 0.1, [0.0])
    with pytest.raises(ValueError, match="horizon must be finite and > 0"):
        px.integrate(params, 0.1, -5.0)


def test_bad_integrate_arguments():
    with pytest.raises(TypeError, match="params0 must be a plateaux.OrderParams"):
        px.integrate({"Q": GOOD_Q}, 0.1, TS)
    with pytest.raises(ValueError, match="max_steps must be positive"):
        px.integrate(specialised_start("K2M2"), 0.1, TS, max_steps=0)


# ---------------------------------------------------------------------------------------
# Runtime failures: divergence and step budget
# ---------------------------------------------------------------------------------------
# eta = 50 for K = M = 2 (T = I): Q_ii grows without bound (measured: Q_ii ~ 2.7e3 at
# alpha = 100) and crosses the default q_max = 1e4 at alpha ~ 936 < 2000. Smaller rates
# (eta = 3..10) only settle at a large-Q state or grow slowly, without crossing by 1e4.
DIVERGENT_ETA = 50.0


def test_divergence_flagged_without_throw():
    traj = px.integrate(specialised_start("K2M2"), DIVERGENT_ETA, TS, throw=False)
    assert traj.status == px.Status.DIVERGED
    t_stop = float(traj.t_stop)
    assert 0.0 < t_stop < TS[-1]
    after = TS > t_stop
    assert after.any() and np.all(np.isnan(np.asarray(traj.eg)[after]))
    before = np.asarray(traj.Q)[~after]
    assert np.all(np.isfinite(before))
    assert np.max(np.diagonal(before, axis1=-2, axis2=-1)) > 1e3  # it was really running away


def test_divergence_raises_for_batches():
    batch = stack([specialised_start("K2M2")] * 8)
    with pytest.raises(RuntimeError, match=r"diverged.*batch member.*eta=50"):
        px.integrate(batch, DIVERGENT_ETA, TS)


def test_divergence_raises():
    with pytest.raises(RuntimeError, match="diverged"):
        px.integrate(specialised_start("K2M2"), DIVERGENT_ETA, TS)


def test_max_steps_flagged_without_throw():
    traj = px.integrate(specialised_start("K2M2"), 0.5, TS, max_steps=20, throw=False)
    assert traj.status == px.Status.MAX_STEPS
    after = TS > float(traj.t_stop)
    assert after.any() and np.all(np.isnan(np.asarray(traj.eg)[after]))


def test_max_steps_raises():
    with pytest.raises(RuntimeError, match="ran out of solver steps"):
        px.integrate(specialised_start("K2M2"), 0.5, TS, max_steps=20)


# ---------------------------------------------------------------------------------------
# Simulation
# ---------------------------------------------------------------------------------------


def test_simulate_bad_input():
    key = jax.random.PRNGKey(0)
    student = px.SoftCommittee.gaussian(2, 20, key)
    teacher = px.SoftCommittee.gaussian(2, 30, key)
    with pytest.raises(ValueError, match="student N=20 and teacher N=30 differ"):
        px.simulate(student, teacher, 0.5, 100, key)
    teacher = px.SoftCommittee.gaussian(2, 20, key)
    with pytest.raises(ValueError, match="record_every=30 must be >= 1 and divide n_steps=100"):
        px.simulate(student, teacher, 0.5, 100, key, record_every=30)
    with pytest.raises(ValueError, match="eta must be finite and > 0"):
        px.simulate(student, teacher, 0.0, 100, key, record_every=10)
    with pytest.raises(ValueError, match="noise .* must be >= 0"):
        px.simulate(student, teacher, 0.5, 100, key, record_every=10, noise=-1.0)
    with pytest.raises(ValueError, match="n_steps must be >= 1"):
        px.simulate(student, teacher, 0.5, 0, key)
    with pytest.raises(ValueError, match="input dimensions differ"):
        px.order_parameters(student, px.SoftCommittee.gaussian(2, 30, key))


def test_networks_need_room():
    params = specialised_start("K2M2")
    with pytest.raises(ValueError, match="N=3 is too small"):
        px.networks_from_order_params(params, 3, jax.random.PRNGKey(0))
