"""One vector-field abstraction for all averaged learning equations."""

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._order_params import OrderParams, flatten_learned, unflatten_learned


class AbstractDynamics(eqx.Module):
    r"""Averaged learning equations $d\,\mathrm{state}/d\alpha = F(\mathrm{state})$.

    A concrete dynamics implements [`vector_field`][] on [`plateaux.OrderParams`][]; the
    integrator, the fixed-point finder and the Jacobian tools only ever see the flat version
    [`flat_vector_field`][] in minimal coordinates (see [`plateaux.flatten_learned`][]), so a
    new learning rule never touches them.
    """

    learn_v: eqx.AbstractVar[bool]

    @abc.abstractmethod
    def vector_field(self, params: OrderParams) -> OrderParams:
        r"""Time derivative of the state, as an `OrderParams` of rates ($dT = dw = 0$)."""

    def flat_vector_field(self, y: Float[Array, " D"], template: OrderParams) -> Float[Array, " D"]:
        """The vector field in minimal coordinates; `template` supplies the fixed T, w (and v)."""
        params = unflatten_learned(y, template, learn_v=self.learn_v)
        return flatten_learned(self.vector_field(params), learn_v=self.learn_v)


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
