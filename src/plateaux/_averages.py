r"""Tensors of Gaussian averages over the joint fields $(x_1..x_K, y_1..y_M)$.

All tensors are built from the joint covariance $C = [[Q, R], [R^T, T]]$ by broadcasting the
activation's (closed-form or quadrature) averages over index grids. Student indices run over
the first $K$ fields; "any" indices over all $K + M$.
"""

import jax.numpy as jnp
from jaxtyping import Array, Float

from .activations import AbstractActivation


def i2_matrix(act: AbstractActivation, C: Float[Array, "*b n n"]) -> Float[Array, "*b n n"]:
    r"""$[I_2]_{ab} = \langle g(u_a) g(u_b)\rangle$ over all field pairs (batch axes allowed)."""
    d = jnp.diagonal(C, axis1=-2, axis2=-1)
    return act.i2(d[..., :, None], C, d[..., None, :])


def j2_matrix(act: AbstractActivation, C: Float[Array, "n n"]) -> Float[Array, "n n"]:
    r"""$[J_2]_{ab} = \langle g'(u_a) g'(u_b)\rangle$ over all field pairs."""
    d = jnp.diagonal(C)
    return act.j2(d[:, None], C, d[None, :])


def i3_tensor(act: AbstractActivation, C: Float[Array, "n n"], K: int) -> Float[Array, "K n n"]:
    r"""$[I_3]_{i b c} = \langle g'(x_i)\, u_b\, g(u_c)\rangle$, $i$ a student field."""
    d = jnp.diagonal(C)
    a = slice(0, K)
    c11 = d[a, None, None]
    c12 = C[a, :, None]
    c13 = C[a, None, :]
    c23 = C[None, :, :]
    c33 = d[None, None, :]
    return act.i3(c11, c12, c13, c23, c33)


def i4_tensor(act: AbstractActivation, C: Float[Array, "n n"], K: int) -> Float[Array, "K K n n"]:
    r"""$[I_4]_{i k c d} = \langle g'(x_i) g'(x_k) g(u_c) g(u_d)\rangle$, $i, k$ student fields."""
    d = jnp.diagonal(C)
    s = slice(0, K)
    # Axes: (i, k, c, d).
    c11 = d[s, None, None, None]
    c22 = d[None, s, None, None]
    c12 = C[s, s][:, :, None, None]
    c13 = C[s, :][:, None, :, None]
    c14 = C[s, :][:, None, None, :]
    c23 = C[s, :][None, :, :, None]
    c24 = C[s, :][None, :, None, :]
    c33 = d[None, None, :, None]
    c44 = d[None, None, None, :]
    c34 = C[None, None, :, :]
    return act.i4(c11, c12, c13, c14, c22, c23, c24, c33, c34, c44)
