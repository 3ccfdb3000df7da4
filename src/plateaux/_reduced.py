r"""Gradient flow in the reduced parameter space of the student weights.

Student and teacher vectors live (for the averaged dynamics) in the $(K+M)$-dimensional span
of the teacher vectors and the students' components orthogonal to them. With teacher
coordinates $B = [L, 0]$ ($LL^T = T$) and student coordinates $W\in\mathbb R^{K\times(K+M)}$,
$Q = WW^T$, $R = WB^T$, and the $\eta\to0$ learning equation is the gradient flow
$dW/d\alpha = -\eta\,\nabla_W\epsilon_g$, whose Jacobian $-\eta\,\nabla^2_W\epsilon_g$ is
symmetric (`eigh`).

Map to the order-parameter spectrum (what [`order_parameter_rates`][] computes). Write
$W = [A, Z]$: $A = RL^{-T}$ (components in the teacher span, $K\times M$) and $Z$ (components
orthogonal to it, $K\times K$). Then $R = AL^T$ is *linear* in $A$ while $Q = AA^T + ZZ^T$ is
*quadratic* in $Z$.

- At a fixed point in the interior of the state space ($Z$ of full rank, joint covariance
  non-singular) $\nabla_\phi\epsilon_g = 0$ and the order-parameter Jacobian is
  $-\eta\,G H_\phi$ with $G = D\phi D\phi^T$, while $\nabla^2_W\epsilon_g = D\phi^T H_\phi D\phi$;
  $AB$ and $BA$ share their non-zero eigenvalues, so the spectra agree up to $K(K-1)/2$ extra
  zeros in parameter space (rotations $Z \to ZO$).
- At a fixed point with $Z = 0$ (all students in the teacher span: the optimum of a
  realisable teacher, the spurious minima and the plateau saddles found here) the state sits
  on the boundary of the PSD cone, $\nabla_\phi\epsilon_g \ne 0$, and the correspondence is
  different: $Z$ obeys $\dot Z = -2\eta\,SZ$ with $S = \partial\epsilon_g/\partial Q$, so with
  $\mu_a$ the eigenvalues of $-2\eta S$ (each $K$ times in $-\eta\nabla^2_W\epsilon_g$) the
  quadratic map turns them into order-parameter rates $\mu_a + \mu_b$ ($a\le b$), while the
  teacher-span block of $-\eta\nabla^2_W\epsilon_g$ (eigenvalues of $A$) maps one to one.
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


def order_parameter_rates(params: OrderParams, eta: float, *, tol: float = 1e-6) -> np.ndarray:
    r"""The spectrum of the $\eta\to0$ order-parameter Jacobian at a fixed point, predicted
    from the parameter-space Hessian $-\eta\nabla^2_W\epsilon_g$ by the map in the module
    docstring (sorted ascending). Covers fixed points with $Z = 0$ and interior ones
    ($Z$ of full rank); `NotImplementedError` otherwise. $Z$ counts as zero below `tol`
    (it is the square root of a Schur complement, so round-off $10^{-15}$ there gives
    $|Z|\sim 3\times10^{-8}$).
    """
    K, M = params.K, params.M
    W = np.asarray(reduced_student(params))
    H = -eta * reduced_hessian(params)
    Z = W[:, M:]
    cols = np.arange(K * (K + M)).reshape(K, K + M)
    if np.max(np.abs(Z), initial=0.0) < tol:
        a_idx = cols[:, :M].ravel()
        z_idx = cols[:, M]  # one column of Z: the K x K block of -2 eta S
        mu = np.linalg.eigvalsh(H[np.ix_(z_idx, z_idx)])
        pairs = [mu[a] + mu[b] for a in range(K) for b in range(a, K)]
        rates = np.concatenate([np.linalg.eigvalsh(H[np.ix_(a_idx, a_idx)]), pairs])
        return np.sort(rates)
    if np.linalg.matrix_rank(Z, tol=tol) == K:
        values = np.linalg.eigvalsh(H)
        keep = np.argsort(np.abs(values))[K * (K - 1) // 2 :]
        return np.sort(values[keep])
    raise NotImplementedError("students partly in the teacher span (0 < rank Z < K)")
