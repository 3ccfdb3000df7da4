"""Bad input to the model extensions, studies and sweeps gets a clear error, not NaN
(each case comes from an adversarial review)."""

import equinox as eqx
import jax.numpy as jnp
import pytest

import plateaux as px
from plateaux import studies


def _state():
    return px.OrderParams([[0.6, 0.05], [0.05, 0.4]], [[0.7, 0.0], [0.05, 0.5]], jnp.eye(2))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: px.Custom(jnp.log), "not finite at x="),
        (lambda: px.Custom(lambda x: jnp.stack([x, x])), "elementwise"),
        (lambda: px.Custom(jnp.sum), "elementwise"),
        (lambda: px.Tanh(order=200), "order must be <= "),
        (lambda: px.Tanh(order=91), "order must be <= "),
        (lambda: px.generalization_error(_state(), noise=-1.0), "noise=-1.0"),
    ],
)
def test_activation_and_error_inputs_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_studies_refuse_a_runaway_solve_like_integrate():
    # px.integrate flags Q_ii > q_max as divergence; the differentiable path must agree
    # instead of returning a finite value (and gradient) for a runaway run.
    dyn = px.natural.NaturalGradientSGD(100.0)
    with pytest.raises(RuntimeError, match="diverged"):
        px.integrate(_state(), dyn, 10.0)
    with pytest.raises(eqx.EquinoxRuntimeError, match="diverged"):
        studies.eg_at(_state(), dyn, 10.0)


def test_studies_refuse_a_traced_non_positive_learning_rate():
    # Under differentiation eta is a tracer, so only a run-time check can catch it.
    def outcome(eta, adjoint):
        return studies.eg_at(_state(), px.OnlineSGD(eta), 5.0, adjoint=adjoint)

    with pytest.raises(eqx.EquinoxRuntimeError, match="learning rate"):
        studies.value_and_grad(outcome, jnp.asarray(-0.5), mode="forward")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: px.schedules.PiecewiseConstant([1.0], 0.5), "1-d array of one more value"),
        (lambda: px.schedules.Constant([0.1, 0.2]), "scalar eta"),
    ],
)
def test_schedule_shapes_are_checked(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_nn2pp_prefix_cannot_escape_the_directory(tmp_path):
    params = px.OrderParams([[1.0]], [[0.5]], [[1.0]])
    with pytest.raises(ValueError, match="plain name"):
        px.save_text(tmp_path / "out", params, layout="nn2pp", prefix="../evil")
