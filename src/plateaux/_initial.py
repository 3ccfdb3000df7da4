r"""Standard teachers and student starts in order-parameter form."""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._order_params import OrderParams, check_order_params


def correlated_teacher(M: int, c: float = 0.0) -> Float[Array, "M M"]:
    r"""$T = (1 - c) I + c\,\mathbf 1\mathbf 1^T$: unit-norm teacher vectors with pairwise
    correlation $c$ ($c = 0$ isotropic; $c\to1$ approaches the overlap singularity).

    Positive semi-definite iff $-1/(M-1) \le c \le 1$ (`ValueError` otherwise).
    """
    if M < 1:
        raise ValueError(f"need at least one teacher unit; got M={M}")
    lower = -1.0 / (M - 1) if M > 1 else -np.inf
    if not isinstance(c, jax.core.Tracer) and not (np.isfinite(c) and lower <= c <= 1.0):  # traced: d/dc
        raise ValueError(f"teacher correlation c={c} must lie in [{lower:.3g}, 1] for M={M}")
    return (1.0 - c) * jnp.eye(M) + c * jnp.ones((M, M))


def classic_start(
    K: int,
    T: Float[Array, "M M"],
    key: PRNGKeyArray,
    *,
    q_max: float = 0.5,
    overlap_max: float = 1e-12,
    v=None,
    w=None,
) -> OrderParams:
    r"""Saad & Solla's random start: $Q_{ii}\sim U[0, q_{\max}]$, $Q_{ik}, R_{in}\sim
    U[0, \text{overlap}_{\max}]$ ($i\ne k$).

    The tiny overlaps seed the asymmetry that ends the symmetric plateau after a time
    $\sim\ln(1/\text{overlap}_{\max})/\lambda_+$; they need float64 (float32 rounds them away).
    """
    T = jnp.asarray(T, dtype=float)
    M = T.shape[0]
    if K < 1:
        raise ValueError(f"need at least one student unit; got K={K}")
    if not (q_max > 0 and overlap_max >= 0):
        raise ValueError(f"need q_max > 0 and overlap_max >= 0; got {q_max}, {overlap_max}")
    k_diag, k_off, k_r = jax.random.split(key, 3)
    diag = jax.random.uniform(k_diag, (K,), minval=0.0, maxval=q_max)
    off = jnp.triu(jax.random.uniform(k_off, (K, K), maxval=overlap_max), 1)
    Q = jnp.diag(diag) + off + off.T
    R = jax.random.uniform(k_r, (K, M), maxval=overlap_max)
    return check_order_params(OrderParams(Q, R, T, v, w), "classic start")
