"""Weight decay of the hidden layer (and the trained second layer's update): the exact
finite-N step, the exact decay terms of the ODE, the pure-decay closed form (ODE and finite N),
and bad input. ODE vs finite-N simulation with decay, noise and a trained v together is in
test_second_layer.py."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plateaux as px

from .helpers import NUM_SAVES, random_order_params

ETA, LAMBDA = 0.5, 0.1
_field = eqx.filter_jit(lambda dynamics, params: dynamics.vector_field(params))


def test_one_step_with_decay_and_trained_v(getkey):
    """One step of `SGD(eta_v=, weight_decay=)` is exactly
    J_i <- (1 - eta lambda / N) J_i + (eta / sqrt N) v_i g'(x_i)(tau - sigma) xi and
    v_i <- v_i + (eta_v / N) g(x_i)(tau - sigma), with the *old* v in the J step."""
    K, M, n, eta_v = 3, 2, 40, 0.7
    student = px.SoftCommittee.gaussian(K, n, getkey(), v=jnp.array([0.8, 1.1, -0.6]))
    teacher = px.SoftCommittee.gaussian(M, n, getkey())
    xi = jax.random.normal(getkey(), (n,))
    label = teacher(xi) + 0.3
    rule = px.SGD(eta_v=eta_v, weight_decay=LAMBDA)
    params = rule.parameters(student)
    step = eqx.filter_jit(rule.update)
    (J1, v1), _ = step(params, rule.init(student, ETA), student, xi, label, jnp.asarray(ETA))

    J, v = np.asarray(student.weights), np.asarray(student.v)
    x = J @ np.asarray(xi) / math.sqrt(n)
    g = np.asarray(jax.scipy.special.erf(x / math.sqrt(2)))
    dg = math.sqrt(2 / math.pi) * np.exp(-0.5 * x**2)
    err = float(label) - g @ v
    J_expected = (1 - ETA * LAMBDA / n) * J + (ETA / math.sqrt(n)) * np.outer(v * dg * err, np.asarray(xi))
    v_expected = v + (eta_v / n) * g * err
    # Round-off of O(1) numbers only.
    np.testing.assert_allclose(np.asarray(J1), J_expected, rtol=0, atol=1e-13)
    np.testing.assert_allclose(np.asarray(v1), v_expected, rtol=0, atol=1e-14)
    assert np.abs(np.asarray(v1) - v).max() > 1e-3  # v moved


@pytest.mark.parametrize("learn_v", [False, True])
def test_decay_terms_of_the_ode(learn_v):
    """The decay adds exactly -2 eta lambda Q to dQ and -eta lambda R to dR, and nothing to dv
    (the second layer does not decay), also with noise."""
    params = random_order_params(np.random.default_rng(3), 3, 2)
    eta_v = 0.4 if learn_v else None
    with_decay = _field(px.OnlineSGD(ETA, 0.2, eta_v=eta_v, weight_decay=LAMBDA), params)
    without = _field(px.OnlineSGD(ETA, 0.2, eta_v=eta_v), params)
    np.testing.assert_allclose(
        np.asarray(with_decay.Q - without.Q), -2 * ETA * LAMBDA * np.asarray(params.Q), rtol=0, atol=1e-15
    )
    np.testing.assert_allclose(
        np.asarray(with_decay.R - without.R), -ETA * LAMBDA * np.asarray(params.R), rtol=0, atol=1e-15
    )
    np.testing.assert_array_equal(np.asarray(with_decay.v), np.asarray(without.v))
    assert bool(jnp.any(without.v != 0)) == learn_v


def test_pure_decay_closed_form(getkey):
    """With v = 0 (fixed) the gradient vanishes and only the decay acts, for any state:
    the ODE gives Q(alpha) = Q(0) exp(-2 eta lambda alpha), R(alpha) = R(0) exp(-eta lambda alpha);
    the finite-N rule gives exactly Q(0) (1 - eta lambda / N)^(2 mu) after mu steps, which
    differs from the ODE by O(1/N): (1 - x/N)^(N a) = exp(-x a)(1 - x^2 a / (2N) + ...)."""
    p = random_order_params(np.random.default_rng(5), 2, 2)
    params0 = px.OrderParams(p.Q, p.R, p.T, jnp.zeros(2), p.w)
    ts = np.linspace(0.0, 10.0, NUM_SAVES)  # the grid length of test_ode: its compiled solve
    traj = px.integrate(params0, px.OnlineSGD(ETA, weight_decay=LAMBDA), ts)
    decay = np.exp(-ETA * LAMBDA * ts)[:, None, None]
    # Solver tolerance rtol = 1e-8 per step: 1e-7 relative over the run.
    np.testing.assert_allclose(np.asarray(traj.params.Q), np.asarray(p.Q) * decay**2, rtol=1e-7)
    np.testing.assert_allclose(np.asarray(traj.params.R), np.asarray(p.R) * decay, rtol=1e-7)

    n = 200
    student, teacher = px.networks_from_order_params(params0, n, getkey())
    sim = px.simulate(student, teacher, ETA, 10 * n, getkey(), record_every=n, weight_decay=LAMBDA)
    steps = np.arange(11) * n
    factor = ((1 - ETA * LAMBDA / n) ** steps)[:, None, None]
    ode_Q = np.asarray(traj.params.Q)[:: (NUM_SAVES - 1) // 10]  # alpha = 0, 1, ..., 10
    # Products of 2000 factors: round-off ~ 1e-13 relative.
    np.testing.assert_allclose(np.asarray(sim.params.Q), np.asarray(p.Q) * factor**2, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(np.asarray(sim.params.R), np.asarray(p.R) * factor, rtol=1e-11, atol=1e-14)
    gap = np.abs(np.asarray(sim.params.Q) - ode_Q).max()
    x = 2 * ETA * LAMBDA
    assert gap <= 1.1 * x**2 * 10 / (2 * n) * np.abs(np.asarray(p.Q)).max()  # the O(1/N) term


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(eta_v=-0.1), "eta_v"),
        (dict(eta_v=0.0), "eta_v"),
        (dict(eta_v=float("nan")), "eta_v"),
        (dict(weight_decay=-0.01), "weight_decay"),
        (dict(weight_decay=float("inf")), "weight_decay"),
        (dict(noise=-0.5), "noise"),
    ],
)
def test_bad_input(getkey, kwargs, name):
    with pytest.raises(ValueError, match=name):
        px.OnlineSGD(ETA, **kwargs)
    student = px.SoftCommittee.gaussian(2, 10, getkey())
    teacher = px.SoftCommittee.gaussian(2, 10, getkey())
    with pytest.raises(ValueError, match=name):
        px.simulate(student, teacher, ETA, 10, getkey(), **kwargs)
    if name != "noise":
        with pytest.raises(ValueError, match=name):
            px.SGD(**kwargs)


def test_rule_and_sgd_options_conflict(getkey):
    student = px.SoftCommittee.gaussian(2, 10, getkey())
    with pytest.raises(ValueError, match="not both"):
        px.simulate(student, student, ETA, 10, getkey(), rule=px.SGD(), eta_v=0.1)


def _config(**model):
    return {
        "model": {"K": 2, "M": 2, **model},
        "learning": {"eta": 0.5, "noise": 0.1},
        "integration": {"horizon": 10.0},
    }


def test_config_model_keys():
    """[model] eta_v, weight_decay, teacher_activation reach the configured ODE; bad values are
    refused naming the key."""
    from plateaux.cli._config import ConfigError, parse_config

    dynamics = parse_config(_config(eta_v=0.3, weight_decay=0.01, teacher_activation="erf")).dynamics()
    assert dynamics.learn_v and float(dynamics.eta_v) == 0.3 and float(dynamics.weight_decay) == 0.01
    assert float(dynamics.noise) == 0.1
    plain = parse_config(_config()).dynamics()
    assert not plain.learn_v and float(plain.weight_decay) == 0.0
    for key, value in (
        ("eta_v", -1.0),
        ("eta_v", 0.0),
        ("weight_decay", -0.1),
        ("teacher_activation", "nope"),
    ):
        with pytest.raises(ConfigError, match=key):
            parse_config(_config(**{key: value}))


def test_linear_steady_state_with_decay_and_noise():
    """Linear g, K = M = 1, v = w = 1, noise s, decay lambda: the ODE is
    dR = eta (T - R) - eta lambda R, dQ = 2 eta (R - Q) + eta^2 (T - 2R + Q + s^2) - 2 eta lambda Q,
    with the fixed point R* = T / (1 + lambda), Q* = (2 (1 - eta) R* + eta (T + s^2)) / (2 + 2 lambda - eta)
    (derived by hand); the vector field vanishes there and not at the decay-free point."""
    eta, lam, s, T = 0.5, 0.1, 0.3, 1.3
    r = T / (1 + lam)
    q = (2 * (1 - eta) * r + eta * (T + s**2)) / (2 + 2 * lam - eta)
    point = px.OrderParams([[q]], [[r]], [[T]])
    dynamics = px.OnlineSGD(eta, s, px.activations.Linear(), weight_decay=lam)
    rates = _field(dynamics, point)
    # Closed-form averages of O(1) numbers: round-off only.
    np.testing.assert_allclose(np.asarray(rates.Q), 0.0, atol=1e-14)
    np.testing.assert_allclose(np.asarray(rates.R), 0.0, atol=1e-14)
    off = _field(dynamics, px.OrderParams([[1.0 + eta * s**2 / (2 - eta)]], [[1.0]], [[T]]))
    assert abs(float(off.R[0, 0])) > 1e-3
