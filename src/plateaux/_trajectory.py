"""Results over time: ODE trajectories and finite-N simulation records."""

import enum

import equinox as eqx
from jaxtyping import Array, Float, Int

from ._order_params import OrderParams


class Status(enum.IntEnum):
    """How an integration ended (stored as an integer on [`plateaux.Trajectory`][])."""

    REACHED_HORIZON = 0
    CONVERGED = 1  # stopped early: eps_g below threshold and the vector field ~ 0
    DIVERGED = 2  # state left the finite / bounded region (eta too large?)
    MAX_STEPS = 3  # solver step budget exhausted before the horizon


class OrderParamsSeries(eqx.Module):
    """Shared accessors for a time series of order parameters (time is the leading axis
    after any batch axes of `params`)."""

    t: eqx.AbstractVar[Float[Array, "*b S"]]
    params: eqx.AbstractVar[OrderParams]
    eg: eqx.AbstractVar[Float[Array, "*b S"]]

    @property
    def Q(self):
        return self.params.Q

    @property
    def R(self):
        return self.params.R

    @property
    def T(self):
        return self.params.T

    @property
    def v(self):
        return self.params.v

    @property
    def w(self):
        return self.params.w


class Trajectory(OrderParamsSeries):
    r"""Solution of the order-parameter ODE on a saving grid.

    **Fields:**

    - `t`: saving times $\alpha$ (shape `(S,)`, batch axes first for batched solves).
    - `params`: [`plateaux.OrderParams`][] at each saved time (time axis before K, M).
    - `eg`: generalization error $\epsilon_g(\alpha)$.
    - `t_stop`: time where the solve ended: the horizon, the convergence time (saves after
      it repeat the converged state), or where it diverged (saves after it are NaN and
      `status` says so).
    - `status`: a [`plateaux.Status`][] code.
    - `num_steps`, `num_accepted_steps`, `num_rejected_steps`: solver statistics.
    """

    t: Float[Array, "*b S"]
    params: OrderParams
    eg: Float[Array, "*b S"]
    t_stop: Float[Array, "*b"]
    status: Int[Array, "*b"]
    num_steps: Int[Array, "*b"]
    num_accepted_steps: Int[Array, "*b"]
    num_rejected_steps: Int[Array, "*b"]

    @property
    def final(self) -> OrderParams:
        """State at the last saved time."""
        return take_time(self.params, -1)


def take_time(params: OrderParams, index: int) -> OrderParams:
    """The state at time index `index` of a series (batch axes kept)."""
    return OrderParams(
        params.Q[..., index, :, :],
        params.R[..., index, :, :],
        params.T[..., index, :, :],
        params.v[..., index, :],
        params.w[..., index, :],
    )
