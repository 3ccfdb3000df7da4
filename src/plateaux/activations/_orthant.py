r"""Orthant moments of a Gaussian, $\langle u_a u_b\,\mathbb 1[u > 0]\rangle$: ReLU's $I_4$.

For ReLU, $g'(u) = \Theta(u)$ and $g(u) = u\,\Theta(u)$, so an $I_4$ entry over its distinct
fields $u\sim\mathcal N(0, S)$ ($d \le 4$) is the orthant moment
$M_2(a, b) = \langle u_a u_b\,\mathbb 1[u_1..u_d > 0]\rangle$. Stein's lemma reduces it to
orthant probabilities of conditional Gaussians (Tallis 1961):

- $M_1(b) = \langle u_b\,\mathbb 1[u>0]\rangle = \sum_j S_{bj}\,\varphi_j(0)\,P_{d-1}(S^{(j)})$,
- $M_2(a, b) = S_{ab}P_d(S) + \sum_{j\ne b} S_{aj}\,\varphi_j(0)\,M_1^{(j)}(b)$,

with $\varphi_j(0) = (2\pi S_{jj})^{-1/2}$ and $S^{(j)}$ the covariance of the other fields
given $u_j = 0$. Orthant probabilities: $P_1 = \frac12$, $P_2 = \frac14 +
\frac{\arcsin\rho_{12}}{2\pi}$, $P_3 = \frac18 + \frac{\sum_{i<j}\arcsin\rho_{ij}}{4\pi}$, and
$P_4$ by Plackett's (1954) identity $\partial P/\partial\rho_{ij} = \varphi_2(0,0;\rho_{ij})
P_2(\rho_{kl\cdot ij})$ integrated along $\rho(t) = t\rho$ from the independent case
($P_4 = 1/16$): a smooth one-dimensional integral, done by Gauss-Legendre after
$t = 1 - s^2$ (which removes the $(1-t)^{-1/2}$ end-point singularity of coinciding fields).
A field of zero variance makes the moment vanish ($\Theta(0) = 0$).
"""

import functools
import math

import jax.numpy as jnp
import numpy as np

_PLACKETT_NODES = 24  # Gauss-Legendre nodes in s for P_4 (error < 1e-14 at generic states)


@functools.lru_cache(maxsize=8)
def _legendre01(n):
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


def _safe_div(a, b):
    ok = b > 0
    return jnp.where(ok, a / jnp.where(ok, b, 1.0), 0.0)


def _asin(x):
    return jnp.arcsin(jnp.clip(x, -1.0, 1.0))


def _corr(S, i, j):
    return _safe_div(S[..., i, j], jnp.sqrt(S[..., i, i] * S[..., j, j]))


def _condition(S, j):
    """Covariance of the fields other than j given u_j = 0."""
    keep = [a for a in range(S.shape[-1]) if a != j]
    col = S[..., keep, j]
    sub = S[..., keep, :][..., :, keep]
    return sub - _safe_div(col[..., :, None] * col[..., None, :], S[..., j, j][..., None, None])


def orthant_probability(S):
    r"""$P(u > 0)$ for $u\sim\mathcal N(0, S)$, $S$ of shape `(..., d, d)`, $d\le4$."""
    d = S.shape[-1]
    if d == 0:
        return jnp.ones(S.shape[:-2])
    if d == 1:
        return jnp.full(S.shape[:-2], 0.5)
    if d == 2:
        return 0.25 + _asin(_corr(S, 0, 1)) / (2 * math.pi)
    if d == 3:
        return 0.125 + (_asin(_corr(S, 0, 1)) + _asin(_corr(S, 0, 2)) + _asin(_corr(S, 1, 2))) / (4 * math.pi)
    if d == 4:
        return _plackett4(S)
    raise ValueError(f"orthant probabilities for at most 4 fields; got {d}")


def _plackett4(S):
    sd = jnp.sqrt(jnp.diagonal(S, axis1=-2, axis2=-1))
    R = _safe_div(S, sd[..., :, None] * sd[..., None, :])
    s, w = _legendre01(_PLACKETT_NODES)
    t = 1.0 - s**2  # t in (0, 1); dt = 2 s ds
    t_ = t.reshape((-1,) + (1,) * (R.ndim - 2))
    eye = jnp.eye(4)
    Rt = eye + t_[..., None, None] * (R[None] - eye)  # (nodes, ..., 4, 4)
    total = 0.0
    for i, j in ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)):
        k, l = (a for a in range(4) if a not in (i, j))
        r = Rt[..., i, j]
        det = 1.0 - r**2

        # Covariance of (u_k, u_l) given u_i = u_j = 0 (2x2 inverse of the (i, j) block).
        def cross(a, b):
            return (
                Rt[..., a, i] * Rt[..., b, i]
                + Rt[..., a, j] * Rt[..., b, j]
                - r * (Rt[..., a, i] * Rt[..., b, j] + Rt[..., a, j] * Rt[..., b, i])
            )

        ckl = Rt[..., k, l] - _safe_div(cross(k, l), det)
        ckk = Rt[..., k, k] - _safe_div(cross(k, k), det)
        cll = Rt[..., l, l] - _safe_div(cross(l, l), det)
        p2 = 0.25 + _asin(_safe_div(ckl, jnp.sqrt(jnp.clip(ckk * cll, 0.0, None)))) / (2 * math.pi)
        dens = _safe_div(jnp.ones_like(det), 2 * math.pi * jnp.sqrt(jnp.clip(det, 0.0, None)))
        total = total + R[..., i, j] * dens * p2
    integrand = total * (2.0 * s).reshape(t_.shape)
    return 1.0 / 16.0 + jnp.tensordot(jnp.asarray(w), integrand, axes=(0, 0))


def _phi0(S, j):
    return _safe_div(jnp.ones_like(S[..., j, j]), jnp.sqrt(2 * math.pi * S[..., j, j]))


def orthant_m1(S, b: int):
    r"""$\langle u_b\,\mathbb 1[u>0]\rangle$."""
    d = S.shape[-1]
    out = 0.0
    for j in range(d):
        out = out + S[..., b, j] * _phi0(S, j) * orthant_probability(_condition(S, j))
    return out


def orthant_m2(S, a: int, b: int):
    r"""$\langle u_a u_b\,\mathbb 1[u>0]\rangle$ ($a = b$ allowed); 0 if a field vanishes."""
    d = S.shape[-1]
    out = S[..., a, b] * orthant_probability(S)
    for j in range(d):
        if j == b:
            continue
        bj = b - (b > j)
        out = out + S[..., a, j] * _phi0(S, j) * orthant_m1(_condition(S, j), bj)
    diag = jnp.diagonal(S, axis1=-2, axis2=-1)
    return jnp.where(jnp.all(diag > 0, axis=-1), out, 0.0)
