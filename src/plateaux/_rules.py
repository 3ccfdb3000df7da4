r"""Learning rules of the finite-N simulation: one online step of a soft committee machine.

[`plateaux.simulate`][] draws the inputs and labels and records the order parameters; an
[`AbstractUpdateRule`][] says how one example changes the hidden weights. Plain online SGD
([`SGD`][]) is the default; natural gradient rules live in [`plateaux.natural`][].
"""

import abc

import equinox as eqx
import jax
import optax
from jaxtyping import Array, Float, PyTree

from ._network import SoftCommittee
from .dynamics import AbstractDynamics, OnlineSGD


def squared_error(weights, student: SoftCommittee, xi, label):
    r"""$\epsilon = (\sigma(\xi) - \tau)^2/2$ as a function of the student's hidden weights."""
    return 0.5 * (eqx.tree_at(lambda s: s.weights, student, weights)(xi) - label) ** 2


class AbstractUpdateRule(eqx.Module):
    r"""One online learning step $J\to J + \Delta J(\xi, \tau)$ with a rule-specific state.

    A concrete rule implements [`init`][] (its state, e.g. an optimizer state or a running
    estimate of $G^{-1}$) and [`update`][]; optionally [`check`][] (static validation, `ValueError`
    at call time), [`record`][] (small diagnostics saved with every record of the simulation) and
    [`dynamics`][] (the $N\to\infty$ ODE of the rule, for comparisons). Everything runs inside
    `jit`/`lax.scan` and under `vmap` over seeds; the learning rate `eta` is a traced scalar.
    """

    def check(self, student: SoftCommittee) -> None:
        """Raise `ValueError` if the rule cannot train `student` (called before tracing)."""

    @abc.abstractmethod
    def init(self, student: SoftCommittee, eta: Float[Array, ""]) -> PyTree:
        """The rule's initial state."""

    @abc.abstractmethod
    def update(
        self, weights, state, student: SoftCommittee, xi, label, eta
    ) -> tuple[Float[Array, "K N"], PyTree]:
        r"""One step on the example $(\xi, \tau)$: returns the new weights and state. `student` is
        the template network (its `v` and activation; its `weights` are stale, use `weights`)."""

    def record(self, weights, state, student: SoftCommittee) -> dict:
        """Scalar diagnostics saved at every record (default: none)."""
        return {}

    def dynamics(self, eta, noise) -> AbstractDynamics | None:
        """The order-parameter ODE whose $N\\to\\infty$ limit this rule follows (None if none)."""
        return None


class SGD(AbstractUpdateRule):
    r"""Online SGD on $\epsilon = (\sigma - \tau)^2/2$ (the default rule):
    $J_i\leftarrow J_i + \frac{\eta}{\sqrt N}v_ig'(x_i)(\tau - \sigma)\xi$, through `jax.grad` and
    `optax.sgd(eta)`; its $N\to\infty$ limit is [`plateaux.OnlineSGD`][].

    **Arguments:** `optimizer`: an optax transformation used instead of `optax.sgd(eta)` (then
    `eta` is ignored and there is no ODE to compare with).
    """

    optimizer: optax.GradientTransformation | None = eqx.field(static=True, default=None)

    def _optimizer(self, eta):
        return optax.sgd(eta) if self.optimizer is None else self.optimizer

    def init(self, student, eta):
        return self._optimizer(eta).init(student.weights)

    def update(self, weights, state, student, xi, label, eta):
        grads = jax.grad(squared_error)(weights, student, xi, label)
        updates, state = self._optimizer(eta).update(grads, state, weights)
        return optax.apply_updates(weights, updates), state

    def dynamics(self, eta, noise):
        return OnlineSGD(eta, noise) if self.optimizer is None else None
