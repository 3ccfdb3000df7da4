"""Normalisation conventions: exact converters, the update rule behind them, results files."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plateaux as px
from plateaux.cli import main
from plateaux.cli._config import ConfigError, parse_config

from .helpers import NUM_SAVES, specialised_start

PAPER = px.Convention(output_scale="1/K", time_unit="eta*alpha/K", lr_scale="1/K")
OTHER = px.Convention(output_scale="1/sqrt(K)", time_unit="eta*alpha", lr_scale="K")


def test_convention_values_records_and_errors():
    for bad in (dict(output_scale="1/N"), dict(time_unit="steps"), dict(lr_scale="2")):
        with pytest.raises(ValueError, match=next(iter(bad))):
            px.Convention(**bad)
    assert px.Convention() == px.CANONICAL and px.CANONICAL.is_canonical and not PAPER.is_canonical
    assert len({PAPER, OTHER, px.Convention(**PAPER.to_dict())}) == 2  # hashable, value equality
    assert px.Convention.from_dict(json.loads(json.dumps(PAPER.to_dict()))) == PAPER
    with pytest.raises(ValueError, match="unknown convention key"):
        px.Convention.from_dict({"output_scale": "1/K", "scale": "1/K"})
    # A time unit in eta needs one learning rate: not a sweep, not a schedule, not none.
    for eta, match in ((np.array([0.1, 0.2]), "several learning rates"), (None, "needs the learning rate")):
        with pytest.raises(ValueError, match=match):
            PAPER.time_factor(eta, 3)
    with pytest.raises(ValueError, match="schedule"):
        PAPER.time_factor(lambda t: 0.1, 3)
    assert px.Convention(output_scale="1/K").time_factor(None) == 1.0  # alpha needs no eta


def test_converters_follow_the_definitions_and_invert_exactly():
    K, M = 3, 2
    p = px.OrderParams(np.eye(K) * 0.4, np.full((K, M), 0.1), np.eye(M), [1.0, 2.0, 0.5], [1.0, -1.5])
    alpha = np.array([0.0, 1.5, 40.0])
    eta_u, eta_v_u = 0.3, 0.7
    c = PAPER.to_canonical(p, eta_u, PAPER.from_alpha(alpha, eta_u, K), eta_v=eta_v_u)
    # From the definitions: v = v_hat / K, w = w_hat / M, eta = eta_hat / K,
    # eta_v = eta_v_hat / K^3 (s_K^2 l_K), t_hat = eta_hat alpha / K.
    assert np.allclose(c.params.v, np.asarray(p.v) / K, rtol=1e-15) and np.allclose(
        c.params.w, np.asarray(p.w) / M
    )
    assert np.isclose(c.eta, eta_u / K) and np.isclose(c.eta_v, eta_v_u / K**3)
    assert np.allclose(c.t, alpha, rtol=1e-15)
    assert np.array_equal(c.params.Q, p.Q) and np.array_equal(c.params.R, p.R)
    back = PAPER.from_canonical(*c)
    for field in "vw":  # exact up to one rounding each way
        assert np.allclose(getattr(back.params, field), getattr(p, field), rtol=3e-16, atol=0)
    assert np.isclose(back.eta, eta_u, rtol=3e-16) and np.isclose(back.eta_v, eta_v_u, rtol=3e-16)
    o = OTHER.to_canonical(p, eta_u, 2.0, eta_v=eta_v_u)  # 1/sqrt(K) outputs, step eta K, t = eta alpha
    assert np.allclose(o.params.v, np.asarray(p.v) / np.sqrt(K)) and np.isclose(o.eta, eta_u * K)
    assert np.isclose(o.eta_v, eta_v_u) and np.isclose(o.t, 2.0 / eta_u)  # s_K^2 l_K = 1


def test_same_run_in_two_conventions_gives_the_same_eg_curve():
    """One canonical run, rewritten in two literature conventions and integrated from there,
    gives the same eps_g(alpha) (rtol 1e-12 solves; differences come only from the O(1e-16)
    round-off of the converted eta, v, w and save times, amplified by the dynamics)."""
    p = specialised_start("K3M2")
    p = px.OrderParams(p.Q, p.R, p.T, [1.2, 0.9, 1.0], [1.0, 0.8])
    eta, alpha = 0.2, np.linspace(0.0, 60.0, NUM_SAVES)
    tol = dict(rtol=1e-12, atol=1e-14)
    ref = px.integrate(p, eta, alpha, **tol)
    for conv in (PAPER, OTHER):
        user = conv.from_canonical(p, eta, alpha)
        assert not np.allclose(user.t, alpha)  # the user's clock really differs
        traj = conv.integrate(user.params, user.eta, user.t, **tol)
        assert np.array_equal(traj.t, user.t)  # reported in the user's unit
        assert np.max(np.abs(traj.eg - ref.eg)) < 1e-10, conv
        assert np.allclose(traj.v[-1], user.params.v, rtol=1e-15)  # user's v, w come back
    assert np.ptp(ref.eg) > 1e-2  # the curve is not flat: the comparison has teeth


def test_time_unit_eta_alpha_makes_gradient_flow_eta_free():
    """Physics check of the eta*alpha unit: without the eta^2 term, the ODE in t = eta alpha
    does not depend on eta, so two learning rates give the same curve on the same t grid."""
    p = specialised_start("K2M2")
    conv = px.Convention(time_unit="eta*alpha")
    t = np.linspace(0.0, 8.0, NUM_SAVES)
    curves = [conv.integrate(p, eta, t, eta_squared=False, rtol=1e-12, atol=1e-14).eg for eta in (0.05, 0.4)]
    assert np.max(np.abs(curves[0] - curves[1])) < 1e-10
    assert np.ptp(curves[0]) > 1e-2


class _LiteralRule(px.AbstractUpdateRule):
    """The user's rule written out literally, without any converter: output
    s_K sum_i v_i g(x_i), label s_M tau_raw, step eta * l_K on the hidden weights."""

    s_K: float
    s_M: float
    lr: float

    def init(self, student, eta):
        return None

    def update(self, weights, state, student, xi, label, eta):
        def loss(J):
            net = eqx.tree_at(lambda s: s.weights, student, J)
            return 0.5 * (self.s_K * net(xi) - self.s_M * label) ** 2

        return weights - eta * self.lr * jax.grad(loss)(weights), state


def test_finite_n_rule_in_a_convention_matches_the_converted_canonical_run(getkey):
    """Same inputs (same key): the literal 1/K-convention rule and the canonical engine on the
    converted networks and eta produce the same weights up to float round-off."""
    conv = PAPER
    K, M, N = 3, 2, 60
    p = specialised_start("K3M2")
    student, teacher = px.networks_from_order_params(p, N, getkey())  # v = w = 1: the user's
    eta_u = 1.5
    rule = _LiteralRule(conv.output_factor(K), conv.output_factor(M), conv.lr_factor(K))
    key = getkey()
    literal = px.simulate(student, teacher, eta_u, 40 * N, key, record_every=4 * N, rule=rule)
    s_c, t_c = conv.networks_to_canonical(student, teacher)
    _, eta_c, _, _ = conv.to_canonical(p, eta_u)
    canonical = px.simulate(s_c, t_c, eta_c, 40 * N, key, record_every=4 * N)
    # Round-off only: the two compute the same update in a different order (1e-16 per step).
    assert np.max(np.abs(literal.params.Q - canonical.params.Q)) < 1e-12
    assert np.max(np.abs(literal.params.R - canonical.params.R)) < 1e-12
    assert np.max(np.abs(literal.params.Q[-1] - literal.params.Q[0])) > 1e-2  # it learned
    eg_user = px.generalization_error(conv.to_canonical(literal.params).params)
    assert np.max(np.abs(eg_user - canonical.eg)) < 1e-12
    # Without the conversion (v = 1, eta_hat) the engine follows a different trajectory.
    wrong = px.simulate(student, teacher, eta_u, 40 * N, key, record_every=4 * N)
    assert np.max(np.abs(wrong.params.R - literal.params.R)) > 1e-3


class _LiteralTwoLayerRule(px.AbstractUpdateRule):
    """Both layers trained in the user's convention, literally: output s_K sum_i v^_i g(x_i),
    steps eta^ l_K on J and eta_v^ l_K / N on v^ (gradients of the squared error)."""

    s_K: float
    s_M: float
    lr: float
    eta_v: float

    def parameters(self, student):
        return (student.weights, student.v)

    def network(self, student, parameters):
        return eqx.tree_at(lambda s: (s.weights, s.v), student, parameters)

    def init(self, student, eta):
        return None

    def update(self, weights, state, student, xi, label, eta):
        def loss(p):
            return 0.5 * (self.s_K * self.network(student, p)(xi) - self.s_M * label) ** 2

        dJ, dv = jax.grad(loss)(weights)
        J, v = weights
        return (J - eta * self.lr * dJ, v - self.eta_v * self.lr / student.N * dv), state


def test_trained_second_layer_rate_converts_with_s_k_squared(getkey):
    """eta_v = s_K^2 l_K eta_v^: the literal two-layer rule in the 1/K convention and the engine's
    SGD(eta_v) on the converted networks give the same J and v = s_K v^ up to round-off."""
    if (
        not hasattr(px.AbstractUpdateRule, "parameters")
        or "eta_v" not in px.SGD.__init__.__code__.co_varnames
    ):
        pytest.skip("needs a trainable second layer in the simulator (SGD(eta_v=...))")
    conv = PAPER
    K, M, N = 3, 2, 60
    p = specialised_start("K3M2")
    student, teacher = px.networks_from_order_params(p, N, getkey())
    eta_u, eta_v_u = 1.5, 6.0
    s_K, s_M = conv.output_factor(K), conv.output_factor(M)
    rule = _LiteralTwoLayerRule(s_K, s_M, conv.lr_factor(K), eta_v_u)
    key = getkey()
    literal = px.simulate(student, teacher, eta_u, 40 * N, key, record_every=4 * N, rule=rule)
    _, eta_c, _, eta_v_c = conv.to_canonical(p, eta_u, eta_v=eta_v_u)
    s_c, t_c = conv.networks_to_canonical(student, teacher)
    canonical = px.simulate(s_c, t_c, eta_c, 40 * N, key, record_every=4 * N, rule=px.SGD(eta_v=eta_v_c))
    # Round-off only (1e-16 per step, different order of operations).
    assert np.max(np.abs(s_K * literal.params.v - canonical.params.v)) < 1e-12
    assert np.max(np.abs(literal.params.R - canonical.params.R)) < 1e-12
    assert np.max(np.abs(canonical.params.v[-1] - canonical.params.v[0])) > 1e-3  # v learned


BASE = """
[model]
K = 2
M = 2
[student]
start = "explicit"
Q = [[0.6, 0.05], [0.05, 0.4]]
R = [[0.7, 0.0], [0.05, 0.5]]
[learning]
eta = 0.25
[integration]
num_saves = 80
"""


def _raw(text):
    import tomllib

    return tomllib.loads(text)


def test_cli_run_with_conventions_records_them_and_matches_the_api(tmp_path):
    text = (
        BASE + 'horizon = 25\n[conventions]\noutput_scale = "1/K"\ntime_unit = "eta*alpha"\nlr_scale = "K"\n'
    )
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(text)
    out = tmp_path / "out"
    assert main(["run", str(cfg_path), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rec = summary["convention"]
    assert {k: rec[k] for k in ("output_scale", "time_unit", "lr_scale")} == {
        "output_scale": "1/K",
        "time_unit": "eta*alpha",
        "lr_scale": "K",
    }
    assert rec["eta_canonical"] == 0.5 and rec["factors"]["t_over_alpha"] == 0.25
    assert "(1/K)" in summary["conventions"]["output"]
    data = np.load(out / "trajectory.npz")
    assert np.isclose(data["t"][-1], 100.0) and np.isclose(data["t_user"][-1], 25.0)  # alpha = t / eta
    assert np.allclose(data["v"], 0.5) and np.allclose(data["w"], 0.5)  # canonical arrays
    # The same run through the API, in the canonical convention.
    p = px.OrderParams(
        [[0.6, 0.05], [0.05, 0.4]], [[0.7, 0.0], [0.05, 0.5]], np.eye(2), [0.5, 0.5], [0.5, 0.5]
    )
    ref = px.integrate(p, 0.5, data["t"])
    assert np.max(np.abs(ref.eg - data["eg"])) < 1e-12
    # The exported start is in the config's convention (v = 1) and says so.
    assert px.read_convention(out / "initial") == px.Convention("1/K", "eta*alpha", "K")
    assert np.array_equal(px.load_text(out / "initial").v, [1.0, 1.0])


@pytest.mark.parametrize(
    "extra, match",
    [
        ('horizon = 25\n[conventions]\noutput_scale = "1/N"\n', "unknown output_scale '1/N'"),
        ('horizon = 25\n[conventions]\ntime_unit = "epochs"\n', "unknown time_unit"),
        ("horizon = 25\n[conventions]\nlr_scale = 2\n", "must be a string"),
        ('horizon = 25\n[conventions]\nscale = "1/K"\n', r"unknown key\(s\) in \[conventions\]"),
        ('horizon = 25\nhorizon_alpha = 100\n[conventions]\ntime_unit = "eta*alpha"\n', "both horizon"),
        ("num_saves = 80\n", "horizon_alpha"),  # no horizon at all
        (
            'horizon = 25\n[teacher]\nw = [0.5, 0.5]\n[conventions]\noutput_scale = "1/K"\n',
            r"\[teacher\] w = \[0.5, 0.5\] already equals the output scale",
        ),
    ],
)
def test_contradicting_conventions_are_refused(extra, match):
    text = BASE.replace("num_saves = 80\n", "") + extra
    if "num_saves" not in extra:
        text = text.replace("[integration]\n", "[integration]\nnum_saves = 80\n")
    with pytest.raises(ConfigError, match=match):
        parse_config(_raw(text))


def test_horizon_alpha_and_user_units_agree():
    """horizon in t = eta alpha / K and horizon_alpha give the same canonical run; with v given
    in the convention's units (not pre-scaled) the config is accepted."""
    conv = '[conventions]\ntime_unit = "eta*alpha/K"\noutput_scale = "1/sqrt(K)"\n'
    a = parse_config(_raw(BASE + "horizon = 2.5\n" + conv))
    b = parse_config(_raw(BASE + "horizon_alpha = 20\n" + conv))
    assert np.isclose(a.horizon, 20.0) and b.horizon == 20.0 and a.time_factor == 0.125
    assert np.allclose(a.params0.v, 1 / np.sqrt(2)) and a.eta == 0.25


def test_cli_refuses_a_contradiction_with_a_clear_message(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(BASE + 'horizon = 25\n[student.x]\n[conventions]\ntime_unit = "eta"\n')
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err


def test_record_is_json_and_jnp_inputs_work():
    p = specialised_start("K2M2")
    c = OTHER.to_canonical(p, jnp.asarray(0.1), jnp.linspace(0.0, 1.0, 3))
    assert isinstance(c.t, jax.Array) and np.allclose(c.t, np.linspace(0, 1, 3) / 0.1)
    json.dumps(OTHER.record(2, 2, 0.1, 0.2))
