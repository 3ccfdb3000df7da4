"""One vector-field abstraction for all averaged learning equations."""

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._order_params import OrderParams, flatten_learned, unflatten_learned
from ..activations import AbstractActivation


class AbstractDynamics(eqx.Module):
    r"""Averaged learning equations $d\,\mathrm{state}/d\alpha = F(\mathrm{state})$.

    A concrete dynamics implements [`vector_field`][] on [`plateaux.OrderParams`][]; the
    integrator, the fixed-point finder and the Jacobian tools only ever see the flat version
    [`flat_vector_field`][] in minimal coordinates (see [`plateaux.flatten_learned`][]), so a
    new learning rule never touches them.

    `activation` is the student's activation; [`activations`][] the pair
    `(student, teacher)` that every Gaussian average and the generalization error use.
    """

    learn_v: eqx.AbstractVar[bool]
    activation: eqx.AbstractVar[AbstractActivation]

    @property
    def activations(self) -> tuple[AbstractActivation, AbstractActivation]:
        """`(student, teacher)` activations (the same one unless the dynamics has its own
        teacher activation)."""
        return (self.activation, self.activation)

    @abc.abstractmethod
    def vector_field(self, params: OrderParams) -> OrderParams:
        r"""Time derivative of the state, as an `OrderParams` of rates ($dT = dw = 0$)."""

    def vector_field_at(self, params: OrderParams, t) -> OrderParams:
        r"""The vector field at time $\alpha = $ `t`. Autonomous dynamics (the default) ignore
        `t`; time-dependent ones (e.g. [`plateaux.schedules.Scheduled`][]) override this."""
        del t
        return self.vector_field(params)

    def flat_vector_field(self, y: Float[Array, " D"], template: OrderParams, t=None) -> Float[Array, " D"]:
        """The vector field in minimal coordinates; `template` supplies the fixed T, w (and v).
        With a time `t` it is [`vector_field_at`][]`(params, t)` (the integrator passes it);
        without, the autonomous [`vector_field`][] (fixed points, Jacobians)."""
        params = unflatten_learned(y, template, learn_v=self.learn_v)
        rates = self.vector_field(params) if t is None else self.vector_field_at(params, t)
        return flatten_learned(rates, learn_v=self.learn_v)


def zero_rates_like(params: OrderParams, dQ, dR, dv=None) -> OrderParams:
    """Assemble rates into an `OrderParams` (fixed fields get zero rates)."""
    return OrderParams(
        dQ,
        dR,
        jnp.zeros_like(params.T),
        jnp.zeros_like(params.v) if dv is None else dv,
        jnp.zeros_like(params.w),
    )


def check_nonnegative_scalars(positive: dict, nonnegative: dict) -> None:
    """Eager range checks of a dynamics' scalar parameters (skipped under tracing): finite and
    `> 0` for `positive`, finite and `>= 0` for `nonnegative` (keys are descriptions ending in
    the parameter's name); `ValueError` names the value."""
    import jax
    import numpy as np

    values = {**positive, **nonnegative}
    if any(isinstance(x, jax.core.Tracer) for x in values.values()):
        return
    for name, value in values.items():
        value = np.asarray(value)
        ok = value > 0 if name in positive else value >= 0
        if not (np.all(np.isfinite(value)) and np.all(ok)):
            bound = "> 0" if name in positive else ">= 0"
            raise ValueError(f"{name} must be finite and {bound}; got {name.split()[-1]}={value}")


def averaging_activation(pair: tuple[AbstractActivation, AbstractActivation]):
    """What the averaging functions take for `(student, teacher)` activations: the single
    activation when both are the same (the fast, closed-form path), else the pair."""
    student, teacher = pair
    if student is teacher or (type(student) is type(teacher) and eqx.tree_equal(student, teacher) is True):
        return student
    return pair
