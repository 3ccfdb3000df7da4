r"""The linear activation $g(x) = x$: every average is a covariance entry."""

import equinox as eqx
import jax.numpy as jnp

from ._base import AbstractActivation


def _f(*cs):
    return jnp.broadcast_arrays(*(jnp.asarray(c, dtype=float) for c in cs))


class Linear(AbstractActivation):
    r"""$g(x) = x$, $g'(x) = 1$: $I_2 = c_{12}$, $J_2 = 1$, $I_3 = c_{23}$, $I_4 = c_{34}$.

    **The linear-network ODE.** With $g(x) = x$, $\sigma = v^TJ\xi/\sqrt N$ and
    $\tau - \sigma = w^Ty - v^Tx$, so with $r = Rw - Qv$ and
    $2\epsilon_g = v^TQv - 2v^TRw + w^TTw$ the learning equations of
    [`plateaux.OnlineSGD`][] close as matrix polynomials:

    $$\frac{dR}{d\alpha} = \eta\, v\,(Tw - R^Tv)^T,\qquad
    \frac{dQ}{d\alpha} = \eta\,(v r^T + r v^T) + \eta^2\,(2\epsilon_g + s^2)\, v v^T,$$

    from $\langle\delta_i u_b\rangle = v_i\langle(\tau - \sigma)u_b\rangle$ and
    $\langle\delta_i\delta_k\rangle = v_iv_k\langle(\tau-\sigma)^2\rangle$ ($s$: output-noise
    standard deviation). The test suite checks the vector field and its integration against
    this closed form.

    **Arguments:** `order`: Gauss-Hermite order per dimension, used only for blocks mixed
    with a different teacher/student activation.
    """

    name = "linear"
    order: int = eqx.field(static=True, default=16, kw_only=True)

    def g(self, x):
        return jnp.asarray(x, dtype=float)

    def dg(self, x):
        return jnp.ones_like(jnp.asarray(x, dtype=float))

    def i2(self, c11, c12, c22):
        return _f(c11, c12, c22)[1]

    def j2(self, c11, c12, c22):
        return jnp.ones_like(_f(c11, c12, c22)[0])

    def i3(self, c11, c12, c13, c23, c33):
        return _f(c11, c12, c13, c23, c33)[3]

    def i4(self, c11, c12, c13, c14, c22, c23, c24, c33, c34, c44):
        return _f(c11, c12, c13, c14, c22, c23, c24, c33, c34, c44)[8]
