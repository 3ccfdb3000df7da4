r"""Soft committee machines as Equinox modules, and their order parameters."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._order_params import OrderParams, check_order_params
from .activations import AbstractActivation, Erf


class SoftCommittee(eqx.Module):
    r"""A two-layer network $\sigma(\xi) = \sum_i v_i\, g(J_i\cdot\xi/\sqrt N)$.

    Used for both teacher ($B_n$, $w_n$) and student ($J_i$, $v_i$).

    **Fields:**

    - `weights`: hidden weights $J$, shape `(K, N)`; local fields are $x = J\xi/\sqrt N$.
    - `v`: second-layer weights, shape `(K,)`.
    - `activation`: the activation $g$ (default [`plateaux.Erf`][]).
    """

    weights: Float[Array, "K N"]
    v: Float[Array, " K"]
    activation: AbstractActivation

    def __init__(self, weights: ArrayLike, v: ArrayLike | None = None, activation=None):
        weights = jnp.asarray(weights, dtype=float)
        if weights.ndim != 2 or weights.shape[0] == 0 or weights.shape[1] == 0:
            raise ValueError(f"weights must have shape (K, N) with K, N >= 1; got {weights.shape}")
        self.weights = weights
        self.v = jnp.ones(weights.shape[0]) if v is None else jnp.asarray(v, dtype=float)
        self.activation = Erf() if activation is None else activation
        if self.v.shape != (weights.shape[0],):
            raise ValueError(f"v must have shape ({weights.shape[0]},); got {self.v.shape}")

    @property
    def K(self) -> int:
        return self.weights.shape[0]

    @property
    def N(self) -> int:
        return self.weights.shape[1]

    def fields(self, xi: Float[Array, "*B N"]) -> Float[Array, "*B K"]:
        r"""Local fields $x_i = J_i\cdot\xi/\sqrt N$."""
        return xi @ self.weights.T / math.sqrt(self.N)

    def __call__(self, xi: Float[Array, "*B N"]) -> Float[Array, "*B"]:
        r"""Output $\sum_i v_i g(x_i)$ for one input `(N,)` or a batch `(B, N)`."""
        return self.activation.g(self.fields(xi)) @ self.v

    @classmethod
    def gaussian(
        cls, K: int, N: int, key: PRNGKeyArray, *, scale: float = 1.0, v=None, activation=None
    ) -> "SoftCommittee":
        r"""I.i.d. Gaussian weights $J_{ij}\sim\mathcal N(0, \mathrm{scale}^2)$, so $Q\approx
        \mathrm{scale}^2 I$ up to $O(1/\sqrt N)$."""
        if K < 1 or N < 1:
            raise ValueError(f"need K >= 1 and N >= 1; got K={K}, N={N}")
        return cls(scale * jax.random.normal(key, (K, N)), v, activation)


def order_parameters(student: SoftCommittee, teacher: SoftCommittee) -> OrderParams:
    r"""$Q = JJ^T/N$, $R = JB^T/N$, $T = BB^T/N$ with the networks' $v$, $w$."""
    if student.N != teacher.N:
        raise ValueError(f"student and teacher input dimensions differ: N={student.N} vs N={teacher.N}")
    J, B, N = student.weights, teacher.weights, student.N
    return OrderParams(J @ J.T / N, J @ B.T / N, B @ B.T / N, student.v, teacher.v)


def networks_from_order_params(
    params: OrderParams, N: int, key: PRNGKeyArray, activation=None, *, teacher_activation=None
) -> tuple[SoftCommittee, SoftCommittee]:
    r"""A student and a teacher of input dimension `N` whose overlaps are exactly `params`.
    `activation` is the student's (default erf) and, unless `teacher_activation` is given,
    also the teacher's.

    Factor $C = AA^T$ (symmetric square root from `eigh`, so singular $C$ is fine) and take
    a uniformly random orthonormal frame $O\in\mathbb R^{N\times(K+M)}$; the stacked weights
    $[J; B] = \sqrt N A O^T$ then satisfy $[J;B][J;B]^T/N = C$.
    """
    check_order_params(params, "params")
    K, M = params.K, params.M
    if N < K + M:
        raise ValueError(f"N={N} is too small to realise K+M={K + M} overlapping vectors")
    C = np.asarray(params.covariance)
    lam, vecs = np.linalg.eigh(C)
    A = vecs * np.sqrt(np.clip(lam, 0.0, None))
    frame, _ = jnp.linalg.qr(jax.random.normal(key, (N, K + M)))
    W = math.sqrt(N) * jnp.asarray(A) @ frame.T
    teacher_activation = activation if teacher_activation is None else teacher_activation
    return SoftCommittee(W[:K], params.v, activation), SoftCommittee(W[K:], params.w, teacher_activation)
