"""ReLU: the order-parameter ODE against finite-N online SGD (K = M = 2), statistically.

Same criterion as tests/test_simulation.py (erf): the mean over seeds of (sim - ODE) eps_g,
the ODE started from the simulated networks' own initial overlaps, must lie within
3 standard errors plus an allowance C / N for the O(1/N) finite-size bias.

Measured (N = 400, eta = 0.5, 8 seeds, start `SPECIALISED_STARTS["K2M2"]`, alpha 5..20):
N * mean(sim - ODE) = 0.19, 0.12, 0.016, 0.0006 with N * SE = 0.21, 0.11, 0.040, 0.016,
i.e. no resolved bias (|z| <= 1.05). C = 0.1: twice the erf value of test_simulation (0.05),
because ReLU's g' = 1 on half the line makes the eta^2 term (the source of the 1/N
corrections) larger. Power: the same bound rejects the ODE with eta 20% too large at every
checked time (z = 4.5..11.5, N * mean = 0.95..0.18 against bounds 0.74..0.15).
"""

import jax
import numpy as np
import pytest

import plateaux as px

from .helpers import specialised_start

N = 400
ETA = 0.5
HORIZON = 20
N_SEEDS = 8
RECORD_EVERY = N * HORIZON // 80  # 81 records, the grid length the other ODE tests use
CHECK_TIMES = (5.0, 10.0, 15.0, 20.0)
ALLOWANCE = 0.1  # C in |bias| <= C / N (module docstring)


@pytest.fixture(scope="module")
def relu_runs():
    params0 = specialised_start("K2M2")
    student, teacher = px.networks_from_order_params(params0, N, jax.random.PRNGKey(1), activation=px.ReLU())
    run = jax.vmap(lambda k: px.simulate(student, teacher, ETA, N * HORIZON, k, record_every=RECORD_EVERY))
    sims = run(jax.random.split(jax.random.PRNGKey(2), N_SEEDS))
    # All seeds share the initial networks, so one unbatched solve predicts them all.
    first = jax.tree.map(lambda x: x[0], px.take_time(sims.params, 0))
    t = np.asarray(sims.t[0])
    return sims, first, t


def _discrepancy(sims, traj, t):
    d = np.asarray(sims.eg) - np.asarray(traj.eg)[None]
    idx = [int(np.argmin(np.abs(t - c))) for c in CHECK_TIMES]
    np.testing.assert_allclose(t[idx], CHECK_TIMES)
    mean, se = d.mean(axis=0)[idx], d.std(axis=0, ddof=1)[idx] / np.sqrt(d.shape[0])
    return mean, se, 3 * se + ALLOWANCE / N


def test_relu_ode_matches_simulation(relu_runs):
    sims, first, t = relu_runs
    traj = px.integrate(first, px.OnlineSGD(ETA, activation=px.ReLU()), t)
    mean, se, bound = _discrepancy(sims, traj, t)
    assert np.all(np.abs(mean) <= bound), (mean, se, bound)
    # Something happens: eps_g falls by > 10x between alpha = 5 and 20 (measured 23x).
    eg = np.asarray(traj.eg)
    assert eg[20] > 10 * eg[80]


def test_relu_criterion_rejects_a_wrong_eta(relu_runs):
    sims, first, t = relu_runs
    wrong = px.integrate(first, px.OnlineSGD(1.2 * ETA, activation=px.ReLU()), t)
    mean, se, bound = _discrepancy(sims, wrong, t)
    assert np.all(np.abs(mean) > bound), (mean, se, bound)


def test_erf_ode_is_rejected_for_relu_networks(relu_runs):
    # The activation matters: the erf ODE from the same overlaps is far off.
    sims, first, t = relu_runs
    wrong = px.integrate(first, px.OnlineSGD(ETA), t)
    mean, se, bound = _discrepancy(sims, wrong, t)
    assert np.any(np.abs(mean) > bound), (mean, se, bound)
