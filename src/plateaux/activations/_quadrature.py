r"""Gauss-Hermite quadrature of Gaussian averages over 1-4 jointly Gaussian fields.

For $u \sim \mathcal N(0, S)$ with a small ($d\times d$, $d\le4$) covariance $S$,
$\langle f(u)\rangle \approx \sum_p W_p f(A z_p)$: $z_p$, $W_p$ the tensor product of
`order` probabilists' Gauss-Hermite nodes per dimension (weights summing to one), and $A$
the *symmetric* square root of $S$ (`eigh`, eigenvalues clipped at 0), so singular $S$
(identical fields, a unit of zero norm) is fine. The rule is exact for polynomials of degree
$\le 2\,\mathrm{order} - 1$ in each $z$; smooth activations converge exponentially in
`order`, non-smooth ones (the step $g'$ of ReLU) algebraically.

Every function broadcasts over the leading axes of its covariance entries. Node arrays are
NumPy constants (cached per order and dimension), so under `jit` they are baked into the
program. The square root has a custom JVP (the Sylvester solution $A\,dA + dA\,A = dS$), which
unlike `eigh`'s own JVP stays finite at repeated eigenvalues (e.g. an identity block of $T$);
it is exact wherever $S$ is non-singular, and where two *distinct* fields coincide exactly it
drops the second-order null-space term (Jacobians exactly on such a set are then approximate).
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from numpy.polynomial.hermite_e import hermegauss


def check_order(order) -> int:
    """Validate a quadrature order (a positive Python int); `ValueError` names a bad one."""
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"quadrature order must be a positive integer; got order={order!r}")
    if order > MAX_ORDER:
        # 1- and 2-field integrals use 4 * order and 2 * order nodes, and NumPy's Hermite
        # weights overflow (NaN) from ~380 nodes on.
        raise ValueError(f"quadrature order must be <= {MAX_ORDER}; got order={order!r}")
    return int(order)


MAX_ORDER = 90
_MAX_NODES = 4 * MAX_ORDER  # 360: the largest 1-d rule used, still finite in float64


@functools.lru_cache(maxsize=64)
def gauss_hermite(order: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Tensor-product rule for $\mathcal N(0, I_{dim})$: nodes `(order**dim, dim)`, weights
    `(order**dim,)` summing to one."""
    if not 1 <= order <= _MAX_NODES:
        raise ValueError(f"a Gauss-Hermite rule needs 1 to {_MAX_NODES} nodes per dimension; got {order}")
    x, w = hermegauss(int(order))
    w = w / math.sqrt(2.0 * math.pi)
    grids = np.meshgrid(*([x] * dim), indexing="ij")
    nodes = np.stack([g.ravel() for g in grids], axis=-1)
    wgrids = np.meshgrid(*([w] * dim), indexing="ij")
    weights = np.prod(np.stack([g.ravel() for g in wgrids], axis=-1), axis=-1)
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


@jax.custom_jvp
def sqrtm_psd(S):
    r"""Symmetric square root of a batch of symmetric PSD matrices (eigenvalues clipped at 0)."""
    lam, V = jnp.linalg.eigh(S)
    s = jnp.sqrt(jnp.clip(lam, 0.0, None))
    return (V * s[..., None, :]) @ jnp.swapaxes(V, -1, -2)


@sqrtm_psd.defjvp
def _sqrtm_psd_jvp(primals, tangents):
    (S,), (dS,) = primals, tangents
    lam, V = jnp.linalg.eigh(S)
    s = jnp.sqrt(jnp.clip(lam, 0.0, None))
    Vt = jnp.swapaxes(V, -1, -2)
    A = (V * s[..., None, :]) @ Vt
    # A dA + dA A = dS  <=>  (V^T dA V)_ij = (V^T dS V)_ij / (s_i + s_j); 0 on the null block.
    denom = s[..., :, None] + s[..., None, :]
    ok = denom > 0
    inner = jnp.where(ok, (Vt @ dS @ V) / jnp.where(ok, denom, 1.0), 0.0)
    return A, V @ inner @ Vt


def nodes_per_dimension(order: int, d: int) -> int:
    r"""Nodes per dimension of a $d$-field integral: `order` for three or four fields,
    `2 * order` for two, `4 * order` for one (cheap there, and the low-dimensional entries,
    e.g. $\langle g'(x)^2 g(x)^2\rangle$, have the narrowest integrands)."""
    return order * {1: 4, 2: 2}.get(d, 1)


def gaussian_average(integrand, S, order: int):
    r"""$\langle f(u)\rangle$, $u\sim\mathcal N(0, S)$, `S` of shape `(..., d, d)`, with
    [`nodes_per_dimension`][]`(order, d)` Gauss-Hermite nodes per dimension.

    `integrand(u, z)` gets the field values `u` and the standard normal nodes `z` (both
    `(..., P, d)`) and returns `(..., P)`.
    """
    d = S.shape[-1]
    nodes, weights = gauss_hermite(nodes_per_dimension(order, d), d)
    A = sqrtm_psd(S)
    z = jnp.asarray(nodes)
    u = jnp.einsum("...ab,pb->...pa", A, z)
    return integrand(u, z) @ jnp.asarray(weights)


def _stack_cov(*rows):
    """A `(..., d, d)` symmetric matrix from its rows given as lists of broadcastable entries."""
    entries = [jnp.asarray(c, dtype=float) for row in rows for c in row]
    shape = jnp.broadcast_shapes(*(c.shape for c in entries))
    d = len(rows)
    flat = [jnp.broadcast_to(c, shape) for c in entries]
    return jnp.stack(flat, axis=-1).reshape(shape + (d, d))


def average2(f1, f2, c11, c12, c22, order):
    r"""$\langle f_1(u_1) f_2(u_2)\rangle$ (e.g. $I_2$ with $g, g$ or $J_2$ with $g', g'$)."""
    S = _stack_cov([c11, c12], [c12, c22])
    return gaussian_average(lambda u, z: f1(u[..., 0]) * f2(u[..., 1]), S, order)


def average4(f1, f2, f3, f4, c11, c12, c13, c14, c22, c23, c24, c33, c34, c44, order):
    r"""$\langle f_1(u_1) f_2(u_2) f_3(u_3) f_4(u_4)\rangle$ (e.g. $I_4$ with $g', g', g, g$)."""
    S = _stack_cov([c11, c12, c13, c14], [c12, c22, c23, c24], [c13, c23, c33, c34], [c14, c24, c34, c44])
    fs = (f1, f2, f3, f4)
    return gaussian_average(lambda u, z: _product(fs, u), S, order)


def _product(fs, u):
    out = fs[0](u[..., 0])
    for j in range(1, len(fs)):
        out = out * fs[j](u[..., j])
    return out


def _pinv_psd2(c11, c13, c33):
    r"""Pseudo-inverse of the PSD $2\times2$ matrix $[[c_{11}, c_{13}], [c_{13}, c_{33}]]$:
    the inverse when it is non-singular (relative determinant $> 10^{-13}$), $S/\mathrm{tr}(S)^2$
    when it has rank one, 0 when it vanishes. Differentiable away from the switches."""
    det = c11 * c33 - c13**2
    tr = c11 + c33
    full = det > 1e-13 * jnp.maximum(c11 * c33, 1e-300)
    rank1 = ~full & (tr > 0)
    safe_det = jnp.where(full, det, 1.0)
    safe_tr2 = jnp.where(rank1, tr**2, 1.0)
    inv = (c33 / safe_det, -c13 / safe_det, c11 / safe_det)
    r1 = (c11 / safe_tr2, c13 / safe_tr2, c33 / safe_tr2)
    return tuple(jnp.where(full, a, jnp.where(rank1, b, 0.0)) for a, b in zip(inv, r1))


def average_i3(dg1, g3, c11, c12, c13, c23, c33, order):
    r"""$\langle g'(u_1)\, u_2\, g(u_3)\rangle$ as a *two*-field quadrature.

    $u_2$ enters linearly, so only its regression on $(u_1, u_3)$ matters:
    $u_2 = \beta_1 u_1 + \beta_3 u_3 + \varepsilon$ with $\varepsilon$ independent of
    $(u_1, u_3)$ and $\beta = S_{13}^{+}(c_{12}, c_{23})$, $S_{13}$ the covariance of
    $(u_1, u_3)$ (pseudo-inverse, so collinear or vanishing fields are fine). Hence
    $I_3 = \langle g'(u_1)(\beta_1u_1 + \beta_3u_3) g(u_3)\rangle$.
    """
    entries = (jnp.asarray(c, dtype=float) for c in (c11, c12, c13, c23, c33))
    c11, c12, c13, c23, c33 = jnp.broadcast_arrays(*entries)
    p11, p13, p33 = _pinv_psd2(c11, c13, c33)
    b1 = (p11 * c12 + p13 * c23)[..., None]
    b3 = (p13 * c12 + p33 * c23)[..., None]
    S = _stack_cov([c11, c13], [c13, c33])

    def integrand(u, z):
        u1, u3 = u[..., 0], u[..., 1]
        return dg1(u1) * (b1 * u1 + b3 * u3) * g3(u3)

    return gaussian_average(integrand, S, order)
