r"""Online stochastic gradient descent in the thermodynamic limit (Saad & Solla 1995)."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._averages import i3_tensor, i4_tensor, j2_matrix
from .._generalization import output_coefficients
from .._order_params import OrderParams
from ..activations import AbstractActivation, Erf
from ._base import AbstractDynamics, check_nonnegative_scalars, zero_rates_like


def _scalar(x: ArrayLike) -> Array:
    return jnp.asarray(x, dtype=float)


class OnlineSGD(AbstractDynamics):
    r"""Order-parameter ODEs of online SGD on $\epsilon = (\sigma-\tau)^2/2$, $N\to\infty$.

    With $\delta_i = v_i g'(x_i)(\tau - \sigma)$, $\tau - \sigma = \sum_a a_a g(u_a)$,
    $a = (-v, w)$ over the joint fields $u = (x, y)$, and time $\alpha = \mu/N$:

    - $dR_{in}/d\alpha = \eta\langle\delta_i y_n\rangle
      = \eta\, v_i \sum_a a_a I_3(x_i, y_n, u_a)$
    - $dQ_{ik}/d\alpha = \eta\langle\delta_i x_k + \delta_k x_i\rangle
      + \eta^2\langle\delta_i\delta_k\rangle + \eta^2 s^2 v_i v_k J_2(x_i, x_k)$, with
      $\langle\delta_i x_k\rangle = v_i\sum_a a_a I_3(x_i, x_k, u_a)$ and
      $\langle\delta_i\delta_k\rangle = v_i v_k \sum_{ab} a_a a_b I_4(x_i, x_k, u_a, u_b)$.

    $s$ is the standard deviation of the output noise on the teacher's label.

    **Arguments:**

    - `eta`: learning rate $\eta > 0$ of the hidden layer.
    - `noise`: output-noise standard deviation $s \ge 0$.
    - `activation`: student and teacher activation (default [`plateaux.Erf`][]).
    - `eta_squared`: keep the $O(\eta^2)$ terms (default). `False` gives the $\eta\to0$
      limit, gradient flow on $\epsilon_g$ with time $\eta\alpha$ rescaled back by $\eta$.

    **References:** Saad & Solla, Phys. Rev. E 52, 4225 (1995); Biehl & Schwarze (1995).
    """

    eta: Float[Array, ""]
    noise: Float[Array, ""]
    activation: AbstractActivation
    eta_squared: bool = eqx.field(static=True)
    learn_v: bool = eqx.field(static=True)

    def __init__(
        self,
        eta: ArrayLike,
        noise: ArrayLike = 0.0,
        activation: AbstractActivation | None = None,
        eta_squared: bool = True,
    ):
        self.eta = _scalar(eta)
        self.noise = _scalar(noise)
        self.activation = Erf() if activation is None else activation
        self.eta_squared = eta_squared
        self.learn_v = False

    def __check_init__(self):
        check_nonnegative_scalars(
            {"learning rate eta": self.eta}, {"output noise (standard deviation) noise": self.noise}
        )

    def vector_field(self, params: OrderParams) -> OrderParams:
        K = params.K
        act = self.activation
        C = params.covariance
        a = output_coefficients(params)
        v = params.v
        # <delta_i u_b> for every student i and every field b, shape (K, K+M).
        delta_u = v[:, None] * jnp.einsum("ibc,c->ib", i3_tensor(act, C, K), a)
        delta_x = delta_u[:, :K]
        dR = self.eta * delta_u[:, K:]
        dQ = self.eta * (delta_x + delta_x.T)
        if self.eta_squared:
            delta_delta = jnp.outer(v, v) * jnp.einsum("ikcd,c,d->ik", i4_tensor(act, C, K), a, a)
            noise_term = self.noise**2 * jnp.outer(v, v) * j2_matrix(act, C)[:K, :K]
            dQ = dQ + self.eta**2 * (delta_delta + noise_term)
        return zero_rates_like(params, dQ, dR)
