r"""Learning rules of the finite-N simulation: one online step of a soft committee machine.

[`plateaux.simulate`][] draws the inputs and labels and records the order parameters; an
[`AbstractUpdateRule`][] says how one example changes the trained parameters (the hidden
weights, and the second layer if the rule trains it). Plain online SGD ([`SGD`][]) is the
default; natural gradient rules live in [`plateaux.natural`][].
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, PyTree

from ._network import SoftCommittee
from .activations import AbstractActivation
from .dynamics import AbstractDynamics, OnlineSGD


def squared_error(weights, student: SoftCommittee, xi, label):
    r"""$\epsilon = (\sigma(\xi) - \tau)^2/2$ as a function of the student's hidden weights."""
    return 0.5 * (eqx.tree_at(lambda s: s.weights, student, weights)(xi) - label) ** 2


def activation_pair(activation) -> tuple[AbstractActivation, AbstractActivation] | tuple[None, None]:
    """`(student, teacher)` from one activation, a pair, or None (then `(None, None)`)."""
    if activation is None:
        return None, None
    if isinstance(activation, tuple):
        if len(activation) != 2:
            raise ValueError(
                f"activation must be one activation or a (student, teacher) pair; got {activation}"
            )
        return activation
    return activation, activation


class AbstractUpdateRule(eqx.Module):
    r"""One online learning step $\theta\to\theta + \Delta\theta(\xi, \tau)$ with a rule-specific state.

    The trained parameters $\theta$ are a pytree: by default the hidden weights $J$ only
    ([`parameters`][] and [`network`][] say how they sit in the student; a rule that trains the
    second layer uses $(J, v)$). A concrete rule implements [`init`][] (its state, e.g. an
    optimizer state or a running estimate of $G^{-1}$) and [`update`][]; optionally [`check`][]
    (static validation, `ValueError` at call time), [`record`][] (small diagnostics saved with every
    record of the simulation) and [`dynamics`][] (the $N\to\infty$ ODE of the rule, for
    comparisons). Everything runs inside `jit`/`lax.scan` and under `vmap` over seeds; the learning
    rate `eta` is a traced scalar.
    """

    def check(self, student: SoftCommittee) -> None:
        """Raise `ValueError` if the rule cannot train `student` (called before tracing)."""

    def parameters(self, student: SoftCommittee) -> PyTree:
        """The trained parameters of `student` (default: its hidden weights $J$)."""
        return student.weights

    def network(self, student: SoftCommittee, parameters: PyTree) -> SoftCommittee:
        """`student` with its trained parameters replaced by `parameters`."""
        return eqx.tree_at(lambda s: s.weights, student, parameters)

    @abc.abstractmethod
    def init(self, student: SoftCommittee, eta: Float[Array, ""]) -> PyTree:
        """The rule's initial state."""

    @abc.abstractmethod
    def update(self, weights, state, student: SoftCommittee, xi, label, eta) -> tuple[PyTree, PyTree]:
        r"""One step on the example $(\xi, \tau)$: returns the new trained parameters (`weights`,
        as given by [`parameters`][]) and state. `student` is the template network (its
        activation, and its `v` when the rule does not train it; use `weights` for the rest)."""

    def record(self, weights, state, student: SoftCommittee) -> dict:
        """Scalar diagnostics saved at every record (default: none)."""
        return {}

    def dynamics(self, eta, noise, activation=None) -> AbstractDynamics | None:
        """The order-parameter ODE whose $N\\to\\infty$ limit this rule follows (None if none).
        `activation`: the student's activation or a `(student, teacher)` pair (default erf)."""
        return None


def _check_rates(eta_v, weight_decay) -> None:
    values = {"weight_decay": (weight_decay, ">= 0")}
    if eta_v is not None:
        values["eta_v"] = (eta_v, "> 0")
    for name, (value, bound) in values.items():
        if isinstance(value, jax.core.Tracer):
            continue
        value = np.asarray(value)
        ok = value > 0 if bound == "> 0" else value >= 0
        if not (np.all(np.isfinite(value)) and np.all(ok)):
            raise ValueError(f"{name} must be finite and {bound}; got {name}={value}")


class SGD(AbstractUpdateRule):
    r"""Online SGD on $\epsilon = (\sigma - \tau)^2/2$ (the default rule), with optional weight
    decay of the hidden layer and an optional trained second layer:

    $$J_i\leftarrow J_i + \frac{\eta}{\sqrt N}v_ig'(x_i)(\tau - \sigma)\xi - \frac{\eta\lambda}N J_i,
    \qquad v_i\leftarrow v_i + \frac{\eta_v}N g(x_i)(\tau-\sigma)\ \text{(if trained)},$$

    through `jax.grad` of $\epsilon$ and optax: `add_decayed_weights(lambda / N)` then
    `sgd(eta)` on $J$, `sgd(eta_v / N)` on $v$ (`optax.multi_transform`). Its $N\to\infty$ limit
    is [`plateaux.OnlineSGD`][] with the same `eta_v` and `weight_decay`.

    **Arguments:**

    - `optimizer`: an optax transformation used on $J$ instead of `optax.sgd(eta)` (then `eta`
      is ignored and there is no ODE to compare with; decay and $v$ are handled as above).
    - `eta_v`: learning rate $\eta_v > 0$ of the second layer; `None` (default) keeps $v$ fixed.
    - `weight_decay`: $\lambda\ge0$ (default 0); the second layer does not decay.

    **Raises:** `ValueError` naming `eta_v` or `weight_decay` when out of range.
    """

    optimizer: optax.GradientTransformation | None = eqx.field(static=True)
    eta_v: Float[Array, ""] | None
    weight_decay: Float[Array, ""]

    def __init__(
        self,
        optimizer: optax.GradientTransformation | None = None,
        *,
        eta_v: ArrayLike | None = None,
        weight_decay: ArrayLike = 0.0,
    ):
        self.optimizer = optimizer
        self.eta_v = None if eta_v is None else jnp.asarray(eta_v, dtype=float)
        self.weight_decay = jnp.asarray(weight_decay, dtype=float)

    def __check_init__(self):
        _check_rates(self.eta_v, self.weight_decay)

    @property
    def learn_v(self) -> bool:
        """Whether the second layer is trained."""
        return self.eta_v is not None

    def parameters(self, student):
        return (student.weights, student.v) if self.learn_v else student.weights

    def network(self, student, parameters):
        if self.learn_v:
            return eqx.tree_at(lambda s: (s.weights, s.v), student, parameters)
        return eqx.tree_at(lambda s: s.weights, student, parameters)

    def _optimizer(self, eta, N: int):
        hidden = optax.sgd(eta) if self.optimizer is None else self.optimizer
        hidden = optax.chain(optax.add_decayed_weights(self.weight_decay / N), hidden)
        if not self.learn_v:
            return hidden
        return optax.multi_transform({"J": hidden, "v": optax.sgd(self.eta_v / N)}, ("J", "v"))

    def init(self, student, eta):
        return self._optimizer(eta, student.N).init(self.parameters(student))

    def update(self, weights, state, student, xi, label, eta):
        def loss(p):
            return 0.5 * (self.network(student, p)(xi) - label) ** 2

        grads = jax.grad(loss)(weights)
        updates, state = self._optimizer(eta, student.N).update(grads, state, weights)
        return optax.apply_updates(weights, updates), state

    def dynamics(self, eta, noise, activation=None):
        if self.optimizer is not None:
            return None
        student, teacher = activation_pair(activation)
        return OnlineSGD(
            eta,
            noise,
            student,
            teacher_activation=teacher,
            eta_v=self.eta_v,
            weight_decay=self.weight_decay,
        )
