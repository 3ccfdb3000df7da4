r"""Online stochastic gradient descent in the thermodynamic limit (Saad & Solla 1995)."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._averages import i2_matrix, i3_tensor, i4_tensor, j2_matrix
from .._generalization import output_coefficients
from .._order_params import OrderParams
from ..activations import AbstractActivation, Erf
from ._base import AbstractDynamics, averaging_activation, check_nonnegative_scalars, zero_rates_like
from ._batch_last import flat_vector_field as batch_last_vector_field, supports_batch_last


def _scalar(x: ArrayLike) -> Array:
    return jnp.asarray(x, dtype=float)


def _averages(pair, C, K):
    """The averaging tensors for `(student, teacher)` activations (a single activation when
    both are the same, the pair otherwise; the pair needs $K$ to tell the fields apart)."""
    act = averaging_activation(pair)
    if isinstance(act, tuple):
        return (
            lambda: i2_matrix(act, C, K),
            lambda: j2_matrix(act, C, K),
            lambda: i3_tensor(act, C, K),
            lambda: i4_tensor(act, C, K),
        )
    return (
        lambda: i2_matrix(act, C),
        lambda: j2_matrix(act, C),
        lambda: i3_tensor(act, C, K),
        lambda: i4_tensor(act, C, K),
    )


class OnlineSGD(AbstractDynamics):
    r"""Order-parameter ODEs of online SGD on $\epsilon = (\sigma-\tau)^2/2$, $N\to\infty$.

    With $\delta_i = v_i g'(x_i)(\tau - \sigma)$, $\tau - \sigma = \sum_a a_a g(u_a)$,
    $a = (-v, w)$ over the joint fields $u = (x, y)$, and time $\alpha = \mu/N$:

    - $dR_{in}/d\alpha = \eta\langle\delta_i y_n\rangle - \eta\lambda R_{in}
      = \eta\, v_i \sum_a a_a I_3(x_i, y_n, u_a) - \eta\lambda R_{in}$
    - $dQ_{ik}/d\alpha = \eta\langle\delta_i x_k + \delta_k x_i\rangle
      + \eta^2\langle\delta_i\delta_k\rangle + \eta^2 s^2 v_i v_k J_2(x_i, x_k)
      - 2\eta\lambda Q_{ik}$, with
      $\langle\delta_i x_k\rangle = v_i\sum_a a_a I_3(x_i, x_k, u_a)$ and
      $\langle\delta_i\delta_k\rangle = v_i v_k \sum_{ab} a_a a_b I_4(x_i, x_k, u_a, u_b)$;
    - with a trained second layer, $dv_i/d\alpha = \eta_v\langle g(x_i)(\tau-\sigma)\rangle
      = \eta_v\sum_a a_a I_2(x_i, u_a)$.

    These are the $N\to\infty$ limits of the finite-$N$ rule ([`plateaux.SGD`][])
    $J_i\leftarrow(1 - \frac{\eta\lambda}N)J_i + \frac\eta{\sqrt N}\delta_i\xi$,
    $v_i\leftarrow v_i + \frac{\eta_v}N g(x_i)(\tau-\sigma)$: the weight-decay cross terms
    ($\eta^2\lambda/N$, $\eta^2\lambda^2/N$ per unit $\alpha$) and every $\eta_v^2$ term are $O(1/N)$
    and vanish. Weight decay acts on the hidden layer only; $v$ does not decay.
    $s$ is the standard deviation of the output noise on the teacher's label; it enters only the
    $\eta^2$ term of $Q$ (the noise averages out of every first-order term).

    **Arguments:**

    - `eta`: learning rate $\eta > 0$ of the hidden layer.
    - `noise`: output-noise standard deviation $s \ge 0$.
    - `activation`: the student's activation (default [`plateaux.Erf`][]); also the teacher's
      unless `teacher_activation` is given.
    - `eta_squared`: keep the $O(\eta^2)$ terms (default). `False` gives the $\eta\to0$
      limit, gradient flow on $\epsilon_g$ with time $\eta\alpha$ rescaled back by $\eta$.
    - `teacher_activation`: the teacher's activation, if different from the student's.
    - `eta_v`: learning rate $\eta_v > 0$ of the second layer; `None` (default) keeps $v$
      fixed. Given, the state includes $v$ (`learn_v` is true).
    - `weight_decay`: $\lambda\ge0$, weight decay of the hidden layer (default 0).

    **Raises:** `ValueError` naming `eta`, `noise`, `eta_v` or `weight_decay` when out of range.

    **References:** Saad & Solla, Phys. Rev. E 52, 4225 (1995); Biehl & Schwarze (1995);
    Riegler & Biehl, J. Phys. A 28, L507 (1995) (trained second layer); Saad & Solla, in
    *Mathematics of Neural Networks* (1997) (noise and weight decay).
    """

    eta: Float[Array, ""]
    noise: Float[Array, ""]
    weight_decay: Float[Array, ""]
    eta_v: Float[Array, ""] | None
    activation: AbstractActivation
    teacher_activation: AbstractActivation
    eta_squared: bool = eqx.field(static=True)
    learn_v: bool = eqx.field(static=True)

    def __init__(
        self,
        eta: ArrayLike,
        noise: ArrayLike = 0.0,
        activation: AbstractActivation | None = None,
        eta_squared: bool = True,
        *,
        teacher_activation: AbstractActivation | None = None,
        eta_v: ArrayLike | None = None,
        weight_decay: ArrayLike = 0.0,
    ):
        self.eta = _scalar(eta)
        self.noise = _scalar(noise)
        self.weight_decay = _scalar(weight_decay)
        self.eta_v = None if eta_v is None else _scalar(eta_v)
        self.activation = Erf() if activation is None else activation
        self.teacher_activation = self.activation if teacher_activation is None else teacher_activation
        self.eta_squared = eta_squared
        self.learn_v = eta_v is not None

    def __check_init__(self):
        for name in ("activation", "teacher_activation"):
            act = getattr(self, name)
            if not isinstance(act, AbstractActivation):
                raise ValueError(f"{name} must be a plateaux.AbstractActivation; got {act!r}")
        positive = {"learning rate eta": self.eta}
        if self.eta_v is not None:
            positive["second-layer learning rate eta_v"] = self.eta_v
        check_nonnegative_scalars(
            positive,
            {
                "output noise (standard deviation) noise": self.noise,
                "weight decay weight_decay": self.weight_decay,
            },
        )

    @property
    def activations(self) -> tuple[AbstractActivation, AbstractActivation]:
        return (self.activation, self.teacher_activation)

    def flat_vector_field(self, y, template, t=None):
        # Autonomous (t unused). Under vmap, batch-last closed forms that XLA vectorises
        # (4-5x faster on CPU; see dynamics/_batch_last.py); otherwise the ordinary path.
        if supports_batch_last(self):
            return batch_last_vector_field(self, y, template)
        return super().flat_vector_field(y, template, t)

    def vector_field(self, params: OrderParams) -> OrderParams:
        K = params.K
        C = params.covariance
        i2, j2, i3, i4 = _averages(self.activations, C, K)
        a = output_coefficients(params)
        v = params.v
        # <delta_i u_b> for every student i and every field b, shape (K, K+M). Contractions
        # are written as products and sums, which XLA fuses with the averages (an einsum under
        # vmap becomes a batched dot of tiny matrices: ~1.4x slower vector field on CPU).
        delta_u = v[:, None] * jnp.sum(i3() * a, axis=-1)
        delta_x = delta_u[:, :K]
        dR = self.eta * (delta_u[:, K:] - self.weight_decay * params.R)
        dQ = self.eta * (delta_x + delta_x.T - 2.0 * self.weight_decay * params.Q)
        if self.eta_squared:
            delta_delta = jnp.outer(v, v) * jnp.sum(i4() * jnp.outer(a, a), axis=(-2, -1))
            noise_term = self.noise**2 * jnp.outer(v, v) * j2()[:K, :K]
            dQ = dQ + self.eta**2 * (delta_delta + noise_term)
        dv = None
        if self.learn_v:
            # <g(x_i)(tau - sigma)> = sum_a a_a I2(x_i, u_a).
            dv = self.eta_v * (i2()[:K] @ a)
        return zero_rates_like(params, dQ, dR, dv)
