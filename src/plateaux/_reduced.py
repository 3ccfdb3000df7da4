r"""Gradient flow in the reduced parameter space of the student weights.

Student and teacher vectors live (for the averaged dynamics) in the $(K+M)$-dimensional span
of the teacher vectors and the students' components orthogonal to them. With teacher
coordinates $B = [L, 0]$ ($LL^T = T$) and student coordinates $W\in\mathbb R^{K\times(K+M)}$,
$Q = WW^T$, $R = WB^T$, and the $\eta\to0$ learning equation is the gradient flow
$dW/d\alpha = -\eta\,\nabla_W\epsilon_g$, whose Jacobian $-\eta\,\nabla^2_W\epsilon_g$ is
symmetric (`eigh`).

Map to the order-parameter spectrum: with $\phi(W) = (Q, R)$ in minimal coordinates and
$D\phi$ its derivative, the order-parameter flow is $\dot\phi = -\eta\,D\phi D\phi^T
\nabla_\phi\epsilon_g$. At a fixed point ($\nabla_\phi\epsilon_g = 0$) its Jacobian is
$-\eta\,G H_\phi$ with $G = D\phi D\phi^T$, while $\nabla^2_W\epsilon_g = D\phi^T H_\phi
D\phi$. $AB$ and $BA$ share their non-zero eigenvalues, so where $D\phi$ has full row rank
(all student vectors linearly independent) the two spectra agree, and the parameter space has
$K(K-1)/2$ extra zero modes (rotations of the students' orthogonal components). On the
overlap singularity $D\phi$ loses rank and the correspondence breaks down.
"""

import jax
import jax.numpy as jnp
import numpy as np

from ._generalization import generalization_error
from ._order_params import OrderParams
from .activations import AbstractActivation, Erf


def _psd_sqrt(A: np.ndarray) -> np.ndarray:
    lam, vecs = np.linalg.eigh(A)
    return vecs * np.sqrt(np.clip(lam, 0.0, None))


def reduced_teacher(T, K: int) -> jnp.ndarray:
    r"""Teacher coordinates $B = [L, 0]\in\mathbb R^{M\times(K+M)}$ with $LL^T = T$."""
    T = np.asarray(T, dtype=float)
    L = _psd_sqrt(T)
    return jnp.asarray(np.concatenate([L, np.zeros((T.shape[0], K))], axis=1))


def reduced_student(params: OrderParams) -> jnp.ndarray:
    r"""Student coordinates $W = [R L^{-T}, Z]$ with $ZZ^T = Q - R T^{-1} R^T$ (the Schur
    complement, PSD for valid states), so that $WW^T = Q$ and $W B^T = R$ for
    $B$ = [`reduced_teacher`][]`(T)`. Pseudo-inverses handle a singular $T$."""
    T, Q, R = (np.asarray(x, dtype=float) for x in (params.T, params.Q, params.R))
    L = _psd_sqrt(T)
    A = R @ np.linalg.pinv(L).T
    Z = _psd_sqrt(Q - A @ A.T)
    return jnp.asarray(np.concatenate([A, Z], axis=1))


def reduced_order_params(W, params: OrderParams) -> OrderParams:
    """Order parameters of student coordinates `W` with the teacher of `params`."""
    B = reduced_teacher(params.T, params.K)
    return OrderParams(W @ W.T, W @ B.T, params.T, params.v, params.w)


def reduced_gradient(W, params: OrderParams, activation: AbstractActivation | None = None):
    r"""$\nabla_W\epsilon_g$ at student coordinates `W`."""
    act = Erf() if activation is None else activation
    return jax.grad(lambda V: generalization_error(reduced_order_params(V, params), act))(W)


def reduced_hessian(params: OrderParams, activation: AbstractActivation | None = None) -> np.ndarray:
    r"""$\nabla^2_W\epsilon_g$ at the student coordinates of `params`, flattened to
    $(K(K+M))^2$; the gradient-flow Jacobian is $-\eta$ times it."""
    act = Erf() if activation is None else activation
    W = reduced_student(params)
    f = lambda v: generalization_error(reduced_order_params(v.reshape(W.shape), params), act)  # noqa: E731
    return np.asarray(jax.hessian(f)(W.ravel()))
