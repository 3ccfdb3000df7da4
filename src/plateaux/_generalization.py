r"""Generalization error of a student given the order parameters."""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._averages import i2_matrix
from ._order_params import OrderParams
from .activations import AbstractActivation, Erf, as_pair


def output_coefficients(params: OrderParams) -> Float[Array, "*batch K+M"]:
    r"""$a = (-v, w)$, so that $\tau - \sigma = \sum_a a_a\, g(u_a)$ over the joint fields."""
    return jnp.concatenate([-params.v, params.w], axis=-1)


def generalization_error(
    params: OrderParams,
    activation: AbstractActivation | tuple[AbstractActivation, AbstractActivation] | None = None,
    noise: float = 0.0,
) -> Float[Array, "*batch"]:
    r"""$\epsilon_g = \frac12\langle(\sigma - \tau)^2\rangle = \frac12 a^T I_2(C)\, a$, $a = (-v, w)$.

    For erf this is the closed form of Saad & Solla (1995):
    $\epsilon_g = \frac1\pi\big[\sum_{ik} v_i v_k \arcsin\frac{Q_{ik}}{\sqrt{(1+Q_{ii})(1+Q_{kk})}}
    + \sum_{nm} w_n w_m \arcsin\frac{T_{nm}}{\sqrt{(1+T_{nn})(1+T_{mm})}}
    - 2\sum_{in} v_i w_n \arcsin\frac{R_{in}}{\sqrt{(1+Q_{ii})(1+T_{nn})}}\big]$.

    The reference label is the *clean* teacher output. With `noise` $= s > 0$ the error against
    the *noisy* label, $\epsilon_g + s^2/2$, is returned instead (the noise floor included).
    Leading batch axes of `params` are mapped over. `activation` may be a pair
    `(student_act, teacher_act)`; the student-teacher block of $I_2$ then uses quadrature.
    """
    if not isinstance(noise, jax.core.Tracer) and not np.all(np.isfinite(noise) & (np.asarray(noise) >= 0)):
        raise ValueError(f"noise (standard deviation) must be finite and >= 0; got noise={noise}")
    act = as_pair(Erf() if activation is None else activation)
    a = output_coefficients(params)
    eg = 0.5 * jnp.einsum("...a,...ab,...b->...", a, i2_matrix(act, params.covariance, params.K), a)
    return eg + 0.5 * noise**2
